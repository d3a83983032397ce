import type { BridgeConfigInput } from '../../infra/config/schema.ts';
import { baseConfig, SECRET_ARN, SECRET_KEY_ARN, withOrders } from './helpers.ts';

export const ROOT_CA_ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:kafka-root-ca-XyZ123';
export const PROVISIONED = { provisioned: { minPollers: 2, maxPollers: 10 } } as const;

/** The configs beyond the default one that must synthesize cleanly (cdk-nag, cfn-lint). */
export const VARIANTS = {
  /** Self-managed Kafka with SASL/SCRAM-512 in a VPC, with a private root CA. */
  selfManagedScram512Vpc: {
    ...baseConfig(),
    name: 'self-managed',
    source: {
      kind: 'self-managed',
      bootstrapServers: ['b-1.kafka.internal:9096', 'b-2.kafka.internal:9096'],
      auth: 'sasl-scram-512',
      secretArn: SECRET_ARN,
      rootCaSecretArn: ROOT_CA_ARN,
      vpc: { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0aaa', 'subnet-0bbb'], securityGroupIds: ['sg-0ccc'] },
    },
  },
  /** A provisioned-mode route with partial batch responses and ESM retry settings. */
  provisionedRetries: withOrders({
    mode: PROVISIONED,
    batchSize: 1000,
    maxBatchingWindowSeconds: 5,
    eventSource: {
      reportBatchItemFailures: true,
      onFailure: 'sqs',
      retryAttempts: 1000,
      maxRecordAgeSeconds: 7200,
      bisectOnError: true,
      // A destination and finite limits let the ESM skip batches the runtime still holds: an explicit opt-in.
      acceptSkippedBatches: true,
    },
    retry: { maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 1000, maxRecordAgeSeconds: 3600 },
    partitionConcurrency: 8,
  }),
  /** MSK with mTLS, which the ManagedKafkaEventSource L2 cannot express. */
  mskMtls: {
    ...baseConfig(),
    name: 'msk-mtls',
    source: { ...baseConfig().source, auth: 'mtls', secretArn: SECRET_ARN },
  },
  /** MSK with SASL/SCRAM-512. */
  mskScram512: {
    ...baseConfig(),
    name: 'msk-scram',
    source: { ...baseConfig().source, auth: 'sasl-scram-512', secretArn: SECRET_ARN, secretKmsKeyArn: SECRET_KEY_ARN },
  },
  /** The other on-failure destinations, filters, a timestamp start and a schema registry. */
  onFailureSns: withOrders({
    eventSource: { onFailure: 'sns', acceptSkippedBatches: true, filters: [{ value: { status: ['PAID'] } }] },
  }),
  onFailureS3: withOrders({
    startingPosition: 'AT_TIMESTAMP',
    startingPositionTimestamp: 1_700_000_000,
    eventSource: { onFailure: 's3', acceptSkippedBatches: true },
  }),
  onFailureKafkaTopic: withOrders({
    mode: PROVISIONED,
    eventSource: {
      onFailure: { kafkaTopic: 'orders-dlt' },
      retryAttempts: 10_000,
      acceptSkippedBatches: true,
      schemaRegistry: {
        kind: 'glue',
        registryArn: 'arn:aws:glue:eu-west-1:111122223333:registry/events',
        validate: ['VALUE'],
      },
    },
  }),
  /** A handler that decodes with a Confluent-compatible registry (basic auth under a customer managed key)… */
  runtimeConfluentRegistry: withOrders({
    registry: {
      kind: 'confluent',
      url: 'https://registry.example.com/apis/ccompat/v7',
      auth: 'basic',
      secretArn: SECRET_ARN,
      secretKmsKeyArn: SECRET_KEY_ARN,
    },
  }),
  /** …and one that decodes with AWS Glue Schema Registry. */
  runtimeGlueRegistry: withOrders({
    registry: { kind: 'glue', registryArn: 'arn:aws:glue:eu-west-1:111122223333:registry/events' },
  }),
  /** A Confluent registry whose credentials are under a customer managed key. */
  confluentRegistry: withOrders({
    mode: PROVISIONED,
    eventSource: {
      schemaRegistry: {
        kind: 'confluent',
        uri: 'https://registry.example.com',
        secretArn: SECRET_ARN,
        secretKmsKeyArn: SECRET_KEY_ARN,
      },
    },
  }),
} satisfies Record<string, BridgeConfigInput>;
