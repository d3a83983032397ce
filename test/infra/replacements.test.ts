import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { addBridge } from '../../infra/bridgeApp.ts';
import { parseBridgeConfig } from '../../infra/config/load.ts';
import type { BridgeConfigInput } from '../../infra/config/schema.ts';
import {
  findMappingReplacements,
  formatReplacements,
  type MappingReplacement,
  mappingRoutes,
  parseCompareWith,
  parseRouteList,
  unaccepted,
} from '../../infra/replacements.ts';
import type { BridgeStack } from '../../infra/stacks/BridgeStack.ts';
import { baseConfig, CDK_CLI, CLUSTER_ARN, offlineEnv, withOrders } from './helpers.ts';
import { VARIANTS } from './variants.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ESM = 'AWS::Lambda::EventSourceMapping';

type Routes = NonNullable<BridgeConfigInput['routes']>;
type RouteInput = Routes[number];
const [ORDERS, PAYMENTS] = baseConfig().routes as [RouteInput, RouteInput];
const onCluster = (clusterArn: string): BridgeConfigInput => ({
  ...baseConfig(),
  source: { kind: 'msk', clusterArn, auth: 'iam' },
});

type Built = { readonly stack: BridgeStack; readonly template: Record<string, unknown> };
/** The bridge stack for a config (stage "test", no bundling, no cdk-nag), optionally with routes detached. */
const build = (input: BridgeConfigInput, detach: readonly string[] = []): Built => {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = addBridge(app, parseBridgeConfig(input), {
    stage: 'test',
    nag: false,
    env: {},
    detachedRoutes: detach,
  });
  return { stack, template: Template.fromStack(stack).toJSON() };
};

const base = build(baseConfig());
const compare = (next: Built, previous: Built = base): MappingReplacement[] =>
  findMappingReplacements(previous.template, next.template, { routes: mappingRoutes(next.stack) });
const changesOf = (replacements: readonly MappingReplacement[]) =>
  replacements.map(({ route, topic, changes }) => ({
    route,
    topic,
    changes: changes.map(({ property, before, after }) => ({ property, before, after })),
  }));
const message = (replacements: readonly MappingReplacement[]) =>
  formatReplacements(replacements, { stackName: 'bridge-test-test', comparedWith: 'cdk.out' });

