import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, CfnResource, type Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { type ParkSettings, RouteSettings } from '../../functions/runtime/settings.ts';
import { addBridge } from '../../infra/bridgeApp.ts';
import { parseBridgeConfig } from '../../infra/config/load.ts';
import type { BridgeConfigInput } from '../../infra/config/schema.ts';
import {
  parkedAgeAlarmSeconds,
  RETRY_CONSUME_ACTIONS,
  RETRY_MAX_CONCURRENCY,
  RETRY_QUEUE_MAX_RECEIVE_COUNT,
} from '../../infra/constructs/RetryQueue.ts';
import {
  actionsOf,
  baseConfig,
  issuesOf,
  policyStatements,
  type Synthesized,
  synthBridge,
  withOrders,
} from './helpers.ts';

type Resource = { Type: string; Properties: Record<string, unknown> };
const resources = (template: Template, type: string): Array<[string, Resource]> =>
  Object.entries(template.findResources(type)) as Array<[string, Resource]>;
const envOf = (template: Template, route: string): Record<string, unknown> => {
  for (const [, fn] of resources(template, 'AWS::Lambda::Function')) {
    const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    if (env.BRIDGE_ROUTE === route) return env;
  }
  throw new Error(`no function for route ${route}`);
};
const functionIdOf = (template: Template, route: string): string => {
  const found = resources(template, 'AWS::Lambda::Function').find(
    ([, fn]) => (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables.BRIDGE_ROUTE === route,
  );
  if (!found) throw new Error(`no function for route ${route}`);
  return found[0];
};
/** The logical id of the L1 resource directly under a construct path such as `OrdersRoute/RetryQueue/Queue`. */
const logicalIdIn = (stack: Stack, path: string, type: string): string => {
  const construct = stack.node
    .findAll()
    .find(
      (c) =>
        c instanceof CfnResource && c.cfnResourceType === type && c.node.path.startsWith(`${stack.node.path}/${path}/`),
    );
  if (!construct) throw new Error(`no ${type} under ${path}`);
  return stack.getLogicalId(construct as CfnResource);
};

const PARK: ParkSettings = { delaysSeconds: [30, 300, 900], ordering: 'key' };
/** orders parks records (with a 90 s timeout, so 6× is visibly 540 s); payments does not. */
const parkingConfig = (): BridgeConfigInput => withOrders({ timeoutSeconds: 90, retry: { park: PARK } });

describe('a route with retry.park', () => {
  let synth: Synthesized;
  let template: Template;
  let retryQueueId: string;
  let retryDlqId: string;

  beforeAll(() => {
    synth = synthBridge(parkingConfig(), { nag: false });
    template = synth.template;
    retryQueueId = logicalIdIn(synth.stack, 'OrdersRoute/RetryQueue/Queue', 'AWS::SQS::Queue');
    retryDlqId = logicalIdIn(synth.stack, 'OrdersRoute/RetryQueue/DeadLetterQueue', 'AWS::SQS::Queue');
  });

  test('a retry queue, encrypted like the DLQ, visibility 6× the function timeout, redriven to its own DLQ', () => {
    // Two route DLQs, the retry queue and its dead-letter queue.
    template.resourceCountIs('AWS::SQS::Queue', 4);
    const queue = template.findResources('AWS::SQS::Queue')[retryQueueId] as Resource;
    expect(queue.Properties).toEqual({
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 4 * 24 * 3600,
      MaximumMessageSize: 256 * 1024,
      VisibilityTimeout: 6 * 90,
      RedrivePolicy: {
        deadLetterTargetArn: { 'Fn::GetAtt': [retryDlqId, 'Arn'] },
        maxReceiveCount: RETRY_QUEUE_MAX_RECEIVE_COUNT,
      },
    });
    expect(RETRY_QUEUE_MAX_RECEIVE_COUNT).toBeGreaterThanOrEqual(5);
    // The DLQ keeps its messages longer than the retry queue (a moved message keeps its first enqueue time).
    const dlq = template.findResources('AWS::SQS::Queue')[retryDlqId] as Resource;
    expect(dlq.Properties).toEqual({
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 14 * 24 * 3600,
      MaximumMessageSize: 256 * 1024,
    });
    // TLS only, for both.
    for (const id of [retryQueueId, retryDlqId]) {
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: id }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 'sqs:*',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
          ]),
        },
      });
    }
  });

  test('an SQS event source mapping on the same function: batchItemFailures, batches of 10, no window', () => {
    // The two Kafka mappings and the retry queue's.
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 3);
    const sqsMappings = resources(template, 'AWS::Lambda::EventSourceMapping').filter(
      ([, m]) => !('Topics' in m.Properties),
    );
    expect(sqsMappings).toHaveLength(1);
    expect(sqsMappings[0]?.[1].Properties).toEqual({
      FunctionName: { Ref: functionIdOf(template, 'orders') },
      EventSourceArn: { 'Fn::GetAtt': [retryQueueId, 'Arn'] },
      BatchSize: 10,
      MaximumBatchingWindowInSeconds: 0,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: RETRY_MAX_CONCURRENCY },
    });
  });

  test('RETRY_QUEUE_URL on the parking function only, and the park settings in BRIDGE_ROUTE_SETTINGS', () => {
    const orders = envOf(template, 'orders');
    expect(orders.RETRY_QUEUE_URL).toEqual({ Ref: retryQueueId });
    expect(RouteSettings.parse(JSON.parse(orders.BRIDGE_ROUTE_SETTINGS as string)).retry.park).toEqual(PARK);
    expect(envOf(template, 'payments').RETRY_QUEUE_URL).toBeUndefined();
  });

  test('IAM: the function sends to and consumes its retry queue, exactly; nothing touches the retry DLQ', () => {
    const statements = policyStatements(template);
    const on = (id: string) =>
      statements.filter((s) => JSON.stringify(s.Resource) === JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] }));
    const retry = on(retryQueueId);
    expect(retry.flatMap(actionsOf).sort()).toEqual(['sqs:SendMessage', ...RETRY_CONSUME_ACTIONS].sort());
    // Not grantConsumeMessages: no ChangeMessageVisibility or GetQueueUrl, which the mapping does not call.
    expect(retry.flatMap(actionsOf)).not.toContain('sqs:ChangeMessageVisibility');
    expect(on(retryDlqId)).toEqual([]);
    // Only the orders role holds them (SQS-managed keys: no KMS grant anywhere for the queue).
    const holders = resources(template, 'AWS::IAM::Policy').filter(([, p]) =>
      JSON.stringify(p.Properties.PolicyDocument).includes(`"${retryQueueId}"`),
    );
    expect(holders).toHaveLength(1);
    expect(JSON.stringify(holders[0]?.[1].Properties.Roles)).toMatch(/OrdersRouteFunctionRole/);
    expect(JSON.stringify(holders[0]?.[1].Properties.PolicyDocument)).not.toMatch(/kms:/);
  });

  test('two alarms named <stack>-orders-…: the oldest parked message, and the retry DLQ', () => {
    const topicId = logicalIdIn(synth.stack, 'Alarms/Topic', 'AWS::SNS::Topic');
    const age = parkedAgeAlarmSeconds({ timeoutSeconds: 90 }, PARK, 5);
    expect(age).toBe(30 + 300 + 900 + 90 + 300);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'bridge-test-test-orders-RetryQueueAge-Warning',
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [retryQueueId, 'QueueName'] } }],
      Statistic: 'Maximum',
      Threshold: age,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: topicId }],
      OKActions: [{ Ref: topicId }],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'bridge-test-test-orders-RetryDeadLetterMessages-Critical',
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [retryDlqId, 'QueueName'] } }],
      Statistic: 'Maximum',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      AlarmActions: [{ Ref: topicId }],
      OKActions: [{ Ref: topicId }],
    });
    const names = resources(template, 'AWS::CloudWatch::Alarm').map(([, a]) => String(a.Properties.AlarmName));
    expect(names.filter((n) => n.includes('-Retry'))).toHaveLength(2);
    expect(names.filter((n) => n.startsWith('bridge-test-test-payments-Retry'))).toEqual([]);
  });

  test('a dashboard row for the parking route: RecordsParked, the retry queue age, depth and its DLQ', () => {
    const [[, dashboard] = []] = resources(template, 'AWS::CloudWatch::Dashboard');
    const body = JSON.stringify(dashboard?.Properties.DashboardBody);
    expect(body).toContain('\\"RecordsParked\\",\\"Route\\",\\"orders\\"');
    expect(body).not.toContain('\\"RecordsParked\\",\\"Route\\",\\"payments\\"');
    for (const title of ['Parked records', 'Retry queue oldest (s)', 'Retry queue depth', 'Retry dead letters']) {
      expect(body).toContain(`\\"title\\":\\"${title}\\"`);
    }
    for (const metric of [
      'ApproximateAgeOfOldestMessage',
      'ApproximateNumberOfMessagesVisible',
      'ApproximateNumberOfMessagesDelayed',
      'ApproximateNumberOfMessagesNotVisible',
    ]) {
      expect(body).toContain(`\\"AWS/SQS\\",\\"${metric}\\",\\"QueueName\\",\\"`);
    }
  });

  test('the retry queue URL is a stack output', () => {
    template.hasOutput('OrdersRetryQueueUrl', { Value: { Ref: retryQueueId } });
    expect(Object.keys(template.findOutputs('*')).filter((o) => o.includes('RetryQueue'))).toEqual([
      'OrdersRetryQueueUrl',
    ]);
  });
});

