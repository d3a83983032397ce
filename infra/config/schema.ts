import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import {
  BreakerSettings,
  DeadLetterSettings,
  IdempotencySettings,
  RetrySettings,
  ROUTE_SETTINGS_ENV,
} from '../../functions/runtime/settings.ts';
import { DESTINATION_RETRY_CAP, esmRetryLimits } from './esmRetries.ts';

/**
 * The bridge config (DESIGN §3): one zod schema for the CDK app, the local bridge and the scripts.
 *
 * Field schemas check shapes and single-field limits. `BridgeConfig` then checks the rules that
 * span fields (provisioned-only ESM options, auth/secret pairs, unique names), each reported as
 * `route "<name>": <what> [<rule id>]` at the offending path, so `cdk synth` rejects what AWS
 * would otherwise reject at deploy time.
 */

/** Where route handlers live; a route's `handler` is relative to it. */
export const HANDLERS_DIR = fileURLToPath(new URL('../../functions/handlers/', import.meta.url));

/** Rule ids, quoted in error messages and in the tests' table of invalid configs. */
export const Rule = {
  provisionedOnly: 'provisioned-mode-only',
  batchSize: 'batch-size-max-10000',
  batchingWindow: 'batching-window-max-300s',
  topicName: 'kafka-topic-name',
  consumerGroupId: 'consumer-group-id',
  mskScram256: 'msk-no-scram-256',
  mskAuth: 'msk-auth',
  mskIamOnly: 'iam-auth-msk-only',
  authSecret: 'auth-needs-secret',
  selfManagedVpc: 'self-managed-vpc-subnets-and-security-groups',
  selfManagedPublicAuth: 'self-managed-public-needs-auth',
  uniqueRouteName: 'unique-route-name',
  uniqueTopic: 'unique-topic',
  uniqueConsumerGroup: 'unique-consumer-group',
  uniqueTable: 'unique-table',
  pollers: 'pollers-min-le-max',
  kafkaDlqTopic: 'kafka-dlq-not-source-topic',
  startingTimestamp: 'starting-position-timestamp',
  handlerExists: 'handler-exists',
  handlerPath: 'handler-in-functions-handlers',
  tableEnv: 'table-env',
  mskScramKey: 'msk-scram-secret-kms-key',
  esmRetries: 'esm-retries-outlast-runtime',
  registrySecret: 'registry-auth-needs-secret',
  parkWithinTtl: 'park-within-idempotency-ttl',
} as const;
export type Rule = (typeof Rule)[keyof typeof Rule];

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HANDLERS_FROM_ROOT = 'functions/handlers/';

/**
 * A route's `handler` as users write it, under functions/handlers/ ("orders.ts") or from the project root
 * ("functions/handlers/orders.ts"), in the one form the CDK, the local bridge and the scripts see: the former.
 */
export const normaliseHandler = (handler: string): string => {
  const path = handler.replaceAll('\\', '/').replace(/^(\.\/)+/, '');
  return path.startsWith(HANDLERS_FROM_ROOT) ? path.slice(HANDLERS_FROM_ROOT.length) : path;
};

/** Why a normalised `handler` is not a module under functions/handlers/, if it is not. */
const handlerProblem = (handler: string): { rule: Rule; message: string } | undefined => {
  const file = resolve(HANDLERS_DIR, handler);
  const outside = {
    rule: Rule.handlerPath,
    message: `handler "${handler}" is outside functions/handlers/; give the module's path there ("orders.ts") or from the project root ("functions/handlers/orders.ts")`,
  };
  if (!file.startsWith(HANDLERS_DIR)) return outside;
  if (existsSync(file)) return undefined;
  // "functions/runtime/x.ts" and the like: a real file, but not a handler module.
  if (existsSync(resolve(PROJECT_ROOT, handler))) return outside;
  return {
    rule: Rule.handlerExists,
    message: `handler "${handler}" not found: there is no functions/handlers/${handler}`,
  };
};

// ---------------------------------------------------------------------------------------------
// Names Kafka and Lambda accept

const TOPIC_CHARS = /^[a-zA-Z0-9._-]+$/;
/** Kafka: [a-zA-Z0-9._-], 1..249 chars, not "." or ".."; the Lambda ESM API also refuses a leading ".". */
export const kafkaTopicProblem = (topic: string): string | undefined => {
  if (topic.length === 0) return 'must not be empty';
  if (topic.length > 249) return `is ${topic.length} characters; Kafka allows at most 249`;
  if (!TOPIC_CHARS.test(topic)) return 'may only contain ASCII letters, digits, ".", "_" and "-"';
  if (topic === '.' || topic === '..') return 'must not be "." or ".."';
  if (topic.startsWith('.')) return 'must not start with "." (the Lambda event source mapping API refuses it)';
  return undefined;
};

