import { AsyncLocalStorage } from 'node:async_hooks';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * Counts the HTTP requests a DynamoDB client makes on behalf of one invocation,
 * retries included. The counter lives in AsyncLocalStorage, so invocations that run
 * concurrently in one process (the local bridge, the benchmarks) never mix counts.
 */
export type RequestCount = { requests: number };
const currentCount = new AsyncLocalStorage<RequestCount>();

export const countRequestsIn = <T>(count: RequestCount, work: () => Promise<T>): Promise<T> =>
  currentCount.run(count, work);

const counted = new WeakSet<DynamoDBClient>();

export const addRequestCounter = (client: DynamoDBClient): DynamoDBClient => {
  if (counted.has(client)) return client;
  counted.add(client);
  // The deserialize step runs once per attempt, inside the SDK's retry loop.
  client.middlewareStack.add(
    (next) => async (args) => {
      const count = currentCount.getStore();
      if (count) count.requests += 1;
      return next(args);
    },
    { step: 'deserialize', name: 'kafkaLambdaBridgeRequestCounter', priority: 'low' },
  );
  return client;
};
