// Pure conversions between the three forms a dead-lettered record takes on its way back:
//   the envelope's wire form (DESIGN §7: base64 key/value, headers as `{ name: [bytes] }`),
//   raw bytes (a Kafka message to produce, or a record fetched from Kafka),
//   and the Lambda event the Kafka event source mapping would send (`records` keyed `topic-partition`).
// A record the ESM delivered with eventRecordFormat SOURCE differs between the first and the second form: the ESM
// removed the registry framing and named the schema in `keySchemaMetadata` / `valueSchemaMetadata`, so its bytes
// are re-framed on their way to Kafka, and un-framed when they come from Kafka on their way to a handler.
// Nothing here touches the network, so `replay`, its tests and any other tool can share it.

import { REPLAY_HEADER, replayCoordinates } from '../../functions/runtime/batch/prepare.ts';
import type { DeadLetterEnvelope } from '../../functions/runtime/deadLetter/envelope.ts';
import type { SchemaMetadata } from '../../functions/runtime/decode.ts';
import { formatCoordinates, type RecordCoordinates } from '../../functions/runtime/errors.ts';
import type { KafkaEventInput, WireHeader, WireRecord } from '../../functions/runtime/event.ts';
import {
  frameForSchemaId,
  framingOfSchemaId,
  readConfluentFrame,
  readGlueFrame,
} from '../../functions/runtime/registry/wire.ts';
import { signedBytes } from './kafkaEvents.ts';

export { REPLAY_HEADER };

export type TimestampType = WireRecord['timestampType'];

/** A record's content as Kafka holds it: `null` is a null key or value, never an empty one. */
export type RecordBytes = {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /** In wire order; repeated names are kept. */
  readonly headers: ReadonlyArray<readonly [string, Buffer]>;
};

/** A record read back from Kafka, with its coordinates. */
export type KafkaRecordBytes = RecordBytes &
  RecordCoordinates & {
    readonly timestamp: number;
    readonly timestampType: TimestampType;
  };

export const sourceCoordinates = (envelope: DeadLetterEnvelope): RecordCoordinates => ({
  topic: envelope.source.topic,
  partition: envelope.source.partition,
  offset: envelope.source.offset,
});

/** `topic-partition@offset` of the record that was dead-lettered. */
export const describeSource = (envelope: DeadLetterEnvelope): string => formatCoordinates(sourceCoordinates(envelope));

const fromBase64 = (text: string | null | undefined): Buffer | null =>
  text === null || text === undefined ? null : Buffer.from(text, 'base64');
const toBase64 = (bytes: Buffer | null): string | null => (bytes === null ? null : bytes.toString('base64'));

// Wire header bytes are signed (-128..127) as the ESM sends them, or unsigned from older local tools: `Buffer.from`
// keeps `& 0xff` of each, so both read back as the original bytes.
export const headersFromWire = (wire: readonly WireHeader[]): Array<[string, Buffer]> =>
  wire.flatMap((header) => Object.entries(header).map(([name, bytes]): [string, Buffer] => [name, Buffer.from(bytes)]));

export const headersToWire = (headers: ReadonlyArray<readonly [string, Buffer]>): WireHeader[] =>
  headers.map(([name, bytes]) => ({ [name]: signedBytes(bytes) }));

/**
 * The envelope's record as bytes. A truncated envelope has no value: its bytes must be read
 * again from Kafka (see `replayKafka.ts`), so this refuses it.
 */
export const envelopeRecordBytes = (envelope: DeadLetterEnvelope): RecordBytes => {
  if (envelope.record.truncated) {
    throw new Error(`the envelope of ${describeSource(envelope)} is truncated: read the record from Kafka`);
  }
  return {
    key: fromBase64(envelope.record.key),
    value: fromBase64(envelope.record.value),
    headers: headersFromWire(envelope.record.headers),
  };
};

/** The original coordinates of the first valid replay header, if the record already is a replay (the runtime's rule). */
export const replayOrigin = (headers: ReadonlyArray<readonly [string, Buffer]>): string | undefined => {
  for (const [name, bytes] of headers) {
    const origin = name === REPLAY_HEADER ? replayCoordinates(bytes) : undefined;
    if (origin) return origin;
  }
  return undefined;
};

