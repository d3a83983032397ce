import type { DeadLetterSource } from '../deadLetter/envelope.ts';
import { base64ToBuffer, decodeWith, type KafkaRecord, RecordHeaders } from '../decode.ts';
import {
  formatCoordinates,
  InvalidEventError,
  PermanentError,
  type RecordCoordinates,
  TransientError,
} from '../errors.ts';
import { KafkaEvent, SqsEvent, type WireRecord } from '../event.ts';
import { fingerprintOf } from '../idempotency/fingerprint.ts';
import type { Fingerprint, Letter } from '../idempotency/IdempotencyStore.ts';
import type { RouteDefinition } from '../processor.ts';

/** The header `replay` adds to a republished record: the original `topic-partition@offset`. */
export const REPLAY_HEADER = 'x-bridge-replay-of';
/** A Kafka topic name is at most 249 characters; with a partition and an offset a coordinate stays below 300. */
const MAX_REPLAY_HEADER = 300;
const COORDINATES = /^[A-Za-z0-9._-]{1,249}-\d{1,10}@\d{1,19}$/;

/** One record of the batch, decoded once. */
export type Prepared<V, K> = {
  readonly wire: WireRecord;
  readonly coordinates: RecordCoordinates;
  readonly key: string;
  readonly replay: boolean;
  /** The route's `fingerprint` of the record, when it has one. */
  readonly fingerprint?: Fingerprint | undefined;
  readonly record?: KafkaRecord<V, K>;
  readonly decodeError?: PermanentError;
  readonly tombstone: boolean;
  /** Another record of this batch carries the same idempotency key and is the one that runs. */
  readonly duplicateInBatch: boolean;
  /** A record from the retry queue: the stage its message was sent for, and its failed stages so far. */
  readonly parked?: Letter['parked'];
  /** Set with `parked`: the claim may take the item PARKED at this stage. */
  readonly parkStage?: number;
};

export type PreparedBatch<V, K> = {
  readonly source: DeadLetterSource;
  /** Records by `topic-partition`, in offset order (from the retry queue: by message id, one record each). */
  readonly partitions: Map<string, Prepared<V, K>[]>;
  readonly received: number;
  /** The groups of `partitions` a record of these coordinates is in. */
  readonly groupsOf: (coordinates: RecordCoordinates) => readonly string[];
};

export const partitionId = (c: RecordCoordinates): string => `${c.topic}-${c.partition}`;

/**
 * The original coordinates a replay header names, if it is one of ours: a well-formed `topic-partition@offset`.
 * Anything else under that name is not ours. The runtime, `replay` and `reconcile` all decide by this one rule.
 */
export const replayCoordinates = (bytes: readonly number[] | Buffer): string | undefined => {
  if (bytes.length === 0 || bytes.length > MAX_REPLAY_HEADER) return undefined;
  const text = Buffer.from(bytes).toString('utf8');
  return COORDINATES.test(text) ? text : undefined;
};

/** A replayed record carries its original coordinates, so its default key is the original's. */
export const replayOrigin = (wire: Pick<WireRecord, 'headers'>): string | undefined => {
  for (const header of wire.headers) {
    const bytes = header[REPLAY_HEADER];
    const origin = bytes && replayCoordinates(bytes);
    if (origin) return origin;
  }
  return undefined;
};

/** Validates the event, decodes every record once, and marks the copies of a key that will not run. */
export const prepareBatch = <V, K>(event: unknown, route: RouteDefinition<V, K>): PreparedBatch<V, K> => {
  const parsed = KafkaEvent.safeParse(event);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidEventError(
      `route ${route.route}: not a Kafka event: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`,
      { cause: parsed.error },
    );
  }
  const partitions = new Map<string, Prepared<V, K>[]>();
  const all = Object.values(parsed.data.records).flat();
  for (const wire of all) {
    const id = partitionId(wire);
    const list = partitions.get(id) ?? [];
    list.push(prepareRecord(wire, route));
    partitions.set(id, list);
  }
  for (const list of partitions.values()) list.sort((a, b) => a.coordinates.offset - b.coordinates.offset);
  return {
    source: {
      eventSource: parsed.data.eventSource,
      ...(parsed.data.eventSourceArn ? { eventSourceArn: parsed.data.eventSourceArn } : {}),
    },
    partitions: markCopies(partitions, route),
    received: all.length,
    groupsOf: (coordinates) => [partitionId(coordinates)],
  };
};

