import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { addRequestCounter } from './idempotency/requestCounter.ts';

/**
 * One client of each kind per process, created on first use so cold start pays only
 * for what a route touches. Endpoints follow the SDK's own `AWS_ENDPOINT_URL_DYNAMODB`
 * and `AWS_ENDPOINT_URL_SQS`, which is how the local tools point at local services.
 * A claim wave for a batch of 100 wants 100 sockets, more than the SDK's default 50.
 */
const requestHandler = {
  httpAgent: { maxSockets: 256, keepAlive: true },
  httpsAgent: { maxSockets: 256, keepAlive: true },
};

let dynamodb: DynamoDBClient | undefined;
let sqs: SQSClient | undefined;

export const sharedDynamoDbClient = (): DynamoDBClient => {
  dynamodb ??= addRequestCounter(new DynamoDBClient({ requestHandler }));
  return dynamodb;
};

export const sharedSqsClient = (): SQSClient => {
  sqs ??= new SQSClient({ requestHandler });
  return sqs;
};
