import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RouteSettings } from '../../functions/runtime/settings.ts';
import {
  BridgeConfigError,
  type BridgeConfigInput,
  DEFAULT_CONFIG_PATH,
  formatIssuePath,
  loadBridgeConfig,
  localResourceNames,
  localRouteEnvironment,
  parseBridgeConfig,
  Rule,
  resolveHandlerEntry,
  routeSettingsFor,
} from '../../infra/config/index.ts';
import { PLACEHOLDER_CLUSTER_ARN } from '../fixtures/default.bridge.config.ts';
import { baseConfig, CLUSTER_ARN, issuesOf, SECRET_ARN, withOrders } from './helpers.ts';

/** infra/bridge.config.ts as shipped; the real one is the user's, and `npm run new-route` adds routes to it. */
const SHIPPED_CONFIG = fileURLToPath(new URL('../fixtures/default.bridge.config.ts', import.meta.url));

const tempDir = mkdtempSync(join(tmpdir(), 'bridge-config-'));
const writeTemp = (name: string, content: string): string => {
  const file = join(tempDir, name);
  writeFileSync(file, content);
  return file;
};

type Routes = NonNullable<BridgeConfigInput['routes']>;
type RouteInput = Routes[number];
const withSecondRoute = (change: Partial<RouteInput>): BridgeConfigInput => {
  const config = baseConfig();
  const [orders, payments] = config.routes as Routes;
  return { ...config, routes: [orders as RouteInput, { ...(payments as RouteInput), ...change }] };
};
const provisioned = { provisioned: { minPollers: 1, maxPollers: 4 } } as const;
const selfManaged = (source: Record<string, unknown>): BridgeConfigInput =>
  ({
    ...baseConfig(),
    source: { kind: 'self-managed', bootstrapServers: ['b-1.example.com:9096'], ...source },
  }) as BridgeConfigInput;

describe('the config schema accepts', () => {
  test('the base config, filling defaults', () => {
    const config = parseBridgeConfig(baseConfig());
    const orders = config.routes[0];
    expect(orders).toMatchObject({
      batchSize: 100,
      startingPosition: 'TRIM_HORIZON',
      mode: 'on-demand',
      eventSource: { reportBatchItemFailures: false, onFailure: 'none', filters: [] },
      retry: { maxAttempts: 5 },
      memoryMb: 512,
      timeoutSeconds: 60,
    });
    expect(config.observability).toEqual({ namespace: 'KafkaLambdaBridge', logLevel: 'INFO', logRetentionDays: 30 });
  });

  test('a handler given from the project root, parsed into the one form every consumer sees', async () => {
    for (const handler of [
      'functions/handlers/orders.ts',
      './functions/handlers/orders.ts',
      'functions\\handlers\\orders.ts',
    ]) {
      const [orders] = parseBridgeConfig(withOrders({ handler })).routes;
      expect(orders?.handler).toBe('orders.ts');
      expect(resolveHandlerEntry(orders as never)).toBe(resolveHandlerEntry({ handler: 'orders.ts' }));
    }
    const file = writeTemp(
      'root-relative-handler.json',
      JSON.stringify(withSecondRoute({ handler: 'functions/handlers/payments.ts' })),
    );
    expect((await loadBridgeConfig(file)).routes.map((r) => r.handler)).toEqual(['orders.ts', 'payments.ts']);
  });

  test('the provisioned-mode ESM options, at their limits', () => {
    const config = parseBridgeConfig(
      withOrders({
        mode: provisioned,
        batchSize: 10_000,
        maxBatchingWindowSeconds: 300,
        eventSource: {
          reportBatchItemFailures: true,
          retryAttempts: 10_000,
          maxRecordAgeSeconds: 604_800,
          bisectOnError: true,
          onFailure: { kafkaTopic: 'orders.dlt' },
          acceptSkippedBatches: true,
          schemaRegistry: { kind: 'glue', registryArn: 'arn:aws:glue:eu-west-1:111122223333:registry/events' },
        },
      }),
    );
    expect(config.routes[0]?.eventSource.retryAttempts).toBe(10_000);
  });

  test('a self-managed source with SCRAM-256, SCRAM-512 or SASL/PLAIN, in a VPC', () => {
    for (const auth of ['sasl-scram-256', 'sasl-scram-512', 'basic'] as const) {
      const config = parseBridgeConfig(
        selfManaged({
          auth,
          secretArn: SECRET_ARN,
          vpc: { vpcId: 'vpc-1', subnetIds: ['subnet-1'], securityGroupIds: ['sg-1'] },
        }),
      );
      expect(config.source.auth).toBe(auth);
    }
  });
});