/**
 * An event of the route's retry queue, each message's record prepared as it was parked, with its stage. A key held
 * by several messages (SQS delivers at least once; an earlier stage's message may be left over) runs once, from the
 * message of the latest stage: an earlier stage's message is stale. A message that is not a parked record of this
 * route is `unreadable`.
 */
export const prepareParkedBatch = async <V, K>(
  event: unknown,
  route: RouteDefinition<V, K>,
): Promise<{ batch: PreparedBatch<V, K>; unreadable: { messageId: string; reason: string }[] }> => {
  const parsed = SqsEvent.safeParse(event);
  if (!parsed.success)
    throw new InvalidEventError(`route ${route.route}: not an SQS event: ${parsed.error.issues[0]?.message}`);
  // Loaded only by an invocation from the retry queue, so a Kafka cold start never builds the schema.
  const { DeadLetterEnvelope } = await import('../deadLetter/envelopeSchema.ts');
  const unreadable: { messageId: string; reason: string }[] = [];
  const latest = new Map<string, Prepared<V, K> & { messageId: string }>();
  const all: Array<Prepared<V, K> & { messageId: string }> = [];
  let source: DeadLetterSource | undefined;
  for (const message of parsed.data.Records) {
    let envelope: ReturnType<typeof DeadLetterEnvelope.parse>;
    try {
      envelope = DeadLetterEnvelope.parse(JSON.parse(message.body));
    } catch (error) {
      unreadable.push({
        messageId: message.messageId,
        reason: `not a dead-letter envelope: ${(error as Error).message}`,
      });
      continue;
    }
    const reason =
      envelope.route !== route.route
        ? `it belongs to route ${envelope.route}`
        : !envelope.parked
          ? 'it is not a parked record (no parked stage)'
          : envelope.record.truncated
            ? 'its record was truncated'
            : undefined;
    if (reason || !envelope.parked) {
      unreadable.push({ messageId: message.messageId, reason: reason ?? 'not parked' });
      continue;
    }
    const { record, source: at } = envelope;
    source ??= { eventSource: at.eventSource, ...(at.eventSourceArn ? { eventSourceArn: at.eventSourceArn } : {}) };
    const wire: WireRecord = {
      topic: at.topic,
      partition: at.partition,
      offset: at.offset,
      timestamp: at.timestamp,
      timestampType: at.timestampType,
      key: record.key,
      value: record.value,
      headers: record.headers,
      ...(record.keySchemaMetadata ? { keySchemaMetadata: record.keySchemaMetadata } : {}),
      ...(record.valueSchemaMetadata ? { valueSchemaMetadata: record.valueSchemaMetadata } : {}),
    };
    const prepared = {
      ...prepareRecord(wire, route),
      key: envelope.idempotencyKey,
      parked: envelope.parked,
      parkStage: envelope.parked.stage,
      messageId: message.messageId,
    };
    all.push(prepared);
    const kept = latest.get(prepared.key);
    if (!kept || (kept.parkStage ?? 0) < prepared.parkStage) latest.set(prepared.key, prepared);
  }
  const partitions = new Map<string, Prepared<V, K>[]>();
  const groups = new Map<string, string[]>();
  for (const prepared of all) {
    partitions.set(prepared.messageId, [
      latest.get(prepared.key) === prepared ? prepared : { ...prepared, duplicateInBatch: true },
    ]);
    const at = formatCoordinates(prepared.coordinates);
    groups.set(at, [...(groups.get(at) ?? []), prepared.messageId]);
  }
  return {
    batch: {
      source: source ?? { eventSource: 'aws:kafka' },
      partitions,
      received: parsed.data.Records.length,
      groupsOf: (coordinates) => groups.get(formatCoordinates(coordinates)) ?? [],
    },
    unreadable,
  };
};

