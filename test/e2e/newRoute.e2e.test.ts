// A new route from nothing to live traffic, as the README's three commands promise, with no hand-written file:
// `new-route`, `invoke --generate | invoke --event -`, a `load` run, the bridge, then `reconcile`. The invoke runs a
// sample at the same coordinates as the first real record, and the bridge must still process that record.

import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, runScript } from '../helpers/cli.ts';
import { drainRoute, endpointEnv, sharedEndpoints } from './harness.ts';

const id = randomUUID().slice(0, 6);
const name = `widgets-${id}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'new-route-'));
const configPath = path.join(dir, 'bridge.config.json');
/** What new-route writes into the repository: removed after the test, whatever happens. */
const scaffolded = [
  path.join(ROOT, 'functions/handlers', `${name}.ts`),
  path.join(ROOT, 'events', `${name}.json`),
  path.join(ROOT, 'test/functions/handlers', `${name}.test.ts`),
];

const endpoints = sharedEndpoints();
const env = endpointEnv(endpoints);
const run = (script: string, args: string[], input?: string) =>
  runScript(script, [...args, '--config', configPath], env, input);

afterAll(() => {
  for (const file of scaffolded) fs.rmSync(file, { force: true });
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
});