type InvalidCase = {
  readonly rule: Rule;
  readonly config: unknown;
  readonly path: string;
  /** The route the message must name; undefined for source-level rules. */
  readonly route?: string;
};

/** One row per rule: the config breaks exactly that rule, and the message names the route and the rule. */
const INVALID: Record<string, InvalidCase> = {
  'an on-failure destination in provisioned mode, without acceptSkippedBatches': {
    rule: Rule.esmRetries,
    config: withOrders({ mode: provisioned, eventSource: { onFailure: 'sqs' } }),
    path: 'routes[0].eventSource.onFailure',
    route: 'orders',
  },
  'an on-failure destination in on-demand mode, without acceptSkippedBatches': {
    rule: Rule.esmRetries,
    config: withOrders({ eventSource: { onFailure: 'sns' } }),
    path: 'routes[0].eventSource.onFailure',
    route: 'orders',
  },
  'a finite ESM retryAttempts, without acceptSkippedBatches': {
    rule: Rule.esmRetries,
    config: withOrders({ mode: provisioned, eventSource: { onFailure: 'sqs', retryAttempts: 10_000 } }),
    path: 'routes[0].eventSource.retryAttempts',
    route: 'orders',
  },
  'a finite ESM maxRecordAgeSeconds, without acceptSkippedBatches': {
    rule: Rule.esmRetries,
    config: withOrders({ mode: provisioned, eventSource: { onFailure: 'sqs', maxRecordAgeSeconds: 604_800 } }),
    path: 'routes[0].eventSource.maxRecordAgeSeconds',
    route: 'orders',
  },
  "accepted skipped batches, but Lambda's cap of 10 retries (-1 with a destination) is below the runtime attempts": {
    rule: Rule.esmRetries,
    config: withOrders({
      mode: provisioned,
      retry: { maxAttempts: 11 },
      eventSource: { onFailure: 'sqs', acceptSkippedBatches: true },
    }),
    path: 'routes[0].eventSource.retryAttempts',
    route: 'orders',
  },
  'accepted skipped batches, but ESM retries below the runtime attempts': {
    rule: Rule.esmRetries,
    config: withOrders({
      mode: provisioned,
      retry: { maxAttempts: 5 },
      eventSource: { onFailure: 'sqs', retryAttempts: 4, acceptSkippedBatches: true },
    }),
    path: 'routes[0].eventSource.retryAttempts',
    route: 'orders',
  },
  'accepted skipped batches, but an ESM record age below the runtime record age plus two timeouts': {
    rule: Rule.esmRetries,
    config: withOrders({
      mode: provisioned,
      timeoutSeconds: 60,
      retry: { maxRecordAgeSeconds: 3600 },
      eventSource: { onFailure: 'sqs', retryAttempts: 100, maxRecordAgeSeconds: 3700, acceptSkippedBatches: true },
    }),
    path: 'routes[0].eventSource.maxRecordAgeSeconds',
    route: 'orders',
  },
  'accepted skipped batches, but a finite ESM retry limit without a destination (skipped batches vanish)': {
    rule: Rule.esmRetries,
    config: withOrders({ mode: provisioned, eventSource: { retryAttempts: 100, acceptSkippedBatches: true } }),
    path: 'routes[0].eventSource.retryAttempts',
    route: 'orders',
  },
  "a runtime registry's auth without its secret": {
    rule: Rule.registrySecret,
    config: withOrders({ registry: { kind: 'confluent', url: 'https://registry.example.com', auth: 'basic' } }),
    path: 'routes[0].registry.auth',
    route: 'orders',
  },
  'ESM retryAttempts in on-demand mode': {
    rule: Rule.provisionedOnly,
    config: withOrders({ eventSource: { retryAttempts: 3 } }),
    path: 'routes[0].eventSource.retryAttempts',
    route: 'orders',
  },
  'ESM maxRecordAgeSeconds in on-demand mode': {
    rule: Rule.provisionedOnly,
    config: withOrders({ eventSource: { maxRecordAgeSeconds: 3600 } }),
    path: 'routes[0].eventSource.maxRecordAgeSeconds',
    route: 'orders',
  },
  'ESM bisectOnError in on-demand mode': {
    rule: Rule.provisionedOnly,
    config: withOrders({ eventSource: { bisectOnError: true } }),
    path: 'routes[0].eventSource.bisectOnError',
    route: 'orders',
  },
  'reportBatchItemFailures in on-demand mode': {
    rule: Rule.provisionedOnly,
    config: withSecondRoute({ eventSource: { reportBatchItemFailures: true } }),
    path: 'routes[1].eventSource.reportBatchItemFailures',
    route: 'payments',
  },
  'a Kafka-topic on-failure destination in on-demand mode': {
    rule: Rule.provisionedOnly,
    config: withOrders({ eventSource: { onFailure: { kafkaTopic: 'orders-dlt' } } }),
    path: 'routes[0].eventSource.onFailure',
    route: 'orders',
  },
  'a schema registry in on-demand mode': {
    rule: Rule.provisionedOnly,
    config: withOrders({
      eventSource: { schemaRegistry: { kind: 'glue', registryArn: 'arn:aws:glue:eu-west-1:111122223333:registry/r' } },
    }),
    path: 'routes[0].eventSource.schemaRegistry',
    route: 'orders',
  },
  'batchSize above 10000': {
    rule: Rule.batchSize,
    config: withSecondRoute({ batchSize: 10_001 }),
    path: 'routes[1].batchSize',
    route: 'payments',
  },
  'a batching window above 300 s': {
    rule: Rule.batchingWindow,
    config: withOrders({ maxBatchingWindowSeconds: 301 }),
    path: 'routes[0].maxBatchingWindowSeconds',
    route: 'orders',
  },
  'a topic with characters Kafka refuses': {
    rule: Rule.topicName,
    config: withOrders({ topic: 'orders/v1' }),
    path: 'routes[0].topic',
    route: 'orders',
  },
  'a topic named ".."': {
    rule: Rule.topicName,
    config: withOrders({ topic: '..' }),
    path: 'routes[0].topic',
    route: 'orders',
  },
  'a topic longer than 249 characters': {
    rule: Rule.topicName,
    config: withOrders({ topic: 'o'.repeat(250) }),
    path: 'routes[0].topic',
    route: 'orders',
  },
  'a consumer group id with a space': {
    rule: Rule.consumerGroupId,
    config: withOrders({ consumerGroupId: 'orders group' }),
    path: 'routes[0].consumerGroupId',
    route: 'orders',
  },
  'a consumer group id longer than 200 characters': {
    rule: Rule.consumerGroupId,
    config: withOrders({ consumerGroupId: 'g'.repeat(201) }),
    path: 'routes[0].consumerGroupId',
    route: 'orders',
  },
  'a consumer group id with "*" under MSK IAM auth': {
    rule: Rule.consumerGroupId,
    config: withOrders({ consumerGroupId: 'orders-*' }),
    path: 'routes[0].consumerGroupId',
    route: 'orders',
  },
  'SCRAM-256 on MSK': {
    rule: Rule.mskScram256,
    config: {
      ...baseConfig(),
      source: { kind: 'msk', clusterArn: CLUSTER_ARN, auth: 'sasl-scram-256', secretArn: SECRET_ARN },
    },
    path: 'source.auth',
  },
  'SASL/PLAIN on MSK': {
    rule: Rule.mskAuth,
    config: { ...baseConfig(), source: { kind: 'msk', clusterArn: CLUSTER_ARN, auth: 'basic', secretArn: SECRET_ARN } },
    path: 'source.auth',
  },
  'SCRAM-512 without a secret': {
    rule: Rule.authSecret,
    config: { ...baseConfig(), source: { kind: 'msk', clusterArn: CLUSTER_ARN, auth: 'sasl-scram-512' } },
    path: 'source.secretArn',
  },
  'IAM auth on a self-managed cluster': {
    rule: Rule.mskIamOnly,
    config: selfManaged({ auth: 'iam', vpc: { vpcId: 'vpc-1', subnetIds: ['subnet-1'], securityGroupIds: ['sg-1'] } }),
    path: 'source.auth',
  },
  'a self-managed VPC without subnets': {
    rule: Rule.selfManagedVpc,
    config: selfManaged({
      auth: 'sasl-scram-512',
      secretArn: SECRET_ARN,
      vpc: { vpcId: 'vpc-1', securityGroupIds: ['sg-1'] },
    }),
    path: 'source.vpc.subnetIds',
  },
  'a self-managed VPC without security groups': {
    rule: Rule.selfManagedVpc,
    config: selfManaged({
      auth: 'sasl-scram-512',
      secretArn: SECRET_ARN,
      vpc: { vpcId: 'vpc-1', subnetIds: ['subnet-1'] },
    }),
    path: 'source.vpc.securityGroupIds',
  },
  'self-managed brokers over the internet without authentication': {
    rule: Rule.selfManagedPublicAuth,
    config: selfManaged({ auth: 'none' }),
    path: 'source.auth',
  },
  'a duplicate route name': {
    rule: Rule.uniqueRouteName,
    config: withSecondRoute({ name: 'orders', tables: [] }),
    path: 'routes[1].name',
    route: 'orders',
  },
  'a duplicate topic': {
    rule: Rule.uniqueTopic,
    config: withSecondRoute({ topic: 'orders' }),
    path: 'routes[1].topic',
    route: 'payments',
  },
  'a duplicate consumer group': {
    rule: Rule.uniqueConsumerGroup,
    config: withSecondRoute({ consumerGroupId: 'bridge-test-orders' }),
    path: 'routes[1].consumerGroupId',
    route: 'payments',
  },
  'a table declared by two routes': {
    rule: Rule.uniqueTable,
    config: withSecondRoute({ tables: [{ name: 'orders', partitionKey: 'id', env: 'MY_ORDERS' }] }),
    path: 'routes[1].tables[0].name',
    route: 'payments',
  },
  'a table env that the bridge itself sets': {
    rule: Rule.tableEnv,
    config: withOrders({ tables: [{ name: 'orders', partitionKey: 'orderId', env: 'DLQ_URL' }] }),
    path: 'routes[0].tables[0].env',
    route: 'orders',
  },
  'a table env that the retry queue uses': {
    rule: Rule.tableEnv,
    config: withOrders({ tables: [{ name: 'orders', partitionKey: 'orderId', env: 'RETRY_QUEUE_URL' }] }),
    path: 'routes[0].tables[0].env',
    route: 'orders',
  },
  // Delays 30 + 300 + 900 s plus three 60 s timeouts = 1410 s: the PARKED item (and its key's line) could expire.
  'a retry.park schedule that outlasts the idempotency items': {
    rule: Rule.parkWithinTtl,
    config: withOrders({
      retry: { park: { delaysSeconds: [30, 300, 900] } },
      idempotency: { ttlSeconds: 1410 },
    }),
    path: 'routes[0].retry.park.delaysSeconds',
    route: 'orders',
  },
  'a table env that Lambda reserves': {
    rule: Rule.tableEnv,
    config: withOrders({ tables: [{ name: 'orders', partitionKey: 'orderId', env: 'AWS_REGION' }] }),
    path: 'routes[0].tables[0].env',
    route: 'orders',
  },
  'SASL/SCRAM on MSK without the key that encrypts its secret': {
    rule: Rule.mskScramKey,
    config: {
      ...baseConfig(),
      source: { kind: 'msk', clusterArn: CLUSTER_ARN, auth: 'sasl-scram-512', secretArn: SECRET_ARN },
    },
    path: 'source.secretKmsKeyArn',
  },
  'minPollers above maxPollers': {
    rule: Rule.pollers,
    config: withOrders({ mode: { provisioned: { minPollers: 5, maxPollers: 2 } } }),
    path: 'routes[0].mode.provisioned',
    route: 'orders',
  },
  'a Kafka on-failure topic equal to the source topic': {
    rule: Rule.kafkaDlqTopic,
    config: withOrders({ mode: provisioned, eventSource: { onFailure: { kafkaTopic: 'orders' } } }),
    path: 'routes[0].eventSource.onFailure.kafkaTopic',
    route: 'orders',
  },
  'AT_TIMESTAMP without a timestamp': {
    rule: Rule.startingTimestamp,
    config: withOrders({ startingPosition: 'AT_TIMESTAMP' }),
    path: 'routes[0].startingPosition',
    route: 'orders',
  },
  'a handler that does not exist': {
    rule: Rule.handlerExists,
    config: withOrders({ handler: 'missing.ts' }),
    path: 'routes[0].handler',
    route: 'orders',
  },
  'a handler outside functions/handlers/': {
    rule: Rule.handlerPath,
    config: withOrders({ handler: 'functions/runtime/processor.ts' }),
    path: 'routes[0].handler',
    route: 'orders',
  },
};

