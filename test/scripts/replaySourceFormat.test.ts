// Replaying records the event source mapping delivered with eventRecordFormat SOURCE (registry framing removed, the
// schema id only in valueSchemaMetadata), against Kafka, DynamoDB Local, ElasticMQ and the local Apicurio registry
// (started here if it is not running, stopped afterwards if this file started it). The records come from
// test/fixtures/registry/esm-registry-source-avro-event.json; a route whose zod schema refuses them dead-letters
// them, and the replay must then decode them as the first time (--invoke) or republish them framed (to a topic).
// The tests run in band: `prepareRoute` points process.env at one route's resources at a time.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { DeadLetterEnvelope } from '../../functions/runtime/deadLetter/envelopeSchema.ts';
import type { KafkaEventInput } from '../../functions/runtime/event.ts';
import { kafkaHandler } from '../../functions/runtime/kafkaHandler.ts';
import { ConfluentRegistryClient, confluentAvro, frameConfluent } from '../../functions/runtime/registry/index.ts';
import { loadBridgeConfig } from '../../infra/config/index.ts';
import { invokeRoute, type PreparedRoute, prepareRoute } from '../../scripts/lib/invokeRoute.ts';
import { brokersFromEnv } from '../../scripts/lib/kafka.ts';
import { ensureLocalResources } from '../../scripts/lib/localResources.ts';
import {
  type KafkaRecordBytes,
  kafkaEvent,
  REPLAY_HEADER,
  wireRecordFromKafka,
} from '../../scripts/lib/replayEvents.ts';
import { KafkaRecordReader } from '../../scripts/lib/replayKafka.ts';
import { replayDeadLetters } from '../../scripts/lib/replayRun.ts';
import { ensureRegistry, type RegistryHandle } from '../../scripts/local/registry.ts';
import { fixtureText } from '../functions/runtime/registry/fakeRegistry.ts';
import { queueDepth, sqs, uniqueName } from '../helpers/aws.ts';

const TIMEOUT = 180_000;
const ROUTE = 'orders-source';
const CLUSTER_ARN = 'arn:aws:kafka:us-east-1:123456789012:cluster/replay-source/abcd1234-abcd-cafe-abab-9876543210ab-4';
const brokers = brokersFromEnv();
const run = randomUUID().slice(0, 8);
const subject = `replay-source-${run}-value`;

const OrderEvent = z.object({
  orderId: z.string(),
  status: z.enum(['PLACED', 'PAID', 'SHIPPED']),
  amountCents: z.number(),
  note: z.string().nullable(),
});
/** The first deployment's schema: no order id of the fixture passes it, so every record is dead-lettered. */
const StrictOrderEvent = OrderEvent.extend({ orderId: z.string().startsWith('order-') });

/** What the fixture's three records decode to (see test/fixtures/registry/esm-source-events.md). */
const EXPECTED = [
  { offset: 15, key: 'o-1', value: { orderId: 'o-1', status: 'PAID', amountCents: 1999, note: null } },
  { offset: 16, key: 'o-2', value: { orderId: 'o-2', status: 'SHIPPED', amountCents: 4200, note: 'gift' } },
  // 00 00 00 02 02 78: read as Confluent framing it would name schema id 514; only the metadata names the schema.
  { offset: 17, key: 'o-3', value: { orderId: '', status: 'PLACED', amountCents: 0, note: 'x' } },
];

let handle: RegistryHandle;
let avroId: number;
let dir: string;

const register = async (schema: string): Promise<number> => {
  const response = await fetch(`${handle.url}/subjects/${encodeURIComponent(subject)}/versions`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ schema }),
  });
  const json = (await response.json()) as { id?: number; message?: string };
  if (!response.ok || typeof json.id !== 'number') {
    throw new Error(`register ${subject}: ${response.status} ${json.message}`);
  }
  return json.id;
};

beforeAll(async () => {
  handle = await ensureRegistry({ log: (line) => process.stderr.write(`[registry] ${line}\n`) });
  avroId = await register(fixtureText('orders.avsc'));
  dir = await mkdtemp(join(tmpdir(), 'replay-source-'));
}, 240_000);

/** A config of its own: fresh topic (one partition), idempotency table and DLQ; process.env points at them. */
const setupRoute = async (): Promise<{ prepared: PreparedRoute; topic: string }> => {
  const name = uniqueName('replay-source');
  const topic = uniqueName('orders-src');
  const file = join(dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      name,
      source: { kind: 'msk', clusterArn: CLUSTER_ARN, auth: 'iam' },
      routes: [
        {
          name: ROUTE,
          topic,
          handler: 'orders.ts',
          retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 100 },
          timeoutSeconds: 30,
        },
      ],
      observability: { logLevel: 'ERROR' },
    }),
  );
  await ensureLocalResources(await loadBridgeConfig(file), { partitions: 1 });
  return { prepared: await prepareRoute({ route: ROUTE, configPath: file, logLevel: 'SILENT' }), topic };
};

