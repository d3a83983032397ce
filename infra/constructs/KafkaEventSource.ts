import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { esmRetryLimits } from '../config/esmRetries.ts';
import { type KafkaSource, MSK_CLUSTER_ARN, type RouteConfig, type SchemaRegistry } from '../config/schema.ts';

/** The MSK IAM-auth resource ARNs derived from a cluster ARN. */
export type MskArns = {
  readonly cluster: string;
  topic(name: string): string;
  group(id: string): string;
};

export const mskArns = (clusterArn: string): MskArns => {
  const match = MSK_CLUSTER_ARN.exec(clusterArn);
  if (!match) throw new Error(`not an MSK cluster ARN: ${clusterArn}`);
  const [, partition, region, account, name, uuid] = match;
  const arn = (kind: string, rest: string) =>
    `arn:${partition}:kafka:${region}:${account}:${kind}/${name}/${uuid}/${rest}`;
  return { cluster: clusterArn, topic: (topic) => arn('topic', topic), group: (group) => arn('group', group) };
};

/**
 * The elastic network interface actions an event source mapping needs to reach brokers in a VPC.
 * Describe* and CreateNetworkInterface do not support resource-level permissions, hence `*`.
 */
export const ENI_ACTIONS = [
  'ec2:CreateNetworkInterface',
  'ec2:DescribeNetworkInterfaces',
  'ec2:DescribeVpcs',
  'ec2:DeleteNetworkInterface',
  'ec2:DescribeSubnets',
  'ec2:DescribeSecurityGroups',
] as const;

/** Data-plane actions of an MSK IAM-auth consumer, by the resource they apply to. */
export const MSK_IAM_ACTIONS = {
  cluster: ['kafka-cluster:Connect', 'kafka-cluster:DescribeClusterDynamicConfiguration'],
  topic: ['kafka-cluster:DescribeTopic', 'kafka-cluster:ReadData'],
  group: ['kafka-cluster:DescribeGroup', 'kafka-cluster:AlterGroup'],
  /** For a Kafka-topic on-failure destination: Lambda produces to it. */
  dlqTopic: ['kafka-cluster:DescribeTopic', 'kafka-cluster:WriteData'],
} as const;

const AUTH_TYPE = {
  'sasl-scram-512': lambda.SourceAccessConfigurationType.SASL_SCRAM_512_AUTH,
  'sasl-scram-256': lambda.SourceAccessConfigurationType.SASL_SCRAM_256_AUTH,
  mtls: lambda.SourceAccessConfigurationType.CLIENT_CERTIFICATE_TLS_AUTH,
  basic: lambda.SourceAccessConfigurationType.BASIC_AUTH,
} as const;

const GLUE_REGISTRY_ARN = /^arn:(aws[a-z-]*):glue:([a-z0-9-]+):(\d{12}):registry\/(.+)$/;

