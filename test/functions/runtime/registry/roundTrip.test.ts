// Round trips through a real Confluent-compatible registry: Apicurio Registry from scripts/local/registry.ts (started
// here if it is not running, stopped afterwards if this file started it), or SCHEMA_REGISTRY_URL when set.
// Register over /apis/ccompat/v7, frame records as a Confluent serializer would, decode them through the decoders.
import { randomUUID } from 'node:crypto';
import avro from 'avsc';
import protobuf from 'protobufjs';
import { z } from 'zod';
import { withOverride } from '../../../../functions/runtime/classify.ts';
import type { KafkaRecord, ValueSpec } from '../../../../functions/runtime/decode.ts';
import { invocationSummaryOf, kafkaHandler } from '../../../../functions/runtime/kafkaHandler.ts';
import { BatchProcessor } from '../../../../functions/runtime/processor.ts';
import {
  ConfluentRegistryClient,
  confluentAvro,
  confluentJsonSchema,
  confluentProtobuf,
  frameConfluent,
  RegistryUnavailableError,
  registryFromEnvironment,
  SchemaNotLoadedError,
  UnknownSchemaError,
  writeMessageIndexes,
} from '../../../../functions/runtime/registry/index.ts';
import { prepareSchemas } from '../../../../functions/runtime/registry/prefetchSchemas.ts';
import { RouteSettings } from '../../../../functions/runtime/settings.ts';
import { registerSchema } from '../../../../scripts/lib/registryTraffic.ts';
import { ensureRegistry, type RegistryHandle } from '../../../../scripts/local/registry.ts';
import { routeEnvironment } from '../../../helpers/aws.ts';
import { lambdaContext } from '../../../helpers/events.ts';
import { localPorts } from '../../../helpers/runtime.ts';
import { fixtureText } from './fakeRegistry.ts';

const skip = process.env.LOCAL_SERVICES === 'skip' && !process.env.SCHEMA_REGISTRY_URL;
const suite = skip ? describe.skip : describe;
if (skip) process.stderr.write('registry round trips skipped: LOCAL_SERVICES=skip and no SCHEMA_REGISTRY_URL\n');

let handle: RegistryHandle;
const run = randomUUID().slice(0, 8);

const register = (subject: string, schema: Parameters<typeof registerSchema>[2]) =>
  registerSchema(handle.url, subject, schema);

