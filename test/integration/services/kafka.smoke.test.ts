// Smoke test of the local Kafka 4.1 broker through the project's client (scripts/lib/kafka.ts): a 3-partition
// topic, keyed records with binary and repeated headers, consumed back through a consumer group, byte for byte.
import { randomUUID } from 'node:crypto';
import {
  brokersFromEnv,
  createAdmin,
  createConsumer,
  createProducer,
  ensureTopics,
  type Message,
} from '../../../scripts/lib/kafka.ts';

const brokers = brokersFromEnv();
const runId = `${Date.now()}-${randomUUID().slice(0, 8)}`;
const topic = `smoke-kafka-${runId}`;
const groupId = `smoke-group-${runId}`;

type Sent = { key: Buffer; value: Buffer | undefined; headers: [Buffer, Buffer][] };

const nonUtf8 = Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80]);
const sent: Sent[] = Array.from({ length: 12 }, (_, i) => ({
  key: Buffer.from(`order-${i % 6}`),
  value: i === 11 ? undefined : Buffer.from(JSON.stringify({ orderId: `order-${i % 6}`, seq: i })),
  headers: [
    [Buffer.from('trace-id'), Buffer.from(`trace-${i}`)],
    [Buffer.from('bin'), Buffer.concat([nonUtf8, Buffer.from([i])])],
    [Buffer.from('bin'), Buffer.from([i, 0xff])], // a repeated name keeps both values, in order
    [Buffer.from('empty'), Buffer.alloc(0)],
  ],
}));

afterAll(async () => {
  const admin = createAdmin(brokers);
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.deleteGroups({ groups: [groupId] }).catch(() => {});
  await admin.close();
});

test('produces keyed records with headers and consumes them back through a consumer group, byte for byte', async () => {
  const ensured = await ensureTopics(brokers, [{ topic, partitions: 3 }]);
  expect(ensured.created).toEqual([topic]);

  const producer = createProducer(brokers);
  try {
    // Header maps keyed by distinct Buffer objects keep repeated names.
    await producer.send({
      messages: sent.map((s) => ({
        topic,
        key: s.key,
        ...(s.value && { value: s.value }),
        headers: new Map(s.headers),
      })),
    });
  } finally {
    await producer.close();
  }

  const received: Message<Buffer, Buffer, Buffer, Buffer>[] = [];
  const consumer = createConsumer(brokers, { groupId });
  try {
    const stream = await consumer.consume({
      topics: [topic],
      mode: 'committed',
      fallbackMode: 'earliest',
      autocommit: false,
    });
    const timer = setTimeout(() => stream.close().catch(() => {}), 30_000);
    for await (const message of stream) {
      received.push(message);
      await message.commit();
      if (received.length === sent.length) break;
    }
    clearTimeout(timer);
    await stream.close();
  } finally {
    await consumer.close();
  }

  expect(received).toHaveLength(sent.length);
  const partitionOfKey = new Map<string, number>();
  for (const message of received) {
    expect(message.topic).toBe(topic);
    expect(message.partition).toBeGreaterThanOrEqual(0);
    expect(message.partition).toBeLessThan(3);
    const key = message.key.toString('latin1');
    const previous = partitionOfKey.get(key);
    if (previous !== undefined) expect(message.partition).toBe(previous); // same key, same partition
    partitionOfKey.set(key, message.partition);
  }
  expect(new Set(partitionOfKey.values()).size).toBeGreaterThan(1); // six keys spread over the partitions

  // Per partition, records arrive in offset order; match them to what was sent by their trace-id header.
  const byTrace = new Map(sent.map((s) => [s.headers[0]?.[1].toString('latin1'), s]));
  for (const message of received) {
    const entries = message.headerEntries;
    const expected = byTrace.get(entries[0]?.[1].toString('latin1'));
    expect(expected).toBeDefined();
    if (!expected) continue;
    expect(Buffer.compare(message.key, expected.key)).toBe(0);
    if (expected.value === undefined) expect(message.value ?? null).toBeNull();
    else expect(Buffer.compare(message.value, expected.value)).toBe(0);
    expect(entries.map(([k, v]) => [k.toString('hex'), v.toString('hex')])).toEqual(
      expected.headers.map(([k, v]) => [k.toString('hex'), v.toString('hex')]),
    );
  }
  for (let p = 0; p < 3; p++) {
    const offsets = received.filter((m) => m.partition === p).map((m) => m.offset);
    expect(offsets).toEqual([...offsets].sort((a, b) => (a < b ? -1 : 1)));
    expect(offsets).toEqual(offsets.map((_, i) => BigInt(i))); // exactly once each: no duplicates, no gaps
  }

  // The group's committed offsets cover every record.
  const admin = createAdmin(brokers);
  try {
    const [group] = await admin.listConsumerGroupOffsets({ groups: [groupId] });
    const committed = (group?.topics ?? [])
      .flatMap((t) => t.partitions)
      .reduce((sum, p) => sum + Number(p.committedOffset), 0);
    expect(committed).toBe(sent.length);
  } finally {
    await admin.close();
  }
});
