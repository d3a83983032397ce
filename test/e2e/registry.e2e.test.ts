// Registry-framed records end to end: `load --format avro` registers the route's schema in the local registry
// (Apicurio, started on demand) and produces Confluent-framed Avro; the local bridge invokes a route that decodes
// them through the registry and its zod schema. Poison (bytes with no framing) is dead-lettered; reconcile accounts
// for every record.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveHandlerEntry } from '../../infra/config/index.ts';
import { localPaths } from '../../scripts/local/config.ts';
import { stopRegistry } from '../../scripts/local/registry.ts';
import { ROOT, runScript } from '../helpers/cli.ts';
import { drainRoute, sharedEndpoints } from './harness.ts';

const id = randomUUID().slice(0, 6);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-e2e-'));
const configPath = path.join(dir, 'bridge.config.json');
const endpoints = sharedEndpoints();
const env = {
  KAFKA_BROKERS: endpoints.brokers.join(','),
  AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
  AWS_ENDPOINT_URL_SQS: endpoints.sqs,
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'local',
  AWS_SECRET_ACCESS_KEY: 'local',
  LOG_LEVEL: 'WARN',
  E2E_HANDLER_OVERRIDES: JSON.stringify({
    avro: {
      replaces: resolveHandlerEntry({ handler: 'orders.ts' }),
      module: path.join(ROOT, 'test/e2e/avroHandler.ts'),
    },
  }),
};
/** What avroHandler.ts counts per decoded record (its module makes a registry client at import, so not imported). */
const DECODED_METRIC = 'DecodedOrders';
let startedRegistry = false;

afterAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true });
  if (startedRegistry) await stopRegistry();
}, 30_000);

test('load --format avro → Kafka → bridge → a route decoding through the registry: decoded, poison dead-lettered, nothing missing', async () => {
  const registryWasUp = fs.existsSync(localPaths().pidFile('registry'));
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
      routes: [
        {
          name: 'avro',
          topic: `e2e-reg-${id}`,
          handler: 'orders.ts',
          // Locally the tools put the local registry in its place.
          registry: { kind: 'confluent', url: 'https://registry.example.com/apis/ccompat/v7' },
        },
      ],
    }),
  );
  const load = await runScript(
    'scripts/load.ts',
    ['--route', 'avro', '--format', 'avro', '--rate', '150', '--duration', '2', '--duplicates', '0', '--poison', '3'],
    { ...env, BRIDGE_CONFIG: configPath },
  );
  expect({ code: load.code, stderr: load.code === 0 ? '' : load.stderr }).toEqual({ code: 0, stderr: '' });
  startedRegistry = !registryWasUp;
  const summary = JSON.parse(load.stdout.trim().split('\n').at(-1) as string) as {
    sent: number;
    byKind: { poison: number };
  };
  expect(summary.sent).toBeGreaterThan(100);

  const final = await drainRoute({
    configPath,
    route: 'avro',
    records: summary.sent,
    env,
    hook: path.join(ROOT, 'test/e2e/handlerOverride.ts'),
    timeoutMs: 120_000,
  });
  const events = summary.sent - summary.byKind.poison;
  expect(final).toMatchObject({
    processed: events,
    deadLettered: summary.byKind.poison,
    custom: { [DECODED_METRIC]: events },
  });

  const reconcile = await runScript('scripts/reconcile.ts', ['--route', 'avro', '--config', configPath], env);
  expect(reconcile.code).toBe(0);
  expect(JSON.parse(reconcile.stdout)).toMatchObject({ records: summary.sent, missing: 0, pending: 0 });
});
