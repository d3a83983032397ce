// `npm start -- --config infra/examples/registry.config.ts`, as a user runs it: the demo starts the local schema
// registry for the route's Confluent-compatible `registry`, registers the route's Avro schema, produces framed order
// events (and poison with no framing), and the local bridge decodes them through the registry into
// functions/handlers/ordersAvro.ts, which applies them to the route's orders table. Asserted: records were processed
// through the registry decoder, and the only dead letters are the poison records, each a wrong magic byte.
//
// The example config runs under a name and topic of this run's own (its routes, handler and registry as they are),
// so a demo the user ran before, with its committed offsets, its lag and its dead letters, counts for nothing here.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { DeadLetterEnvelope } from '../../functions/runtime/deadLetter/envelopeSchema.ts';
import {
  type BridgeConfigInput,
  type ConfigContext,
  loadBridgeConfig,
  localResourceNames,
} from '../../infra/config/index.ts';
import example from '../../infra/examples/registry.config.ts';
import { localPaths } from '../../scripts/local/config.ts';
import { ensureRegistry, stopRegistry } from '../../scripts/local/registry.ts';
import { drainQueue, scanAll, sqs } from '../helpers/aws.ts';
import { runScript } from '../helpers/cli.ts';
import { type DemoRow, demoSummary, sharedEndpoints } from './harness.ts';

const ROUTE = 'orders-avro';
const id = randomUUID().slice(0, 6);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-demo-e2e-'));
const configPath = path.join(dir, 'registry-demo.config.json');
const endpoints = sharedEndpoints();
/** Whether a registry answered before this file ran: then it is left running, else the one the demo started stops. */
const registryWasUp = fs.existsSync(localPaths().pidFile('registry'));

/** The example as written, read with no context (no cluster ARN or registry URL from outside: the placeholders). */
const exampleInput = (): BridgeConfigInput => {
  const noContext: ConfigContext = { lookup: () => undefined };
  return typeof example === 'function' ? example(noContext) : example;
};

afterAll(async () => {
  if (!registryWasUp) await stopRegistry();
  fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

test('npm start with it: Avro decoded through the local registry, only the poison (wrong magic byte) dead-lettered', async () => {
  const input = exampleInput();
  const isolated: BridgeConfigInput = {
    ...input,
    name: `e2e-regdemo-${id}`,
    routes: input.routes.map((route) => ({ ...route, topic: `e2e-regdemo-${id}-${route.name}` })),
  };
  fs.writeFileSync(configPath, JSON.stringify(isolated, null, 2));
  const config = await loadBridgeConfig(configPath);
  const topic = config.routes[0]?.topic as string;

  const started = Date.now();
  const demo = await runScript(
    'scripts/demo.ts',
    ['--config', configPath, '--duration', '8', '--rate', '50', '--poison', '5', '--refresh', '1'],
    {
      KAFKA_BROKERS: endpoints.brokers.join(','),
      AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
      AWS_ENDPOINT_URL_SQS: endpoints.sqs,
    },
  );
  const runtimeMs = Date.now() - started;
  expect({ code: demo.code, stderr: demo.code === 0 ? '' : `${demo.stderr}\n${demo.stdout}` }).toEqual({
    code: 0,
    stderr: '',
  });

  const row = demoSummary(demo.stdout).get(ROUTE);
  expect(row).toBeDefined();
  const { produced, processed, deadLettered } = row as DemoRow;
  expect(produced).toBeGreaterThan(100);
  expect(processed).toBeGreaterThan(0);
  // At 5% poison of some 400 records, the chance of none at all is about 1e-9.
  expect(deadLettered).toBeGreaterThan(0);
  expect(processed + deadLettered).toBeLessThanOrEqual(produced);

  // The schema the demo registered for the route, and the records it framed with it, went through the registry.
  const { url } = await ensureRegistry();
  const registered = await fetch(`${url}/subjects/${encodeURIComponent(`${topic}-value`)}/versions/latest`);
  expect(registered.status).toBe(200);
  const subject = (await registered.json()) as { id: number; schema: string; schemaType?: string };
  expect(subject.schemaType ?? 'AVRO').toBe('AVRO');
  expect(JSON.parse(subject.schema)).toMatchObject({ type: 'record' });

  // Every dead letter is a poison record: no framing, so a permanent wrong magic byte; none is a decoded event.
  const names = localResourceNames(config);
  const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: names.deadLetterQueues[ROUTE] as string }));
  const letters = (await drainQueue(QueueUrl as string)).map((m) =>
    DeadLetterEnvelope.parse(JSON.parse(m.Body as string)),
  );
  expect(letters).toHaveLength(deadLettered);
  for (const letter of letters) {
    expect(letter).toMatchObject({
      route: ROUTE,
      source: { topic },
      error: { kind: 'permanent', name: 'WireFormatError', message: expect.stringMatching(/wrong magic byte/) },
    });
    expect(Buffer.from(letter.record.value ?? '', 'base64')[0]).not.toBe(0);
  }

  // The decoded events took the orders effect: the route's own orders table holds them.
  const orders = await scanAll(names.tables.orders as string);
  expect(orders.length).toBeGreaterThan(0);
  expect(orders.length).toBeLessThanOrEqual(processed);
  for (const order of orders) expect(order.status?.S).toMatch(/^(PENDING|PAID|SHIPPED|DELIVERED|CANCELLED)$/);

  process.stderr.write(`registry demo: ${JSON.stringify(row)} in ${(runtimeMs / 1000).toFixed(1)}s\n`);
});
