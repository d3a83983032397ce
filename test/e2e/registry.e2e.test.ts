// Registry-framed records end to end: `load --format avro|protobuf|json-schema` registers the route's schema in the local registry
// (Apicurio, started on demand) and produces Confluent-framed records; the local bridge invokes a route that decodes
// them through the registry and its zod schema. Poison (bytes with no framing) is dead-lettered; reconcile accounts
// for every record. And the registry stopped mid-run: the batches that need a schema it has not served yet fail as
// transient, nothing is dead-lettered for it, and once it is back every record is processed exactly once.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import protobuf from 'protobufjs';
import { OrderEvent } from '../../functions/handlers/orders.ts';
import { frameConfluent, writeMessageIndexes } from '../../functions/runtime/registry/wire.ts';
import { resolveHandlerEntry } from '../../infra/config/index.ts';
import type { ReconcileReport } from '../../scripts/bridge/reconcileRoute.ts';
import type { RouteSnapshot } from '../../scripts/bridge/stats.ts';
import { createProducer, ensureTopics } from '../../scripts/lib/kafka.ts';
import { framedEncoder, registerSchema, registrySchemaOf } from '../../scripts/lib/registryTraffic.ts';
import { localPaths } from '../../scripts/local/config.ts';
import {
  ensureRegistry,
  localRegistryUrl,
  REGISTRY_DATA_DIR_ENV,
  registryAnswers,
  registryPorts,
  stopRegistry,
} from '../../scripts/local/registry.ts';
import { ROOT, runScript } from '../helpers/cli.ts';
import { drainRoute, endpointEnv, sharedEndpoints, waitFor } from './harness.ts';

const id = randomUUID().slice(0, 6);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-e2e-'));
const configPath = path.join(dir, 'bridge.config.json');
const endpoints = sharedEndpoints();
const HOOK = path.join(ROOT, 'test/e2e/handlerOverride.ts');
const ORDERS_HANDLER = resolveHandlerEntry({ handler: 'orders.ts' });
const env = {
  ...endpointEnv(endpoints),
  E2E_HANDLER_OVERRIDES: JSON.stringify({
    avro: { replaces: ORDERS_HANDLER, module: path.join(ROOT, 'test/e2e/avroHandler.ts') },
    protobuf: { replaces: ORDERS_HANDLER, module: path.join(ROOT, 'test/e2e/protobufHandler.ts') },
    'json-schema': { replaces: ORDERS_HANDLER, module: path.join(ROOT, 'test/e2e/jsonSchemaHandler.ts') },
    'proto-file': { replaces: ORDERS_HANDLER, module: path.join(ROOT, 'test/e2e/protoFileHandler.ts') },
    outage: { replaces: ORDERS_HANDLER, module: path.join(ROOT, 'test/e2e/avroHandler.ts') },
  }),
};
/** What avroHandler.ts and protobufHandler.ts count per decoded record (their modules make a registry client at import). */
const DECODED_METRIC = 'DecodedOrders';
const topicOf = (route: string) => `e2e-reg-${id}-${route}`;
/** Whether a registry of ours answered before this file ran: it is left running (in memory) afterwards. */
const registryWasUp = fs.existsSync(localPaths().pidFile('registry'));

// One config for the file: each route its own topic; locally the tools put the local registry in the URL's place.
fs.writeFileSync(
  configPath,
  JSON.stringify({
    name: `e2e-reg-${id}`,
    source: {
      kind: 'self-managed',
      bootstrapServers: endpoints.brokers,
      auth: 'sasl-scram-512',
      secretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-abc',
    },
    routes: ['avro', 'protobuf', 'json-schema', 'proto-file', 'outage'].map((name) => ({
      name,
      topic: topicOf(name),
      handler: 'orders.ts',
      registry: { kind: 'confluent', url: 'https://registry.example.com/apis/ccompat/v7' },
    })),
  }),
);

afterAll(async () => {
  await stopRegistry();
  if (registryWasUp) await ensureRegistry({ env: { ...process.env, [REGISTRY_DATA_DIR_ENV]: '' } });
  fs.rmSync(dir, { recursive: true, force: true });
}, 180_000);

const summaryOf = (stdout: string) =>
  JSON.parse(stdout.trim().split('\n').at(-1) as string) as { sent: number; byKind: { poison: number } };

const reconcile = async (route: string): Promise<ReconcileReport> => {
  const result = await runScript('scripts/reconcile.ts', ['--route', route, '--config', configPath], env);
  expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr }).toEqual({ code: 0, stderr: '' });
  return JSON.parse(result.stdout) as ReconcileReport;
};

