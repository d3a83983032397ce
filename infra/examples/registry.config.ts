import { PLACEHOLDER_CLUSTER_ARN } from '../bridge.config.ts';
import { defineBridgeConfig } from '../config/schema.ts';

/**
 * An example config with one registry-framed route: `orders-avro`, the orders events as Confluent-framed Avro
 * (functions/handlers/ordersAvro.ts). Locally the tools start the local schema registry (Apicurio) because the route
 * has a Confluent-compatible `registry`, and give the route its URL in place of the one below:
 *   npm start -- --config infra/examples/registry.config.ts
 * The demo registers the route's schema (Avro, made from its zod schema) under `orders-avro-value` and produces
 * framed records; its poison records carry no framing and are dead-lettered as a wrong magic byte.
 *
 * Deployed, the route reads the registry at `-c schemaRegistryUrl=<url>` (or BRIDGE_SCHEMA_REGISTRY_URL), without
 * credentials; a registry that wants them takes `auth: 'basic' | 'bearer'` and the `secretArn` that holds them.
 * The cluster is the default config's: `-c mskClusterArn=...` or BRIDGE_MSK_CLUSTER_ARN.
 */
const PLACEHOLDER_REGISTRY_URL = 'https://schema-registry.example.com/apis/ccompat/v7';

export default defineBridgeConfig((context) => ({
  // Its own name, so its tables, queues and consumer groups never meet the default demo's.
  name: 'kafka-lambda-bridge-registry',
  source: {
    kind: 'msk',
    clusterArn: context.lookup('mskClusterArn', 'BRIDGE_MSK_CLUSTER_ARN') ?? PLACEHOLDER_CLUSTER_ARN,
    auth: 'iam',
  },
  routes: [
    {
      name: 'orders-avro',
      topic: 'orders-avro',
      handler: 'ordersAvro.ts',
      batchSize: 500,
      maxBatchingWindowSeconds: 1,
      startingPosition: 'TRIM_HORIZON',
      retry: { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 5_000 },
      registry: {
        kind: 'confluent',
        url: context.lookup('schemaRegistryUrl', 'BRIDGE_SCHEMA_REGISTRY_URL') ?? PLACEHOLDER_REGISTRY_URL,
        auth: 'none',
      },
      tables: [{ name: 'orders', partitionKey: 'orderId', env: 'ORDERS_TABLE_NAME' }],
    },
  ],
  observability: { namespace: 'KafkaLambdaBridge' },
}));