/**
 * The headers a replayed record carries: the original ones, byte for byte, plus the replay
 * header naming the original coordinates. A record that is itself a replay keeps the header it
 * has, so the runtime still finds the first delivery's idempotency item (no nesting).
 */
export const replayHeaders = (
  envelope: DeadLetterEnvelope,
  headers: ReadonlyArray<readonly [string, Buffer]>,
): Array<[string, Buffer]> => {
  const copy = headers.map(([name, bytes]): [string, Buffer] => [name, bytes]);
  if (replayOrigin(copy) !== undefined) return copy;
  copy.push([REPLAY_HEADER, Buffer.from(describeSource(envelope), 'utf8')]);
  return copy;
};

/** What a replay names as the original record: the replay header it will carry. */
export const originOf = (envelope: DeadLetterEnvelope, bytes: RecordBytes): string =>
  replayOrigin(bytes.headers) ?? describeSource(envelope);

/**
 * The replayed record in wire form, at its original coordinates, as the ESM would deliver it: with the schema
 * metadata the dead letter kept, so a registry decoder reads SOURCE bytes under the same schema id as the first time.
 * `bytes` are in the delivered form: the envelope's, or a Kafka record's after `deliveredFromKafka`.
 */
export const replayWireRecord = (envelope: DeadLetterEnvelope, bytes: RecordBytes): WireRecord => ({
  topic: envelope.source.topic,
  partition: envelope.source.partition,
  offset: envelope.source.offset,
  timestamp: envelope.source.timestamp,
  timestampType: envelope.source.timestampType,
  key: toBase64(bytes.key),
  value: toBase64(bytes.value),
  headers: headersToWire(replayHeaders(envelope, bytes.headers)),
  ...(envelope.record.keySchemaMetadata ? { keySchemaMetadata: { ...envelope.record.keySchemaMetadata } } : {}),
  ...(envelope.record.valueSchemaMetadata ? { valueSchemaMetadata: { ...envelope.record.valueSchemaMetadata } } : {}),
});

/** A record whose SOURCE-format bytes cannot be brought into the form the replay needs; it stays in the DLQ. */
export class ReplayFormError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplayFormError';
  }
}

type Side = 'key' | 'value';

const metadataOf = (envelope: DeadLetterEnvelope, side: Side): SchemaMetadata | undefined =>
  side === 'key' ? envelope.record.keySchemaMetadata : envelope.record.valueSchemaMetadata;

const describeMetadata = (metadata: SchemaMetadata): string =>
  `${metadata.dataFormat}, schema id "${metadata.schemaId}"`;

/**
 * eventRecordFormat JSON also names the schema in the metadata, but hands over the value converted to JSON: Avro or
 * Protobuf bytes that parse as a JSON object are that, and no framing makes them the producer's bytes again. (A JSON
 * Schema payload is JSON either way, and the same bytes in both formats: it re-frames as it is.)
 */
const convertedToJson = (metadata: SchemaMetadata, bytes: Buffer): boolean => {
  if (!['AVRO', 'PROTOBUF'].includes(metadata.dataFormat.toUpperCase()) || bytes[0] !== 0x7b) return false;
  try {
    JSON.parse(bytes.toString('utf8'));
    return true;
  } catch {
    return false;
  }
};

/** What a re-framing did, for the report: `value: Confluent schema id 7`. */
const describeFraming = (side: Side, schemaId: string): string => {
  const framing = framingOfSchemaId(schemaId);
  return framing?.registry === 'glue'
    ? `${side}: Glue schema version ${framing.schemaVersionId}`
    : `${side}: Confluent schema id ${framing?.schemaId ?? schemaId}`;
};

/**
 * The envelope's bytes as Kafka must hold them. A key or value the ESM delivered with eventRecordFormat SOURCE gets
 * the registry framing back (Confluent: magic byte 0 and the 4-byte id; Glue: the 18-byte header), so consumers of
 * the topic decode it as they would the producer's record; `reframed` says which sides changed. Bytes without
 * metadata go as they are. Throws a ReplayFormError naming the record when a side cannot be re-framed.
 */