const GROUP_CHARS = /^[a-zA-Z0-9\-/*:_+=.@]+$/;
/** Lambda ESM: consumer group ids are 1..200 chars of [a-zA-Z0-9-/*:_+=.@]. */
export const consumerGroupIdProblem = (group: string): string | undefined => {
  if (group.length === 0 || group.length > 200) return `must be 1..200 characters (got ${group.length})`;
  if (!GROUP_CHARS.test(group)) return 'may only contain ASCII letters, digits and - / * : _ + = . @';
  return undefined;
};

/** Checked with the route's name in `BridgeConfig` (rule kafka-topic-name). */
const KafkaTopic = z.string();
/** Checked with the route's name in `BridgeConfig` (rule consumer-group-id). */
const ConsumerGroupId = z.string();

const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/;
const SecretArn = z.string().regex(SECRET_ARN, 'must be a Secrets Manager secret ARN');
const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/;
/** The customer managed key a secret is encrypted with; the function's role is granted kms:Decrypt through Secrets Manager. */
const SecretKmsKeyArn = z
  .string()
  .regex(KMS_KEY_ARN, 'must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)');

/** arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid> */
export const MSK_CLUSTER_ARN =
  /^arn:(aws[a-z-]*):kafka:([a-z0-9-]+):(\d{12}):cluster\/([A-Za-z0-9-]+)\/([A-Za-z0-9-]+)$/;

// ---------------------------------------------------------------------------------------------
// Source

/** `sasl-scram-256` exists for self-managed clusters only; MSK refuses it (checked below). */
export const KafkaAuth = z.enum(['iam', 'sasl-scram-512', 'sasl-scram-256', 'mtls', 'basic', 'none']);
export type KafkaAuth = z.infer<typeof KafkaAuth>;

export const MskSource = z
  .object({
    kind: z.literal('msk'),
    clusterArn: z
      .string()
      .regex(MSK_CLUSTER_ARN, 'must be an MSK cluster ARN: arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>'),
    auth: KafkaAuth.default('iam'),
    /** SCRAM credentials, or for mTLS the client certificate chain and key. */
    secretArn: SecretArn.optional(),
    /** The customer managed key of `secretArn` (MSK takes SCRAM secrets only under one). */
    secretKmsKeyArn: SecretKmsKeyArn.optional(),
  })
  .strict();
export type MskSource = z.infer<typeof MskSource>;

export const SelfManagedVpc = z
  .object({
    vpcId: z.string().regex(/^vpc-[0-9a-z]+$/, 'must be a VPC id (vpc-...)'),
    subnetIds: z
      .array(z.string().regex(/^subnet-[0-9a-z]+$/, 'must be a subnet id (subnet-...)'))
      .max(16)
      .default([]),
    securityGroupIds: z
      .array(z.string().regex(/^sg-[0-9a-zA-Z]+$/, 'must be a security group id (sg-...)'))
      .max(5)
      .default([]),
  })
  .strict();

export const SelfManagedSource = z
  .object({
    kind: z.literal('self-managed'),
    bootstrapServers: z.array(z.string().regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'must be host:port')).min(1),
    auth: KafkaAuth.default('sasl-scram-512'),
    secretArn: SecretArn.optional(),
    /** The customer managed key of `secretArn` and `rootCaSecretArn`, if they are not under the AWS managed key. */
    secretKmsKeyArn: SecretKmsKeyArn.optional(),
    /** A secret holding the root CA certificate, for brokers whose certificates a private CA signed. */
    rootCaSecretArn: SecretArn.optional(),
    vpc: SelfManagedVpc.optional(),
  })
  .strict();
export type SelfManagedSource = z.infer<typeof SelfManagedSource>;

export const KafkaSource = z.discriminatedUnion('kind', [MskSource, SelfManagedSource]);
export type KafkaSource = z.infer<typeof KafkaSource>;

// ---------------------------------------------------------------------------------------------
// Route

export const ProvisionedMode = z
  .object({
    provisioned: z
      .object({
        minPollers: z.number().int().min(1).max(200).default(1),
        maxPollers: z.number().int().min(1).max(2000).default(200),
        /** ESMs with the same group share event poller units. */
        pollerGroupName: z
          .string()
          .min(1)
          .max(128)
          .regex(/^[a-zA-Z0-9_-]*$/, 'letters, digits, "-" and "_" only, as Lambda requires')
          .optional(),
      })
      .strict(),
  })
  .strict();
export const RouteMode = z.union([z.literal('on-demand'), ProvisionedMode]);
export type RouteMode = z.infer<typeof RouteMode>;

/** `none`: no destination, so the ESM never skips a batch on its own (see `esmRetryLimits`). */
export const OnFailure = z.union([z.enum(['none', 'sqs', 'sns', 's3']), z.object({ kafkaTopic: KafkaTopic }).strict()]);
export type OnFailure = z.infer<typeof OnFailure>;

const SchemaValidation = z
  .array(z.enum(['KEY', 'VALUE']))
  .min(1)
  .default(['VALUE']);