describe('the config schema rejects, naming the path, the route and the rule:', () => {
  test.each(Object.entries(INVALID))('%s', (_title, { rule, config, path, route }) => {
    const issues = issuesOf(config);
    const issue = issues.find((i) => i.path === path);
    expect(issues.map((i) => i.path)).toContain(path);
    expect(issue?.message).toContain(`[${rule}]`);
    if (route) expect(issue?.message).toContain(`route "${route}"`);
  });

  test.each([
    ['a timeout above the 14 minutes Kafka sources allow', { timeoutSeconds: 841 }, 'routes[0].timeoutSeconds', /840/],
    [
      'a poller group name with characters Lambda refuses',
      { mode: { provisioned: { pollerGroupName: 'team a/b' } } },
      'routes[0].mode.provisioned.pollerGroupName',
      /letters, digits/,
    ],
    [
      'more filters than the default quota of 5',
      { eventSource: { filters: Array.from({ length: 6 }, (_, i) => ({ value: { n: [i] } })) } },
      'routes[0].eventSource.filters',
      /6 filters; Lambda allows 5 per event source mapping/,
    ],
  ])('%s', (_title, route, path, message) => {
    const issue = issuesOf(withOrders(route)).find((i) => i.path === path);
    expect(issue?.message).toMatch(message);
  });

  test('a raised filter quota allows up to 10 filters; 840 seconds is a valid timeout', () => {
    const filters = Array.from({ length: 8 }, (_, i) => ({ value: { n: [i] } }));
    expect(
      parseBridgeConfig(withOrders({ eventSource: { filters, filterQuota: 10 } })).routes[0]?.eventSource.filters,
    ).toHaveLength(8);
    expect(parseBridgeConfig(withOrders({ timeoutSeconds: 840 })).routes[0]?.timeoutSeconds).toBe(840);
  });

  test('the ESM may skip batches only with acceptSkippedBatches: each case is an error without it, and accepted with it', () => {
    const cases: Array<[string, Partial<RouteInput>, string[]]> = [
      [
        'provisioned, a destination, retryAttempts -1 (Lambda: 10)',
        { mode: provisioned, eventSource: { onFailure: 'sqs' } },
        ['onFailure'],
      ],
      [
        'provisioned, a destination and a finite retryAttempts',
        { mode: provisioned, eventSource: { onFailure: 's3', retryAttempts: 10_000 } },
        ['onFailure', 'retryAttempts'],
      ],
      [
        'provisioned, a destination and a finite maxRecordAgeSeconds',
        { mode: provisioned, eventSource: { onFailure: 'sns', retryAttempts: 100, maxRecordAgeSeconds: 7_200 } },
        ['onFailure', 'retryAttempts', 'maxRecordAgeSeconds'],
      ],
      [
        'provisioned, a Kafka-topic destination',
        { mode: provisioned, eventSource: { onFailure: { kafkaTopic: 'orders-dlt' } } },
        ['onFailure'],
      ],
      ['on-demand, an SQS destination', { eventSource: { onFailure: 'sqs' } }, ['onFailure']],
      ['on-demand, an S3 destination', { eventSource: { onFailure: 's3' } }, ['onFailure']],
    ];
    for (const [title, route, fields] of cases) {
      const issues = issuesOf(withOrders(route));
      expect({ title, paths: issues.map((i) => i.path).sort() }).toEqual({
        title,
        paths: fields.map((f) => `routes[0].eventSource.${f}`).sort(),
      });
      for (const issue of issues) {
        expect(issue.message).toMatch(/^route "orders": .*\[esm-retries-outlast-runtime\]$/);
        // Why, and the way out.
        expect(issue.message).toContain('retry.maxAttempts (5) attempts');
        expect(issue.message).toContain('an open breaker or a DynamoDB outage count no attempt');
        expect(issue.message).toContain('eventSource.acceptSkippedBatches: true');
      }
      const accepted = { ...route, eventSource: { ...route.eventSource, acceptSkippedBatches: true } };
      expect(parseBridgeConfig(withOrders(accepted)).routes[0]?.eventSource.acceptSkippedBatches).toBe(true);
    }
    // Provisioned mode with no destination and both limits at -1 needs no opt-in: nothing is ever skipped.
    const safe = parseBridgeConfig(
      withOrders({ mode: provisioned, eventSource: { retryAttempts: -1, maxRecordAgeSeconds: -1 } }),
    );
    expect(safe.routes[0]?.eventSource.acceptSkippedBatches).toBeUndefined();
  });

  test('every rule has a row in the table', () => {
    const covered = new Set(Object.values(INVALID).map((c) => c.rule));
    expect([...Object.values(Rule)].filter((r) => !covered.has(r))).toEqual([]);
  });

  test('a handler path that does not name a module in functions/handlers/, with the route and what to write', () => {
    const message = (handler: string) => issuesOf(withSecondRoute({ handler }))[0]?.message;
    expect(message('functions/handlers/missing.ts')).toBe(
      'route "payments": handler "missing.ts" not found: there is no functions/handlers/missing.ts [handler-exists]',
    );
    for (const outside of [
      'functions/runtime/processor.ts',
      'functions/handlers/../runtime/processor.ts',
      '../infra/app.ts',
      '/etc/handler.ts',
      'infra/app.ts',
    ]) {
      expect(message(outside)).toMatch(
        /^route "payments": handler ".*" is outside functions\/handlers\/; give the module's path there \("orders\.ts"\) or from the project root \("functions\/handlers\/orders\.ts"\) \[handler-in-functions-handlers\]$/,
      );
    }
    expect(issuesOf(withOrders({ handler: 'functions/handlers/orders.json' }))[0]).toMatchObject({
      path: 'routes[0].handler',
      message: expect.stringContaining('"functions/handlers/orders.ts"'),
    });
  });

  test('shape errors, with the offending path', () => {
    const issues = issuesOf({ ...baseConfig(), routes: [{ name: 'Orders', topic: 'orders' }] });
    expect(issues.map((i) => i.path)).toEqual(expect.arrayContaining(['routes[0].name', 'routes[0].handler']));
    expect(issuesOf({ ...baseConfig(), extra: true }).map((i) => i.path)).toContain('(root)');
  });

  test('breaker settings out of range, unknown, or with a cap below the first open time', () => {
    const paths = (breaker: unknown) =>
      issuesOf(withOrders({ breaker } as never)).map((i) => `${i.path}: ${i.message}`);
    expect(paths({ failureRateThreshold: 0 })).toEqual([
      expect.stringMatching(/^routes\[0\]\.breaker\.failureRateThreshold: /),
    ]);
    expect(paths({ halfOpenProbes: 0 })).toEqual([expect.stringMatching(/^routes\[0\]\.breaker\.halfOpenProbes: /)]);
    expect(paths({ keyBy: 'topic' })).toEqual([expect.stringMatching(/^routes\[0\]\.breaker\.keyBy: /)]);
    expect(paths({ opensAfter: 3 })).toEqual([expect.stringMatching(/^routes\[0\]\.breaker: .*opensAfter/)]);
    expect(paths({ openMs: 10_000, maxOpenMs: 5_000 })).toEqual([
      'routes[0].breaker: breaker.maxOpenMs must be >= breaker.openMs',
    ]);
  });
});

