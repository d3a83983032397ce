// A new route from nothing to live traffic, as the README's three commands promise, with no hand-written file:
// `new-route`, `invoke --generate | invoke --event -`, a `load` run, the bridge, `reconcile`, then `npm start`. The invoke runs a
// sample at the same coordinates as the first real record, and the bridge must still process that record.

import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import { loadBridgeConfig } from '../../infra/config/index.ts';
import { ROOT, runScript } from '../helpers/cli.ts';
import { CLUSTER_ARN, synthBridge } from '../infra/helpers.ts';
import { demoSummary, drainRoute, endpointEnv, sharedEndpoints } from './harness.ts';

const id = randomUUID().slice(0, 6);
const name = `widgets-${id}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'new-route-'));
const configPath = path.join(dir, 'bridge.config.json');
/** What new-route writes into the repository for a route: removed after the tests, whatever happens. */
const filesOf = (route: string) => [
  path.join(ROOT, 'functions/handlers', `${route}.ts`),
  path.join(ROOT, 'events', `${route}.json`),
  path.join(ROOT, 'test/functions/handlers', `${route}.test.ts`),
];
const scaffolded = filesOf(name);
/** The routes the second test scaffolds into a .ts config, one per mode. */
const gadgets = `gadgets-${id}`;
const ledgers = `ledgers-${id}`;

const endpoints = sharedEndpoints();
const env = endpointEnv(endpoints);
const run = (script: string, args: string[], input?: string) =>
  runScript(script, [...args, '--config', configPath], env, input);

afterAll(() => {
  for (const file of [...scaffolded, ...filesOf(gadgets), ...filesOf(ledgers)]) fs.rmSync(file, { force: true });
  fs.rmSync(dir, { recursive: true, force: true });
});

test('new-route, invoke --generate | invoke, load, the bridge and reconcile: every record produced is accounted for', async () => {
  // A config of the user's own, with one route already (new-route adds the second).
  fs.writeFileSync(
    configPath,
    JSON.stringify({
      name: `e2e-new-${id}`,
      source: {
        kind: 'self-managed',
        bootstrapServers: endpoints.brokers,
        auth: 'sasl-scram-512',
        secretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-abc',
      },
      routes: [{ name: 'audit', topic: `e2e-new-${id}-audit`, handler: 'audit.ts' }],
    }),
  );

  const scaffold = await run('scripts/newRoute.ts', [name, '--topic', `e2e-new-${id}-widgets`]);
  expect({ code: scaffold.code, stderr: scaffold.stderr }).toEqual({ code: 0, stderr: '' });
  for (const file of scaffolded) expect(fs.existsSync(file)).toBe(true);
  expect(JSON.parse(fs.readFileSync(configPath, 'utf8')).routes.map((r: { name: string }) => r.name)).toEqual([
    'audit',
    name,
  ]);

  // A sample event, made from the route's schema, straight into the handler: processed, in invoke's own state.
  const generated = await run('scripts/invoke.ts', ['--route', name, '--generate']);
  expect(generated.code).toBe(0);
  const invoked = await run('scripts/invoke.ts', ['--route', name, '--event', '-'], generated.stdout);
  expect(invoked.code).toBe(0);
  expect(JSON.parse(invoked.stdout).summary).toMatchObject({ received: 1, processed: 1, deadLettered: 0 });

  // Real traffic made from the schema: no duplicates or poison, so every record must be processed once.
  const load = await run('scripts/load.ts', [
    '--route',
    name,
    '--rate',
    '200',
    '--duration',
    '2',
    '--duplicates',
    '0',
    '--poison',
    '0',
  ]);
  expect(load.code).toBe(0);
  const sent = JSON.parse(load.stdout.trim().split('\n').at(-1) as string).sent as number;
  expect(sent).toBeGreaterThan(100);

  const final = await drainRoute({ configPath, route: name, records: sent, env, timeoutMs: 90_000 });
  // The first real record sits where the sample said it was (partition 0, offset 0): it was processed, not skipped.
  expect(final).toMatchObject({ processed: sent, duplicates: 0, deadLettered: 0 });

  const reconcile = await run('scripts/reconcile.ts', ['--route', name]);
  expect(reconcile.code).toBe(0);
  expect(JSON.parse(reconcile.stdout)).toMatchObject({ records: sent, completed: sent, missing: 0, pending: 0 });

  // The README's third command, `npm start`: the demo drives the new route too, with values from its schema,
  // duplicates and poison.
  const demo = await run('scripts/demo.ts', ['--duration', '6', '--rate', '50', '--poison', '5', '--refresh', '1']);
  expect({ code: demo.code, stderr: demo.code === 0 ? '' : `${demo.stderr}\n${demo.stdout}` }).toEqual({
    code: 0,
    stderr: '',
  });
  const row = demoSummary(demo.stdout).get(name);
  expect(row?.produced).toBeGreaterThan(100);
  expect(row?.processed).toBeGreaterThan(0);
  // At 5% poison of some 300 records, the chance of none at all is about 2e-7.
  expect(row?.deadLettered).toBeGreaterThan(0);
});

test('new-route into a copy of the .ts default config, in both modes: the config synthesizes, the scaffolded tests pass', async () => {
  // The default config as shipped, with its marker line, where a user's copy would be (not infra/bridge.config.ts,
  // which is the user's own and which other tests read).
  const shipped = fs.readFileSync(path.join(ROOT, 'test/fixtures/default.bridge.config.ts'), 'utf8');
  const tsConfig = path.join(dir, 'bridge.config.ts');
  fs.writeFileSync(
    tsConfig,
    shipped.replace("'../../infra/config/schema.ts'", JSON.stringify(path.join(ROOT, 'infra/config/schema.ts'))),
  );
  for (const [route, mode] of [
    [gadgets, 'process'],
    [ledgers, 'transact'],
  ] as const) {
    const scaffold = await runScript('scripts/newRoute.ts', [route, '--mode', mode, '--config', tsConfig], env);
    expect({ route, code: scaffold.code, stderr: scaffold.stderr }).toEqual({ route, code: 0, stderr: '' });
    expect(scaffold.stdout).toContain(`new-route: route "${route}" (topic ${route}, ${mode} mode)`);
  }

  // What `npm test` checks of it: the stack synthesizes (cdk-nag included, handlers bundled with esbuild)...
  const config = await loadBridgeConfig(tsConfig, { env: { BRIDGE_MSK_CLUSTER_ARN: CLUSTER_ARN } });
  expect(config.routes.map((r) => r.name)).toEqual(['orders', 'payments', gadgets, ledgers]);
  const { template } = synthBridge(config, { bundle: true, stage: 'dev' });
  template.resourceCountIs('AWS::Lambda::EventSourceMapping', 4);
  // The idempotency table, orders, accounts, ledger and the transact route's own.
  template.resourceCountIs('AWS::DynamoDB::Table', 5);
  template.hasResourceProperties('AWS::Lambda::Function', {
    Environment: {
      Variables: { BRIDGE_ROUTE: ledgers, [`LEDGERS_${id.toUpperCase()}_TABLE_NAME`]: { Ref: Match.anyValue() } },
    },
  });
  for (const route of [gadgets, ledgers]) {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { Topics: [route] });
  }

  // ...and the tests new-route wrote pass as written.
  const jest = await runScript(
    'node_modules/jest/bin/jest.js',
    [`test/functions/handlers/${gadgets}.test.ts`, `test/functions/handlers/${ledgers}.test.ts`],
    { ...env, NODE_OPTIONS: '--experimental-vm-modules' },
  );
  expect({ code: jest.code, output: jest.stderr.slice(-2_000) }).toMatchObject({ code: 0 });
}, 120_000);