export const kafkaFormBytes = (
  envelope: DeadLetterEnvelope,
  bytes: RecordBytes,
): { bytes: RecordBytes; reframed: string[] } => {
  const reframed: string[] = [];
  const reframe = (side: Side, payload: Buffer | null): Buffer | null => {
    const metadata = metadataOf(envelope, side);
    if (!metadata || payload === null) return payload;
    const what = `${describeSource(envelope)}: ${side} (${describeMetadata(metadata)})`;
    if (convertedToJson(metadata, payload)) {
      throw new ReplayFormError(
        `${what} was delivered converted to JSON (eventRecordFormat JSON) and cannot be re-framed as the producer's ` +
          'bytes: replay it with --invoke, or re-produce it from its original in Kafka',
      );
    }
    if (!framingOfSchemaId(metadata.schemaId)) {
      throw new ReplayFormError(
        `${what}: the schema id is neither a Confluent schema id nor a Glue schema version UUID, so its registry ` +
          'framing cannot be written back: replay it with --invoke',
      );
    }
    reframed.push(describeFraming(side, metadata.schemaId));
    return frameForSchemaId(metadata.schemaId, payload);
  };
  const key = reframe('key', bytes.key);
  const value = reframe('value', bytes.value);
  return { bytes: { key, value, headers: bytes.headers }, reframed };
};

/**
 * One side of a record read from Kafka in the form the ESM delivered with eventRecordFormat SOURCE: the payload
 * after the registry framing the metadata names (a Glue payload inflated, as the ESM hands it over). Without
 * metadata the bytes are the same in both forms. Throws a ReplayFormError when the framing is not the one named.
 */
export const deliveredSide = (envelope: DeadLetterEnvelope, side: Side, bytes: Buffer | null): Buffer | null => {
  const metadata = metadataOf(envelope, side);
  if (!metadata || bytes === null) return bytes;
  const what = `${describeSource(envelope)}: ${side} (${describeMetadata(metadata)}) as read from Kafka`;
  const framing = framingOfSchemaId(metadata.schemaId);
  try {
    if (framing?.registry === 'confluent') {
      const frame = readConfluentFrame(bytes);
      if (frame.schemaId === framing.schemaId) return frame.payload;
      throw new ReplayFormError(`${what} is framed with schema id ${frame.schemaId}`);
    }
    if (framing?.registry === 'glue') {
      const frame = readGlueFrame(bytes);
      if (frame.schemaVersionId === framing.schemaVersionId) return frame.payload;
      throw new ReplayFormError(`${what} is framed with schema version ${frame.schemaVersionId}`);
    }
  } catch (error) {
    if (error instanceof ReplayFormError) throw error;
    throw new ReplayFormError(`${what}: ${(error as Error).message}`);
  }
  throw new ReplayFormError(
    `${what}: the schema id names no registry framing (neither a Confluent id nor a Glue schema version UUID)`,
  );
};

/** A record read back from Kafka in the form the ESM delivered it (see `deliveredSide`), for a handler. */
export const deliveredFromKafka = (envelope: DeadLetterEnvelope, bytes: RecordBytes): RecordBytes => ({
  key: deliveredSide(envelope, 'key', bytes.key),
  value: deliveredSide(envelope, 'value', bytes.value),
  headers: bytes.headers,
});

/** The schema metadata a replayed record goes to a handler with, for the report: `value AVRO, schema id "7"`. */
export const describeSchemaMetadata = (envelope: DeadLetterEnvelope): string | undefined => {
  const sides = (['key', 'value'] as const).flatMap((side) => {
    const metadata = metadataOf(envelope, side);
    return metadata ? [`${side} ${describeMetadata(metadata)}`] : [];
  });
  return sides.length > 0 ? sides.join(', ') : undefined;
};

