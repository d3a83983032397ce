import { defineBridgeConfig } from './config/schema.ts';

/**
 * The default bridge config: the `orders` and `payments` example routes on an Amazon MSK cluster.
 *
 * The cluster ARN is yours to supply, from CDK context or the environment:
 *   npm run deploy -- -c mskClusterArn=arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>
 *   BRIDGE_MSK_CLUSTER_ARN=arn:aws:kafka:... npm run deploy
 * Without one, the placeholder below keeps `npm run synth` working offline; the app warns
 * about it, and a deploy with it fails when the event source mappings are created.
 * Alarm e-mail: `-c alarmEmail=ops@example.com` or BRIDGE_ALARM_EMAIL.
 */
export const PLACEHOLDER_CLUSTER_ARN =
  'arn:aws:kafka:us-east-1:123456789012:cluster/replace-me/00000000-0000-0000-0000-000000000000-1';

export default defineBridgeConfig((context) => {
  const alarmEmail = context.lookup('alarmEmail', 'BRIDGE_ALARM_EMAIL');
  return {
    name: 'kafka-lambda-bridge',
    source: {
      kind: 'msk',
      clusterArn: context.lookup('mskClusterArn', 'BRIDGE_MSK_CLUSTER_ARN') ?? PLACEHOLDER_CLUSTER_ARN,
      auth: 'iam',
    },
    routes: [
      {
        name: 'orders',
        topic: 'orders',
        handler: 'orders.ts',
        batchSize: 500,
        maxBatchingWindowSeconds: 1,
        startingPosition: 'TRIM_HORIZON',
        retry: { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 5_000 },
        tables: [{ name: 'orders', partitionKey: 'orderId', env: 'ORDERS_TABLE_NAME' }],
      },
      {
        name: 'payments',
        topic: 'payments',
        handler: 'payments.ts',
        batchSize: 100,
        maxBatchingWindowSeconds: 1,
        startingPosition: 'TRIM_HORIZON',
        // Money moves: never give up on a record before an operator has looked at it.
        retry: { maxAttempts: 10, baseDelayMs: 200, maxDelayMs: 10_000, maxRecordAgeSeconds: 24 * 3600 },
        tables: [
          { name: 'accounts', partitionKey: 'accountId', env: 'ACCOUNTS_TABLE_NAME' },
          { name: 'ledger', partitionKey: 'txId', env: 'LEDGER_TABLE_NAME' },
        ],
        alarms: { offsetLag: 500 },
      },
      // `npm run new-route` adds routes above this line.
    ],
    observability: { namespace: 'KafkaLambdaBridge', ...(alarmEmail ? { alarmEmail } : {}) },
  };
});
