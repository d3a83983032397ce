import { fileURLToPath } from 'node:url';
import { CfnResource, type Stack } from 'aws-cdk-lib';
import { Annotations, Match, type Template } from 'aws-cdk-lib/assertions';
import { RouteSettings } from '../../functions/runtime/settings.ts';
import { loadBridgeConfig } from '../../infra/config/load.ts';
import type { BridgeConfig, BridgeConfigInput } from '../../infra/config/schema.ts';
import { constructId } from '../../infra/stacks/BridgeStack.ts';
import {
  actionsOf,
  baseConfig,
  CLUSTER_ARN,
  policyStatements,
  type Synthesized,
  synthBridge,
  withOrders,
} from './helpers.ts';

/** infra/bridge.config.ts as shipped: the real one is the user's, and `npm run new-route` adds routes to it. */
const SHIPPED_CONFIG = fileURLToPath(new URL('../fixtures/default.bridge.config.ts', import.meta.url));

const ENV_CONTRACT = [
  'BRIDGE_ROUTE',
  'IDEMPOTENCY_TABLE_NAME',
  'DLQ_URL',
  'METRICS_NAMESPACE',
  'LOG_LEVEL',
  'BRIDGE_ROUTE_SETTINGS',
  'POWERTOOLS_SERVICE_NAME',
  'POWERTOOLS_METRICS_NAMESPACE',
];

type Resource = { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string };
const resources = (template: Template, type: string): Array<[string, Resource]> =>
  Object.entries(template.findResources(type)) as Array<[string, Resource]>;