export const SchemaRegistry = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('glue'),
      registryArn: z.string().regex(/^arn:aws[a-z-]*:glue:[a-z0-9-]+:\d{12}:registry\/[A-Za-z0-9_$#.-]+$/),
      eventRecordFormat: z.enum(['JSON', 'SOURCE']).default('SOURCE'),
      validate: SchemaValidation,
    })
    .strict(),
  z
    .object({
      kind: z.literal('confluent'),
      uri: z.url(),
      eventRecordFormat: z.enum(['JSON', 'SOURCE']).default('SOURCE'),
      validate: SchemaValidation,
      auth: z.enum(['basic', 'mtls']).default('basic'),
      secretArn: SecretArn,
      /** The customer managed key of `secretArn`, if it is not under the AWS managed key. */
      secretKmsKeyArn: SecretKmsKeyArn.optional(),
    })
    .strict(),
]);
export type SchemaRegistry = z.infer<typeof SchemaRegistry>;

/**
 * The registry a route's handler decodes framed records with (functions/runtime/registry), as opposed to
 * `eventSource.schemaRegistry`, where the event source mapping decodes them itself (provisioned mode only). The
 * function gets its address in `SCHEMA_REGISTRY_URL` (credentials: `SCHEMA_REGISTRY_SECRET_ARN`) or
 * `GLUE_REGISTRY_ARN`, and least-privilege grants to read it.
 */
export const RuntimeRegistry = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('confluent'),
      /** The Confluent-compatible REST API (Confluent, or Apicurio's `/apis/ccompat/v7`). */
      url: z.url({ protocol: /^https?$/ }),
      /** `basic`: the secret holds `{"username","password"}`; `bearer`: `{"token"}`. */
      auth: z.enum(['none', 'basic', 'bearer']).default('none'),
      secretArn: SecretArn.optional(),
      /** The customer managed key of `secretArn`, if it is not under the AWS managed key. */
      secretKmsKeyArn: SecretKmsKeyArn.optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('glue'),
      registryArn: z.string().regex(/^arn:aws[a-z-]*:glue:[a-z0-9-]+:\d{12}:registry\/[A-Za-z0-9_$#.-]+$/),
    })
    .strict(),
]);
export type RuntimeRegistry = z.infer<typeof RuntimeRegistry>;

/** The event source mapping's own options. The retry family needs provisioned mode (checked below). */
export const EventSourceOptions = z
  .object({
    /** Lets the function return `batchItemFailures`; the runtime then reports per-record failures. */
    reportBatchItemFailures: z.boolean().default(false),
    /** ESM retries of a failed batch: -1 (until the record expires; the default) or 0..10000. */
    retryAttempts: z.number().int().min(-1).max(10_000).optional(),
    /** -1 (no limit; the default) or 60..604800 seconds. */
    maxRecordAgeSeconds: z
      .number()
      .int()
      .refine((s) => s === -1 || (s >= 60 && s <= 604_800), 'must be -1 or 60..604800 seconds')
      .optional(),
    bisectOnError: z.boolean().optional(),
    /**
     * The mapping's own metrics (`MetricsConfig`: EventCount, ErrorCount, KafkaMetrics), and the alarms and graphs built
     * on them. On by default in both modes: the Lambda docs limit only the poller metrics to provisioned mode
     * (monitoring-metrics-types), though the CDK's README says MetricsConfig needs it. `false` is the way out if AWS
     * refuses it on an on-demand mapping; `alarms.minInvocations` then stands in for the error alarm.
     */
    metrics: z.boolean().default(true),
    /** Lambda event filter patterns, for example `{ value: { status: ['PAID'] } }`. */
    filters: z
      .array(z.record(z.string(), z.unknown()))
      .max(10, 'at most 10 filters, even with a raised quota')
      .default([])
      .superRefine((filters, ctx) => {
        filters.forEach((f, i) => {
          if (JSON.stringify(f).length > 4096)
            ctx.addIssue({ code: 'custom', path: [i], message: 'a filter pattern is at most 4096 characters' });
        });
      }),
    /**
     * Filters per event source mapping the account's quota allows: 5 by default, up to 10 once AWS raised it
     * (invocation-eventfiltering). More than this fails at deploy.
     */
    filterQuota: z.number().int().min(5).max(10).default(5),
    /**
     * Where the ESM sends the metadata of a batch it gives up on. `none` (the default): it never gives up, and the
     * runtime's own policy dead-letters records with their bytes. A destination makes Lambda cap infinite retries at 10.
     */
    onFailure: OnFailure.default('none'),
    /**
     * Accept that the ESM skips batches on its own. Without it, the config refuses an on-failure destination (in any
     * mode) and a finite `retryAttempts` or `maxRecordAgeSeconds` (rule esm-retries-outlast-runtime): the runtime
     * dead-letters a record only once it had `retry.maxAttempts` attempts AND is `retry.maxRecordAgeSeconds` old, and
     * an invocation that an open breaker or a DynamoDB outage fails counts no attempt at all, so any finite ESM limit
     * (and -1 with a destination, which Lambda caps at 10 retries) can skip a batch before the runtime would have
     * dead-lettered its records. The records of a skipped batch are committed past and never reach the DLQ: an SQS or
     * SNS destination gets their metadata only (topic, partition, offsets), an S3 or Kafka-topic one a copy in
     * Lambda's own format, and `replay` cannot recover them; only re-reading them from Kafka, while the topic still
     * holds them, can.
     */
    acceptSkippedBatches: z.boolean().optional(),
    schemaRegistry: SchemaRegistry.optional(),
  })
  .strict()
  .superRefine((options, ctx) => {
    if (options.filters.length > options.filterQuota)
      ctx.addIssue({
        code: 'custom',
        path: ['filters'],
        message: `${options.filters.length} filters; Lambda allows ${options.filterQuota} per event source mapping (5 by default; set eventSource.filterQuota up to 10 once AWS raised the quota)`,
      });
  });
