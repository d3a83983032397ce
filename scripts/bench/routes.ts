// The two sides of the handler-throughput comparison, built on the same per-record work.
//
// `process` is identical on both sides and CPU-trivial with no I/O of its own (it folds the order's version into a
// checksum), so the difference between the sides is the cost of decoding, dedupe and bookkeeping, which is what the
// benchmark is about. Both sides validate values with the same zod schema (the orders route's `OrderEvent`).
import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { kafkaConsumer } from '@aws-lambda-powertools/kafka';
import type { ConsumerRecord } from '@aws-lambda-powertools/kafka/types';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { OrderEvent } from '../../functions/handlers/orders.ts';
import { kafkaHandler } from '../../functions/runtime/kafkaHandler.ts';

/** Counts the records each side really processed, so a run that skipped too much or too little is caught. */
export class WorkMeter {
  calls = 0;
  checksum = 0;

  /** The shared per-record work: CPU-trivial, no I/O. */
  work(value: OrderEvent): void {
    this.calls += 1;
    this.checksum = (this.checksum + value.version) | 0;
  }
}

export type BenchHandler = (event: unknown, context: Context) => Promise<unknown>;

/**
 * Our orders-style route: the real runtime with the shared work as `process`, default settings (keyed by the
 * record's coordinates, so on the watermark strategy) unless `strategy` picks the dedupe strategy.
 */
export const bridgeRoute = (
  meter: WorkMeter,
  clients: { dynamodb: DynamoDBClient; sqs: SQSClient },
  strategy?: 'watermark' | 'key',
): BenchHandler => {
  const handler = kafkaHandler({
    route: 'orders',
    value: OrderEvent,
    process: async (record) => meter.work(record.value),
    clients,
    ...(strategy ? { settings: { idempotency: { strategy } } } : {}),
  });
  return (event, context) => handler(event, context);
};

export type PowertoolsRouteOptions = {
  readonly client: DynamoDBClient;
  /** A table keyed `id` (the persistence layer's default). */
  readonly tableName: string;
  /** true: sequential within a partition, partitions in parallel; false: every record at once, order ignored. */
  readonly ordered: boolean;
};

type IdempotentInput = { readonly idempotencyKey: string; readonly value: OrderEvent };

/**
 * The natural Powertools equivalent: `kafkaConsumer` decodes and validates, `makeIdempotent` with the
 * `DynamoDBPersistenceLayer` dedupes each record on the same key as ours (`topic-partition@offset`), and Metrics
 * and Logger report each batch. Records run in partition order unless `ordered` is false.
 */
export const powertoolsRoute = (meter: WorkMeter, options: PowertoolsRouteOptions): BenchHandler => {
  const persistenceStore = new DynamoDBPersistenceLayer({
    tableName: options.tableName,
    awsSdkV3Client: options.client,
  });
  const config = new IdempotencyConfig({ eventKeyJmesPath: 'idempotencyKey', expiresAfterSeconds: 8 * 24 * 3600 });
  const processOnce = makeIdempotent(
    async (input: IdempotentInput) => {
      meter.work(input.value);
      return true;
    },
    { persistenceStore, config },
  );
  const logger = new Logger({ serviceName: 'orders' });
  const metrics = new Metrics({ namespace: 'KafkaLambdaBridgeBench', serviceName: 'orders' });

  const one = async (record: ConsumerRecord<string, OrderEvent>) => {
    // The getter decodes and validates on every access, so it is read once.
    const value = record.value;
    await processOnce({ idempotencyKey: `${record.topic}-${record.partition}@${record.offset}`, value });
  };

  const handler = kafkaConsumer<string, OrderEvent>(
    async (event, context) => {
      config.registerLambdaContext(context);
      const before = meter.calls;
      if (options.ordered) {
        const partitions = new Map<string, Array<ConsumerRecord<string, OrderEvent>>>();
        for (const record of event.records) {
          const id = `${record.topic}-${record.partition}`;
          const list = partitions.get(id);
          if (list) list.push(record);
          else partitions.set(id, [record]);
        }
        await Promise.all(
          [...partitions.values()].map(async (records) => {
            for (const record of records) await one(record);
          }),
        );
      } else {
        await Promise.all(event.records.map(one));
      }
      const processed = meter.calls - before;
      metrics.addMetric('RecordsReceived', MetricUnit.Count, event.records.length);
      metrics.addMetric('RecordsProcessed', MetricUnit.Count, processed);
      metrics.addMetric('DuplicatesSkipped', MetricUnit.Count, event.records.length - processed);
      metrics.publishStoredMetrics();
      logger.info('batch done', { received: event.records.length, processed });
    },
    { value: { type: 'json', parserSchema: OrderEvent } },
  );
  return (event, context) => handler(event as Parameters<typeof handler>[0], context);
};