describe('a route without retry.park', () => {
  test('gets no retry queue, no SQS mapping, no RETRY_QUEUE_URL, no park alarms or row', () => {
    const { template } = synthBridge(baseConfig(), { nag: false });
    template.resourceCountIs('AWS::SQS::Queue', 2);
    for (const [, mapping] of resources(template, 'AWS::Lambda::EventSourceMapping')) {
      expect(mapping.Properties.Topics).toBeDefined();
    }
    for (const route of ['orders', 'payments']) expect(envOf(template, route).RETRY_QUEUE_URL).toBeUndefined();
    const names = resources(template, 'AWS::CloudWatch::Alarm').map(([, a]) => String(a.Properties.AlarmName));
    expect(names.filter((n) => n.includes('-Retry'))).toEqual([]);
    const body = JSON.stringify(resources(template, 'AWS::CloudWatch::Dashboard')[0]?.[1].Properties.DashboardBody);
    expect(body).not.toContain('RecordsParked');
    for (const statement of policyStatements(template)) {
      expect(actionsOf(statement)).not.toContain('sqs:ReceiveMessage');
    }
    expect(Object.keys(template.findOutputs('*')).filter((o) => o.includes('RetryQueue'))).toEqual([]);
  });
});

describe('a detached parking route', () => {
  test('keeps its retry queue mapping: parked records still come back while the Kafka mapping is replaced', () => {
    const app = new App({
      outdir: mkdtempSync(join(tmpdir(), 'bridge-park-')),
      context: { 'aws:cdk:bundling-stacks': [] },
    });
    const stack = addBridge(app, parseBridgeConfig(parkingConfig()), {
      stage: 'test',
      nag: false,
      env: {},
      detachedRoutes: ['orders'],
    });
    const template = Template.fromStack(stack);
    const mappings = resources(template, 'AWS::Lambda::EventSourceMapping');
    expect(mappings.map(([, m]) => ('Topics' in m.Properties ? m.Properties.Topics : 'sqs'))).toEqual(
      expect.arrayContaining([['payments'], 'sqs']),
    );
    expect(mappings).toHaveLength(2);
  });
});