describe('loadBridgeConfig', () => {
  test('loads infra/bridge.config.ts by default, resolved from the module, not the working directory', async () => {
    // Whatever routes the user has added to it since (`npm run new-route` does): only what holds for any config.
    const cwd = process.cwd();
    process.chdir(tmpdir());
    try {
      expect(DEFAULT_CONFIG_PATH).toMatch(/infra\/bridge\.config\.ts$/);
      const config = await loadBridgeConfig(undefined, { env: {} });
      expect(config).toEqual(await loadBridgeConfig(DEFAULT_CONFIG_PATH, { env: {} }));
      expect(config.routes.length).toBeGreaterThan(0);
      for (const route of config.routes) expect(existsSync(resolveHandlerEntry(route))).toBe(true);
    } finally {
      process.chdir(cwd);
    }
  });

  test('the default config as shipped (a frozen copy): the orders and payments example routes on MSK', async () => {
    const config = await loadBridgeConfig(SHIPPED_CONFIG, { env: {} });
    expect(config.routes.map((r) => [r.name, r.topic, r.handler])).toEqual([
      ['orders', 'orders', 'orders.ts'],
      ['payments', 'payments', 'payments.ts'],
    ]);
    expect(config.source).toEqual({ kind: 'msk', clusterArn: PLACEHOLDER_CLUSTER_ARN, auth: 'iam' });
    expect(config.routes[0]?.tables).toEqual([{ name: 'orders', partitionKey: 'orderId', env: 'ORDERS_TABLE_NAME' }]);
    expect(config.routes[1]?.tables.map((t) => [t.name, t.partitionKey, t.env])).toEqual([
      ['accounts', 'accountId', 'ACCOUNTS_TABLE_NAME'],
      ['ledger', 'txId', 'LEDGER_TABLE_NAME'],
    ]);
  });

  test('the default config takes the cluster ARN from CDK context before the environment', async () => {
    const fromEnv = await loadBridgeConfig(SHIPPED_CONFIG, { env: { BRIDGE_MSK_CLUSTER_ARN: CLUSTER_ARN } });
    expect(fromEnv.source.kind === 'msk' && fromEnv.source.clusterArn).toBe(CLUSTER_ARN);
    const other = CLUSTER_ARN.replace('events', 'other');
    const fromContext = await loadBridgeConfig(SHIPPED_CONFIG, {
      env: { BRIDGE_MSK_CLUSTER_ARN: CLUSTER_ARN },
      context: (key) => (key === 'mskClusterArn' ? other : undefined),
    });
    expect(fromContext.source.kind === 'msk' && fromContext.source.clusterArn).toBe(other);
  });

  test('loads a .json file from a path, BRIDGE_CONFIG or -c bridgeConfig', async () => {
    const file = writeTemp('bridge.json', JSON.stringify({ ...baseConfig(), name: 'from-json' }));
    expect((await loadBridgeConfig(file)).name).toBe('from-json');
    expect((await loadBridgeConfig(undefined, { env: { BRIDGE_CONFIG: file } })).name).toBe('from-json');
    const fromContext = await loadBridgeConfig(undefined, {
      env: { BRIDGE_CONFIG: DEFAULT_CONFIG_PATH },
      context: (key) => (key === 'bridgeConfig' ? file : undefined),
    });
    expect(fromContext.name).toBe('from-json');
  });

  test('loads a .ts file exporting the config or a function of the context', async () => {
    const plain = writeTemp(
      'plain.config.ts',
      `export default ${JSON.stringify({ ...baseConfig(), name: 'from-ts' })};`,
    );
    expect((await loadBridgeConfig(plain)).name).toBe('from-ts');
    const fn = writeTemp(
      'fn.config.ts',
      `const base = ${JSON.stringify(baseConfig())};\n` +
        `export default (ctx: { lookup(k: string, e: string): string | undefined }) => ({ ...base, name: ctx.lookup('n', 'NAME') ?? 'fallback' });`,
    );
    expect((await loadBridgeConfig(fn, { env: { NAME: 'from-env' } })).name).toBe('from-env');
  });

  test('a .json file is validated by the same schema, and the error names the file and the path', async () => {
    const bad = baseConfig();
    (bad.routes as Routes)[1] = {
      ...((bad.routes as Routes)[1] as RouteInput),
      batchSize: 'many' as unknown as number,
    };
    const file = writeTemp('bad.json', JSON.stringify(bad));
    await expect(loadBridgeConfig(file)).rejects.toThrow(/bad\.json[\s\S]*routes\[1\]\.batchSize/);
    const broken = writeTemp('broken.json', '{ "name": ');
    await expect(loadBridgeConfig(broken)).rejects.toThrow(/broken\.json[\s\S]*not JSON/);
    await expect(loadBridgeConfig(join(tempDir, 'absent.json'))).rejects.toThrow(BridgeConfigError);
  });

  test('formats issue paths like routes[1].tables[0].env', () => {
    expect(formatIssuePath(['routes', 1, 'tables', 0, 'env'])).toBe('routes[1].tables[0].env');
    expect(formatIssuePath([])).toBe('(root)');
  });
});