/** The fixture's SOURCE event, on the route's topic, naming the schema id the local registry issued. */
const sourceEvent = (topic: string): KafkaEventInput => {
  const event = JSON.parse(fixtureText('esm-registry-source-avro-event.json')) as KafkaEventInput & {
    records: Record<string, Array<{ topic: string; valueSchemaMetadata: { schemaId: string } }>>;
  };
  const records = (event.records['orders-0'] ?? []).map((record) => ({
    ...record,
    topic,
    valueSchemaMetadata: { ...record.valueSchemaMetadata, schemaId: String(avroId) },
  }));
  return { ...event, records: { [`${topic}-0`]: records } } as KafkaEventInput;
};

/** A handler decoding with confluentAvro against the local registry; `seen` holds what reached `process`. */
const avroRoute = (schema: z.ZodType<z.infer<typeof OrderEvent>>) => {
  const seen: Array<{ offset: number; key: unknown; value: unknown }> = [];
  const handler = kafkaHandler({
    route: ROUTE,
    value: confluentAvro({ registry: new ConfluentRegistryClient({ url: handle.url }), subject, schema }),
    process: async (record) => {
      seen.push({ offset: record.offset, key: record.key, value: record.value });
    },
  });
  return { seen, handler: handler as (event: unknown, context: unknown) => Promise<unknown> };
};

/** The DLQ's envelopes, left visible. */
const dlqEnvelopes = async (prepared: PreparedRoute): Promise<DeadLetterEnvelope[]> => {
  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: prepared.deadLetterQueueUrl,
      MaxNumberOfMessages: 10,
      VisibilityTimeout: 0,
      WaitTimeSeconds: 1,
    }),
  );
  return Messages.map((m) => DeadLetterEnvelope.parse(JSON.parse(m.Body ?? ''))).sort(
    (a, b) => a.source.offset - b.source.offset,
  );
};

/** First delivery: the strict route decodes each record and dead-letters it for its zod schema. */
const deadLetterSourceRecords = async (prepared: PreparedRoute, topic: string) => {
  const strict = avroRoute(StrictOrderEvent);
  const first = await invokeRoute(prepared, strict.handler, sourceEvent(topic));
  expect(first.error).toBeNull();
  expect(first.summary).toMatchObject({ received: 3, processed: 0, deadLettered: 3 });
  const envelopes = await dlqEnvelopes(prepared);
  expect(envelopes.map((e) => [e.source.offset, e.error.kind, e.error.name])).toEqual(
    EXPECTED.map(({ offset }) => [offset, 'permanent', 'ValidationError']),
  );
  // The envelope keeps the SOURCE bytes as delivered, and the metadata that names their schema.
  expect(envelopes.map((e) => e.record)).toEqual([
    expect.objectContaining({ key: 'by0x', value: 'Bm8tMQKeHwA=', truncated: false }),
    expect.objectContaining({ key: 'by0y', value: 'Bm8tMgTQQQIIZ2lmdA==' }),
    expect.objectContaining({ key: 'by0z', value: 'AAAAAgJ4' }),
  ]);
  for (const envelope of envelopes) {
    expect(envelope.record.valueSchemaMetadata).toEqual({ dataFormat: 'AVRO', schemaId: String(avroId) });
    expect(envelope.record.keySchemaMetadata).toBeUndefined();
  }
  return envelopes;
};