const functionOf = (template: Template, route: string): [string, Resource] => {
  const found = resources(template, 'AWS::Lambda::Function').find(
    ([, fn]) => (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables.BRIDGE_ROUTE === route,
  );
  if (!found) throw new Error(`no function for route ${route}`);
  return found;
};
/** The logical id of the L1 resource under a construct path such as `PaymentsRoute/DeadLetterQueue`. */
const logicalIdIn = (stack: Stack, path: string): string => {
  const construct = stack.node
    .findAll()
    .find((c) => c instanceof CfnResource && c.node.path.startsWith(`${stack.node.path}/${path}/`));
  if (!construct) throw new Error(`no resource under ${path}`);
  return stack.getLogicalId(construct as CfnResource);
};

describe('the default config as shipped (a frozen copy of infra/bridge.config.ts), bundled with esbuild', () => {
  let synth: Synthesized;
  let template: Template;
  let config: BridgeConfig;

  const id = (path: string) => logicalIdIn(synth.stack, path);

  beforeAll(async () => {
    config = await loadBridgeConfig(SHIPPED_CONFIG, { env: { BRIDGE_MSK_CLUSTER_ARN: CLUSTER_ARN } });
    synth = synthBridge(config, { bundle: true, stage: 'dev' });
    template = synth.template;
  });

  test('one Kafka event source mapping per route, with the configured properties', () => {
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', config.routes.length);
    for (const route of config.routes) {
      const [fnId] = functionOf(template, route.name);
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: { Ref: fnId },
        EventSourceArn: CLUSTER_ARN,
        Topics: [route.topic],
        BatchSize: route.batchSize,
        MaximumBatchingWindowInSeconds: route.maxBatchingWindowSeconds,
        StartingPosition: route.startingPosition,
        // The stage is in the default group id: dev and prod on one cluster never split the partitions.
        AmazonManagedKafkaEventSourceConfig: { ConsumerGroupId: `kafka-lambda-bridge-dev-${route.name}` },
        // No on-failure destination by default: with one, Lambda would skip a failing batch after 10 retries.
        DestinationConfig: Match.absent(),
        // IAM auth: no SASL/mTLS secret, and on-demand mode: no ESM retry options.
        SourceAccessConfigurations: Match.absent(),
        ProvisionedPollerConfig: Match.absent(),
        MaximumRetryAttempts: Match.absent(),
        MaximumRecordAgeInSeconds: Match.absent(),
        FunctionResponseTypes: Match.absent(),
        // The only signal of a mapping that cannot poll is its own ErrorCount metrics.
        MetricsConfig: { Metrics: ['EventCount', 'ErrorCount', 'KafkaMetrics'] },
      });
    }
  });

  test('functions: nodejs24.x on ARM64, ESM bundle with source maps, owned log group with retention', () => {
    for (const route of config.routes) {
      const [, fn] = functionOf(template, route.name);
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        MemorySize: route.memoryMb,
        Timeout: route.timeoutSeconds,
        LoggingConfig: { LogGroup: { Ref: expect.stringMatching(new RegExp(`${route.name}RouteFunctionLogs`, 'i')) } },
      });
    }
    template.resourceCountIs('AWS::Logs::LogGroup', config.routes.length);
    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  test('the environment contract of DESIGN §5, the runtime settings and the side-table names', () => {
    const expectedTables: Record<string, string[]> = {
      orders: ['ORDERS_TABLE_NAME'],
      payments: ['ACCOUNTS_TABLE_NAME', 'LEDGER_TABLE_NAME'],
    };
    for (const route of config.routes) {
      const [, fn] = functionOf(template, route.name);
      const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(Object.keys(env)).toEqual(
        expect.arrayContaining([...ENV_CONTRACT, ...(expectedTables[route.name] ?? [])]),
      );
      expect(env).toMatchObject({
        BRIDGE_ROUTE: route.name,
        METRICS_NAMESPACE: 'KafkaLambdaBridge',
        POWERTOOLS_METRICS_NAMESPACE: 'KafkaLambdaBridge',
        POWERTOOLS_SERVICE_NAME: route.name,
        LOG_LEVEL: 'INFO',
        NODE_OPTIONS: '--enable-source-maps',
        IDEMPOTENCY_TABLE_NAME: { Ref: id('Idempotency') },
        DLQ_URL: { Ref: id(`${constructId(route.name)}Route/DeadLetterQueue`) },
      });
      const settings = RouteSettings.parse(JSON.parse(env.BRIDGE_ROUTE_SETTINGS as string));
      expect(settings.retry).toEqual(route.retry);
      expect(settings.partialBatchResponse).toBe(false);
    }
    const payments = functionOf(template, 'payments')[1].Properties.Environment as {
      Variables: Record<string, unknown>;
    };
    expect(payments.Variables.LEDGER_TABLE_NAME).toEqual({ Ref: id('LedgerTable') });
    expect(payments.Variables.ACCOUNTS_TABLE_NAME).toEqual({ Ref: id('AccountsTable') });
  });

  test('IAM: grants on exact resources, no wildcard action on DynamoDB, SQS or Kafka, no managed policies', () => {
    const statements = policyStatements(template);
    expect(statements.length).toBeGreaterThan(0);
    for (const statement of statements) {
      expect(statement.Effect).toBe('Allow');
      for (const action of actionsOf(statement)) {
        if (/^(dynamodb|sqs|kafka|kafka-cluster|secretsmanager|logs):/.test(action)) expect(action).not.toContain('*');
        expect(action).not.toBe('*');
      }
      const services = new Set(actionsOf(statement).map((a) => a.split(':')[0]));
      // The only `*` resource is the ENI statement the ESM needs to reach brokers in the VPC.
      if (statement.Resource === '*') expect([...services]).toEqual(['ec2']);
      if (services.has('dynamodb') || services.has('sqs')) {
        const list = Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource];
        for (const resource of list) expect(resource).toEqual({ 'Fn::GetAtt': [expect.any(String), 'Arn'] });
      }
    }
    for (const [, role] of resources(template, 'AWS::IAM::Role'))
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
  });

  test('IAM per route: the idempotency actions, SendMessage on its own queues, its own tables, MSK data plane', () => {
    const byRole = (route: string) => {
      const roleId = id(`${constructId(route)}Route/FunctionRole`);
      const [, policy] = resources(template, 'AWS::IAM::Policy').find(([, p]) =>
        JSON.stringify(p.Properties.Roles).includes(roleId),
      ) as [string, Resource];
      return (
        policy.Properties.PolicyDocument as { Statement: Array<{ Action: string | string[]; Resource: unknown }> }
      ).Statement;
    };
    const idempotency = id('Idempotency');
    for (const route of ['orders', 'payments']) {
      const statements = byRole(route);
      const on = (resource: unknown) =>
        statements.filter((s) => JSON.stringify(s.Resource).includes(JSON.stringify(resource))).flatMap(actionsOf);
      expect(on({ 'Fn::GetAtt': [idempotency, 'Arn'] }).sort()).toEqual([
        'dynamodb:BatchGetItem',
        'dynamodb:BatchWriteItem',
        'dynamodb:PartiQLInsert',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
      ]);
      const dlq = id(`${constructId(route)}Route/DeadLetterQueue`);
      expect(on({ 'Fn::GetAtt': [dlq, 'Arn'] })).toEqual(['sqs:SendMessage']);
      const sqsResources = statements
        .filter((s) => actionsOf(s).some((a) => a.startsWith('sqs:')))
        .map((s) => JSON.stringify(s.Resource));
      expect(sqsResources.every((r) => r.includes(`${constructId(route)}Route`))).toBe(true);
      const topic = `arn:aws:kafka:eu-west-1:111122223333:topic/events/abcd1234-abcd-cafe-abab-9876543210ab-4/${route}`;
      const group = `arn:aws:kafka:eu-west-1:111122223333:group/events/abcd1234-abcd-cafe-abab-9876543210ab-4/kafka-lambda-bridge-dev-${route}`;
      expect(on(topic).sort()).toEqual(['kafka-cluster:DescribeTopic', 'kafka-cluster:ReadData']);
      expect(on(group).sort()).toEqual(['kafka-cluster:AlterGroup', 'kafka-cluster:DescribeGroup']);
      expect(on(CLUSTER_ARN).sort()).toEqual([
        'kafka-cluster:Connect',
        'kafka-cluster:DescribeClusterDynamicConfiguration',
        'kafka:DescribeClusterV2',
        'kafka:GetBootstrapBrokers',
      ]);
    }
    // payments writes its ledger and accounts in one TransactWriteItems: Put, Update and ConditionCheck on both.
    const payments = byRole('payments');
    for (const table of ['AccountsTable', 'LedgerTable']) {
      const tableId = id(table);
      const actions = payments.filter((s) => JSON.stringify(s.Resource).includes(tableId)).flatMap(actionsOf);
      expect(actions).toEqual(
        expect.arrayContaining(['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem']),
      );
    }
    // orders may not touch the payments tables.
    const ledger = id('LedgerTable');
    expect(JSON.stringify(byRole('orders'))).not.toContain(ledger);
  });

  test('tables: key, TTL, on-demand, PITR and SSE; data destroyed outside production', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 4);
    template.hasResource('AWS::DynamoDB::Table', {
      Properties: {
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      },
    });
    for (const [pk, path] of [
      ['orderId', 'OrdersTable'],
      ['accountId', 'AccountsTable'],
      ['txId', 'LedgerTable'],
    ] as const) {
      const table = template.toJSON().Resources[id(path)] as Resource;
      expect(table.Properties.KeySchema).toEqual([{ AttributeName: pk, KeyType: 'HASH' }]);
    }
    template.allResourcesProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      DeletionProtectionEnabled: false,
    });
    template.allResources('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' });
  });

  test('queues: SSE and a policy that denies requests without TLS', () => {
    const queues = resources(template, 'AWS::SQS::Queue');
    // One dead-letter queue per route; no on-failure queue by default.
    expect(queues).toHaveLength(config.routes.length);
    for (const [queueId, queue] of queues) {
      expect(queue.Properties.SqsManagedSseEnabled).toBe(true);
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: queueId }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 'sqs:*',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
              Resource: { 'Fn::GetAtt': [queueId, 'Arn'] },
            }),
          ]),
        },
      });
    }
  });

  test('alarms: twelve per route on the agreed metrics, all notifying the encrypted SNS topic', () => {
    const alarms = resources(template, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    expect(alarms).toHaveLength(12 * config.routes.length);
    const topicId = id('Alarms/Topic');
    for (const alarm of alarms) {
      expect(alarm.AlarmActions).toEqual([{ Ref: topicId }]);
      expect(alarm.OKActions).toEqual([{ Ref: topicId }]);
    }
    for (const route of config.routes) {
      const mine = alarms.filter((a) => String(a.AlarmName).startsWith(`kafka-lambda-bridge-dev-${route.name}-`));
      expect(mine).toHaveLength(12);
      const [fnId] = functionOf(template, route.name);
      const [mappingId] = resources(template, 'AWS::Lambda::EventSourceMapping').find(
        ([, m]) => (m.Properties.FunctionName as { Ref: string }).Ref === fnId,
      ) as [string, unknown];
      const byMapping = [{ Name: 'EventSourceMappingUUID', Value: { Ref: mappingId } }];
      const metric = (name: string) => mine.find((a) => a.MetricName === name);
      expect(metric('OffsetLag')).toMatchObject({
        Namespace: 'AWS/Lambda',
        Statistic: 'Maximum',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: fnId } }],
        Threshold: route.alarms.offsetLag,
      });
      expect(metric('Errors')).toMatchObject({ Namespace: 'AWS/Lambda', Statistic: 'Sum', Threshold: 0 });
      expect(metric('Throttles')).toMatchObject({ Namespace: 'AWS/Lambda', Statistic: 'Sum', Threshold: 0 });
      expect(metric('Duration')).toMatchObject({
        ExtendedStatistic: 'p99',
        Threshold: route.timeoutSeconds * 1000 * 0.8,
      });
      expect(metric('RecordsDeadLettered')).toMatchObject({
        Namespace: 'KafkaLambdaBridge',
        Dimensions: [{ Name: 'Route', Value: route.name }],
        Statistic: 'Sum',
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
      });
      // A breaker that opened is a sick downstream (Warning); an idempotency conflict is content lost (Critical).
      expect(metric('BreakerOpened')).toMatchObject({
        AlarmName: `kafka-lambda-bridge-dev-${route.name}-BreakerOpened-Warning`,
        Namespace: 'KafkaLambdaBridge',
        Dimensions: [{ Name: 'Route', Value: route.name }],
        Statistic: 'Sum',
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        TreatMissingData: 'notBreaching',
      });
      expect(metric('IdempotencyConflicts')).toMatchObject({
        AlarmName: `kafka-lambda-bridge-dev-${route.name}-IdempotencyConflicts-Critical`,
        Namespace: 'KafkaLambdaBridge',
        Dimensions: [{ Name: 'Route', Value: route.name }],
        Statistic: 'Sum',
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        TreatMissingData: 'notBreaching',
      });
      expect(mine.filter((a) => a.MetricName === 'ApproximateNumberOfMessagesVisible')).toHaveLength(1);
      expect(metric('ApproximateAgeOfOldestMessage')).toMatchObject({ Threshold: 3600 });
      expect(metric('DroppedEventCount')).toMatchObject({
        Namespace: 'AWS/Lambda',
        Dimensions: byMapping,
        Statistic: 'Sum',
        Threshold: 0,
      });
      type MathAlarm = { AlarmName: string; Metrics: Array<{ MetricStat?: { Metric: Record<string, unknown> } }> };
      const math = (kind: string) => {
        const alarm = mine.find((a) => String(a.AlarmName).includes(`-${kind}-`)) as MathAlarm;
        return alarm.Metrics.flatMap((m) => (m.MetricStat ? [m.MetricStat.Metric] : []));
      };
      // A mapping that cannot poll, commit or deliver alarms on its own error counts, missing data being none.
      const esmErrors = math('EventSourceErrors');
      // InvokeErrorCount too: a throttled or otherwise failed invoke is neither an Invocation nor an Error.
      expect(esmErrors.map((m) => m.MetricName).sort()).toEqual([
        'CommitErrorCount',
        'InvokeErrorCount',
        'OnFailureDestinationDeliveryErrorCount',
        'PollingErrorCount',
        'SchemaRegistryErrorCount',
      ]);
      for (const m of esmErrors) expect(m).toMatchObject({ Namespace: 'AWS/Lambda', Dimensions: byMapping });
      const throttleMetrics = math('TableThrottles').map((m) => m.MetricName);
      // The idempotency table plus the route's own tables, reads and writes.
      expect(throttleMetrics).toHaveLength(2 * (1 + route.tables.length));
      expect(new Set(throttleMetrics)).toEqual(new Set(['ReadThrottleEvents', 'WriteThrottleEvents']));
    }
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    template.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  test("the alarm topic's policy lets this stack's alarms publish (it replaces SNS's default policy), and so does the key's", () => {
    const fromOurAlarms = {
      StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
      ArnLike: {
        'aws:SourceArn': {
          'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp(':alarm:kafka-lambda-bridge-dev-\\*$')])],
        },
      },
    };
    // The topic policy holds the TLS Deny and the Allow for our alarms, beside nothing else that could allow them.
    template.resourceCountIs('AWS::SNS::TopicPolicy', 1);
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Action: 'sns:Publish' })]),
      },
    });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Action: 'sns:Publish',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Condition: fromOurAlarms,
          }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
            Condition: fromOurAlarms,
          }),
        ]),
      },
    });
  });

  test('one dashboard with a row per route and a breaker row', () => {
    const dashboards = resources(template, 'AWS::CloudWatch::Dashboard');
    expect(dashboards).toHaveLength(1);
    const body = JSON.stringify(dashboards[0]?.[1].Properties.DashboardBody);
    for (const route of config.routes) {
      expect(body).toContain(`### Route \`${route.name}\``);
      for (const metric of [
        'RecordsReceived',
        'RecordsProcessed',
        'DuplicatesSkipped',
        'RecordsFailed',
        'RecordsDeadLettered',
      ]) {
        expect(body).toContain(`\\"${metric}\\",\\"Route\\",\\"${route.name}\\"`);
      }
      expect(body).toContain(`Alarms: ${route.name}`);
      // The breaker row: opens and short-circuits summed, the state at its worst, and idempotency conflicts.
      for (const metric of ['BreakerOpened', 'BreakerShortCircuited', 'IdempotencyConflicts']) {
        expect(body).toContain(`\\"${metric}\\",\\"Route\\",\\"${route.name}\\"`);
      }
      expect(body).toContain(
        `\\"BreakerState\\",\\"Route\\",\\"${route.name}\\",{\\"label\\":\\"state (max)\\",\\"stat\\":\\"Maximum\\"`,
      );
    }
    expect(body).toContain('Circuit breaker');
    expect(body).toContain('Idempotency conflicts');
    for (const text of [
      'EndToEndLatency',
      'ProcessingTime',
      'OffsetLag',
      'Throttles',
      'ApproximateAgeOfOldestMessage',
      'ConsumedWriteCapacityUnits',
      'alarm',
    ]) {
      expect(body).toContain(text);
    }
  });
});