describe('helpers for the runtime and the local tools', () => {
  const config = parseBridgeConfig(baseConfig());

  test('localResourceNames gives the names the local tools use', () => {
    expect(localResourceNames(config)).toEqual({
      idempotencyTable: 'bridge-test-idempotency',
      deadLetterQueues: { orders: 'bridge-test-orders-dlq', payments: 'bridge-test-payments-dlq' },
      onFailureQueues: {},
      retryQueues: {},
      tables: { orders: 'bridge-test-orders', accounts: 'bridge-test-accounts', ledger: 'bridge-test-ledger' },
      consumerGroups: { orders: 'bridge-test-orders', payments: 'bridge-test-payments' },
    });
    // A route with an on-failure destination gets a local queue standing in for it, whatever its kind.
    const withDestination = parseBridgeConfig({
      ...baseConfig(),
      routes: (baseConfig().routes ?? []).map((r, i) =>
        i === 0 ? { ...r, eventSource: { onFailure: 's3', acceptSkippedBatches: true } } : r,
      ),
    });
    expect(localResourceNames(withDestination).onFailureQueues).toEqual({ orders: 'bridge-test-orders-on-failure' });
    // A tool's namespace cannot name a route's resources.
    expect(() => localResourceNames(config, 'invoke')).toThrow(/could collide/);
    expect(localResourceNames(config, '_invoke').idempotencyTable).toBe('bridge-test-_invoke-idempotency');
    // A route that parks records gets its retry queue.
    const parking = parseBridgeConfig(withOrders({ retry: { park: { delaysSeconds: [30] } } }));
    expect(localResourceNames(parking).retryQueues).toEqual({ orders: 'bridge-test-orders-retry' });
  });

  test('resolveHandlerEntry gives the absolute path of an existing handler module', () => {
    for (const route of config.routes) {
      const entry = resolveHandlerEntry(route);
      expect(isAbsolute(entry)).toBe(true);
      expect(entry).toMatch(new RegExp(`functions/handlers/${route.handler}$`));
      expect(existsSync(entry)).toBe(true);
    }
  });

  test('routeSettingsFor parses with the runtime schema; partial batch responses need provisioned mode', () => {
    const onDemand = routeSettingsFor(config, config.routes[0] as never);
    expect(RouteSettings.parse(onDemand)).toEqual(onDemand);
    expect(onDemand.partialBatchResponse).toBe(false);
    // The breaker's defaults reach the runtime from the config, and so do a route's own values.
    expect(onDemand.breaker).toEqual(RouteSettings.parse({}).breaker);
    expect(onDemand.breaker).toMatchObject({ enabled: true, failureRateThreshold: 0.5, keyBy: 'route' });
    const tuned = parseBridgeConfig(withOrders({ breaker: { enabled: false, openMs: 1_000, halfOpenProbes: 1 } }));
    expect(routeSettingsFor(tuned, tuned.routes[0] as never).breaker).toMatchObject({
      enabled: false,
      openMs: 1_000,
      maxOpenMs: 60_000,
      halfOpenProbes: 1,
    });
    const prov = parseBridgeConfig(
      withOrders({
        mode: provisioned,
        eventSource: { reportBatchItemFailures: true },
        partitionConcurrency: 4,
        logPayloads: true,
      }),
    );
    expect(routeSettingsFor(prov, prov.routes[0] as never)).toMatchObject({
      partialBatchResponse: true,
      partitionConcurrency: 4,
      logPayloads: true,
    });
  });

  test('localRouteEnvironment sets the DESIGN §5 contract with the local names', () => {
    const env = localRouteEnvironment(config, config.routes[1] as never, 'http://localhost:9324/q/dlq');
    expect(env).toMatchObject({
      BRIDGE_ROUTE: 'payments',
      IDEMPOTENCY_TABLE_NAME: 'bridge-test-idempotency',
      DLQ_URL: 'http://localhost:9324/q/dlq',
      METRICS_NAMESPACE: 'KafkaLambdaBridge',
      LOG_LEVEL: 'INFO',
      ACCOUNTS_TABLE_NAME: 'bridge-test-accounts',
      LEDGER_TABLE_NAME: 'bridge-test-ledger',
    });
    expect(RouteSettings.parse(JSON.parse(env.BRIDGE_ROUTE_SETTINGS as string)).retry.maxAttempts).toBe(5);
  });
});
