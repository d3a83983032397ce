// Fault injection into the services themselves, each on an instance of the test's own (test/e2e/instances.ts), so
// stopping it cannot break anyone else using the shared local services, and finer faults through a proxy in front of
// DynamoDB (test/e2e/faultProxy.ts). Every case produces records with duplicates and poison, breaks something mid-run,
// mends it, and ends with the same checks: 0 missing, 0 applied twice (record by record on the counting route), the
// DLQ exactly the records that must be dead-lettered.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FaultProxy } from './faultProxy.ts';
import { expectConsistent, Run, type RunOptions, sharedEndpoints, sleep, waitDrained, waitFor } from './harness.ts';
import { OwnService } from './instances.ts';

const runs: Run[] = [];
const services: OwnService[] = [];
const proxies: FaultProxy[] = [];
afterAll(async () => {
  await Promise.all(runs.map((r) => r.cleanup()));
  await Promise.all(services.map((s) => s.destroy()));
  await Promise.all(proxies.map((p) => p.close()));
});

const own = async (name: 'kafka' | 'dynamodb' | 'elasticmq') => {
  const service = await OwnService.create(name, fs.mkdtempSync(path.join(os.tmpdir(), `kb-${name}-`)));
  services.push(service);
  await service.start();
  return service;
};

const newRun = async (endpoints: Partial<ReturnType<typeof sharedEndpoints>>, options: RunOptions) => {
  const run = new Run({ ...sharedEndpoints(), ...endpoints }, options);
  runs.push(run);
  await run.createResources();
  return run;
};

test('(b) DynamoDB Local stops for several seconds mid-run and comes back with its tables', async () => {
  const dynamodb = await own('dynamodb');
  const run = await newRun({ dynamodb: dynamodb.endpoint }, { seed: 41 });
  await run.produce(2_500);
  const bridge = run.startBridge();
  await waitFor('some batches to be committed', () => bridge.committed() >= 900, 90_000);
  // Where `counted` stood when its idempotency table went away: the crash window starts there.
  const committedAtStop = await run.committedOffsets('counted');
  const stoppedAt = Date.now();
  await dynamodb.stop();
  await sleep(6_000);
  await dynamodb.start();
  console.info(
    `(b): DynamoDB away for ${Date.now() - stoppedAt} ms; counted had committed ${JSON.stringify([...committedAtStop])}`,
  );
  await waitDrained(run, 150_000);
  expect((await bridge.stop()).code).toBe(0);
  expect([...bridge.progress.values()].some((s) => s.failedInvocations > 0)).toBe(true);
  // The table stopped taking completes: records whose completes were unwritten then may run again, within the
  // README's window (at or above the committed offsets, at most CRASH_WINDOW_PER_PARTITION per partition); every
  // other record exactly once.
  const { duplicateDeadLetters, appliedTwice } = await expectConsistent(run, {
    allowDuplicateDeadLetters: true,
    crashWindow: committedAtStop,
  });
  console.info(`(b): ${appliedTwice.length} records applied twice, ${duplicateDeadLetters} dead letters sent twice`);
});

test('(c) ElasticMQ stops while poison records arrive, and comes back with its queues', async () => {
  const sqs = await own('elasticmq');
  const run = await newRun({ sqs: sqs.endpoint }, { seed: 51 });
  const producing = run.produce(2_500, 1_000);
  const bridge = run.startBridge();
  await waitFor('the first dead letters', () => [...bridge.progress.values()].some((s) => s.deadLettered > 0), 60_000);
  const stoppedAt = Date.now();
  await sqs.stop();
  await sleep(6_000);
  await sqs.start();
  await producing;
  await waitDrained(run, 150_000);
  expect((await bridge.stop()).code).toBe(0);
  expect([...bridge.progress.values()].some((s) => s.failedInvocations > 0)).toBe(true);
  const { duplicateDeadLetters, appliedTwice, lostByElasticMq } = await expectConsistent(run, {
    allowDuplicateDeadLetters: true,
    sqsStoppedAt: stoppedAt,
  });
  expect(appliedTwice).toEqual([]);
  if (duplicateDeadLetters > 0)
    console.info(`(c): ${duplicateDeadLetters} dead letters were sent twice (a send's response lost as SQS stopped)`);
  if (lostByElasticMq.length > 0)
    console.info(`(c): ElasticMQ acknowledged and then lost with its stop: ${lostByElasticMq.join(', ')}`);
});