export type EventSourceOptions = z.infer<typeof EventSourceOptions>;

const ENV_NAME = /^[A-Z][A-Z0-9_]*$/;
/** Lambda refuses to set its reserved keys (AWS_REGION, AWS_LAMBDA_*, LAMBDA_TASK_ROOT, …) at deploy time. */
const LAMBDA_RESERVED_ENV = /^(AWS_|LAMBDA_)/;
/** Environment variables the bridge sets itself; a side table may not take one of these names. */
export const RESERVED_ENV = [
  'BRIDGE_ROUTE',
  'IDEMPOTENCY_TABLE_NAME',
  'DLQ_URL',
  'METRICS_NAMESPACE',
  'LOG_LEVEL',
  ROUTE_SETTINGS_ENV,
  'POWERTOOLS_SERVICE_NAME',
  'POWERTOOLS_METRICS_NAMESPACE',
  'NODE_OPTIONS',
  'SCHEMA_REGISTRY_URL',
  'SCHEMA_REGISTRY_SECRET_ARN',
  'GLUE_REGISTRY_ARN',
  'RETRY_QUEUE_URL',
] as const;

/** A route's own DynamoDB table for its side effects (on-demand, PITR, SSE, like the idempotency table). */
export const SideTable = z
  .object({
    /** Logical name, unique in the config; the local tools name the table `${config.name}-${name}`. */
    name: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, 'must be lower-case kebab-case, at most 64 characters'),
    partitionKey: z.string().min(1).max(255),
    sortKey: z.string().min(1).max(255).optional(),
    /** The environment variable that carries the table name to the handler. */
    env: z.string().regex(ENV_NAME, 'must be an UPPER_SNAKE_CASE environment variable name'),
  })
  .strict();
export type SideTable = z.infer<typeof SideTable>;

export const AlarmThresholds = z
  .object({
    /** Lambda `OffsetLag` (MAX) above this many records. */
    offsetLag: z.number().int().min(0).default(1_000),
    /** Function `Errors` (sum per period) above this. */
    errors: z.number().int().min(0).default(0),
    /** Function `Throttles` (sum per period) above this. */
    throttles: z.number().int().min(0).default(0),
    /** `Duration` p99 above this fraction of the timeout. */
    durationP99OfTimeout: z.number().gt(0).max(1).default(0.8),
    /** Age of the oldest dead-letter message above this. */
    dlqOldestMessageSeconds: z.number().int().min(60).default(3_600),
    /** Minutes per evaluation period. */
    periodMinutes: z.number().int().min(1).max(60).default(5),
    /**
     * Invocations a route expects at least, per period. Set, it adds an alarm that treats missing `Invocations` as
     * breaching: a mapping that cannot poll (auth, KMS, network) invokes nothing, and emits nothing else either.
     */
    minInvocations: z.number().int().min(1).optional(),
  })
  .strict();
export type AlarmThresholds = z.infer<typeof AlarmThresholds>;

