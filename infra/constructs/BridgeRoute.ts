import { Duration } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { KafkaDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { resolveHandlerEntry, routeEnvironment } from '../config/resources.ts';
import { type BridgeConfig, consumerGroupIdOf, type RouteConfig, type RuntimeRegistry } from '../config/schema.ts';
import { BridgeFunction } from './BridgeFunction.ts';
import { BridgeQueue, SendOnlySqsDestination } from './BridgeQueue.ts';
import { IDEMPOTENCY_ACTIONS } from './BridgeTable.ts';
import { grantDecryptViaSecretsManager, KafkaEventSource } from './KafkaEventSource.ts';
import { RetryQueue } from './RetryQueue.ts';
import { removalPolicyFor } from './retention.ts';

export interface BridgeRouteProps {
  readonly config: BridgeConfig;
  readonly route: RouteConfig;
  /** The deployment stage; it is part of the default consumer group id. */
  readonly stage: string;
  readonly idempotencyTable: dynamodb.ITable;
  /** Side tables by their config name; the route's `tables` must all be here. */
  readonly tables: ReadonlyMap<string, dynamodb.ITable>;
  /** Keep queues, buckets and logs when the stack goes. */
  readonly retain: boolean;
  readonly logRetention: logs.RetentionDays;
  /** Deploy the route without its event source mapping (see infra/replacements.ts). */
  readonly detached?: boolean;
}

/**
 * Read access to the route's runtime registry: its credentials secret (and key, only through Secrets Manager) for a
 * Confluent-compatible one; `glue:GetSchemaVersion` on the registry and its schemas for Glue, which is all a reader
 * of a schema version id needs.
 */
const grantRegistryRead = (fn: lambda.IFunction, registry: RuntimeRegistry): void => {
  if (registry.kind === 'glue') {
    iam.Grant.addToPrincipal({
      grantee: fn,
      actions: ['glue:GetSchemaVersion'],
      resourceArns: [registry.registryArn, `${registry.registryArn.replace(':registry/', ':schema/')}/*`],
    });
    return;
  }
  if (!registry.secretArn) return;
  iam.Grant.addToPrincipal({
    grantee: fn,
    actions: ['secretsmanager:GetSecretValue'],
    resourceArns: [registry.secretArn],
  });
  if (registry.secretKmsKeyArn) grantDecryptViaSecretsManager(fn, registry.secretKmsKeyArn);
};

/** An S3 on-failure destination granting only what Lambda documents: PutObject and ListBucket. */
class BucketDestination implements lambda.IEventSourceDlq {
  readonly #bucket: s3.IBucket;
  constructor(bucket: s3.IBucket) {
    this.#bucket = bucket;
  }
  bind(_target: lambda.IEventSourceMapping, targetHandler: lambda.IFunction): lambda.DlqDestinationConfig {
    iam.Grant.addToPrincipal({
      grantee: targetHandler,
      actions: ['s3:PutObject'],
      resourceArns: [this.#bucket.arnForObjects('*')],
    });
    iam.Grant.addToPrincipal({
      grantee: targetHandler,
      actions: ['s3:ListBucket'],
      resourceArns: [this.#bucket.bucketArn],
    });
    return { destination: this.#bucket.bucketArn };
  }
}

/** SNS destination; `grantPublish` also grants the topic key. */
class TopicDestination implements lambda.IEventSourceDlq {
  readonly #topic: sns.ITopic;
  constructor(topic: sns.ITopic) {
    this.#topic = topic;
  }
  bind(_target: lambda.IEventSourceMapping, targetHandler: lambda.IFunction): lambda.DlqDestinationConfig {
    this.#topic.grantPublish(targetHandler);
    return { destination: this.#topic.topicArn };
  }
}

/**
 * One route: its function (with the DESIGN §5 environment), its Kafka event source mapping,
 * its dead-letter queue (written by the runtime), when the route asks for one, the ESM's
 * on-failure destination for batches the mapping gives up on, and, when it parks records
 * (`retry.park`), its retry queue with the SQS event source mapping that takes them back.
 */
export class BridgeRoute extends Construct {
  readonly route: RouteConfig;
  readonly function: BridgeFunction;
  readonly deadLetterQueue: sqs.Queue;
  /** Set when the on-failure destination is an SQS queue. */
  readonly failureQueue?: sqs.Queue;
  /** Absent while the route is detached. */
  readonly eventSource?: KafkaEventSource;
  /** Set when the route parks records (`retry.park`); its SQS mapping stays while the Kafka one is detached. */
  readonly retryQueue?: RetryQueue;
  /** The side tables this route writes, by config name. */
  readonly tables: ReadonlyMap<string, dynamodb.ITable>;

  constructor(scope: Construct, id: string, props: BridgeRouteProps) {
    super(scope, id);
    const { config, route } = props;
    this.route = route;
    const removalPolicy = removalPolicyFor(props.retain);

    this.deadLetterQueue = new BridgeQueue(this, 'DeadLetterQueue', {
      maxMessageSizeBytes: route.deadLetter.maxMessageBytes,
      retain: props.retain,
    }).queue;

    const park = route.retry.park;
    if (park) this.retryQueue = new RetryQueue(this, 'RetryQueue', { route, park, retain: props.retain });

    const tables = new Map<string, dynamodb.ITable>();
    for (const table of route.tables) {
      const found = props.tables.get(table.name);
      if (!found) throw new Error(`route "${route.name}": table "${table.name}" was not created`);
      tables.set(table.name, found);
    }
    this.tables = tables;

    this.function = new BridgeFunction(this, 'Function', {
      entry: resolveHandlerEntry(route),
      description: `kafka-lambda-bridge route ${route.name} (topic ${route.topic})`,
      memorySize: route.memoryMb,
      timeout: Duration.seconds(route.timeoutSeconds),
      logRetention: props.logRetention,
      removalPolicy,
      environment: routeEnvironment(config, route, {
        idempotencyTableName: props.idempotencyTable.tableName,
        deadLetterQueueUrl: this.deadLetterQueue.queueUrl,
        ...(this.retryQueue && { retryQueueUrl: this.retryQueue.queue.queueUrl }),
        tableNames: Object.fromEntries([...tables].map(([name, table]) => [name, table.tableName])),
      }),
    });

    // Least privilege, all by grants: the runtime's idempotency actions on the dedupe table,
    // SendMessage on this route's own DLQ, and read/write data on the route's own tables
    // (which also covers TransactWriteItems: Put/Update/ConditionCheck per item).
    props.idempotencyTable.grant(this.function, ...IDEMPOTENCY_ACTIONS);
    this.deadLetterQueue.grant(this.function, 'sqs:SendMessage');
    for (const table of tables.values()) table.grantReadWriteData(this.function);
    if (route.registry) grantRegistryRead(this.function, route.registry);
    // SendMessage on its own retry queue, and what its SQS event source mapping needs to consume it.
    this.retryQueue?.attach(this.function);

    const { destination: onFailure, queue: failureQueue } = this.#onFailureDestination(route, props.retain);
    this.failureQueue = failureQueue;
    if (props.detached) return;
    this.eventSource = new KafkaEventSource(this, 'EventSource', {
      target: this.function,
      source: config.source,
      route,
      consumerGroupId: consumerGroupIdOf(config, route, props.stage),
      ...(onFailure && { onFailure }),
    });
  }

  #onFailureDestination(
    route: RouteConfig,
    retain: boolean,
  ): { destination?: lambda.IEventSourceDlq; queue?: sqs.Queue } {
    const onFailure = route.eventSource.onFailure;
    if (onFailure === 'none') return {};
    if (typeof onFailure === 'object') return { destination: new KafkaDlq(onFailure.kafkaTopic) };
    if (onFailure === 'sns') {
      const key = new kms.Key(this, 'FailedInvocationsKey', {
        enableKeyRotation: true,
        description: `Encrypts the on-failure topic of route ${route.name}`,
        removalPolicy: removalPolicyFor(retain),
      });
      const topic = new sns.Topic(this, 'FailedInvocations', { masterKey: key, enforceSSL: true });
      return { destination: new TopicDestination(topic) };
    }
    if (onFailure === 's3') {
      const bucket = new s3.Bucket(this, 'FailedInvocations', {
        encryption: s3.BucketEncryption.S3_MANAGED,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        enforceSSL: true,
        removalPolicy: removalPolicyFor(retain),
        autoDeleteObjects: false,
      });
      return { destination: new BucketDestination(bucket) };
    }
    const queue = new BridgeQueue(this, 'FailedInvocations', { retain }).queue;
    return { destination: new SendOnlySqsDestination(queue), queue };
  }
}