suite('round trips through a real registry', () => {
  beforeAll(async () => {
    handle = await ensureRegistry({ log: (line) => process.stderr.write(`[registry] ${line}\n`) });
  }, 240_000);

  const client = () => new ConfluentRegistryClient({ url: handle.url });

  test('Avro: register, frame, decode through zod', async () => {
    const schema = fixtureText('orders.avsc');
    const id = await register(`orders-${run}-value`, { schemaType: 'AVRO', schema });
    const type = avro.Type.forSchema(JSON.parse(schema));
    const value = { orderId: 'o-7', status: 'SHIPPED', amountCents: 4200, note: 'gift' };
    const records = Array.from({ length: 100 }, () => frameConfluent(id, type.toBuffer(value)));
    const registry = client();
    const decoder = confluentAvro({
      registry,
      subject: `orders-${run}-value`,
      schema: z.object({
        orderId: z.string(),
        status: z.string(),
        amountCents: z.number(),
        note: z.string().nullable(),
      }),
    });
    await decoder.prepare(records);
    expect(records.map((r) => decoder.decode(r))).toEqual(Array(100).fill(value));
    expect(registry.requests).toBe(1);
  });

  test('Protobuf: several messages, a nested type and a reference', async () => {
    await register(`common-${run}.proto`, { schemaType: 'PROTOBUF', schema: fixtureText('common.proto') });
    const id = await register(`orders-${run}-proto-value`, {
      schemaType: 'PROTOBUF',
      schema: fixtureText('orders.proto'),
      references: [{ name: 'common.proto', subject: `common-${run}.proto`, version: 1 }],
    });
    const root = new protobuf.Root();
    protobuf.parse(fixtureText('common.proto'), root, { keepCase: true });
    protobuf.parse(fixtureText('orders.proto'), root, { keepCase: true });
    const encode = (name: string, value: object) => {
      const type = root.lookupType(name);
      return Buffer.from(type.encode(type.fromObject(value)).finish());
    };
    const order = Buffer.concat([
      frameConfluent(id, writeMessageIndexes([1])),
      encode('example.orders.Order', { order_id: 'o-9', total: { currency: 'EUR', cents: 125 }, lines: [] }),
    ]);
    const discount = Buffer.concat([
      frameConfluent(id, writeMessageIndexes([1, 0, 0])),
      encode('example.orders.Order.Line.Discount', { code: 'SPRING' }),
    ]);
    const customer = Buffer.concat([
      frameConfluent(id, writeMessageIndexes([0])),
      encode('example.orders.Customer', { id: 'c-9', name: 'Grace' }),
    ]);
    const decoder = confluentProtobuf({ registry: client() });
    await decoder.prepare([order, discount, customer]);
    expect(decoder.decode(order)).toEqual({
      order_id: 'o-9',
      total: { currency: 'EUR', cents: '125' },
      lines: [],
    });
    expect(decoder.decode(discount)).toEqual({ code: 'SPRING' });
    expect(decoder.decode(customer)).toEqual({ id: 'c-9', name: 'Grace' });
  });

  test('JSON Schema: register, frame, validate, decode', async () => {
    const id = await register(`orders-${run}-json-value`, {
      schemaType: 'JSON',
      schema: fixtureText('order.schema.json'),
    });
    const decoder = confluentJsonSchema({ registry: client() });
    const good = frameConfluent(id, Buffer.from(JSON.stringify({ orderId: 'o-3', status: 'PLACED' })));
    const bad = frameConfluent(id, Buffer.from(JSON.stringify({ orderId: 'o-3', status: 'LOST' })));
    await decoder.prepare([good, bad]);
    expect(decoder.decode(good)).toEqual({ orderId: 'o-3', status: 'PLACED' });
    expect(() => decoder.decode(bad)).toThrow(`schema id ${id}: payload does not match the schema`);
  });

  test('a kafkaHandler route decodes framed records with no middleware: the runtime fetches the schemas first', async () => {
    await routeEnvironment('registry-route');
    const schema = fixtureText('orders.avsc');
    const id = await register(`handler-${run}-value`, { schemaType: 'AVRO', schema });
    const type = avro.Type.forSchema(JSON.parse(schema));
    const value = { orderId: 'o-9', status: 'PLACED', amountCents: 100, note: null };
    const seen: unknown[] = [];
    const handler = kafkaHandler({
      route: 'registry-route',
      value: confluentAvro({ registry: client(), schema: z.object({ orderId: z.string(), amountCents: z.number() }) }),
      process: async (record) => {
        seen.push(record.value);
      },
    });
    const framed = frameConfluent(id, type.toBuffer(value)).toString('base64');
    const context = lambdaContext();
    await handler(
      {
        eventSource: 'SelfManagedKafka',
        bootstrapServers: '127.0.0.1:9092',
        records: {
          'orders-0': [
            {
              topic: 'orders',
              partition: 0,
              offset: 0,
              timestamp: Date.now(),
              timestampType: 'CREATE_TIME',
              key: null,
              value: framed,
              headers: [],
            },
          ],
        },
      },
      context,
    );
    expect(invocationSummaryOf(context)).toMatchObject({ processed: 1, deadLettered: 0 });
    expect(seen).toEqual([{ orderId: 'o-9', amountCents: 100 }]);
  });

  test('registryFromEnvironment: the registry the deployment names in SCHEMA_REGISTRY_URL', async () => {
    const schema = fixtureText('orders.avsc');
    const id = await register(`env-${run}-value`, { schemaType: 'AVRO', schema });
    const value = { orderId: 'o-1', status: 'PLACED', amountCents: 1, note: null };
    const framed = frameConfluent(id, avro.Type.forSchema(JSON.parse(schema)).toBuffer(value));
    const saved = process.env.SCHEMA_REGISTRY_URL;
    process.env.SCHEMA_REGISTRY_URL = handle.url;
    try {
      const decoder = confluentAvro({ registry: registryFromEnvironment() });
      await decoder.prepare([framed]);
      expect(decoder.decode(framed)).toEqual(value);
    } finally {
      if (saved === undefined) delete process.env.SCHEMA_REGISTRY_URL;
      else process.env.SCHEMA_REGISTRY_URL = saved;
    }
  });

  test('an id the registry never issued is a permanent UnknownSchemaError with its answer', async () => {
    const decoder = confluentAvro({ registry: client(), subject: 'orders-value' });
    const bytes = frameConfluent(987_654_321, Buffer.from([0]));
    await decoder.prepare([bytes]);
    expect(() => decoder.decode(bytes)).toThrow(UnknownSchemaError);
    expect(() => decoder.decode(bytes)).toThrow(
      /^schema id 987654321 \(subject orders-value\): unknown to the registry: .*40403/,
    );
  });
  // Provisioned mode with the event source mapping's own registry integration and eventRecordFormat SOURCE: the ESM
  // strips the framing (magic byte and schema id; Protobuf message indexes stay) and names the schema in
  // valueSchemaMetadata. The fixtures are shaped like AWS's examples (see test/fixtures/registry/esm-source-events.md);
  // their schemaIds are the fake registry's, rewritten here to the ids the real registry issued.
  describe('eventRecordFormat SOURCE through the batch processor', () => {
    const OrderEvent = z.object({
      orderId: z.string(),
      status: z.enum(['PLACED', 'PAID', 'SHIPPED']),
      amountCents: z.number(),
      note: z.string().nullable(),
    });
    type OrderEvent = z.infer<typeof OrderEvent>;

    type FixtureEvent = { records: Record<string, { valueSchemaMetadata?: { schemaId: string } }[]> };
    const sourceEvent = (fixture: string, schemaIds: Record<string, string | number>): FixtureEvent => {
      const event = JSON.parse(fixtureText(fixture)) as FixtureEvent;
      for (const record of Object.values(event.records).flat()) {
        const metadata = record.valueSchemaMetadata;
        if (metadata && schemaIds[metadata.schemaId] !== undefined)
          metadata.schemaId = String(schemaIds[metadata.schemaId]);
      }
      return event;
    };
    const settings = RouteSettings.parse({
      retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5, maxRecordAgeSeconds: 3600 },
    });
    const processorFor = <V>(
      route: string,
      value: ConstructorParameters<typeof BatchProcessor<V, string | null>>[0]['value'],
    ) => {
      const seen: KafkaRecord<V, string | null>[] = [];
      const processor = new BatchProcessor<V, string | null>({
        route,
        value,
        classify: withOverride(),
        tombstones: 'skip',
        work: { mode: 'process', process: async (record) => void seen.push(record) },
      });
      return { seen, processor, ports: localPorts(route) };
    };

    let avroId: number;
    beforeAll(async () => {
      avroId = await register(`esm-source-${run}-value`, { schemaType: 'AVRO', schema: fixtureText('orders.avsc') });
    });

    test('Avro: the schema id comes from valueSchemaMetadata; a payload that happens to look framed is not peeked at', async () => {
      const event = sourceEvent('esm-registry-source-avro-event.json', { '1': avroId });
      const registry = client();
      const value = confluentAvro({ registry, subject: `esm-source-${run}-value`, schema: OrderEvent });
      const { seen, processor, ports } = processorFor<OrderEvent>('esm-source-avro', value);
      // What kafkaHandler does before every batch.
      await prepareSchemas({ value }, event);
      const result = await processor.run(event, lambdaContext(30_000), await ports.deps(settings));

      expect(result.error).toBeUndefined();
      expect(seen.map((r) => [r.offset, r.key, r.value])).toEqual([
        [15, 'o-1', { orderId: 'o-1', status: 'PAID', amountCents: 1999, note: null }],
        [16, 'o-2', { orderId: 'o-2', status: 'SHIPPED', amountCents: 4200, note: 'gift' }],
        // 00 00 00 02 02 78: as Confluent framing it would name schema id 514; the metadata says otherwise.
        [17, 'o-3', { orderId: '', status: 'PLACED', amountCents: 0, note: 'x' }],
      ]);
      expect(registry.requests).toBe(1);
      expect(await ports.letters()).toEqual([]);
    });

    test('Protobuf: the message indexes the ESM leaves in place pick the message ([1] and the [0] shorthand)', async () => {
      await register(`common-${run}-src.proto`, { schemaType: 'PROTOBUF', schema: fixtureText('common.proto') });
      const protoId = await register(`esm-source-${run}-proto-value`, {
        schemaType: 'PROTOBUF',
        schema: fixtureText('orders.proto'),
        references: [{ name: 'common.proto', subject: `common-${run}-src.proto`, version: 1 }],
      });
      const event = sourceEvent('esm-registry-source-protobuf-event.json', { '3': protoId });
      const value = confluentProtobuf({ registry: client() });
      const { seen, processor, ports } = processorFor<unknown>('esm-source-proto', value);
      await prepareSchemas({ value }, event);
      const result = await processor.run(event, lambdaContext(30_000), await ports.deps(settings));

      expect(result.error).toBeUndefined();
      expect(seen.map((r) => r.value)).toEqual([
        { order_id: 'o-1', total: { currency: 'EUR', cents: '1999' }, lines: [{ sku: 'A', quantity: 2 }] },
        { id: 'c-1', name: 'Ada' },
      ]);
      expect(await ports.letters()).toEqual([]);
    });

    test('permanent, dead-lettered by route, coordinates and schema id: an unknown id, a Glue id, JSON-format records, a zod route', async () => {
      // Each case on a route of its own: they share coordinates, which would otherwise dedupe them.
      const lettersOf = async (route: string, value: ValueSpec<OrderEvent>, event: FixtureEvent) => {
        const { seen, processor, ports } = processorFor<OrderEvent>(route, value);
        await prepareSchemas({ value }, event);
        const result = await processor.run(event, lambdaContext(30_000), await ports.deps(settings));
        expect(result.error).toBeUndefined();
        expect(seen).toEqual([]);
        return (await ports.letters()).sort((a, b) => a.source.offset - b.source.offset);
      };
      const avroValue = () =>
        confluentAvro({ registry: client(), subject: `esm-source-${run}-value`, schema: OrderEvent });

      const unknown = await lettersOf(
        'esm-source-unknown',
        avroValue(),
        sourceEvent('esm-registry-source-avro-event.json', { '1': 987_654_321 }),
      );
      expect(unknown.map((l) => l.error.message)).toEqual(
        [15, 16, 17].map((offset) =>
          expect.stringMatching(
            new RegExp(
              `^RecordProcessingError: route esm-source-unknown: orders-0@${offset}: permanent: UnknownSchemaError: ` +
                `schema id 987654321 \\(subject esm-source-${run}-value\\): unknown to the registry: .*40403`,
            ),
          ),
        ),
      );
      // The dead letter keeps the bytes as the event carried them.
      expect(unknown[0]?.record).toMatchObject({ key: 'by0x', value: 'Bm8tMQKeHwA=' });

      const glueId = await lettersOf(
        'esm-source-glue-id',
        avroValue(),
        JSON.parse(fixtureText('esm-registry-source-glue-event.json')),
      );
      expect(glueId.map((l) => [l.error.name, l.error.message])).toEqual([
        [
          'WireFormatError',
          'RecordProcessingError: route esm-source-glue-id: orders-0@18: permanent: WireFormatError: the event source ' +
            'mapping\'s schema metadata names schema id "b7b4a7f0-8a3b-4c51-9b1e-3f0e6b7a2c10" (AVRO), which is not a ' +
            'Confluent schema id but a Glue schema version: decode with glue()',
        ],
      ]);

      const jsonFormat = await lettersOf(
        'esm-source-json-format',
        avroValue(),
        sourceEvent('esm-registry-json-event.json', { '1': avroId }),
      );
      expect(jsonFormat.map((l) => [l.error.name, l.error.message])).toEqual([
        [
          'SchemaMismatchError',
          expect.stringMatching(
            new RegExp(
              `^RecordProcessingError: route esm-source-json-format: orders-0@15: permanent: SchemaMismatchError: ` +
                `schema id ${avroId} \\(subject esm-source-${run}-value\\): payload does not match the schema: the bytes ` +
                'are JSON, as the event source mapping sends AVRO records with eventRecordFormat JSON: decode such a ' +
                'route with a plain zod value, or set eventRecordFormat SOURCE$',
            ),
          ),
        ],
      ]);

      // A route decoding JSON (a plain zod value) handed SOURCE bytes.
      const zodRoute = await lettersOf(
        'esm-source-zod',
        OrderEvent,
        sourceEvent('esm-registry-source-avro-event.json', { '1': avroId }),
      );
      expect(zodRoute.map((l) => l.error.message)).toEqual(
        [15, 16, 17].map((offset) =>
          expect.stringMatching(
            new RegExp(
              `^RecordProcessingError: route esm-source-zod: orders-0@${offset}: permanent: DecodeError: value is not ` +
                `valid JSON: .*; the event source mapping sent it as AVRO with schema id ${avroId} \\(eventRecordFormat ` +
                'SOURCE\\): decode it with confluentAvro \\(or glue\\), or set eventRecordFormat JSON$',
            ),
          ),
        ),
      );
    });

    test('a registry that cannot be reached is transient: the batch fails, nothing is dead-lettered', async () => {
      const event = sourceEvent('esm-registry-source-avro-event.json', { '1': avroId });
      // A port nothing listens on: connections are refused, as when the registry is down.
      const value = confluentAvro({
        registry: new ConfluentRegistryClient({ url: 'http://127.0.0.1:9/apis/ccompat/v7' }),
      });
      const { seen, processor, ports } = processorFor<unknown>('esm-source-down', value);
      await expect(prepareSchemas({ value }, event)).rejects.toThrow(RegistryUnavailableError);
      // Without its schema, decoding fails the batch the same way (transient) rather than blaming a record.
      await expect(processor.run(event, lambdaContext(30_000), await ports.deps(settings))).rejects.toThrow(
        SchemaNotLoadedError,
      );
      expect(seen).toEqual([]);
      expect(await ports.letters()).toEqual([]);
    });
  });
});
