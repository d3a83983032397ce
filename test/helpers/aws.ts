import { randomUUID } from 'node:crypto';
import { type AttributeValue, DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, type Message, SQSClient } from '@aws-sdk/client-sqs';
import { createTableIfMissing, drainMessages, queueMessages, scanTable } from '../../scripts/lib/localResources.ts';

/** Clients for the local services that test/globalSetup.ts started (endpoints come from the environment). */
export const dynamodb = new DynamoDBClient({});
export const sqs = new SQSClient({});

export const uniqueName = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;

/** A table for one test; keyed `pk`, it is an idempotency table and gets the `expiresAt` TTL. */
export const createTable = async (name: string, partitionKey = 'pk'): Promise<string> => {
  await createTableIfMissing(dynamodb, name, partitionKey, partitionKey === 'pk');
  return name;
};

export const createQueue = async (name: string): Promise<string> => {
  const result = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  if (!result.QueueUrl) throw new Error(`no URL for queue ${name}`);
  return result.QueueUrl;
};

/** Every message the queue holds: visible, in flight (received, not deleted) and delayed. */
export const queueDepth = async (queueUrl: string): Promise<number> => (await queueMessages(sqs, queueUrl)).total;

/** Receives until the queue is empty (two empty polls), deleting what it read. */
export const drainQueue = (queueUrl: string): Promise<Message[]> => drainMessages(sqs, queueUrl);

export const getItem = async (table: string, key: Record<string, AttributeValue>) =>
  (await dynamodb.send(new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }))).Item;

/** Every item of the table, read consistently; `client` defaults to the shared local one. */
export const scanAll = (table: string, client: DynamoDBClient = dynamodb) => scanTable(client, table);

/** Points the runtime at fresh per-suite resources, as the CDK or the local bridge would. */
export const routeEnvironment = async (route: string) => {
  const table = await createTable(uniqueName(`${route}-idempotency`));
  const dlqUrl = await createQueue(uniqueName(`${route}-dlq`));
  process.env.IDEMPOTENCY_TABLE_NAME = table;
  process.env.DLQ_URL = dlqUrl;
  process.env.LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  return { table, dlqUrl };
};
