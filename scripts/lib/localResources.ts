import {
  type AttributeValue,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  ScanCommand,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import {
  type BridgeConfig,
  localResourceNames,
  localRouteEnvironment,
  type RouteConfig,
} from '../../infra/config/index.ts';
import { ensureRegistry } from '../local/registry.ts';
import { brokersFromEnv, ensureTopics } from './kafka.ts';

/** What the local tools create for a config: the same resources the CDK stack creates in AWS. */
export type LocalRouteResources = {
  readonly route: RouteConfig;
  readonly deadLetterQueueUrl: string;
  /**
   * Where the local bridge writes what the ESM would send its on-failure destination (any kind: SQS, SNS, S3 or a
   * Kafka topic in AWS), for routes that have one.
   */
  readonly onFailureQueueUrl?: string;
  /** The route's retry queue (ElasticMQ keeps SQS message timers), for routes that park records. */
  readonly retryQueueUrl?: string;
  /** The route's environment contract (DESIGN §5), pointing at the local resources. */
  readonly environment: Record<string, string>;
};

export type EnsureLocalResourcesOptions = {
  /** Only these routes (default: all). */
  routes?: readonly string[];
  /** Resources of a tool's own beside the bridge's (see `localResourceNames`). */
  namespace?: string;
  /** Also create the routes' topics (default true). */
  topics?: boolean;
  partitions?: number;
  dynamodb?: DynamoDBClient;
  sqs?: SQSClient;
};

/**
 * An on-demand table keyed by one string attribute, created unless it exists with that key; `ttl` turns on the
 * `expiresAt` TTL the idempotency records use. The local tools, the benchmarks and the tests all create tables here.
 */
export const createTableIfMissing = async (
  client: DynamoDBClient,
  name: string,
  partitionKey: string,
  ttl: boolean,
): Promise<void> => {
  try {
    await client.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: partitionKey, AttributeType: 'S' }],
        KeySchema: [{ AttributeName: partitionKey, KeyType: 'HASH' }],
      }),
    );
    if (ttl) {
      await client.send(
        new UpdateTimeToLiveCommand({
          TableName: name,
          TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        }),
      );
    }
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
    const existing = await client.send(new DescribeTableCommand({ TableName: name }));
    const key = existing.Table?.KeySchema?.find((k) => k.KeyType === 'HASH')?.AttributeName;
    if (key !== partitionKey) {
      throw new Error(`table ${name} exists with partition key "${key}", but the config needs "${partitionKey}"`);
    }
  }
};

/**
 * Creates, if missing, the idempotency table, the side tables, each route's DLQ and topic,
 * and returns each route's environment. Idempotent, so every tool can call it first.
 */
export const ensureLocalResources = async (
  config: BridgeConfig,
  options: EnsureLocalResourcesOptions = {},
): Promise<LocalRouteResources[]> => {
  const dynamodb = options.dynamodb ?? new DynamoDBClient({});
  const sqs = options.sqs ?? new SQSClient({});
  const names = localResourceNames(config, options.namespace);
  const routes = options.routes ? config.routes.filter((r) => options.routes?.includes(r.name)) : config.routes;

  await createTableIfMissing(dynamodb, names.idempotencyTable, 'pk', true);
  for (const route of routes) {
    for (const table of route.tables) {
      await createTableIfMissing(dynamodb, names.tables[table.name] as string, table.partitionKey, false);
    }
  }
  if (options.topics ?? true) {
    await ensureTopics(
      brokersFromEnv(),
      routes.map((r) => ({ topic: r.topic, partitions: options.partitions ?? 3 })),
    );
  }
  // A route that decodes with a Confluent-compatible registry gets the local one (started if needed).
  const schemaRegistryUrl = routes.some((r) => r.registry?.kind === 'confluent')
    ? (await ensureRegistry({ log: (line) => process.stderr.write(`registry: ${line}\n`) })).url
    : undefined;
  const resources: LocalRouteResources[] = [];
  for (const route of routes) {
    const createQueue = async (name: string) => {
      const created = await sqs.send(new CreateQueueCommand({ QueueName: name }));
      if (!created.QueueUrl) throw new Error(`SQS returned no URL for queue ${name}`);
      return created.QueueUrl;
    };
    const deadLetterQueueUrl = await createQueue(names.deadLetterQueues[route.name] as string);
    const onFailure = names.onFailureQueues[route.name];
    const retry = names.retryQueues[route.name];
    const retryQueueUrl = retry ? await createQueue(retry) : undefined;
    resources.push({
      route,
      deadLetterQueueUrl,
      ...(onFailure && { onFailureQueueUrl: await createQueue(onFailure) }),
      ...(retryQueueUrl && { retryQueueUrl }),
      environment: localRouteEnvironment(config, route, deadLetterQueueUrl, {
        namespace: options.namespace,
        schemaRegistryUrl,
        retryQueueUrl,
      }),
    });
  }
  return resources;
};

/** What a queue holds: visible, waiting out a delay (message timers), and received but not deleted. */
export const queueMessages = async (client: SQSClient, queueUrl: string) => {
  const { Attributes = {} } = await client.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesDelayed',
        'ApproximateNumberOfMessagesNotVisible',
      ],
    }),
  );
  const waiting = Number(Attributes.ApproximateNumberOfMessages ?? 0);
  const delayed = Number(Attributes.ApproximateNumberOfMessagesDelayed ?? 0);
  const inFlight = Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0);
  return { waiting, delayed, inFlight, total: waiting + delayed + inFlight };
};

/** Every item of a table, read consistently (the local tools' and the tests' tables are small). */
export const scanTable = async (client: DynamoDBClient, table: string) => {
  const items: Array<Record<string, AttributeValue>> = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({ TableName: table, ExclusiveStartKey: start, ConsistentRead: true }),
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
};

/** Receives until the queue is empty (two empty polls), deleting what it read. */
export const drainMessages = async (client: SQSClient, queueUrl: string): Promise<Message[]> => {
  const all: Message[] = [];
  for (let empty = 0; empty < 2; ) {
    const { Messages = [] } = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        MessageAttributeNames: ['All'],
      }),
    );
    if (Messages.length === 0) {
      empty += 1;
      continue;
    }
    all.push(...Messages);
    await client.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
      }),
    );
  }
  return all;
};