/**
 * One record per idempotency key runs: the first replay copy if there is one (`replay` deleted its dead letter and
 * counts on it), else the earliest copy. The others are skipped as duplicates without a claim. Copies with another
 * fingerprint are not duplicates: they go to the store, which finds which of them holds the key.
 */
const markCopies = <V, K>(
  partitions: Map<string, Prepared<V, K>[]>,
  route: RouteDefinition<V, K>,
): Map<string, Prepared<V, K>[]> => {
  const keeper = new Map<string, Prepared<V, K>>();
  for (const list of partitions.values()) {
    for (const prepared of list) {
      if (prepared.tombstone && route.tombstones === 'skip') continue;
      const kept = keeper.get(copyKey(prepared));
      if (!kept || (prepared.replay && !kept.replay)) keeper.set(copyKey(prepared), prepared);
    }
  }
  const marked = new Map<string, Prepared<V, K>[]>();
  for (const [id, list] of partitions) {
    marked.set(
      id,
      list.map((prepared) => {
        const kept = keeper.get(copyKey(prepared));
        return kept && kept !== prepared ? { ...prepared, duplicateInBatch: true } : prepared;
      }),
    );
  }
  return marked;
};

/** Copies are records with the same idempotency key and the same content. */
const copyKey = (prepared: Prepared<unknown, unknown>): string =>
  prepared.fingerprint ? `${prepared.key}\u0000${prepared.fingerprint.hash}` : prepared.key;

const prepareRecord = <V, K>(wire: WireRecord, route: RouteDefinition<V, K>): Prepared<V, K> => {
  const coordinates = { topic: wire.topic, partition: wire.partition, offset: wire.offset };
  const replayOf = replayOrigin(wire);
  const fallbackKey = replayOf ?? formatCoordinates(coordinates);
  const tombstone = wire.value === null || wire.value === undefined;
  const base = { wire, coordinates, replay: replayOf !== undefined, tombstone, duplicateInBatch: false };
  try {
    const headers = RecordHeaders.fromWire(wire.headers);
    const keyBytes = wire.key === null || wire.key === undefined ? null : base64ToBuffer(wire.key, 'key');
    const key = (
      keyBytes === null
        ? null
        : route.key
          ? decodeWith(route.key, keyBytes, 'key', wire.keySchemaMetadata)
          : keyBytes.toString('utf8')
    ) as K;
    const value = (
      tombstone
        ? null
        : decodeWith(route.value, base64ToBuffer(wire.value as string, 'value'), 'value', wire.valueSchemaMetadata)
    ) as V;
    const record: KafkaRecord<V, K> = {
      topic: wire.topic,
      partition: wire.partition,
      offset: wire.offset,
      timestamp: wire.timestamp,
      timestampType: wire.timestampType,
      key,
      value,
      headers,
      raw: wire,
    };
    const custom = route.idempotencyKey && !tombstone ? route.idempotencyKey(record) : undefined;
    const fingerprint =
      route.fingerprint && custom !== undefined ? fingerprintOf(route.fingerprint(record)) : undefined;
    return { ...base, record, key: custom ?? fallbackKey, fingerprint };
  } catch (error) {
    // A registry that could not be asked is no fault of the record's: the batch comes again.
    if (error instanceof TransientError) throw error;
    const decodeError =
      error instanceof PermanentError
        ? error
        : new PermanentError(`decoding failed: ${(error as Error).message}`, { cause: error });
    return { ...base, key: fallbackKey, decodeError };
  }
};
