// Cold-start entry: the Powertools equivalent of our orders handler. kafkaConsumer decodes and validates,
// makeIdempotent + DynamoDBPersistenceLayer dedupe each record, Metrics and Logger report, failures are sent to an
// SQS dead-letter queue; records run in partition order. Everything init would construct is constructed.
import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { kafkaConsumer } from '@aws-lambda-powertools/kafka';
import type { ConsumerRecord } from '@aws-lambda-powertools/kafka/types';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { applyOrderEvent, IllegalTransitionError, OrderEvent } from './orderModel.ts';

const dynamodb = new DynamoDBClient({});
const sqs = new SQSClient({});
const persistenceStore = new DynamoDBPersistenceLayer({
  tableName: process.env.IDEMPOTENCY_TABLE_NAME ?? 'idempotency',
  awsSdkV3Client: dynamodb,
});
const config = new IdempotencyConfig({ eventKeyJmesPath: 'idempotencyKey' });
const logger = new Logger({ serviceName: 'orders' });
const metrics = new Metrics({ namespace: 'KafkaLambdaBridge', serviceName: 'orders' });

const applyOnce = makeIdempotent(
  async (input: { idempotencyKey: string; value: OrderEvent }) => applyOrderEvent(dynamodb, input.value),
  { persistenceStore, config },
);

const one = async (record: ConsumerRecord<string, OrderEvent>): Promise<void> => {
  const idempotencyKey = `${record.topic}-${record.partition}@${record.offset}`;
  try {
    await applyOnce({ idempotencyKey, value: record.value });
    metrics.addMetric('RecordsProcessed', MetricUnit.Count, 1);
  } catch (error) {
    if (!(error instanceof IllegalTransitionError)) throw error;
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: process.env.DLQ_URL,
        MessageBody: JSON.stringify({ idempotencyKey, value: record.originalValue, error: error.message }),
      }),
    );
    logger.warn('dead-lettered', { topic: record.topic, partition: record.partition, offset: record.offset });
    metrics.addMetric('RecordsDeadLettered', MetricUnit.Count, 1);
  }
};

export const handler = kafkaConsumer<string, OrderEvent>(
  async (event, context) => {
    config.registerLambdaContext(context);
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
    metrics.publishStoredMetrics();
    logger.info('batch done', { received: event.records.length });
  },
  { value: { type: 'json', parserSchema: OrderEvent } },
);
