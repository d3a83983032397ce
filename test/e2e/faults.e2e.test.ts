// Fault injection into the services themselves, each on an instance of the test's own (test/e2e/instances.ts), so
// stopping it cannot break anyone else using the shared local services. Every case produces 5,000 records with
// duplicates and poison, breaks a service mid-run, brings it back, and ends with the same checks: 0 missing,
// 0 double-applied, the DLQ exactly the poison records.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expectConsistent, Run, sharedEndpoints, sleep, waitDrained, waitFor } from './harness.ts';
import { OwnService } from './instances.ts';

const runs: Run[] = [];
const services: OwnService[] = [];
afterAll(async () => {
  await Promise.all(runs.map((r) => r.cleanup()));
  await Promise.all(services.map((s) => s.destroy()));
});

const own = async (name: 'kafka' | 'dynamodb' | 'elasticmq') => {
  const service = await OwnService.create(name, fs.mkdtempSync(path.join(os.tmpdir(), `kb-${name}-`)));
  services.push(service);
  await service.start();
  return service;
};

test('(b) DynamoDB Local stops for several seconds mid-run and comes back with its tables', async () => {
  const dynamodb = await own('dynamodb');
  const run = new Run({ ...sharedEndpoints(), dynamodb: dynamodb.endpoint }, { seed: 41 });
  runs.push(run);
  await run.createResources();
  await run.produce(2_500);
  const bridge = run.startBridge();
  await waitFor('some batches to be committed', () => bridge.committed() >= 600, 90_000);
  await dynamodb.stop();
  await sleep(6_000);
  await dynamodb.start();
  await waitDrained(run, 150_000);
  expect((await bridge.stop()).code).toBe(0);
  expect([...bridge.progress.values()].some((s) => s.failedInvocations > 0)).toBe(true);
  const { duplicateDeadLetters } = await expectConsistent(run, { allowDuplicateDeadLetters: true });
  if (duplicateDeadLetters > 0)
    console.info(`(b): ${duplicateDeadLetters} dead letters were sent twice (at-least-once DLQ)`);
});

test('(c) ElasticMQ stops while poison records arrive, and comes back with its queues', async () => {
  const sqs = await own('elasticmq');
  const run = new Run({ ...sharedEndpoints(), sqs: sqs.endpoint }, { seed: 51 });
  runs.push(run);
  await run.createResources();
  const producing = run.produce(2_500, 1_000);
  const bridge = run.startBridge();
  await waitFor('the first dead letters', () => [...bridge.progress.values()].some((s) => s.deadLettered > 0), 60_000);
  await sqs.stop();
  await sleep(6_000);
  await sqs.start();
  await producing;
  await waitDrained(run, 150_000);
  expect((await bridge.stop()).code).toBe(0);
  expect([...bridge.progress.values()].some((s) => s.failedInvocations > 0)).toBe(true);
  const { duplicateDeadLetters } = await expectConsistent(run, { allowDuplicateDeadLetters: true });
  if (duplicateDeadLetters > 0)
    console.info(`(c): ${duplicateDeadLetters} dead letters were sent twice (a send's response lost as SQS stopped)`);
});

test('(d) the Kafka broker restarts mid-run (its data dir persists)', async () => {
  const kafka = await own('kafka');
  const run = new Run({ ...sharedEndpoints(), brokers: [kafka.endpoint] }, { seed: 61 });
  runs.push(run);
  await run.createResources();
  await run.produce(2_500);
  const bridge = run.startBridge();
  await waitFor('some batches to be committed', () => bridge.committed() >= 600, 90_000);
  // The restart must land while there is work left, or the scenario tests nothing.
  expect(bridge.committed()).toBeLessThan(run.produced.orders.length + run.produced.payments.length);
  await kafka.stop();
  await sleep(3_000);
  await kafka.start();
  await waitDrained(run, 150_000);
  expect((await bridge.stop()).code).toBe(0);
  await expectConsistent(run);
});