/** A raw Kafka message (for a producer without serialisers): exact key, value and header bytes. */
export type ReplayMessage = {
  topic: string;
  partition?: number;
  key?: Buffer;
  value?: Buffer;
  /** Keyed by distinct Buffer objects, so repeated names survive in order. */
  headers: Map<Buffer, Buffer>;
};

/**
 * The message that republishes a dead-lettered record to `topic`, from `bytes` as Kafka must hold them (see
 * `kafkaFormBytes`: SOURCE-format bytes from the envelope need their framing back first). Back to its own topic it goes
 * to its own partition, so per-key order and affinity hold whatever partitioner first placed it;
 * to another topic the producer's partitioner places it by key. The timestamp is left to the
 * producer: an old CREATE_TIME would put the copy at risk of time-based retention at once.
 */
export const replayMessage = (envelope: DeadLetterEnvelope, bytes: RecordBytes, topic: string): ReplayMessage => {
  const headers = new Map<Buffer, Buffer>();
  for (const [name, value] of replayHeaders(envelope, bytes.headers)) headers.set(Buffer.from(name, 'utf8'), value);
  return {
    topic,
    ...(topic === envelope.source.topic ? { partition: envelope.source.partition } : {}),
    ...(bytes.key === null ? {} : { key: bytes.key }),
    ...(bytes.value === null ? {} : { value: bytes.value }),
    headers,
  };
};

/** A record fetched from Kafka, in the wire form the ESM sends. */
export const wireRecordFromKafka = (record: KafkaRecordBytes): WireRecord => ({
  topic: record.topic,
  partition: record.partition,
  offset: record.offset,
  timestamp: record.timestamp,
  timestampType: record.timestampType,
  key: toBase64(record.key),
  value: toBase64(record.value),
  headers: headersToWire(record.headers),
});

export type EventSource = { eventSource: 'aws:kafka' | 'SelfManagedKafka'; eventSourceArn?: string };

/** Stands in for a missing MSK cluster ARN (the MSK event requires one). */
export const UNKNOWN_CLUSTER_ARN =
  'arn:aws:kafka:local:000000000000:cluster/replay/00000000-0000-0000-0000-000000000000-0';

/**
 * An event like the ESM's: records grouped under `topic-partition`, each group in offset order
 * (a stable sort, so copies of one record keep their order).
 */
export const kafkaEvent = (source: EventSource, records: readonly WireRecord[]): KafkaEventInput => {
  const grouped: Record<string, WireRecord[]> = {};
  for (const record of [...records].sort((a, b) => a.offset - b.offset)) {
    const id = `${record.topic}-${record.partition}`;
    grouped[id] ??= [];
    grouped[id].push(record);
  }
  return source.eventSource === 'aws:kafka'
    ? { eventSource: 'aws:kafka', eventSourceArn: source.eventSourceArn ?? UNKNOWN_CLUSTER_ARN, records: grouped }
    : {
        eventSource: 'SelfManagedKafka',
        ...(source.eventSourceArn ? { eventSourceArn: source.eventSourceArn } : {}),
        records: grouped,
      };
};

/** One event per event source, as the ESM never mixes clusters in an event. */
export const replayEvents = <T>(
  items: ReadonlyArray<{ envelope: DeadLetterEnvelope; wire: WireRecord; item: T }>,
  fallbackArn?: string,
): Array<{ event: KafkaEventInput; items: T[] }> => {
  const bySource = new Map<string, { source: EventSource; wires: WireRecord[]; items: T[] }>();
  for (const { envelope, wire, item } of items) {
    const arn =
      envelope.source.eventSourceArn ?? (envelope.source.eventSource === 'aws:kafka' ? fallbackArn : undefined);
    const source: EventSource = { eventSource: envelope.source.eventSource, ...(arn ? { eventSourceArn: arn } : {}) };
    const id = `${source.eventSource}|${source.eventSourceArn ?? ''}`;
    const group = bySource.get(id) ?? { source, wires: [], items: [] };
    group.wires.push(wire);
    group.items.push(item);
    bySource.set(id, group);
  }
  return [...bySource.values()].map((group) => ({ event: kafkaEvent(group.source, group.wires), items: group.items }));
};
