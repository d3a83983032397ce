// A replay reproduces the exact bytes of a dead-lettered record whose headers came in Java's signed bytes, as the
// event source mapping sends them, and sends them on signed again.
import { readFileSync } from 'node:fs';
import { DeadLetterEnvelope } from '../../functions/runtime/deadLetter/envelopeSchema.ts';
import { KafkaEvent } from '../../functions/runtime/event.ts';
import { idempotencyKeyFor } from '../../scripts/bridge/recordKeys.ts';
import {
  envelopeRecordBytes,
  kafkaEvent,
  REPLAY_HEADER,
  replayHeaders,
  replayMessage,
  replayOrigin,
  replayWireRecord,
  wireRecordFromKafka,
} from '../../scripts/lib/replayEvents.ts';

const signedEvent = JSON.parse(
  readFileSync(new URL('../fixtures/msk-event-signed-headers.json', import.meta.url), 'utf8'),
);
const record = signedEvent.records['mytopic-0'][1];

const envelope = DeadLetterEnvelope.parse({
  version: 1,
  route: 'audit',
  idempotencyKey: 'mytopic-0@16',
  source: {
    eventSource: 'aws:kafka',
    eventSourceArn: signedEvent.eventSourceArn,
    topic: record.topic,
    partition: record.partition,
    offset: record.offset,
    timestamp: record.timestamp,
    timestampType: record.timestampType,
  },
  record: { key: record.key, value: record.value, headers: record.headers, truncated: false },
  error: { kind: 'permanent', name: 'Error', message: 'poison' },
  attempts: 1,
  firstFailedAt: '2026-01-01T00:00:00.000Z',
  deadLetteredAt: '2026-01-01T00:00:00.000Z',
});

const originalHeaders: Array<[string, Buffer]> = [
  ['headerKey', Buffer.from('headerValue')],
  ['test-header', Buffer.from('hello-world-ë')],
  ['dd-pathway-ctx', Buffer.from('5e450957014a65f5ae83dee1cf61ae83dee1cf61', 'hex')],
];

test('the envelope of signed header bytes gives back the original bytes', () => {
  const bytes = envelopeRecordBytes(envelope);
  expect(bytes.headers).toEqual(originalHeaders);
  expect(bytes.key).toEqual(Buffer.from('recordKey'));
  expect(bytes.value).toEqual(Buffer.from('{"key":"value"}'));
});

test('a replay to Kafka produces the exact bytes, plus the replay header', () => {
  const message = replayMessage(envelope, envelopeRecordBytes(envelope), 'mytopic');
  expect([...message.headers].map(([name, value]) => [name.toString('utf8'), value])).toEqual([
    ...originalHeaders,
    [REPLAY_HEADER, Buffer.from('mytopic-0@16')],
  ]);
  expect(message.partition).toBe(0);
});

test('a replay into the handler sends the headers signed, as the ESM does, and the runtime accepts it', () => {
  const wire = replayWireRecord(envelope, envelopeRecordBytes(envelope));
  expect(wire.headers).toEqual([...record.headers, { [REPLAY_HEADER]: [...Buffer.from('mytopic-0@16')] }]);
  expect(KafkaEvent.safeParse(kafkaEvent({ eventSource: 'aws:kafka' }, [wire])).success).toBe(true);
});

test('a record read back from Kafka goes out as the ESM sends it', () => {
  const wire = wireRecordFromKafka({
    topic: 'mytopic',
    partition: 0,
    offset: 16,
    timestamp: record.timestamp,
    timestampType: 'CREATE_TIME',
    key: Buffer.from('recordKey'),
    value: Buffer.from('{"key":"value"}'),
    headers: originalHeaders,
  });
  expect(JSON.stringify(wire)).toBe(JSON.stringify(record));
});

test('replay and reconcile read a replay header by the runtime rule: one that is not a coordinate is not ours', async () => {
  const garbage = Buffer.from('not a coordinate');
  // A dead letter that arrived with a stray header of that name: the replay adds the real one, and it is what counts.
  const headers = replayHeaders(envelope, [[REPLAY_HEADER, garbage]]);
  expect(headers).toEqual([
    [REPLAY_HEADER, garbage],
    [REPLAY_HEADER, Buffer.from('mytopic-0@16')],
  ]);
  expect(replayOrigin(headers)).toBe('mytopic-0@16');
  // Reconcile computes the key the runtime gives such a record: its own coordinates, not the stray value.
  const keyOf = await idempotencyKeyFor({ handler: 'audit.ts' });
  const base = { topic: 't', partition: 1, offset: 7, timestamp: 0, timestampType: 'CREATE_TIME' as const };
  expect(keyOf({ ...base, key: null, value: null, headers: [{ [REPLAY_HEADER]: [...garbage] }] })).toBe('t-1@7');
  expect(
    keyOf({ ...base, key: null, value: null, headers: [{ [REPLAY_HEADER]: [...Buffer.from('orders-0@3')] }] }),
  ).toBe('orders-0@3');
});
