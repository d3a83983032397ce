// Kafka access for `replay`: read one record back at its coordinates (for truncated dead letters)
// and republish records with acks=all. Built on the project's client helpers in ./kafka.ts.
import { randomUUID } from 'node:crypto';
import {
  compatibilityPartitioner,
  IS_CONTROL,
  ListOffsetTimestamps,
  ProduceAcks,
  type RecordsBatch,
} from '@platformatic/kafka';
import { formatCoordinates, type RecordCoordinates } from '../../functions/runtime/errors.ts';
import { createConsumer, createProducer, hasApiError, type RawConsumer, type RawProducer } from './kafka.ts';
import type { KafkaRecordBytes, ReplayMessage, TimestampType } from './replayEvents.ts';

/** Record batches with this attribute bit carry the broker's append time instead of the producer's. */
const LOG_APPEND_TIME_BIT = 0x08;
const MAX_FETCH_BYTES = 64 * 1024 * 1024;

export type ReadResult =
  | { readonly found: true; readonly record: KafkaRecordBytes }
  | { readonly found: false; readonly reason: string };

/** Bounds a Kafka call, so a replay never waits forever on a broker. */
const REQUEST_DEADLINE_MS = 60_000;

// The client retries an unknown topic's metadata for as long as it may be auto-created; asked with
// `retries: 0` it answers at once with a UserError "Unknown topic <name>.".
const isUnknownTopic = (error: unknown): boolean =>
  (error instanceof Error && error.message.startsWith('Unknown topic ')) ||
  hasApiError(error, 'UNKNOWN_TOPIC_OR_PARTITION');

export const withDeadline = async <T>(work: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
};

const recordsOf = (topic: string, partition: number, batches: readonly RecordsBatch[]): KafkaRecordBytes[] => {
  const records: KafkaRecordBytes[] = [];
  for (const batch of batches) {
    if (batch.attributes & IS_CONTROL) continue;
    const appendTime = (batch.attributes & LOG_APPEND_TIME_BIT) !== 0;
    const timestampType: TimestampType = appendTime ? 'LOG_APPEND_TIME' : 'CREATE_TIME';
    for (const record of batch.records) {
      records.push({
        topic,
        partition,
        offset: Number(batch.firstOffset + BigInt(record.offsetDelta)),
        timestamp: Number(appendTime ? batch.maxTimestamp : batch.firstTimestamp + record.timestampDelta),
        timestampType,
        key: record.key,
        value: record.value,
        headers: record.headers.map(([name, value]): [string, Buffer] => [
          (name ?? Buffer.alloc(0)).toString('utf8'),
          value ?? Buffer.alloc(0),
        ]),
      });
    }
  }
  return records;
};

/**
 * Reads the record at `at` from Kafka without joining a consumer group. A record that is no longer
 * there (retention, `deleteRecords`, compaction, a recreated topic) is reported as not found with
 * the reason; an unreachable cluster throws.
 */
export class KafkaRecordReader {
  readonly #consumer: RawConsumer;