describe('replay of records delivered with eventRecordFormat SOURCE', () => {
  test(
    '--invoke: the handler gets the schema metadata back and decodes each record as the first time',
    async () => {
      const { prepared, topic } = await setupRoute();
      await deadLetterSourceRecords(prepared, topic);
      const relaxed = avroRoute(OrderEvent);

      const dry = await replayDeadLetters({
        prepared,
        mode: { kind: 'invoke' },
        handler: relaxed.handler,
        brokers,
        dryRun: true,
      });
      expect(dry).toMatchObject({ received: 3, wouldReplay: 3, replayed: 0 });
      for (const item of dry.items) {
        expect(item.schemaMetadata).toBe(`value AVRO, schema id "${avroId}"`);
        expect(item.reason).toMatch(
          new RegExp(
            `^would invoke route ${ROUTE} with .*; with its schema metadata \\(eventRecordFormat SOURCE\\): value AVRO, schema id "${avroId}"$`,
          ),
        );
      }
      expect(relaxed.seen).toEqual([]);

      const report = await replayDeadLetters({ prepared, mode: { kind: 'invoke' }, handler: relaxed.handler, brokers });
      expect(report.error).toBeUndefined();
      expect(report).toMatchObject({ received: 3, replayed: 3, left: 0 });
      expect(report.invocations).toEqual([
        expect.objectContaining({ received: 3, processed: 3, deadLettered: 0, error: null, batchItemFailures: 0 }),
      ]);
      // Offset 17 too: without its metadata its bytes would be read as framing naming schema id 514.
      expect(relaxed.seen).toEqual(EXPECTED);
      expect(await queueDepth(prepared.deadLetterQueueUrl)).toBe(0);
    },
    TIMEOUT,
  );

  test(
    'to the topic: SOURCE bytes are re-framed, and a confluentAvro decoder without metadata reads the same values',
    async () => {
      const { prepared, topic } = await setupRoute();
      const envelopes = await deadLetterSourceRecords(prepared, topic);
      const reframing = `value: Confluent schema id ${avroId}`;

      const dry = await replayDeadLetters({ prepared, mode: { kind: 'topic' }, brokers, dryRun: true });
      expect(dry).toMatchObject({ received: 3, wouldReplay: 3, replayed: 0 });
      for (const item of dry.items) {
        expect(item.reframed).toEqual([reframing]);
        expect(item.reason).toMatch(
          new RegExp(
            `^would produce to ${topic} \\(partition 0\\) with .*; re-framed \\(eventRecordFormat SOURCE\\): ${reframing}$`,
          ),
        );
      }

      const progress: string[] = [];
      const report = await replayDeadLetters({
        prepared,
        mode: { kind: 'topic' },
        brokers,
        progress: (line) => progress.push(line),
      });
      expect(report.error).toBeUndefined();
      expect(report).toMatchObject({ mode: 'to-topic', received: 3, replayed: 3, left: 0 });
      expect(report.items.map((i) => i.reframed)).toEqual([[reframing], [reframing], [reframing]]);
      // SQS hands the messages over in no particular order.
      expect(progress.filter((line) => line.startsWith('replayed ')).sort()).toEqual(
        EXPECTED.map(({ offset }) =>
          expect.stringMatching(new RegExp(`^replayed ${topic}-0@${offset} -> ${topic}; re-framed .*${reframing}$`)),
        ),
      );
      expect(await queueDepth(prepared.deadLetterQueueUrl)).toBe(0);

      // The first delivery came from the fixture, not from Kafka: the topic holds the three copies at 0..2.
      const reader = new KafkaRecordReader(brokers);
      try {
        const copies: KafkaRecordBytes[] = [];
        for (const offset of [0, 1, 2]) {
          const read = await reader.read({ topic, partition: 0, offset });
          if (!read.found) throw new Error(read.reason);
          copies.push(read.record);
        }
        const registry = new ConfluentRegistryClient({ url: handle.url });
        const decoder = confluentAvro({ registry, schema: OrderEvent });
        const values = copies.map((copy) => copy.value as Buffer);
        await decoder.prepare(values);
        // In the order the DLQ handed them over: the replay header names each copy's dead letter.
        const originOf = (copy: (typeof copies)[number]) =>
          copy.headers.find(([name]) => name === REPLAY_HEADER)?.[1].toString();
        copies.sort((a, b) => (originOf(a) ?? '').localeCompare(originOf(b) ?? ''));
        expect(copies.map(originOf)).toEqual(EXPECTED.map(({ offset }) => `${topic}-0@${offset}`));
        copies.forEach((copy, i) => {
          const envelope = envelopes[i] as DeadLetterEnvelope;
          // Magic byte 0, the 4-byte big-endian id, then the payload the ESM delivered, unchanged.
          expect(copy.value).toEqual(frameConfluent(avroId, Buffer.from(envelope.record.value as string, 'base64')));
          expect(copy.key?.toString()).toBe(EXPECTED[i]?.key);
          // The original header, byte for byte, then the replay header.
          expect(copy.headers.map(([name]) => name)).toEqual([
            ...envelope.record.headers.flatMap(Object.keys),
            REPLAY_HEADER,
          ]);
          // No metadata: the decoder reads the id from the framing, as any consumer of the topic would.
          expect(decoder.decode(copy.value as Buffer)).toEqual(EXPECTED[i]?.value);
        });
        expect(registry.requests).toBe(1);

        // And the route, reading them as framed records: each is processed exactly once more.
        const relaxed = avroRoute(OrderEvent);
        const event = kafkaEvent(
          { eventSource: 'aws:kafka', eventSourceArn: CLUSTER_ARN },
          copies.map(wireRecordFromKafka),
        );
        const consumed = await invokeRoute(prepared, relaxed.handler, event);
        expect(consumed.error).toBeNull();
        expect(consumed.summary).toMatchObject({ received: 3, processed: 3, deadLettered: 0 });
        const byCopy = new Map(copies.map((copy, i) => [copy.offset, EXPECTED[i]?.value]));
        expect(relaxed.seen.map((s) => s.value)).toEqual(relaxed.seen.map((s) => byCopy.get(s.offset)));
        expect(relaxed.seen).toHaveLength(3);
        expect(await queueDepth(prepared.deadLetterQueueUrl)).toBe(0);
      } finally {
        await reader.close();
      }
    },
    TIMEOUT,
  );
});
