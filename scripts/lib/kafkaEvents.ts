// Lambda-identical Kafka events from consumed messages, for the local bridge (and anything else that must hand a
// handler exactly what the event source mapping would). Pure: no I/O, no clock.
//
// The shapes follow the AWS documentation of the Kafka event source mapping (see test/fixtures):
//   { eventSource: 'aws:kafka', eventSourceArn, bootstrapServers, records: { '<topic>-<partition>': [record...] } }
//   { eventSource: 'SelfManagedKafka', bootstrapServers, records }
// and each record, in this key order:
//   { topic, partition, offset, timestamp, timestampType, key, value, headers }
// with `key` / `value` base64 (null when absent: a null value is a tombstone), `headers` an array of single-key
// objects holding the value's bytes, in wire order with repeated names kept, and `timestamp` in epoch ms. Header bytes
// are Java's signed bytes (-128..127), as the ESM serialises a `byte[]`: "ë" is [-61, -85], not [195, 171].
import type { KafkaEventInput, WireRecord } from '../../functions/runtime/event.ts';
import type { BridgeConfig } from '../../infra/config/index.ts';
import type { RawRecordBatch } from './kafka.ts';

export type TimestampType = WireRecord['timestampType'];

/** What the bridge keeps of a consumed message: the client's own message fits this shape. */
export type ConsumedMessage = {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint | number;
  readonly timestamp: bigint | number;
  readonly key?: Buffer | null | undefined;
  readonly value?: Buffer | null | undefined;
  /** Header entries in wire order; a name may repeat. A null value (allowed by Kafka) becomes an empty array. */
  readonly headerEntries: ReadonlyArray<readonly [Buffer | string, Buffer | null | undefined]>;
};

/** Where events say they come from: the config's source, with the brokers the bridge really reads. */
export type EventSource =
  | { readonly kind: 'msk'; readonly eventSourceArn: string; readonly bootstrapServers: string }
  | { readonly kind: 'self-managed'; readonly bootstrapServers: string };

/** The record as the ESM writes it, keys in the documented order. */
export type LambdaKafkaRecord = {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  timestampType: TimestampType;
  key: string | null;
  value: string | null;
  headers: Array<Record<string, number[]>>;
};

export type LambdaKafkaEvent =
  | {
      eventSource: 'aws:kafka';
      eventSourceArn: string;
      bootstrapServers: string;
      records: Record<string, LambdaKafkaRecord[]>;
    }
  | { eventSource: 'SelfManagedKafka'; bootstrapServers: string; records: Record<string, LambdaKafkaRecord[]> };

// The compile-time check that what we build is what the runtime parses.
const _compatible = (event: LambdaKafkaEvent): KafkaEventInput => event;
void _compatible;

export const partitionId = (topic: string, partition: number): string => `${topic}-${partition}`;

const toNumber = (value: bigint | number, what: string): number => {
  const n = typeof value === 'bigint' ? Number(value) : value;
  if (!Number.isSafeInteger(n)) throw new RangeError(`${what} ${value} is not a safe integer`);
  return n;
};

const base64OrNull = (bytes: Buffer | null | undefined): string | null =>
  bytes === null || bytes === undefined ? null : bytes.toString('base64');

/** A header value as the ESM writes it: each byte as Java's signed byte. `Buffer.from` reads it back (`& 0xff`). */
export const signedBytes = (bytes: Uint8Array): number[] => Array.from(bytes, (b) => (b >= 128 ? b - 256 : b));

/** One consumed message as the ESM writes it. */
export const toLambdaRecord = (
  message: ConsumedMessage,
  timestampType: TimestampType = 'CREATE_TIME',
): LambdaKafkaRecord => ({
  topic: message.topic,
  partition: message.partition,
  offset: toNumber(message.offset, 'offset'),
  timestamp: toNumber(message.timestamp, 'timestamp'),
  timestampType,
  key: base64OrNull(message.key),
  value: base64OrNull(message.value),
  headers: message.headerEntries.map(([name, value]) => ({
    [typeof name === 'string' ? name : name.toString('utf8')]: value ? signedBytes(value) : [],
  })),
});

const IS_CONTROL = 1 << 5;
const LOG_APPEND_TIME = 1 << 3;

/**
 * A partition's fetched record batches as the ESM hands their records over, from offset `from` on (a batch may start
 * before it), skipping transaction control batches; `next` is the offset after the last batch, control ones included.
 */
export const recordsOfBatches = (
  topic: string,
  partition: number,
  batches: readonly RawRecordBatch[],
  from: bigint,
): { records: LambdaKafkaRecord[]; next: bigint } => {
  const records: LambdaKafkaRecord[] = [];
  let next = from;
  for (const batch of batches) {
    const last = batch.firstOffset + BigInt(batch.lastOffsetDelta);
    if (last + 1n > next) next = last + 1n;
    if (batch.attributes & IS_CONTROL) continue;
    const timestampType: TimestampType = batch.attributes & LOG_APPEND_TIME ? 'LOG_APPEND_TIME' : 'CREATE_TIME';
    for (const record of batch.records) {
      const offset = batch.firstOffset + BigInt(record.offsetDelta);
      if (offset < from) continue;
      const timestamp =
        timestampType === 'LOG_APPEND_TIME' ? batch.maxTimestamp : batch.firstTimestamp + record.timestampDelta;
      const headerEntries = record.headers.map(([name, value]) => [name ?? '', value] as const);
      records.push(
        toLambdaRecord(
          { topic, partition, offset, timestamp, key: record.key, value: record.value, headerEntries },
          timestampType,
        ),
      );
    }
  }
  return { records, next };
};

/**
 * The event for one invocation. Records are grouped under `topic-partition` in the order given (the bridge hands
 * them over in offset order per partition); partitions appear in the order first seen.
 */
export const buildKafkaEvent = (source: EventSource, records: readonly LambdaKafkaRecord[]): LambdaKafkaEvent => {
  const grouped: Record<string, LambdaKafkaRecord[]> = {};
  for (const record of records) {
    const id = partitionId(record.topic, record.partition);
    const list = grouped[id];
    if (list) list.push(record);
    else grouped[id] = [record];
  }
  if (source.kind === 'msk') {
    return {
      eventSource: 'aws:kafka',
      eventSourceArn: source.eventSourceArn,
      bootstrapServers: source.bootstrapServers,
      records: grouped,
    };
  }
  return { eventSource: 'SelfManagedKafka', bootstrapServers: source.bootstrapServers, records: grouped };
};

/**
 * The event source of a config: MSK events carry the cluster ARN; both carry the brokers the records were read from
 * (locally KAFKA_BROKERS, since the configured cluster is not what the bridge connects to).
 */
export const eventSourceOf = (config: Pick<BridgeConfig, 'source'>, brokers: readonly string[]): EventSource => {
  const bootstrapServers = brokers.join(',');
  return config.source.kind === 'msk'
    ? { kind: 'msk', eventSourceArn: config.source.clusterArn, bootstrapServers }
    : { kind: 'self-managed', bootstrapServers };
};

/** The base64 size of a record in the event, close enough to budget the 6 MB invocation payload. */
export const approximateRecordBytes = (record: LambdaKafkaRecord): number =>
  160 +
  record.topic.length +
  (record.key?.length ?? 4) +
  (record.value?.length ?? 4) +
  record.headers.reduce((sum, header) => {
    // Up to five characters a byte: "-128,".
    for (const [name, bytes] of Object.entries(header)) sum += name.length + 8 + bytes.length * 5;
    return sum;
  }, 0);