export const RouteConfig = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'must be lower-case kebab-case, at most 32 characters'),
    topic: KafkaTopic,
    /**
     * A module under functions/handlers/ exporting `handler`: "orders.ts", or "functions/handlers/orders.ts" from the
     * project root. Parsed into the first form; where it points is checked with the route's name below.
     */
    handler: z
      .string()
      .regex(
        /^[A-Za-z0-9_\-/\\.]+\.(ts|mts|js|mjs)$/,
        'must be a .ts/.js module under functions/handlers/: "orders.ts" or "functions/handlers/orders.ts"',
      )
      .transform(normaliseHandler),
    batchSize: z.number().int().min(1).default(100),
    /** Whole seconds, 0..300; unset keeps the Kafka ESM default of 500 ms. */
    maxBatchingWindowSeconds: z.number().int().min(0).optional(),
    startingPosition: z.enum(['TRIM_HORIZON', 'LATEST', 'AT_TIMESTAMP']).default('TRIM_HORIZON'),
    /** Unix seconds; only with `AT_TIMESTAMP`. */
    startingPositionTimestamp: z.number().int().min(0).optional(),
    /** Default: `${config.name}-${route.name}`, the same group the local bridge joins. */
    consumerGroupId: ConsumerGroupId.optional(),
    mode: RouteMode.default('on-demand'),
    eventSource: EventSourceOptions.prefault({}),
    retry: RetrySettings.prefault({}),
    idempotency: IdempotencySettings.prefault({}),
    deadLetter: DeadLetterSettings.prefault({}),
    /** The route's circuit breaker: when a sick downstream stops its records being attempted. */
    breaker: BreakerSettings.prefault({}),
    /** Partitions processed at once within one invocation (runtime default 16). */
    partitionConcurrency: z.number().int().min(1).max(1000).optional(),
    /** Payload values are logged only when a route opts in. */
    logPayloads: z.boolean().optional(),
    /** The schema registry the handler decodes framed records with. */
    registry: RuntimeRegistry.optional(),
    /** At most 4: the route's throttle alarm sums these and the idempotency table (alarm math takes 10 metrics). */
    tables: z.array(SideTable).max(4).default([]),
    alarms: AlarmThresholds.prefault({}),
    memoryMb: z.number().int().min(128).max(10_240).default(512),
    /** Kafka event source mappings take functions of at most 14 minutes (with-msk-configure), not Lambda's 15. */
    timeoutSeconds: z
      .number()
      .int()
      .min(1)
      .max(840, 'at most 840 seconds: Kafka event sources only invoke functions with a timeout of 14 minutes or less')
      .default(60),
  })
  .strict();
export type RouteConfig = z.infer<typeof RouteConfig>;
export type RouteConfigInput = z.input<typeof RouteConfig>;

export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