test('(d) the Kafka broker restarts mid-run (its data dir persists), under batches in flight', async () => {
  const kafka = await own('kafka');
  const run = await newRun({ brokers: [kafka.endpoint] }, { seed: 61 });
  await run.produce(2_500);
  const bridge = run.startBridge();
  await waitFor('some batches to be committed', () => bridge.committed() >= 900, 90_000);
  // The restart must land while there is work left, or the scenario tests nothing.
  const total = run.routes.reduce((sum, r) => sum + run.produced[r].length, 0);
  expect(bridge.committed()).toBeLessThan(total);
  const before = bridge.lines.length;
  const committedAtStop = bridge.committed();
  await kafka.stop();
  await sleep(3_000);
  await kafka.start();
  // Progress lines keep coming while the broker is away (the bridge counts a batch as done when its invocation
  // returns; the commit is queued): records fetched before the stop were invoked while it was down.
  const committedWhileDown = bridge.committed() - committedAtStop;
  await waitDrained(run, 150_000);
  expect((await bridge.stop()).code).toBe(0);
  // The restart hit the bridge while it worked: invocations ran and returned while the broker was away (their
  // commits could not land until it was back), and the bridge saw the broker go (fetches, commits or lag queries
  // failed after the stop) and recovered from it.
  const kafkaErrors = bridge
    .logMessages(before)
    .filter((m) =>
      /fetch failed|commit failed|lag query failed|consumer error|replacing the Kafka consumer|joining group .* failed/.test(
        m,
      ),
    );
  expect({ invokedWhileDown: committedWhileDown > 0, kafkaErrorsAfterStop: kafkaErrors.length > 0 }).toEqual({
    invokedWhileDown: true,
    kafkaErrorsAfterStop: true,
  });
  const { appliedTwice } = await expectConsistent(run);
  expect(appliedTwice).toEqual([]);
});

test('(f) partial batch responses: payments in provisioned mode while DynamoDB transactions fail for a while; exhausted records dead-lettered', async () => {
  // For a while every TransactWriteItems fails: two in three before DynamoDB sees them, one in three after it
  // applied them (the answer lost). Claims, markers and attempt counts still go through, as in a partial outage.
  let faulty = false;
  let n = 0;
  const proxy = await FaultProxy.start(sharedEndpoints().dynamodb, ({ operation }) => {
    if (!faulty || operation !== 'TransactWriteItems') return 'pass';
    n += 1;
    return n % 3 === 0 ? 'after' : 'before';
  });
  proxies.push(proxy);
  const run = await newRun({ dynamodb: proxy.url }, { seed: 71, routes: ['payments'], paymentsPartial: true });
  await run.produce(2_500);
  const bridge = run.startBridge();
  await waitFor('some payments to be committed', () => bridge.committed() >= 300, 90_000);
  // The fault lasts until a payment has been dead-lettered as exhausted (at least 5 s), so the path surely ran.
  faulty = true;
  const since = Date.now();
  await waitFor(
    'a payment dead-lettered as exhausted',
    async () =>
      Date.now() - since >= 5_000 && (await run.deadLetters('payments')).some((l) => l.errorKind === 'exhausted'),
    90_000,
  );
  faulty = false;
  await waitDrained(run, 150_000);
  expect((await bridge.stop()).code).toBe(0);
  const failed = proxy.counts.get('TransactWriteItems');
  expect({ before: (failed?.before ?? 0) > 0, after: (failed?.after ?? 0) > 0 }).toEqual({ before: true, after: true });
  const stats = bridge.progress.get('payments');
  // The failures were reported per record (a partial batch response), never by failing the whole invocation.
  expect({ redelivered: (stats?.redelivered ?? 0) > 0, failedInvocations: stats?.failedInvocations }).toEqual({
    redelivered: true,
    failedInvocations: 0,
  });
  const { exhausted } = await expectConsistent(run);
  expect(exhausted).toBeGreaterThan(0);
  console.info(
    `(f): ${exhausted} payments dead-lettered as exhausted; proxy: ${JSON.stringify(Object.fromEntries(proxy.counts))}`,
  );
});
