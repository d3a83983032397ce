// Kafka events in the shape the Lambda event source mapping sends, for the handler benchmarks. Pure.
import type { KafkaEventInput } from '../../functions/runtime/event.ts';

export type BenchRecord = {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly timestamp: number;
  readonly value: unknown;
};

/** `count` order events spread round-robin over `partitions`, offsets counting up from 0 in each partition. */
export const orderRecords = (topic: string, count: number, partitions: number, timestamp: number): BenchRecord[] =>
  Array.from({ length: count }, (_, i) => ({
    topic,
    partition: i % partitions,
    offset: Math.floor(i / partitions),
    timestamp,
    value: {
      orderId: `order-${i}`,
      status: 'PAID',
      version: 1 + (i % 7),
      updatedAt: new Date(timestamp).toISOString(),
    },
  }));

/**
 * The records chosen as duplicates: `rate` of each partition's, from its first offset, as a redelivery brings them
 * (the event source mapping re-sends a partition from its committed offset, so what was seen before is a prefix).
 */
export const duplicateSubset = <T extends Pick<BenchRecord, 'partition'>>(records: readonly T[], rate: number): T[] => {
  const byPartition = new Map<number, T[]>();
  for (const record of records)
    byPartition.set(record.partition, [...(byPartition.get(record.partition) ?? []), record]);
  return [...byPartition.values()].flatMap((list) => list.slice(0, Math.round(list.length * rate)));
};

export const mskEventOf = (records: readonly BenchRecord[]): KafkaEventInput => {
  const grouped: Record<string, KafkaEventInput['records'][string]> = {};
  for (const r of records) {
    const id = `${r.topic}-${r.partition}`;
    grouped[id] ??= [];
    grouped[id].push({
      topic: r.topic,
      partition: r.partition,
      offset: r.offset,
      timestamp: r.timestamp,
      timestampType: 'CREATE_TIME',
      key: Buffer.from(`k-${r.partition}-${r.offset}`).toString('base64'),
      value: Buffer.from(JSON.stringify(r.value)).toString('base64'),
      headers: [],
    });
  }
  return {
    eventSource: 'aws:kafka',
    eventSourceArn: 'arn:aws:kafka:us-east-1:123456789012:cluster/bench/abcd1234-abcd-cafe-abab-9876543210ab-4',
    bootstrapServers: 'b-1.bench.kafka.us-east-1.amazonaws.com:9092',
    records: grouped,
  };
};
