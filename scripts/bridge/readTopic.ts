// Reads a whole topic, every partition from its earliest offset to the high watermark taken at the start, without a
// consumer group (nothing is committed, nobody's assignment changes). Used by reconcile and the end-to-end tests.
import { createConsumer, type RawRecordBatch } from '../lib/kafka.ts';
import { type LambdaKafkaRecord, type TimestampType, toLambdaRecord } from '../lib/kafkaEvents.ts';

const IS_CONTROL = 1 << 5;
const LOG_APPEND_TIME = 1 << 3;

type RawFetch = {
  responses: Array<{
    partitions: Array<{ partitionIndex: number; errorCode: number; records?: RawRecordBatch[] | null }>;
  }>;
};

/** Every record of the topic as the bridge hands it to a handler (offset order per partition). */
export const readTopic = async (
  brokers: readonly string[],
  topic: string,
  options: { clientId?: string } = {},
): Promise<LambdaKafkaRecord[]> => {
  const consumer = createConsumer([...brokers], {
    groupId: `reader-${topic}-${process.pid}-${Date.now()}`,
    clientId: options.clientId ?? 'kafka-lambda-bridge-reader',
  });
  const records: LambdaKafkaRecord[] = [];
  try {
    const metadata = await consumer.metadata({ topics: [topic] });
    const info = metadata.topics.get(topic);
    if (!info) throw new Error(`topic ${topic} does not exist`);
    const [earliest, latest] = await Promise.all([
      consumer.listOffsets({ topics: [topic], timestamp: -2n }),
      consumer.listOffsets({ topics: [topic] }),
    ]);
    for (let p = 0; p < info.partitionsCount; p++) {
      let position = earliest.get(topic)?.[p] ?? 0n;
      const end = latest.get(topic)?.[p] ?? 0n;
      while (position < end) {
        const response = (await consumer.fetch({
          node: info.partitions[p]?.leader ?? 0,
          maxWaitTime: 100,
          minBytes: 1,
          maxBytes: 16 * 1024 * 1024,
          topics: [
            {
              topicId: info.id,
              partitions: [
                {
                  partition: p,
                  fetchOffset: position,
                  partitionMaxBytes: 8 * 1024 * 1024,
                  currentLeaderEpoch: -1,
                  lastFetchedEpoch: -1,
                },
              ],
            },
          ],
        })) as unknown as RawFetch;
        const part = response.responses.flatMap((t) => t.partitions).find((x) => x.partitionIndex === p);
        if (part?.errorCode !== 0) throw new Error(`fetch of ${topic}-${p} failed (error code ${part?.errorCode})`);
        const before = position;
        for (const batch of part.records ?? []) {
          const last = batch.firstOffset + BigInt(batch.lastOffsetDelta);
          if (last + 1n > position) position = last + 1n;
          if (batch.attributes & IS_CONTROL) continue;
          const timestampType: TimestampType = batch.attributes & LOG_APPEND_TIME ? 'LOG_APPEND_TIME' : 'CREATE_TIME';
          for (const record of batch.records) {
            const offset = batch.firstOffset + BigInt(record.offsetDelta);
            if (offset < before || offset >= end) continue;
            records.push(
              toLambdaRecord(
                {
                  topic,
                  partition: p,
                  offset,
                  timestamp:
                    timestampType === 'LOG_APPEND_TIME'
                      ? batch.maxTimestamp
                      : batch.firstTimestamp + record.timestampDelta,
                  key: record.key,
                  value: record.value,
                  headerEntries: record.headers.map(([name, value]) => [name ?? '', value] as const),
                },
                timestampType,
              ),
            );
          }
        }
        if (position === before) throw new Error(`no progress reading ${topic}-${p} at offset ${position}`);
      }
    }
    return records;
  } finally {
    await consumer.close(true).catch(() => {});
  }
};