describe.each([
  ['avro', 'avro'],
  ['protobuf', 'protobuf'],
  ['json-schema', 'json-schema'],
] as const)('load --format %s', (route, format) => {
  test('→ Kafka → bridge → a route decoding through the registry: decoded, poison dead-lettered, nothing missing', async () => {
    const load = await runScript(
      'scripts/load.ts',
      ['--route', route, '--format', format, '--rate', '150', '--duration', '2', '--duplicates', '0', '--poison', '3'],
      { ...env, BRIDGE_CONFIG: configPath },
    );
    expect({ code: load.code, stderr: load.code === 0 ? '' : load.stderr }).toEqual({ code: 0, stderr: '' });
    const summary = summaryOf(load.stdout);
    expect(summary.sent).toBeGreaterThan(100);

    const final = await drainRoute({ configPath, route, records: summary.sent, env, hook: HOOK, timeoutMs: 120_000 });
    const events = summary.sent - summary.byKind.poison;
    expect(final).toMatchObject({
      processed: events,
      deadLettered: summary.byKind.poison,
      custom: { [DECODED_METRIC]: events },
    });
    expect(await reconcile(route)).toMatchObject({ records: summary.sent, missing: 0, pending: 0 });
  });
});

test('Protobuf with several messages, a nested type and a reference: each record decodes to the message its indexes name', async () => {
  const route = 'proto-file';
  const { url } = await ensureRegistry();
  const fixture = (name: string) => fs.readFileSync(path.join(ROOT, 'test/fixtures/registry', name), 'utf8');
  await registerSchema(url, `common-${id}.proto`, { schemaType: 'PROTOBUF', schema: fixture('common.proto') });
  const schemaId = await registerSchema(url, `${topicOf(route)}-value`, {
    schemaType: 'PROTOBUF',
    schema: fixture('orders.proto'),
    references: [{ name: 'common.proto', subject: `common-${id}.proto`, version: 1 }],
  });
  const root = new protobuf.Root();
  protobuf.parse(fixture('common.proto'), root, { keepCase: true });
  protobuf.parse(fixture('orders.proto'), root, { keepCase: true });
  const framed = (indexes: number[], type: string, value: object) => {
    const message = root.lookupType(type);
    return Buffer.concat([
      frameConfluent(schemaId, writeMessageIndexes(indexes)),
      message.encode(message.fromObject(value)).finish(),
    ]);
  };
  const perKind = 20;
  const values = Array.from({ length: perKind }, (_, i) => [
    framed([1], 'example.orders.Order', {
      order_id: `o-${i}`,
      total: { currency: 'EUR', cents: 100 + i },
      lines: [{ sku: `s-${i}`, quantity: i + 1 }],
    }),
    framed([1, 0, 0], 'example.orders.Order.Line.Discount', { code: `d-${i}` }),
    // [0], the first message, is written as the one-byte shorthand.
    framed([0], 'example.orders.Customer', { id: `c-${i}`, name: `Customer ${i}` }),
  ]).flat();
  await ensureTopics(endpoints.brokers, [{ topic: topicOf(route), partitions: 3 }]);
  const producer = createProducer(endpoints.brokers, { clientId: `e2e-reg-proto-file-${id}` });
  try {
    await producer.send({
      messages: values.map((value, i) => ({ topic: topicOf(route), key: Buffer.from(`k${i}`), value })),
    });
  } finally {
    await producer.close();
  }

  const final = await drainRoute({ configPath, route, records: values.length, env, hook: HOOK, timeoutMs: 120_000 });
  expect(final).toMatchObject({
    processed: values.length,
    deadLettered: 0,
    custom: { DecodedOrder: perKind, DecodedDiscount: perKind, DecodedCustomer: perKind },
  });
});

/** The bridge for one route as a child process, its latest progress snapshot kept. */
const startBridge = (route: string) => {
  let latest: RouteSnapshot | undefined;
  const output: string[] = [];
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...['--import', HOOK, path.join(ROOT, 'scripts/bridge/cli.ts')],
      ...['--config', configPath, '--route', route, '--json', '--progress-interval', '1', '--handler-logs', 'none'],
    ],
    { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    if (!line.startsWith('{')) return;
    const message = JSON.parse(line) as { type: string } & RouteSnapshot;
    if ((message.type === 'progress' || message.type === 'final') && message.route === route) latest = message;
  });
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
    output.push(line);
    if (output.length > 200) output.shift();
  });
  return {
    snapshot: () => latest,
    output: () => output.join('\n'),
    waitFor: (what: string, check: (s: RouteSnapshot) => boolean, timeoutMs: number) =>
      waitFor(what, () => latest !== undefined && check(latest), timeoutMs).catch((error: Error) => {
        throw new Error(`${error.message}\nlast progress: ${JSON.stringify(latest)}\n${output.join('\n')}`);
      }),
    stop: async () => {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 30_000).unref())]);
      child.kill('SIGKILL');
    },
  };
};

