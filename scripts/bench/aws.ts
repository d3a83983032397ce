// Clients and throwaway resources for the benchmarks: uniquely named tables and queues, deleted afterwards.
import {
  DeleteTableCommand,
  DynamoDBClient,
  ResourceNotFoundException,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, DeleteQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { createTableIfMissing } from '../lib/localResources.ts';

/** The same client settings for every side: keep-alive and a pool large enough for a 1000-record fan-out. */
const requestHandler = {
  httpAgent: { keepAlive: true, maxSockets: 256 },
  httpsAgent: { keepAlive: true, maxSockets: 256 },
};

export const dynamoDbClient = (endpoint: string): DynamoDBClient =>
  new DynamoDBClient({ endpoint, requestHandler, maxAttempts: 3 });

export const sqsClient = (endpoint: string): SQSClient => new SQSClient({ endpoint, requestHandler });

/** A throwaway table with a string partition key (it lives for minutes, so without a TTL), ready to use. */
export const createTable = async (client: DynamoDBClient, name: string, key: string): Promise<void> => {
  await createTableIfMissing(client, name, key, false);
  await waitUntilTableExists({ client, maxWaitTime: 60 }, { TableName: name });
};

export const deleteTable = async (client: DynamoDBClient, name: string): Promise<void> => {
  try {
    await client.send(new DeleteTableCommand({ TableName: name }));
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
  }
};

export const createQueue = async (client: SQSClient, name: string): Promise<string> => {
  const created = await client.send(new CreateQueueCommand({ QueueName: name }));
  if (!created.QueueUrl) throw new Error(`SQS returned no URL for queue ${name}`);
  return created.QueueUrl;
};

export const deleteQueue = async (client: SQSClient, url: string): Promise<void> => {
  await client.send(new DeleteQueueCommand({ QueueUrl: url })).catch(() => undefined);
};