describe('the live default config (infra/bridge.config.ts, with whatever routes the user added)', () => {
  // Only what holds for any valid route: `npm run new-route` adds routes with the defaults (no batching window) and,
  // in transact mode, a table of their own.
  test('synthesizes with cdk-nag: per route a function, an event source mapping on its topic, a DLQ', async () => {
    const config = await loadBridgeConfig(undefined, { env: { BRIDGE_MSK_CLUSTER_ARN: CLUSTER_ARN } });
    const { template } = synthBridge(config, { stage: 'dev' });
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', config.routes.length);
    // A dead-letter queue each; a route may add an on-failure or a retry queue.
    expect(resources(template, 'AWS::SQS::Queue').length).toBeGreaterThanOrEqual(config.routes.length);
    const sideTables = new Set(config.routes.flatMap((r) => r.tables.map((t) => t.name)));
    template.resourceCountIs('AWS::DynamoDB::Table', 1 + sideTables.size);
    for (const route of config.routes) {
      const [fnId, fn] = functionOf(template, route.name);
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: { Ref: fnId },
        Topics: [route.topic],
        BatchSize: route.batchSize,
      });
      const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(Object.keys(env)).toEqual(expect.arrayContaining([...ENV_CONTRACT, ...route.tables.map((t) => t.env)]));
    }
  });
});