test('the registry stopped mid-run: transient failures, nothing dead-lettered, then every record exactly once', async () => {
  const route = 'outage';
  /** Records produced while the registry is down, under a schema the container has not fetched. */
  const during = 60;
  const timings: Record<string, number> = {};
  const timed = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    try {
      return await work();
    } finally {
      timings[what] = Date.now() - started;
    }
  };
  // A registry that keeps its schemas across a restart, as a production one does: the ids in the records stay valid.
  const registryEnv = { ...env, [REGISTRY_DATA_DIR_ENV]: path.join(dir, 'registry-data') };
  const url = localRegistryUrl(registryPorts());
  const registry = async (command: 'up' | 'down') => {
    const result = await timed(`registry ${command}`, () =>
      runScript('scripts/local/registry.ts', [command], registryEnv),
    );
    expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr }).toEqual({ code: 0, stderr: '' });
  };
  await stopRegistry();
  await registry('up');

  // Before the outage: records under the route's schema, decoded (and so the schema cached in the container).
  const load = await runScript(
    'scripts/load.ts',
    ['--route', route, '--format', 'avro', '--rate', '100', '--duration', '1', '--duplicates', '0', '--poison', '0'],
    { ...env, BRIDGE_CONFIG: configPath },
  );
  expect({ code: load.code, stderr: load.code === 0 ? '' : load.stderr }).toEqual({ code: 0, stderr: '' });
  const before = summaryOf(load.stdout).sent;
  expect(before).toBeGreaterThan(50);
  const bridge = startBridge(route);
  try {
    await timed('drain before the outage', () =>
      bridge.waitFor(`${before} records processed`, (s) => s.processed === before && s.lag === 0, 120_000),
    );

    // A second schema the container has never fetched, registered while the registry is up; then the registry stops.
    const v2 = registrySchemaOf(OrderEvent, 'avro', 'outageOrderV2');
    const v2Id = await registerSchema(url, `${topicOf(route)}-v2-value`, v2);
    await registry('down');
    expect(await registryAnswers(url)).toBe(false);

    const encode = framedEncoder(v2Id, v2);
    const producer = createProducer(endpoints.brokers, { clientId: `e2e-reg-outage-${id}` });
    try {
      await producer.send({
        messages: Array.from({ length: during }, (_, i) => ({
          topic: topicOf(route),
          key: Buffer.from(`outage-${id}-${i}`),
          value: encode({
            orderId: `outage-${id}-${i}`,
            status: 'PAID',
            version: 1,
            updatedAt: new Date().toISOString(),
          }),
        })),
      });
    } finally {
      await producer.close();
    }

    // The batches naming the new schema fail as the event source would see it (a failed invocation, redelivered),
    // and not one record is dead-lettered or processed meanwhile.
    await timed('transient failures seen', () =>
      bridge.waitFor('two failed invocations while the registry is down', (s) => s.failedInvocations >= 2, 120_000),
    );
    expect(bridge.snapshot()).toMatchObject({ processed: before, deadLettered: 0 });

    await registry('up');
    await timed('drain after the outage', () =>
      bridge.waitFor(
        `${before + during} records processed`,
        (s) => s.processed === before + during && s.lag === 0 && s.committed >= before + during,
        120_000,
      ),
    );
    expect(bridge.snapshot()).toMatchObject({
      processed: before + during,
      deadLettered: 0,
      duplicates: 0,
      custom: { [DECODED_METRIC]: before + during },
    });
    expect(bridge.snapshot()?.redelivered).toBeGreaterThan(0);
  } finally {
    await bridge.stop();
  }
  expect(await reconcile(route)).toMatchObject({
    records: before + during,
    completed: before + during,
    deadLettered: 0,
    inProgress: 0,
    missing: 0,
    pending: 0,
    deadLetterQueue: { messages: 0 },
  });
  process.stderr.write(`registry outage timings (ms): ${JSON.stringify(timings)}\n`);
});