describe('findMappingReplacements on synthesized templates', () => {
  test('a changed consumer group: the route, the values, and the two steps', () => {
    const found = compare(build(withOrders({ consumerGroupId: 'orders-v2' })));
    expect(changesOf(found)).toEqual([
      {
        route: 'orders',
        topic: 'orders',
        changes: [{ property: 'ConsumerGroupId', before: 'bridge-test-test-orders', after: 'orders-v2' }],
      },
    ]);
    const text = message(found);
    expect(text).toContain('route "orders" (topic orders, OrdersRouteEventSourceMapping');
    expect(text).toContain('ConsumerGroupId "bridge-test-test-orders" -> "orders-v2"');
    expect(text).toContain('1. npm run deploy -- -c detachEventSource=orders');
    expect(text).toContain('2. npm run deploy');
    expect(text).toContain('consumer group "orders-v2" starts at StartingPosition TRIM_HORIZON');
    expect(text).toContain('-c acceptReplacement=orders');
    expect(text).toContain('-c compareWith=none');
  });

  test('a changed starting position, and why it alone does not move a group with committed offsets', () => {
    const found = compare(build(withOrders({ startingPosition: 'LATEST' })));
    expect(changesOf(found)).toEqual([
      {
        route: 'orders',
        topic: 'orders',
        changes: [{ property: 'StartingPosition', before: 'TRIM_HORIZON', after: 'LATEST' }],
      },
    ]);
    const text = message(found).replaceAll(/\n\s+/g, ' ');
    expect(text).toContain('Lambda ignores StartingPosition when consumer group "bridge-test-test-orders" already has');
    expect(text).toContain('https://docs.aws.amazon.com/lambda/latest/dg/kafka-consumer-group-id.html');
    expect(text).toContain('--reset-offsets --group bridge-test-test-orders --topic orders');
  });

  test('a timestamp start: an absent property that appears is a change', () => {
    const found = compare(
      build(withOrders({ startingPosition: 'AT_TIMESTAMP', startingPositionTimestamp: 1_700_000_000 })),
    );
    expect(changesOf(found)[0]?.changes).toEqual([
      { property: 'StartingPosition', before: 'TRIM_HORIZON', after: 'AT_TIMESTAMP' },
      { property: 'StartingPositionTimestamp', before: undefined, after: 1_700_000_000 },
    ]);
    expect(message(found)).toContain('StartingPositionTimestamp (unset) -> 1700000000');
  });

  test('another MSK cluster changes the source of every route', () => {
    const otherCluster = CLUSTER_ARN.replace('abcd1234-abcd-cafe', 'ffff0000-abcd-cafe');
    const found = compare(build(onCluster(otherCluster)));
    expect(changesOf(found)).toEqual(
      ['orders', 'payments'].map((route) => ({
        route,
        topic: route,
        changes: [{ property: 'EventSourceArn', before: CLUSTER_ARN, after: otherCluster }],
      })),
    );
    expect(message(found)).toContain('-c detachEventSource=orders,payments');
  });

  test('MSK to self-managed Kafka with the same group: the source changes, the group does not', () => {
    const found = compare(build({ ...baseConfig(), source: VARIANTS.selfManagedScram512Vpc.source }));
    expect(found.map((r) => [r.route, r.changes.map((c) => c.property)])).toEqual([
      ['orders', ['EventSourceArn', 'SelfManagedEventSource']],
      ['payments', ['EventSourceArn', 'SelfManagedEventSource']],
    ]);
    expect(found[0]?.changes[1]?.before).toBeUndefined();
  });

  test('a changed topic (CloudFormation would report it done without applying it)', () => {
    const found = compare(build(withOrders({ topic: 'orders-v2' })));
    expect(changesOf(found)).toEqual([
      {
        route: 'orders',
        topic: 'orders-v2',
        changes: [{ property: 'Topics', before: ['orders'], after: ['orders-v2'] }],
      },
    ]);
  });

  test('mutable settings, a new route and a removed route need nothing', () => {
    const mutable = withOrders({
      batchSize: 500,
      maxBatchingWindowSeconds: 2,
      eventSource: { filters: [{ value: { status: ['PAID'] } }] },
    });
    expect(compare(build(mutable))).toEqual([]);
    expect(compare(build({ ...baseConfig(), routes: [ORDERS] }))).toEqual([]);
    const added = {
      ...ORDERS,
      name: 'refunds',
      topic: 'refunds',
      tables: [{ name: 'refunds', partitionKey: 'refundId', env: 'REFUNDS_TABLE_NAME' }],
    };
    expect(compare(build({ ...baseConfig(), routes: [ORDERS, PAYMENTS, added] }))).toEqual([]);
  });
});

describe('the two steps', () => {
  test('step 1 deploys the route without its mapping; step 2 adds it back with the new value', () => {
    const detached = build(withOrders({ consumerGroupId: 'orders-v2' }), ['orders']);
    const mappings = Object.values(detached.template.Resources as Record<string, { Type: string }>).filter(
      (r) => r.Type === ESM,
    );
    expect(mappings).toHaveLength(1);
    // Only the mapping goes: the function, its queues and its other alarms stay.
    expect(detached.stack.routes.find((r) => r.route.name === 'orders')?.function).toBeDefined();
    expect(mappingRoutes(detached.stack)).toEqual(new Map([[expect.any(String), 'payments']]));
    expect(compare(detached)).toEqual([]);
    expect(compare(build(withOrders({ consumerGroupId: 'orders-v2' })), detached)).toEqual([]);
  });

  test('accepted routes pass', () => {
    const found = compare(build(onCluster(CLUSTER_ARN.replace('-4', '-5'))));
    expect(unaccepted(found, ['orders']).map((r) => r.route)).toEqual(['payments']);
    expect(unaccepted(found, 'all')).toEqual([]);
    expect(unaccepted(found, [])).toHaveLength(2);
  });
});