describe('production and options', () => {
  test('stage prod retains tables, queues, logs and keys, with deletion protection', () => {
    const { template } = synthBridge(baseConfig(), { stage: 'prod' });
    template.allResourcesProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: true });
    for (const type of ['AWS::DynamoDB::Table', 'AWS::SQS::Queue', 'AWS::Logs::LogGroup', 'AWS::KMS::Key']) {
      template.allResources(type, { DeletionPolicy: 'Retain' });
    }
  });

  test('each stage consumes in a consumer group of its own; an explicit consumerGroupId is kept as given', () => {
    const groups = (stage: string, config: BridgeConfigInput = baseConfig()) =>
      resources(synthBridge(config, { stage }).template, 'AWS::Lambda::EventSourceMapping').map(
        ([, esm]) =>
          (esm.Properties.AmazonManagedKafkaEventSourceConfig as { ConsumerGroupId: string }).ConsumerGroupId,
      );
    const [dev, prod] = [groups('dev'), groups('prod')];
    expect(dev.every((group) => group.includes('-dev-'))).toBe(true);
    expect(prod.every((group) => group.includes('-prod-'))).toBe(true);
    const named = baseConfig();
    named.routes = (named.routes ?? []).map((route, i) =>
      i === 0 ? { ...route, consumerGroupId: 'legacy-group' } : route,
    );
    expect(groups('prod', named)).toContain('legacy-group');
  });

  test('config.retainData overrides the stage', () => {
    const { template } = synthBridge({ ...baseConfig(), retainData: true }, { stage: 'dev' });
    template.allResourcesProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: true });
  });

  const ordersMapping = (template: Template) =>
    (
      resources(template, 'AWS::Lambda::EventSourceMapping').find(
        ([, m]) => (m.Properties.Topics as string[])[0] === 'orders',
      ) as [string, Resource]
    )[1].Properties;
  const PROVISIONED = { provisioned: { minPollers: 1, maxPollers: 4 } };

  test('provisioned mode always states both ESM retry limits: -1 without a destination, so nothing is skipped', () => {
    const bare = ordersMapping(synthBridge(withOrders({ mode: PROVISIONED })).template);
    expect(bare).toMatchObject({ MaximumRetryAttempts: -1, MaximumRecordAgeInSeconds: -1 });
    expect(bare.DestinationConfig).toBeUndefined();
    const withQueue = ordersMapping(
      synthBridge(
        withOrders({
          mode: PROVISIONED,
          retry: { maxAttempts: 5, maxRecordAgeSeconds: 3600 },
          eventSource: { onFailure: 'sqs', retryAttempts: 1000, maxRecordAgeSeconds: 7200, acceptSkippedBatches: true },
        }),
      ).template,
    );
    expect(withQueue).toMatchObject({
      MaximumRetryAttempts: 1000,
      MaximumRecordAgeInSeconds: 7200,
      DestinationConfig: { OnFailure: { Destination: expect.anything() } },
    });
  });

  test('an on-demand route with an on-failure destination is a config error unless it accepts skipped batches', () => {
    expect(() => synthBridge(withOrders({ eventSource: { onFailure: 'sqs' } }))).toThrow(
      /routes\[0\]\.eventSource\.onFailure: route "orders": an on-demand mapping cannot set retry limits.*acceptSkippedBatches: true.*\[esm-retries-outlast-runtime\]/,
    );
    const { stack, template } = synthBridge(
      withOrders({ eventSource: { onFailure: 'sqs', acceptSkippedBatches: true } }),
    );
    const mapping = ordersMapping(template);
    expect(mapping.DestinationConfig).toEqual({ OnFailure: { Destination: expect.anything() } });
    // On-demand mode has no retry limits to state; the opt-in leaves no warning behind.
    expect(mapping.MaximumRetryAttempts).toBeUndefined();
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('10 retries'))).toEqual([]);
  });

  test('alarms.minInvocations adds an alarm that treats missing Invocations as breaching', () => {
    const { template } = synthBridge(withOrders({ alarms: { minInvocations: 3 } }));
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: Match.stringLikeRegexp('-orders-MissingInvocations-Critical$'),
      MetricName: 'Invocations',
      Namespace: 'AWS/Lambda',
      Statistic: 'Sum',
      Threshold: 3,
      ComparisonOperator: 'LessThanThreshold',
      TreatMissingData: 'breaching',
      EvaluationPeriods: 3,
    });
  });

  test('eventSource.metrics: false leaves out MetricsConfig and the alarms and graphs that read it', () => {
    const esmAlarms = (template: Template) =>
      Object.values(template.findResources('AWS::CloudWatch::Alarm'))
        .map((a) => String((a as Resource).Properties.AlarmName))
        .filter((name) => /-orders-(EventSourceErrors|RecordsDropped)-/.test(name));
    // The dashboard names a mapping only in the graphs of its own metrics (by EventSourceMappingUUID).
    const graphsOrdersMapping = (template: Template) => {
      const [mappingId] = resources(template, 'AWS::Lambda::EventSourceMapping').find(
        ([, m]) => (m.Properties.Topics as string[])[0] === 'orders',
      ) as [string, Resource];
      return JSON.stringify(resources(template, 'AWS::CloudWatch::Dashboard')).includes(`"Ref":"${mappingId}"`);
    };

    const on = synthBridge(withOrders({})).template;
    expect(ordersMapping(on).MetricsConfig).toEqual({ Metrics: ['EventCount', 'ErrorCount', 'KafkaMetrics'] });
    expect(esmAlarms(on)).toHaveLength(2);
    expect(graphsOrdersMapping(on)).toBe(true);

    const off = synthBridge(withOrders({ eventSource: { metrics: false }, alarms: { minInvocations: 1 } })).template;
    expect(ordersMapping(off).MetricsConfig).toBeUndefined();
    expect(esmAlarms(off)).toEqual([]);
    expect(graphsOrdersMapping(off)).toBe(false);
    off.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: Match.stringLikeRegexp('-orders-MissingInvocations-Critical$'),
    });
    // Without minInvocations too, nothing would notice a mapping that cannot poll: the synth says so.
    const unwatched = (overrides: Parameters<typeof withOrders>[0]) =>
      Annotations.fromStack(synthBridge(withOrders(overrides)).stack).findWarning(
        '*',
        Match.stringLikeRegexp('route "orders": eventSource.metrics is false and alarms.minInvocations is unset'),
      );
    expect(unwatched({ eventSource: { metrics: false } })).toHaveLength(1);
    expect(unwatched({ eventSource: { metrics: false }, alarms: { minInvocations: 1 } })).toEqual([]);
    expect(unwatched({})).toEqual([]);
  });

  test('an alarm e-mail subscribes to the alarm topic', () => {
    const { template } = synthBridge({ ...baseConfig(), observability: { alarmEmail: 'ops@example.com' } });
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
  });
});
