// A replay reproduces the exact bytes of a dead-lettered record whose headers came in Java's signed bytes, as the
// event source mapping sends them, and sends them on signed again.
import { readFileSync } from 'node:fs';
import { DeadLetterEnvelope } from '../../functions/runtime/deadLetter/envelopeSchema.ts';
import { KafkaEvent } from '../../functions/runtime/event.ts';
import {
  envelopeRecordBytes,
  kafkaEvent,
  REPLAY_HEADER,
  replayMessage,
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