describe('findMappingReplacements on hand-written templates', () => {
  const mapping = (properties: Record<string, unknown>, path?: string) => ({
    Resources: {
      M: { Type: ESM, Properties: properties, ...(path ? { Metadata: { 'aws:cdk:path': path } } : {}) },
      Q: { Type: 'AWS::SQS::Queue', Properties: { QueueName: 'a' } },
    },
  });

  test('compares content, not key order; intrinsics count; other types and mismatched types are ignored', () => {
    const a = { Topics: ['t'], SelfManagedEventSource: { Endpoints: { KafkaBootstrapServers: ['a:9092', 'b:9092'] } } };
    const reordered = {
      SelfManagedEventSource: { Endpoints: { KafkaBootstrapServers: ['a:9092', 'b:9092'] } },
      Topics: ['t'],
    };
    expect(findMappingReplacements(mapping(a), mapping(reordered))).toEqual([]);
    const refs = findMappingReplacements(
      mapping({ EventSourceArn: { Ref: 'A' } }),
      mapping({ EventSourceArn: { Ref: 'B' } }),
    );
    expect(message(refs)).toContain('EventSourceArn {"Ref":"A"} -> {"Ref":"B"}');
    expect(
      findMappingReplacements({ Resources: { M: { Type: 'AWS::SQS::Queue' } } }, mapping({ Topics: ['u'] })),
    ).toEqual([]);
    expect(findMappingReplacements(undefined, mapping({}))).toEqual([]);
  });

  test('without route names, the route comes from the CDK path, else the logical ID', () => {
    const path = 'bridge-dev/OrdersRoute/EventSource/Mapping/Resource';
    expect(findMappingReplacements(mapping({ Topics: ['a'] }, path), mapping({ Topics: ['b'] }, path))[0]?.route).toBe(
      'OrdersRoute',
    );
    expect(findMappingReplacements(mapping({ Topics: ['a'] }), mapping({ Topics: ['b'] }))[0]?.route).toBe('M');
  });
});

describe('context values', () => {
  test('route lists and compareWith', () => {
    expect(parseRouteList(undefined)).toEqual([]);
    expect(parseRouteList('orders, payments')).toEqual(['orders', 'payments']);
    expect(parseRouteList('true')).toBe('all');
    expect(parseRouteList(true)).toBe('all');
    expect(() => parseRouteList(3)).toThrow(/route names/);
    expect(parseCompareWith(undefined)).toBe('synth');
    expect(parseCompareWith('aws')).toBe('aws');
    expect(parseCompareWith('none')).toBe('none');
    expect(() => parseCompareWith('cdk.out')).toThrow('-c compareWith must be one of synth, aws, none (got "cdk.out")');
  });
});

type CliResult = { status: number | null; stderr: string };
const cdkSynth = (outdir: string, context: readonly string[]): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    const args = [CDK_CLI, 'synth', '--quiet', '--no-notices', '-o', outdir, ...context.flatMap((c) => ['-c', c])];
    const child = spawn(process.execPath, args, { cwd: ROOT, env: offlineEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stderr }));
  });

describe('the cdk CLI', () => {
  test('a synth into an output directory that holds the previous template fails on a new consumer group, and keeps that template', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bridge-replace-'));
    const outdir = join(dir, 'cdk.out');
    const templateFile = join(outdir, 'bridge-test-dev.template.json');
    // The previous synth, here in-process; the CLI must leave it in place for the app to read.
    const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } });
    addBridge(app, parseBridgeConfig(baseConfig()), { stage: 'dev', nag: false, env: {} });
    app.synth();
    const previous = readFileSync(templateFile, 'utf8');
    const config = join(dir, 'bridge.config.json');
    writeFileSync(config, JSON.stringify(withOrders({ consumerGroupId: 'orders-v2' })));

    const failed = await cdkSynth(outdir, [`bridgeConfig=${config}`]);
    expect(failed.status).not.toBe(0);
    expect(failed.stderr).toContain(`compared with ${templateFile}`);
    expect(failed.stderr).toContain('ConsumerGroupId "bridge-test-dev-orders" -> "orders-v2"');
    expect(failed.stderr).toContain('npm run deploy -- -c detachEventSource=orders');
    // Put back, so that running the synth again fails again instead of comparing with the new template.
    expect(readFileSync(templateFile, 'utf8')).toBe(previous);

    // The check off, and the change accepted, each in its own copy of the output directory.
    const copy = join(dir, 'cdk.out.copy');
    cpSync(outdir, copy, { recursive: true });
    const [none, accepted] = await Promise.all([
      cdkSynth(outdir, [`bridgeConfig=${config}`, 'compareWith=none']),
      cdkSynth(copy, [`bridgeConfig=${config}`, 'acceptReplacement=orders']),
    ]);
    expect({ status: none.status, stderr: none.status === 0 ? '' : none.stderr }).toEqual({ status: 0, stderr: '' });
    expect(readFileSync(templateFile, 'utf8')).toContain('"ConsumerGroupId": "orders-v2"');
    expect(accepted.status).toBe(0);
    expect(accepted.stderr).toContain(
      'bridge-test-dev: replacing the event source mappings of orders (-c acceptReplacement)',
    );
  }, 60_000);
});