describe('cdk-nag and cfn-lint on the parking config', () => {
  test('no unacknowledged finding, none acknowledged for the retry queues; the template lints clean', () => {
    const { app, outdir } = synthBridge(parkingConfig(), { nag: true });
    app.synth();
    type Report = {
      pluginReports: Array<{
        pluginName: string;
        conclusion: string;
        violations: unknown[];
        suppressedViolations?: Array<{
          ruleName: string;
          reason: string;
          violatingConstructs: Array<{ constructPath: string }>;
        }>;
      }>;
    };
    const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as Report;
    const nag = report.pluginReports.find((r) => r.pluginName === 'AwsSolutions');
    expect(nag?.conclusion).toBe('success');
    expect(nag?.violations).toEqual([]);
    // The retry queue has a redrive and its DLQ is one, so cdk-nag's SQS3 passes both; the role's grants are exact.
    const suppressed = nag?.suppressedViolations ?? [];
    expect(JSON.stringify(suppressed)).not.toMatch(/RetryQueue/);
    for (const { reason } of suppressed) expect(reason.length).toBeGreaterThan(40);

    const version = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' });
    if (version.error || version.status !== 0) throw new Error('cfn-lint is not installed (pip install cfn-lint)');
    const templates = readdirSync(outdir)
      .filter((f) => f.endsWith('.template.json'))
      .map((f) => join(outdir, f));
    expect(templates).toHaveLength(1);
    const lint = spawnSync('cfn-lint', ['--format', 'parseable', '--ignore-checks', 'W3005', '--', ...templates], {
      encoding: 'utf8',
    });
    expect({ status: lint.status, findings: lint.stdout.trim().split('\n').filter(Boolean) }).toEqual({
      status: 0,
      findings: [],
    });
  }, 120_000);
});

describe('config rules about retry.park', () => {
  test('the whole schedule must end before the idempotency items expire [park-within-idempotency-ttl]', () => {
    // 1230 s of delays plus 3 stages of a 60 s timeout: 1410 s.
    const issues = issuesOf(withOrders({ retry: { park: PARK }, idempotency: { ttlSeconds: 1410 } }));
    expect(issues).toEqual([
      {
        path: 'routes[0].retry.park.delaysSeconds',
        message: expect.stringMatching(
          /^route "orders": retry\.park keeps a record parked up to 1410 s .*idempotency\.ttlSeconds \(1410\).*lost.*\[park-within-idempotency-ttl\]$/,
        ),
      },
    ]);
    expect(parseBridgeConfig(withOrders({ retry: { park: PARK }, idempotency: { ttlSeconds: 1411 } }))).toBeTruthy();
    // The defaults (8 days of TTL) hold any schedule: at most 10 × 900 s plus 10 timeouts of 840 s.
    expect(
      parseBridgeConfig(
        withOrders({ timeoutSeconds: 840, retry: { park: { delaysSeconds: Array.from({ length: 10 }, () => 900) } } }),
      ).routes[0]?.retry.park,
    ).toEqual({ delaysSeconds: Array.from({ length: 10 }, () => 900), ordering: 'key' });
  });

  test('a side table may not take RETRY_QUEUE_URL, the retry queue variable [table-env]', () => {
    const issues = issuesOf(
      withOrders({ tables: [{ name: 'orders', partitionKey: 'orderId', env: 'RETRY_QUEUE_URL' }] }),
    );
    expect(issues.map((i) => [i.path, /\[table-env\]$/.test(i.message)])).toEqual([['routes[0].tables[0].env', true]]);
  });
});