  constructor(brokers: string[]) {
    this.#consumer = createConsumer(brokers, {
      groupId: `kafka-lambda-bridge-replay-reader-${randomUUID()}`,
      clientId: 'kafka-lambda-bridge-replay-reader',
    });
  }

  async read(at: RecordCoordinates): Promise<ReadResult> {
    const where = formatCoordinates(at);
    let metadata: Awaited<ReturnType<RawConsumer['metadata']>>;
    try {
      metadata = await withDeadline(
        this.#consumer.metadata({ topics: [at.topic], forceUpdate: true, retries: 0 }),
        REQUEST_DEADLINE_MS,
        `Kafka metadata for ${at.topic}`,
      );
    } catch (error) {
      if (isUnknownTopic(error)) {
        return { found: false, reason: `${where}: topic ${at.topic} does not exist any more` };
      }
      throw error;
    }
    const topic = metadata.topics.get(at.topic);
    if (!topic) return { found: false, reason: `${where}: topic ${at.topic} does not exist any more` };
    const partition = topic.partitions[at.partition];
    if (!partition) return { found: false, reason: `${where}: topic ${at.topic} has no partition ${at.partition}` };

    for (let attempt = 1; attempt <= 3; attempt++) {
      let response: Awaited<ReturnType<RawConsumer['fetch']>>;
      try {
        response = await withDeadline(
          this.#consumer.fetch({
            node: partition.leader,
            maxWaitTime: 200,
            maxBytes: MAX_FETCH_BYTES,
            topics: [
              {
                topicId: topic.id,
                partitions: [
                  {
                    partition: at.partition,
                    fetchOffset: BigInt(at.offset),
                    partitionMaxBytes: MAX_FETCH_BYTES,
                    currentLeaderEpoch: -1,
                    lastFetchedEpoch: -1,
                  },
                ],
              },
            ],
          }),
          REQUEST_DEADLINE_MS,
          `Kafka fetch of ${where}`,
        );
      } catch (error) {
        if (hasApiError(error, 'OFFSET_OUT_OF_RANGE')) return { found: false, reason: await this.#outOfRange(at) };
        throw error;
      }
      const answer = response.responses
        .flatMap((t) => (t.topicId === topic.id ? t.partitions : []))
        .find((p) => p.partitionIndex === at.partition);
      const records = recordsOf(at.topic, at.partition, answer?.records ?? []);
      const record = records.find((r) => r.offset === at.offset);
      if (record) return { found: true, record };
      if (records.some((r) => r.offset > at.offset)) {
        return { found: false, reason: `${where}: no record at this offset any more (compacted or aborted)` };
      }
      if (answer && answer.highWatermark >= 0n && answer.highWatermark <= BigInt(at.offset)) {
        return { found: false, reason: `${where}: the partition ends at offset ${answer.highWatermark}` };
      }
    }
    return { found: false, reason: `${where}: Kafka returned no record at this offset` };
  }

  async #outOfRange(at: RecordCoordinates): Promise<string> {
    const where = formatCoordinates(at);
    const offsetAt = async (timestamp: bigint) =>
      (
        await withDeadline(
          this.#consumer.listOffsets({ topics: [at.topic], partitions: { [at.topic]: [at.partition] }, timestamp }),
          REQUEST_DEADLINE_MS,
          `Kafka offsets of ${where}`,
        )
      ).get(at.topic)?.[at.partition];
    const earliest = await offsetAt(ListOffsetTimestamps.EARLIEST);
    if (earliest !== undefined && BigInt(at.offset) < earliest) {
      return `${where}: gone from Kafka (retention): the partition now starts at offset ${earliest}`;
    }
    const latest = await offsetAt(ListOffsetTimestamps.LATEST);
    return `${where}: not in Kafka: the partition holds offsets ${earliest ?? '?'}..${latest === undefined ? '?' : latest - 1n}`;
  }

  async close(): Promise<void> {
    await this.#consumer.close();
  }
}

/** Republishes with acks=all on the project's idempotent producer. */
export class ReplayProducer {
  readonly #producer: RawProducer;
  readonly #known = new Set<string>();

  constructor(brokers: string[]) {
    this.#producer = createProducer(brokers, { clientId: 'kafka-lambda-bridge-replay' });
  }

  /** The topics among `topics` that do not exist (topics are never auto-created); a producer would wait for them. */
  async missingTopics(topics: Iterable<string>): Promise<Set<string>> {
    const missing = new Set<string>();
    for (const topic of new Set(topics)) {
      if (this.#known.has(topic)) continue;
      try {
        await withDeadline(
          this.#producer.metadata({ topics: [topic], forceUpdate: true, retries: 0 }),
          REQUEST_DEADLINE_MS,
          `Kafka metadata for ${topic}`,
        );
        this.#known.add(topic);
      } catch (error) {
        if (!isUnknownTopic(error)) throw error;
        missing.add(topic);
      }
    }
    return missing;
  }

  /** Resolves once every message is acknowledged by all in-sync replicas; throws otherwise. */
  async send(messages: readonly ReplayMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await withDeadline(
      this.#producer.send({
        messages: messages.map((m) => ({ ...m })),
        acks: ProduceAcks.ALL,
        // Used only for messages without a partition (another topic): the Java client's key hashing.
        partitioner: (message, key) =>
          key ? compatibilityPartitioner(message, key) : Math.floor(Math.random() * 0x7fffffff),
      }),
      REQUEST_DEADLINE_MS,
      `producing ${messages.length} record(s) to Kafka`,
    );
  }

  async close(): Promise<void> {
    await this.#producer.close();
  }
}
