// Registry decoders inside the real batch processor (DynamoDB Local and ElasticMQ, as processor.test.ts uses them):
// framing errors become dead letters that name the route, the coordinates and the schema id, and keep the wire bytes.
import { z } from 'zod';
import { withOverride } from '../../../../functions/runtime/classify.ts';
import type { KafkaRecord } from '../../../../functions/runtime/decode.ts';
import { BatchProcessor } from '../../../../functions/runtime/processor.ts';
import {
  ConfluentRegistryClient,
  confluentAvro,
  frameConfluent,
  recordHeads,
} from '../../../../functions/runtime/registry/index.ts';
import { RouteSettings } from '../../../../functions/runtime/settings.ts';
import { lambdaContext, mskEvent } from '../../../helpers/events.ts';
import { localPorts } from '../../../helpers/runtime.ts';
import { fakeRegistry, fixtureRoutes, fixtureText, frame } from './fakeRegistry.ts';

const OrderEvent = z.object({ orderId: z.string(), status: z.string(), amountCents: z.number() });
type OrderEvent = z.infer<typeof OrderEvent>;

test('good records run; wrong magic byte, unknown id and truncated payloads are dead-lettered by schema id', async () => {
  const fake = fakeRegistry(fixtureRoutes());
  const value = confluentAvro({
    registry: new ConfluentRegistryClient({ url: 'http://registry.test', fetch: fake.fetch }),
    subject: 'orders-value',
    schema: OrderEvent,
  });
  const seen: KafkaRecord<OrderEvent, string | null>[] = [];
  const processor = new BatchProcessor<OrderEvent, string | null>({
    route: 'registry',
    value,
    classify: withOverride(),
    tombstones: 'skip',
    work: { mode: 'process', process: async (record) => void seen.push(record) },
  });
  const ports = localPorts('registry');
  const settings = RouteSettings.parse({
    retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5, maxRecordAgeSeconds: 3600 },
  });
  const wrongMagic = Buffer.from('{"orderId":"o-1"}');
  const unknownId = frameConfluent(77, Buffer.from('066f2d31029e1f00', 'hex'));
  const truncated = frame('avroOrder').subarray(0, 8);
  const event = mskEvent([
    { offset: 1, value: frame('avroOrder') },
    { offset: 2, value: wrongMagic },
    { offset: 3, value: unknownId },
    { offset: 4, value: truncated },
    { offset: 5, value: frame('avroOrder') },
  ]);
  // What prefetchSchemas does before the handler runs.
  await value.prepare(recordHeads(event).values);
  const result = await processor.run(event, lambdaContext(30_000), await ports.deps(settings));

  expect(result.error).toBeUndefined();
  expect(seen.map((r) => [r.offset, r.value.orderId])).toEqual([
    [1, 'o-1'],
    [5, 'o-1'],
  ]);
  expect(fake.calls.map((c) => new URL(c.url).pathname)).toEqual(['/schemas/ids/1', '/schemas/ids/77']);
  const letters = (await ports.letters()).sort((a, b) => a.source.offset - b.source.offset);
  expect(letters.map((l) => [l.source.offset, l.error.kind, l.error.name, l.error.message])).toEqual([
    [2, 'permanent', 'WireFormatError', expect.stringMatching(/wrong magic byte 0x7b, expected 0x00/)],
    [
      3,
      'permanent',
      'UnknownSchemaError',
      'RecordProcessingError: route registry: orders-0@3: permanent: UnknownSchemaError: schema id 77 ' +
        '(subject orders-value): unknown to the registry: Schema not found (error 40403)',
    ],
    [
      4,
      'permanent',
      'SchemaMismatchError',
      'RecordProcessingError: route registry: orders-0@4: permanent: SchemaMismatchError: schema id 1 ' +
        '(subject orders-value): payload does not match the schema: Avro: truncated buffer',
    ],
  ]);
  expect(Buffer.from(letters[1]?.record.value ?? '', 'base64')).toEqual(unknownId);
  expect(result.failures).toEqual([]);
  expect(result.deadLetters.map((d) => d.message)).toEqual(
    expect.arrayContaining([
      expect.stringMatching(/^route registry: orders-0@3: permanent: UnknownSchemaError: schema id 77/),
    ]),
  );
});

test("the ESM's own registry integration (provisioned mode, eventRecordFormat JSON) decodes with a plain zod value", async () => {
  // The event source mapping validated and converted the record: the value is JSON, and the records carry
  // keySchemaMetadata / valueSchemaMetadata, shaped like AWS's documented examples.
  const event = JSON.parse(fixtureText('esm-registry-json-event.json'));
  const seen: KafkaRecord<OrderEvent, string | null>[] = [];
  const processor = new BatchProcessor<OrderEvent, string | null>({
    route: 'registry-esm',
    value: OrderEvent,
    classify: withOverride(),
    tombstones: 'skip',
    work: { mode: 'process', process: async (record) => void seen.push(record) },
  });
  const ports = localPorts('registry-esm');
  const result = await processor.run(event, lambdaContext(30_000), await ports.deps(RouteSettings.parse({})));
  expect(result.error).toBeUndefined();
  expect(seen.map((r) => [r.key, r.value])).toEqual([['o-1', { orderId: 'o-1', status: 'PAID', amountCents: 1999 }]]);
  expect(event.records['orders-0'][0].valueSchemaMetadata).toEqual({ dataFormat: 'AVRO', schemaId: '1' });
});
