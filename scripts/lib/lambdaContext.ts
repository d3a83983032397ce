import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';

/**
 * A Lambda-like context for running a handler outside Lambda: a fresh request id and a
 * real deadline, so `getRemainingTimeInMillis` shrinks as it does in Lambda.
 */
export const createLambdaContext = (options: {
  functionName: string;
  timeoutSeconds: number;
  memoryMb?: number;
}): Context => {
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  return {
    awsRequestId: randomUUID(),
    functionName: options.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${options.functionName}`,
    memoryLimitInMB: String(options.memoryMb ?? 256),
    logGroupName: `/aws/lambda/${options.functionName}`,
    logStreamName: 'local',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
};
