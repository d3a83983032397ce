// With LOCAL_PERSIST=1, DynamoDB Local and ElasticMQ keep their data across a restart, as Kafka keeps its topics and
// offsets: a `reconcile` after `local:up` restarted them then finds what Kafka remembers as consumed.
// The services here are a set of this test's own (LOCAL_STATE_DIR, LOCAL_*_PORT), never the shared ones.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CreateTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { localPaths, REPO_ROOT } from '../../../scripts/local/config.ts';
import {
  ensureLocalServices,
  localServicesStatus,
  PERSIST_ENV,
  STATE_DIR_ENV,
  stopLocalServices,
} from '../../../scripts/local/services.ts';

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

const state = fs.mkdtempSync(path.join(os.tmpdir(), 'local-state-'));
const services = ['dynamodb', 'elasticmq'] as const;
let env: Record<string, string>;

beforeAll(async () => {
  env = {
    [STATE_DIR_ENV]: state,
    [PERSIST_ENV]: '1',
    LOCAL_KAFKA_PORT: String(await freePort()),
    LOCAL_KAFKA_CONTROLLER_PORT: String(await freePort()),
    LOCAL_DYNAMODB_PORT: String(await freePort()),
    LOCAL_SQS_PORT: String(await freePort()),
  };
  // Never the shared services: in this state dir nothing runs yet (a shared PID file here would mean it is ignored).
  const before = await localServicesStatus({ services, env });
  if (before.some((s) => s.pid !== undefined || s.source !== 'managed')) {
    throw new Error(`${STATE_DIR_ENV} was not honoured: ${JSON.stringify(before)}`);
  }
});

afterAll(async () => {
  await stopLocalServices(services, { env }).catch(() => {});
  fs.rmSync(state, { recursive: true, force: true });
});

test('a table item and a queued message survive a restart; `local:down --clean` removes them', async () => {
  const first = await ensureLocalServices({ services, env, readyTimeoutMs: 120_000 });
  expect(first.started.sort()).toEqual(['dynamodb', 'elasticmq']);
  expect(first.endpoints.dynamodbEndpoint).toBe(`http://127.0.0.1:${env.LOCAL_DYNAMODB_PORT}`);
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  const dynamodb = new DynamoDBClient({ endpoint: first.endpoints.dynamodbEndpoint, region: 'us-east-1', credentials });
  const sqs = new SQSClient({ endpoint: first.endpoints.sqsEndpoint, region: 'us-east-1', credentials });
  try {
    await dynamodb.send(
      new CreateTableCommand({
        TableName: 'kept',
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      }),
    );
    await dynamodb.send(new PutItemCommand({ TableName: 'kept', Item: { pk: { S: 'orders-0@41' }, v: { N: '1' } } }));
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'kept-dlq' }));
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'a dead letter' }));

    expect((await stopLocalServices(services, { env })).sort()).toEqual(['dynamodb', 'elasticmq']);
    const second = await ensureLocalServices({ services, env, readyTimeoutMs: 120_000 });
    expect(second.started.sort()).toEqual(['dynamodb', 'elasticmq']);

    const item = await dynamodb.send(new GetItemCommand({ TableName: 'kept', Key: { pk: { S: 'orders-0@41' } } }));
    expect(item.Item?.v?.N).toBe('1');
    const received = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: QueueUrl as string, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    expect(received.Messages?.map((m) => m.Body)).toEqual(['a dead letter']);
  } finally {
    dynamodb.destroy();
    sqs.destroy();
  }

  // `down --clean` of just these two (with --services the shared schema registry is left alone).
  const paths = localPaths(REPO_ROOT, state);
  for (const name of services) expect(fs.existsSync(paths.dataDir(name))).toBe(true);
  const down = spawnSync(
    process.execPath,
    [path.join(REPO_ROOT, 'scripts/local/cli.ts'), 'down', '--services', ...services, '--clean'],
    { cwd: REPO_ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 },
  );
  expect({ status: down.status, stderr: down.stderr }).toMatchObject({ status: 0 });
  expect(down.stderr).toMatch(/dynamodb-local data removed/);
  expect(down.stderr).toMatch(/elasticmq data removed/);
  for (const name of services) expect(fs.existsSync(paths.dataDir(name))).toBe(false);
}, 300_000);