export const Observability = z
  .object({
    namespace: z
      .string()
      .regex(/^[A-Za-z0-9._/#:-][A-Za-z0-9 ._/#:-]{0,254}$/, 'must be a CloudWatch namespace')
      .refine((ns) => !ns.startsWith('AWS/'), 'must not start with "AWS/"')
      .default('KafkaLambdaBridge'),
    alarmEmail: z.email().optional(),
    logLevel: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
    logRetentionDays: z
      .number()
      .int()
      .refine((d) => (LOG_RETENTION_DAYS as readonly number[]).includes(d), {
        message: `must be one of ${LOG_RETENTION_DAYS.join(', ')}`,
      })
      .default(30),
  })
  .strict();
export type Observability = z.infer<typeof Observability>;

const provisioned = (route: RouteConfig) => (route.mode === 'on-demand' ? undefined : route.mode.provisioned);

type Ctx = z.RefinementCtx;
const issue = (ctx: Ctx, path: Array<string | number>, route: string | undefined, rule: Rule, message: string) =>
  ctx.addIssue({ code: 'custom', path, message: `${route ? `route "${route}": ` : ''}${message} [${rule}]` });

const checkSource = (source: KafkaSource, ctx: Ctx): void => {
  const needsSecret =
    source.auth === 'sasl-scram-512' ||
    source.auth === 'sasl-scram-256' ||
    source.auth === 'mtls' ||
    source.auth === 'basic';
  if (needsSecret && !source.secretArn) {
    issue(ctx, ['source', 'secretArn'], undefined, Rule.authSecret, `auth "${source.auth}" needs source.secretArn`);
  }
  if (!needsSecret && source.secretArn) {
    issue(ctx, ['source', 'secretArn'], undefined, Rule.authSecret, `auth "${source.auth}" takes no secretArn`);
  }
  if (source.kind === 'msk') {
    if (source.auth === 'sasl-scram-256') {
      issue(
        ctx,
        ['source', 'auth'],
        undefined,
        Rule.mskScram256,
        'Amazon MSK supports SASL/SCRAM-512 only, not SCRAM-256',
      );
    }
    if (source.auth === 'basic') {
      issue(
        ctx,
        ['source', 'auth'],
        undefined,
        Rule.mskAuth,
        'Lambda accepts only iam, sasl-scram-512, mtls or none for MSK',
      );
    }
    if (source.auth === 'sasl-scram-512' && !source.secretKmsKeyArn) {
      issue(
        ctx,
        ['source', 'secretKmsKeyArn'],
        undefined,
        Rule.mskScramKey,
        'MSK takes SCRAM secrets only under a customer managed KMS key; name it, so the function may decrypt the secret',
      );
    }
    return;
  }
  if (source.auth === 'iam') {
    issue(ctx, ['source', 'auth'], undefined, Rule.mskIamOnly, 'IAM authentication exists only for Amazon MSK');
  }
  if (source.vpc) {
    if (source.vpc.subnetIds.length === 0) {
      issue(
        ctx,
        ['source', 'vpc', 'subnetIds'],
        undefined,
        Rule.selfManagedVpc,
        'a self-managed source with a vpc needs subnetIds',
      );
    }
    if (source.vpc.securityGroupIds.length === 0) {
      issue(
        ctx,
        ['source', 'vpc', 'securityGroupIds'],
        undefined,
        Rule.selfManagedVpc,
        'a self-managed source with a vpc needs securityGroupIds',
      );
    }
  } else if (source.auth === 'none') {
    issue(
      ctx,
      ['source', 'auth'],
      undefined,
      Rule.selfManagedPublicAuth,
      'brokers reached over the internet (no vpc) need authentication with a secret',
    );
  }
};

const checkRoute = (
  config: { name: string; source: KafkaSource },
  route: RouteConfig,
  index: number,
  ctx: Ctx,
): void => {
  const at = (...path: Array<string | number>) => ['routes', index, ...path];
  const name = route.name;
  const topicProblem = kafkaTopicProblem(route.topic);
  if (topicProblem) issue(ctx, at('topic'), name, Rule.topicName, `topic "${route.topic}" ${topicProblem}`);
  const group = consumerGroupIdOf(config, route);
  const groupProblem =
    consumerGroupIdProblem(group) ??
    (config.source.kind === 'msk' && config.source.auth === 'iam' && group.includes('*')
      ? 'must not contain "*" with IAM auth: it would widen the kafka-cluster group permission into a wildcard'
      : undefined);
  if (groupProblem) {
    issue(
      ctx,
      at('consumerGroupId'),
      name,
      Rule.consumerGroupId,
      `consumer group id "${group}" ${groupProblem}${route.consumerGroupId ? '' : ' (derived from config and route names)'}`,
    );
  }
  if (route.batchSize > 10_000) {
    issue(
      ctx,
      at('batchSize'),
      name,
      Rule.batchSize,
      `batchSize ${route.batchSize} is above the Kafka ESM maximum of 10000`,
    );
  }
  if (route.maxBatchingWindowSeconds !== undefined && route.maxBatchingWindowSeconds > 300) {
    issue(
      ctx,
      at('maxBatchingWindowSeconds'),
      name,
      Rule.batchingWindow,
      `maxBatchingWindowSeconds ${route.maxBatchingWindowSeconds} is above the maximum of 300`,
    );
  }
  const hasTimestamp = route.startingPositionTimestamp !== undefined;
  if ((route.startingPosition === 'AT_TIMESTAMP') !== hasTimestamp) {
    issue(
      ctx,
      at(hasTimestamp ? 'startingPositionTimestamp' : 'startingPosition'),
      name,
      Rule.startingTimestamp,
      'startingPositionTimestamp goes with startingPosition AT_TIMESTAMP, and only with it',
    );
  }
  const handler = handlerProblem(route.handler);
  if (handler) issue(ctx, at('handler'), name, handler.rule, handler.message);
  const pollers = provisioned(route);
  if (pollers && pollers.minPollers > pollers.maxPollers) {
    issue(ctx, at('mode', 'provisioned'), name, Rule.pollers, 'minPollers must not exceed maxPollers');
  }
  const es = route.eventSource;
  if (!pollers) {
    const needs = (field: string, what: string) =>
      issue(
        ctx,
        at('eventSource', field),
        name,
        Rule.provisionedOnly,
        `${what} needs mode { provisioned: ... }; Kafka event source mappings accept it only in provisioned mode`,
      );
    if (es.retryAttempts !== undefined) needs('retryAttempts', 'eventSource.retryAttempts');
    if (es.maxRecordAgeSeconds !== undefined) needs('maxRecordAgeSeconds', 'eventSource.maxRecordAgeSeconds');
    if (es.bisectOnError !== undefined) needs('bisectOnError', 'eventSource.bisectOnError');
    if (es.reportBatchItemFailures) needs('reportBatchItemFailures', 'eventSource.reportBatchItemFailures');
    if (typeof es.onFailure === 'object') needs('onFailure', 'a Kafka topic on-failure destination');
    if (es.schemaRegistry) needs('schemaRegistry', 'a schema registry');
  }
  // On-demand: only the destination can let the ESM skip a batch (the retry limits are refused above).
  if (pollers || typeof es.onFailure !== 'object')
    checkEsmRetries(route, (field, message) => issue(ctx, at('eventSource', field), name, Rule.esmRetries, message));
  if (typeof es.onFailure === 'object') {
    const dlqProblem = kafkaTopicProblem(es.onFailure.kafkaTopic);
    if (dlqProblem) {
      issue(
        ctx,
        at('eventSource', 'onFailure', 'kafkaTopic'),
        name,
        Rule.topicName,
        `on-failure topic "${es.onFailure.kafkaTopic}" ${dlqProblem}`,
      );
    }
  }
  if (typeof es.onFailure === 'object' && es.onFailure.kafkaTopic === route.topic) {
    issue(
      ctx,
      at('eventSource', 'onFailure', 'kafkaTopic'),
      name,
      Rule.kafkaDlqTopic,
      'the Kafka on-failure topic must differ from the source topic',
    );
  }
  const registry = route.registry;
  if (registry?.kind === 'confluent' && (registry.auth === 'none') !== (registry.secretArn === undefined)) {
    issue(
      ctx,
      at('registry', registry.auth === 'none' ? 'secretArn' : 'auth'),
      name,
      Rule.registrySecret,
      registry.auth === 'none'
        ? 'registry.secretArn is for auth "basic" or "bearer"; auth "none" reads no secret'
        : `registry auth "${registry.auth}" needs registry.secretArn (the credentials in Secrets Manager)`,
    );
  }
  const park = route.retry.park;
  if (park) {
    const delays = park.delaysSeconds.reduce((sum, delay) => sum + delay, 0);
    const schedule = delays + park.delaysSeconds.length * route.timeoutSeconds;
    if (schedule >= route.idempotency.ttlSeconds) {
      issue(
        ctx,
        at('retry', 'park', 'delaysSeconds'),
        name,
        Rule.parkWithinTtl,
        `retry.park keeps a record parked up to ${schedule} s (its delays, ${delays} s, plus one ${route.timeoutSeconds} s timeout per stage), not less than idempotency.ttlSeconds (${route.idempotency.ttlSeconds}): its PARKED item and (ordering 'key') its key's line, where later records of the key wait with their bytes, could expire meanwhile, and those records would be lost without a trace. Raise idempotency.ttlSeconds above ${schedule}, or shorten the delays`,
      );
    }
  }
  const envs = new Set<string>();
  route.tables.forEach((table, t) => {
    const reserved = (RESERVED_ENV as readonly string[]).includes(table.env) || LAMBDA_RESERVED_ENV.test(table.env);
    if (reserved || envs.has(table.env)) {
      issue(ctx, at('tables', t, 'env'), name, Rule.tableEnv, `table env ${table.env} is reserved or already used`);
    }
    envs.add(table.env);
  });
};

/**
 * The ESM must never give up on a batch the runtime still holds: the runtime dead-letters a record with its bytes,
 * while a skipped batch is committed past and leaves at most its metadata at the destination. Unless the route opts
 * in with `eventSource.acceptSkippedBatches`, anything that lets the ESM skip a batch is an error: an on-failure
 * destination (with -1 Lambda applies at most 10 retries; in on-demand mode the docs do not say, so the cap is assumed)
 * and, in provisioned mode, a finite `retryAttempts` or `maxRecordAgeSeconds`. No finite count is safe: the runtime
 * needs `retry.maxAttempts` attempts AND `retry.maxRecordAgeSeconds` of age before it dead-letters, and an invocation
 * failed by an open breaker or a DynamoDB outage counts no attempt. With the opt-in, the limits must still not skip
 * batches routinely: retries at least `retry.maxAttempts`, an age past the runtime's plus two timeouts, and a
 * destination for any finite limit.
 */
const checkEsmRetries = (route: RouteConfig, fail: (field: string, message: string) => void): void => {
  const limits = esmRetryLimits(route);
  const { maxAttempts, maxRecordAgeSeconds } = route.retry;
  const runtime = `the runtime dead-letters a record only after retry.maxAttempts (${maxAttempts}) attempts and once it is retry.maxRecordAgeSeconds (${maxRecordAgeSeconds} s) old, and invocations failed by an open breaker or a DynamoDB outage count no attempt`;
  const skipped =
    'the skipped records are committed past and never reach the dead-letter queue (an SQS or SNS destination gets their metadata only), and `replay` cannot recover them';
  const optIn = 'or set eventSource.acceptSkippedBatches: true to accept that';
  const provisioned = route.mode !== 'on-demand';
  if (!route.eventSource.acceptSkippedBatches) {
    if (limits.destination) {
      fail(
        'onFailure',
        provisioned
          ? `an on-failure destination lets the ESM skip a failing batch (after at most ${limits.effectiveRetries ?? DESTINATION_RETRY_CAP} retries${limits.effectiveMaxRecordAgeSeconds !== undefined ? ` or ${limits.effectiveMaxRecordAgeSeconds} s of record age` : ''}) before the runtime gives up on it: ${runtime}; ${skipped}. Use onFailure "none" (the default), ${optIn}`
          : `an on-demand mapping cannot set retry limits, and with an on-failure destination Lambda may skip a failing batch after ${DESTINATION_RETRY_CAP} retries, before the runtime gives up on it: ${runtime}; ${skipped}. Use onFailure "none" (the default), ${optIn}`,
      );
    }
    if (limits.retryAttempts >= 0) {
      fail(
        'retryAttempts',
        `eventSource.retryAttempts ${limits.retryAttempts} lets the ESM skip a batch after that many retries, before the runtime gives up on it: ${runtime}; ${skipped}. Leave it at -1, ${optIn}`,
      );
    }
    if (limits.maxRecordAgeSeconds >= 0) {
      fail(
        'maxRecordAgeSeconds',
        `eventSource.maxRecordAgeSeconds ${limits.maxRecordAgeSeconds} lets the ESM skip records of that age, before the runtime gives up on them: ${runtime}; ${skipped}. Leave it at -1, ${optIn}`,
      );
    }
    return;
  }
  if (limits.effectiveRetries !== undefined && limits.effectiveRetries < maxAttempts) {
    fail(
      'retryAttempts',
      `the ESM makes at most ${limits.effectiveRetries} retries${limits.retryAttempts === -1 ? ` (Lambda's cap for -1 with an on-failure destination)` : ''}, below retry.maxAttempts ${maxAttempts}: it would skip records before the runtime had even attempted them that often`,
    );
  }
  const ageNeeded = maxRecordAgeSeconds + 2 * route.timeoutSeconds;
  if (limits.maxRecordAgeSeconds >= 0 && limits.maxRecordAgeSeconds < ageNeeded) {
    fail(
      'maxRecordAgeSeconds',
      `eventSource.maxRecordAgeSeconds ${limits.maxRecordAgeSeconds} is below retry.maxRecordAgeSeconds plus two timeouts (${ageNeeded} s): the ESM would skip records the runtime still retries`,
    );
  }
  if (!limits.destination && (limits.retryAttempts >= 0 || limits.maxRecordAgeSeconds >= 0)) {
    fail(
      limits.retryAttempts >= 0 ? 'retryAttempts' : 'maxRecordAgeSeconds',
      'a finite ESM retry limit without an on-failure destination drops the batches it skips without a trace; set eventSource.onFailure, or leave the limits at -1',
    );
  }
};

/**
 * Defaults `consumerGroupId` to `${config.name}-${stage}-${route.name}` for a deployed stage, so dev and prod stacks
 * on one cluster never split a topic's partitions between them (group ids must be unique among a cluster's event
 * sources); the local tools, which have no stage, use `${config.name}-${route.name}`.
 */
export const consumerGroupIdOf = (
  config: { name: string },
  route: Pick<RouteConfig, 'name' | 'consumerGroupId'>,
  stage?: string,
) => route.consumerGroupId ?? [config.name, stage, route.name].filter(Boolean).join('-');

export const BridgeConfig = z
  .object({
    /** Prefix of stack and local resource names. */
    name: z.string().regex(/^[a-z][a-z0-9-]{0,39}$/, 'must be lower-case kebab-case, at most 40 characters'),
    source: KafkaSource,
    routes: z.array(RouteConfig).min(1),
    observability: Observability.prefault({}),
    /**
     * Keep tables, queues and logs when the stack is deleted, with DynamoDB deletion protection.
     * Unset: on for the production stage (`-c stage=prod`), off otherwise.
     */
    retainData: z.boolean().optional(),
  })
  .strict()
  .superRefine((config, ctx) => {
    checkSource(config.source, ctx);
    const names = new Map<string, number>();
    const topics = new Map<string, string>();
    const groups = new Map<string, string>();
    const tables = new Map<string, string>();
    config.routes.forEach((route, i) => {
      checkRoute(config, route, i, ctx);
      const previous = names.get(route.name);
      if (previous !== undefined) {
        issue(
          ctx,
          ['routes', i, 'name'],
          route.name,
          Rule.uniqueRouteName,
          `duplicate route name (also routes[${previous}])`,
        );
      } else names.set(route.name, i);
      const topicOwner = topics.get(route.topic);
      if (topicOwner !== undefined) {
        issue(
          ctx,
          ['routes', i, 'topic'],
          route.name,
          Rule.uniqueTopic,
          `topic "${route.topic}" is already consumed by route "${topicOwner}"`,
        );
      } else topics.set(route.topic, route.name);
      const group = consumerGroupIdOf(config, route);
      const groupOwner = groups.get(group);
      if (groupOwner !== undefined) {
        issue(
          ctx,
          ['routes', i, 'consumerGroupId'],
          route.name,
          Rule.uniqueConsumerGroup,
          `consumer group "${group}" is already used by route "${groupOwner}"; each Kafka ESM needs its own`,
        );
      } else groups.set(group, route.name);
      route.tables.forEach((table, t) => {
        const owner = tables.get(table.name);
        if (owner !== undefined) {
          issue(
            ctx,
            ['routes', i, 'tables', t, 'name'],
            route.name,
            Rule.uniqueTable,
            `table "${table.name}" is already declared by route "${owner}"`,
          );
        } else tables.set(table.name, route.name);
      });
    });
  });
export type BridgeConfig = z.infer<typeof BridgeConfig>;
export type BridgeConfigInput = z.input<typeof BridgeConfig>;

/** Looks up values only the user knows (cluster ARN, VPC) in CDK context, then in the environment. */
export type ConfigContext = {
  lookup(contextKey: string, envName: string): string | undefined;
};
export type BridgeConfigModule = BridgeConfigInput | ((context: ConfigContext) => BridgeConfigInput);

/** Types a `bridge.config.ts` default export. */
export const defineBridgeConfig = (config: BridgeConfigModule): BridgeConfigModule => config;
