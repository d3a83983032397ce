// Smoke test of DynamoDB Local through the AWS SDK v3, which finds it through AWS_ENDPOINT_URL_DYNAMODB (set by
// test/globalSetup.ts): a conditional put succeeds once, the second is rejected.
import { randomUUID } from 'node:crypto';
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DeleteTableCommand,
  DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';

const client = new DynamoDBClient({});
const table = `smoke-ddb-${Date.now()}-${randomUUID().slice(0, 8)}`;

afterAll(async () => {
  await client.send(new DeleteTableCommand({ TableName: table })).catch(() => {});
  client.destroy();
});

test('the SDK sends to the endpoint from AWS_ENDPOINT_URL_DYNAMODB', async () => {
  expect(process.env.AWS_ENDPOINT_URL_DYNAMODB).toMatch(/^https?:\/\//);
  const seen: string[] = [];
  const probe = new DynamoDBClient({});
  probe.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { protocol?: string; hostname?: string; port?: number };
      seen.push(`${request.protocol}//${request.hostname}:${request.port}`);
      return next(args);
    },
    { step: 'finalizeRequest' },
  );
  await probe.send(new ListTablesCommand({ Limit: 1 }));
  probe.destroy();
  expect(seen).toEqual([process.env.AWS_ENDPOINT_URL_DYNAMODB]);
});

test('conditional PutItem with attribute_not_exists(pk) succeeds once, then fails the condition', async () => {
  await client.send(
    new CreateTableCommand({
      TableName: table,
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName: table });

  const put = (status: string) =>
    new PutItemCommand({
      TableName: table,
      Item: { pk: { S: 'orders#orders-0@15' }, status: { S: status }, attempts: { N: '1' } },
      ConditionExpression: 'attribute_not_exists(pk)',
    });

  await expect(client.send(put('IN_PROGRESS'))).resolves.toBeDefined();
  const second = client.send(put('COMPLETED'));
  await expect(second).rejects.toBeInstanceOf(ConditionalCheckFailedException);
  await expect(second).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });

  const { Item } = await client.send(
    new GetItemCommand({ TableName: table, Key: { pk: { S: 'orders#orders-0@15' } }, ConsistentRead: true }),
  );
  expect(Item?.status?.S).toBe('IN_PROGRESS');
});
