// Readiness probes with the real clients: Kafka metadata, DynamoDB ListTables, SQS ListQueues.
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { probeKafka } from '../lib/kafka.ts';
import { DUMMY_AWS_ENV, type ServiceName } from './config.ts';

type AwsClientConfig = {
  endpoint: string;
  region: string;
  maxAttempts: number;
  credentials?: { accessKeyId: string; secretAccessKey: string };
};

/** SDK config for a local endpoint: one attempt, and dummy region/credentials when the env has none. */
export function awsClientConfig(endpoint: string, env: Record<string, string | undefined> = process.env) {
  const config: AwsClientConfig = {
    endpoint,
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? DUMMY_AWS_ENV.AWS_REGION,
    maxAttempts: 1,
  };
  if (!env.AWS_ACCESS_KEY_ID && !env.AWS_PROFILE) {
    config.credentials = {
      accessKeyId: DUMMY_AWS_ENV.AWS_ACCESS_KEY_ID,
      secretAccessKey: DUMMY_AWS_ENV.AWS_SECRET_ACCESS_KEY,
    };
  }
  return config;
}

/** One readiness check; throws when the service does not answer correctly within `timeoutMs`. */
export async function probe(name: ServiceName, endpoint: string, timeoutMs = 2_000): Promise<string> {
  switch (name) {
    case 'kafka': {
      const { clusterId } = await probeKafka(endpoint.split(','), timeoutMs);
      return `metadata ok (cluster ${clusterId})`;
    }
    case 'dynamodb': {
      const client = new DynamoDBClient(awsClientConfig(endpoint));
      try {
        await client.send(new ListTablesCommand({ Limit: 1 }), { abortSignal: AbortSignal.timeout(timeoutMs) });
        return 'ListTables ok';
      } finally {
        client.destroy();
      }
    }
    case 'elasticmq': {
      const client = new SQSClient(awsClientConfig(endpoint));
      try {
        await client.send(new ListQueuesCommand({ MaxResults: 1 }), { abortSignal: AbortSignal.timeout(timeoutMs) });
        return 'ListQueues ok';
      } finally {
        client.destroy();
      }
    }
  }
}

/**
 * Probes until the service answers, `deadline` passes, or `failFast()` returns an error (the process died).
 * Resolves to the last successful probe's summary.
 */
export async function waitUntilReady(
  name: ServiceName,
  endpoint: string,
  opts: { deadline: number; failFast?: () => Error | undefined; intervalMs?: number },
): Promise<string> {
  let lastError: unknown;
  for (;;) {
    const dead = opts.failFast?.();
    if (dead) throw dead;
    try {
      return await probe(name, endpoint, Math.max(500, Math.min(3_000, opts.deadline - Date.now())));
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= opts.deadline) {
      const reason = lastError instanceof Error ? lastError.message : String(lastError);
      throw new Error(`${name} at ${endpoint} is not ready: ${reason}`, { cause: lastError });
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
  }
}
