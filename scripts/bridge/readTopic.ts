// Reads a whole topic, every partition from its earliest offset to the high watermark taken at the start, without a
// consumer group (nothing is committed, nobody's assignment changes). Used by reconcile and the end-to-end tests.
import { createConsumer, type RawRecordBatch } from '../lib/kafka.ts';
import { type LambdaKafkaRecord, recordsOfBatches } from '../lib/kafkaEvents.ts';

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
        const fetched = recordsOfBatches(topic, p, part.records ?? [], position);
        position = fetched.next;
        for (const record of fetched.records) if (BigInt(record.offset) < end) records.push(record);
        if (position === before) throw new Error(`no progress reading ${topic}-${p} at offset ${position}`);
      }
    }
    return records;
  } finally {
    await consumer.close(true).catch(() => {});
  }
};