/** A secret under a customer managed key is decrypted through Secrets Manager, and only that way. */
export const grantDecryptViaSecretsManager = (grantee: lambda.IFunction, keyArn: string): void => {
  iam.Grant.addToPrincipal({
    grantee,
    actions: ['kms:Decrypt'],
    resourceArns: [keyArn],
    conditions: {
      StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(grantee).region}.amazonaws.com` },
    },
  });
};

/**
 * A schema registry for the ESM, granting exactly what Lambda documents: glue:GetRegistry and
 * glue:GetSchemaVersion for Glue (in the registry's own region and account, which the L2
 * `GlueSchemaRegistry` assumes to be the stack's), or secretsmanager:GetSecretValue on the
 * Confluent credentials (the L2 `ConfluentSchemaRegistry` grants DescribeSecret too).
 */
class SchemaRegistryBinding implements lambda.ISchemaRegistry {
  readonly #registry: SchemaRegistry;

  constructor(registry: SchemaRegistry) {
    this.#registry = registry;
  }

  bind(_target: lambda.IEventSourceMapping, targetHandler: lambda.IFunction): lambda.KafkaSchemaRegistryConfig {
    const registry = this.#registry;
    const common = {
      eventRecordFormat: lambda.EventRecordFormat.of(registry.eventRecordFormat),
      schemaValidationConfigs: registry.validate.map((attribute) => ({
        attribute: lambda.KafkaSchemaValidationAttribute.of(attribute),
      })),
    };
    if (registry.kind === 'glue') {
      const match = GLUE_REGISTRY_ARN.exec(registry.registryArn);
      if (!match) throw new Error(`not a Glue registry ARN: ${registry.registryArn}`);
      const [, partition, region, account, name] = match;
      iam.Grant.addToPrincipal({
        grantee: targetHandler,
        actions: ['glue:GetRegistry'],
        resourceArns: [registry.registryArn],
      });
      iam.Grant.addToPrincipal({
        grantee: targetHandler,
        actions: ['glue:GetSchemaVersion'],
        resourceArns: [registry.registryArn, `arn:${partition}:glue:${region}:${account}:schema/${name}/*`],
      });
      return { ...common, schemaRegistryUri: registry.registryArn };
    }
    iam.Grant.addToPrincipal({
      grantee: targetHandler,
      actions: ['secretsmanager:GetSecretValue'],
      resourceArns: [registry.secretArn],
    });
    if (registry.secretKmsKeyArn) grantDecryptViaSecretsManager(targetHandler, registry.secretKmsKeyArn);
    return {
      ...common,
      schemaRegistryUri: registry.uri,
      accessConfigs: [
        {
          type:
            registry.auth === 'mtls'
              ? lambda.KafkaSchemaRegistryAccessConfigType.CLIENT_CERTIFICATE_TLS_AUTH
              : lambda.KafkaSchemaRegistryAccessConfigType.BASIC_AUTH,
          uri: registry.secretArn,
        },
      ],
    };
  }
}

export interface KafkaEventSourceProps {
  readonly target: lambda.IFunction;
  readonly source: KafkaSource;
  readonly route: RouteConfig;
  readonly consumerGroupId: string;
  /** Where the ESM records invocation-level failures. */
  readonly onFailure?: lambda.IEventSourceDlq;
}

/**
 * The route's event source mapping, built from config for MSK (IAM, SASL/SCRAM-512, mTLS) and
 * self-managed Kafka (SASL/SCRAM, SASL/PLAIN, mTLS, in a VPC or not). It uses the
 * `EventSourceMapping` L2 directly, because `ManagedKafkaEventSource` cannot express MSK mTLS and
 * attaches the AWS managed `AWSLambdaMSKExecutionRole` policy; the permissions below are that
 * policy's, scoped to this cluster, plus the data-plane and secret access the auth mode needs.
 */
export class KafkaEventSource extends Construct {
  readonly mapping: lambda.EventSourceMapping;

  constructor(scope: Construct, id: string, props: KafkaEventSourceProps) {
    super(scope, id);
    const { target, source, route } = props;
    const es = route.eventSource;
    const provisioned = route.mode === 'on-demand' ? undefined : route.mode.provisioned;

    this.mapping = new lambda.EventSourceMapping(this, 'Mapping', {
      target,
      ...(source.kind === 'msk'
        ? { eventSourceArn: source.clusterArn }
        : { kafkaBootstrapServers: [...source.bootstrapServers] }),
      kafkaTopic: route.topic,
      kafkaConsumerGroupId: props.consumerGroupId,
      sourceAccessConfigurations: this.#accessConfigurations(source),
      batchSize: route.batchSize,
      ...(route.maxBatchingWindowSeconds !== undefined
        ? { maxBatchingWindow: Duration.seconds(route.maxBatchingWindowSeconds) }
        : {}),
      startingPosition: lambda.StartingPosition[route.startingPosition],
      startingPositionTimestamp: route.startingPositionTimestamp,
      filters: es.filters.length > 0 ? es.filters.map((f) => lambda.FilterCriteria.filter(f)) : undefined,
      onFailure: props.onFailure,
      supportS3OnFailureDestination: true,
      provisionedPollerConfig: provisioned && {
        minimumPollers: provisioned.minPollers,
        maximumPollers: provisioned.maxPollers,
        pollerGroupName: provisioned.pollerGroupName,
      },
      reportBatchItemFailures: es.reportBatchItemFailures || undefined,
      bisectBatchOnError: es.bisectOnError,
      schemaRegistryConfig: es.schemaRegistry && this.#schemaRegistry(es.schemaRegistry),
      // EventCount and KafkaMetrics for the dashboard; ErrorCount is the only signal of a mapping that cannot poll.
      metricsConfig: es.metrics
        ? { metrics: [lambda.MetricType.EVENT_COUNT, lambda.MetricType.ERROR_COUNT, lambda.MetricType.KAFKA_METRICS] }
        : undefined,
    });
    this.#setRetryLimits(route);
    this.#grantSourceAccess(props);
  }

  /**
   * Provisioned mode always states both limits, so an unset value never turns into Lambda's cap of 10 retries. An
   * on-demand mapping has no retry limits; the config refuses a destination there unless the route accepts skipped
   * batches (rule esm-retries-outlast-runtime, which checks the pair in both modes). The L2 cannot express a record
   * age of -1.
   */
  #setRetryLimits(route: RouteConfig): void {
    if (route.mode === 'on-demand') return;
    const limits = esmRetryLimits(route);
    const cfn = this.mapping.node.defaultChild as lambda.CfnEventSourceMapping;
    cfn.maximumRetryAttempts = limits.retryAttempts;
    cfn.maximumRecordAgeInSeconds = limits.maxRecordAgeSeconds;
  }

  #accessConfigurations(source: KafkaSource): lambda.SourceAccessConfiguration[] | undefined {
    const configs: lambda.SourceAccessConfiguration[] = [];
    if (source.auth !== 'iam' && source.auth !== 'none' && source.secretArn) {
      configs.push({ type: AUTH_TYPE[source.auth], uri: source.secretArn });
    }
    if (source.kind === 'self-managed') {
      if (source.rootCaSecretArn) {
        configs.push({
          type: lambda.SourceAccessConfigurationType.SERVER_ROOT_CA_CERTIFICATE,
          uri: source.rootCaSecretArn,
        });
      }
      for (const subnet of source.vpc?.subnetIds ?? []) {
        configs.push({ type: lambda.SourceAccessConfigurationType.VPC_SUBNET, uri: `subnet:${subnet}` });
      }
      for (const group of source.vpc?.securityGroupIds ?? []) {
        configs.push({ type: lambda.SourceAccessConfigurationType.VPC_SECURITY_GROUP, uri: `security_group:${group}` });
      }
    }
    return configs.length > 0 ? configs : undefined;
  }

  #schemaRegistry(registry: SchemaRegistry): lambda.ISchemaRegistry {
    return new SchemaRegistryBinding(registry);
  }

  #grantSourceAccess({ target, source, route, consumerGroupId }: KafkaEventSourceProps): void {
    const grant = (actions: readonly string[], resourceArns: string[]) =>
      iam.Grant.addToPrincipal({ grantee: target, actions: [...actions], resourceArns });

    const secrets = [source.secretArn, source.kind === 'self-managed' ? source.rootCaSecretArn : undefined].filter(
      (arn): arn is string => arn !== undefined,
    );
    if (secrets.length > 0) grant(['secretsmanager:GetSecretValue'], secrets);
    if (source.secretKmsKeyArn) grantDecryptViaSecretsManager(target, source.secretKmsKeyArn);

    if (source.kind === 'self-managed') {
      if (source.vpc) grant(ENI_ACTIONS, ['*']);
      return;
    }
    grant(['kafka:DescribeClusterV2', 'kafka:GetBootstrapBrokers'], [source.clusterArn]);
    grant(ENI_ACTIONS, ['*']);
    if (source.auth !== 'iam') return;
    const arns = mskArns(source.clusterArn);
    grant(MSK_IAM_ACTIONS.cluster, [arns.cluster]);
    grant(MSK_IAM_ACTIONS.topic, [arns.topic(route.topic)]);
    grant(MSK_IAM_ACTIONS.group, [arns.group(consumerGroupId)]);
    const onFailure = route.eventSource.onFailure;
    if (typeof onFailure === 'object') grant(MSK_IAM_ACTIONS.dlqTopic, [arns.topic(onFailure.kafkaTopic)]);
  }
}
