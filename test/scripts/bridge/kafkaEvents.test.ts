// The bridge's events must be byte-identical to the ESM's: same keys, same order, same encodings.
import { readFileSync } from 'node:fs';
import { KafkaEvent } from '../../../functions/runtime/event.ts';
import {
  approximateRecordBytes,
  buildKafkaEvent,
  eventSourceOf,
  type LambdaKafkaRecord,
  signedBytes,
  toLambdaRecord,
} from '../../../scripts/lib/kafkaEvents.ts';
import { headersFromWire } from '../../../scripts/lib/replayEvents.ts';

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/${name}`, import.meta.url), 'utf8');

const fixtureMessage = {
  topic: 'mytopic',
  partition: 0,
  offset: 15n,
  timestamp: 1545084650987n,
  key: Buffer.from('recordKey'),
  value: Buffer.from('{"key":"value"}'),
  headerEntries: [[Buffer.from('headerKey'), Buffer.from('headerValue')]] as Array<[Buffer, Buffer]>,
};
const servers =
  'b-2.demo-cluster-1.a1bcde.c1.kafka.us-east-1.amazonaws.com:9092,b-1.demo-cluster-1.a1bcde.c1.kafka.us-east-1.amazonaws.com:9092';

test('an MSK event is byte for byte the documented fixture', () => {
  const expected = JSON.parse(fixture('msk-event.json'));
  const event = buildKafkaEvent({ kind: 'msk', eventSourceArn: expected.eventSourceArn, bootstrapServers: servers }, [
    toLambdaRecord(fixtureMessage),
  ]);
  expect(JSON.stringify(event)).toBe(JSON.stringify(expected));
});

test('a self-managed event is byte for byte the documented fixture (no ARN)', () => {
  const expected = JSON.parse(fixture('self-managed-event.json'));
  const event = buildKafkaEvent({ kind: 'self-managed', bootstrapServers: servers }, [toLambdaRecord(fixtureMessage)]);
  expect(JSON.stringify(event)).toBe(JSON.stringify(expected));
});

test('null key and value (tombstone), binary and repeated headers in wire order, LOG_APPEND_TIME', () => {
  const record = toLambdaRecord(
    {
      topic: 't',
      partition: 2,
      offset: 7,
      timestamp: 1700000000000n,
      key: undefined,
      value: null,
      headerEntries: [
        [Buffer.from('b'), Buffer.from([0xff, 0x00])],
        ['a', Buffer.from('1')],
        [Buffer.from('b'), Buffer.from([0x01])],
        [Buffer.from('empty'), null],
      ],
    },
    'LOG_APPEND_TIME',
  );
  expect(record).toEqual({
    topic: 't',
    partition: 2,
    offset: 7,
    timestamp: 1700000000000,
    timestampType: 'LOG_APPEND_TIME',
    key: null,
    value: null,
    headers: [{ b: [-1, 0] }, { a: [49] }, { b: [1] }, { empty: [] }],
  });
  expect(Object.keys(record)).toEqual([
    'topic',
    'partition',
    'offset',
    'timestamp',
    'timestampType',
    'key',
    'value',
    'headers',
  ]);
  expect(approximateRecordBytes(record)).toBeGreaterThan(0);
});

test('records are grouped under topic-partition in offset order, and the runtime schema accepts the event', () => {
  const at = (partition: number, offset: number): LambdaKafkaRecord =>
    toLambdaRecord({ ...fixtureMessage, partition, offset: BigInt(offset) });
  const event = buildKafkaEvent(
    eventSourceOf({ source: { kind: 'self-managed', bootstrapServers: ['x:1'], auth: 'none' } as never }, [
      '127.0.0.1:9092',
    ]),
    [at(1, 5), at(0, 3), at(1, 6)],
  );
  expect(Object.keys(event.records)).toEqual(['mytopic-1', 'mytopic-0']);
  expect(event.records['mytopic-1']?.map((r) => r.offset)).toEqual([5, 6]);
  expect(event.bootstrapServers).toBe('127.0.0.1:9092');
  expect(KafkaEvent.safeParse(event).success).toBe(true);
});

test('the MSK source carries the configured cluster ARN', () => {
  const arn = 'arn:aws:kafka:us-east-1:123456789012:cluster/replace-me/00000000-0000-0000-0000-000000000000-1';
  expect(eventSourceOf({ source: { kind: 'msk', clusterArn: arn, auth: 'iam' } }, ['a:1', 'b:2'])).toEqual({
    kind: 'msk',
    eventSourceArn: arn,
    bootstrapServers: 'a:1,b:2',
  });
});

test('offsets beyond 2^53 are refused rather than rounded', () => {
  expect(() => toLambdaRecord({ ...fixtureMessage, offset: 2n ** 60n })).toThrow(RangeError);
});

test('header bytes of 0x80 and above are Java signed bytes, like the ESM sends them (the signed-headers fixture)', () => {
  const expected = JSON.parse(fixture('msk-event-signed-headers.json'));
  const [plain, signed] = expected.records['mytopic-0'];
  const entries = signed.headers.map((header: Record<string, number[]>) => {
    const [[name, bytes]] = Object.entries(header) as [[string, number[]]];
    return [Buffer.from(name), Buffer.from(bytes)] as [Buffer, Buffer];
  });
  expect(entries[1][1].toString('utf8')).toBe('hello-world-ë');
  const event = buildKafkaEvent({ kind: 'msk', eventSourceArn: expected.eventSourceArn, bootstrapServers: servers }, [
    toLambdaRecord(fixtureMessage),
    toLambdaRecord({ ...fixtureMessage, offset: 16n, headerEntries: entries }),
  ]);
  expect(JSON.stringify(event)).toBe(JSON.stringify(expected));
  expect(plain.headers).toEqual(event.records['mytopic-0']?.[0]?.headers);
  expect(KafkaEvent.safeParse(event).success).toBe(true);
});

test('every byte value goes out signed and reads back as the original byte', () => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const record = toLambdaRecord({
    ...fixtureMessage,
    headerEntries: [
      ['all', all],
      ['e', Buffer.from('ë')],
    ],
  });
  const [allWire, eWire] = record.headers.map((header) => Object.values(header)[0] as number[]);
  expect(eWire).toEqual([-61, -85]);
  expect(allWire?.[0x7f]).toBe(127);
  expect(allWire?.[0x80]).toBe(-128);
  expect(allWire?.[0xff]).toBe(-1);
  expect(Math.min(...(allWire ?? []))).toBe(-128);
  expect(Math.max(...(allWire ?? []))).toBe(127);
  expect(headersFromWire(record.headers)).toEqual([
    ['all', all],
    ['e', Buffer.from('ë')],
  ]);
  expect(signedBytes(Buffer.alloc(0))).toEqual([]);
  expect(approximateRecordBytes(record)).toBeGreaterThanOrEqual(JSON.stringify(record).length);
});
