// The local bridge end to end on the shared local services: 5,000 records (orders and payments, 3 partitions each,
// with duplicates, poison and a few tombstones), then the same checks after a SIGKILL mid-batch and after a
// rebalance between two bridge processes in one consumer group.
import { expectConsistent, Run, sharedEndpoints, sleep, waitDrained, waitFor } from './harness.ts';

const runs: Run[] = [];
afterAll(async () => {
  await Promise.all(runs.map((r) => r.cleanup()));
});

const newRun = async (options: ConstructorParameters<typeof Run>[1] = {}) => {
  const run = new Run(sharedEndpoints(), options);
  runs.push(run);
  await run.createResources();
  return run;
};

test('drains 5,000 records: reconcile finds none missing, effects applied once, the DLQ holds exactly the poison; lag falls to 0', async () => {
  const run = await newRun();
  await run.produce(2_500);
  const bridge = run.startBridge();
  await waitDrained(run, 120_000);
  // Lag was reported while there was work, and fell to 0.
  for (const route of ['orders', 'payments']) {
    const lags = bridge.lags.get(route) ?? [];
    expect(Math.max(...lags)).toBeGreaterThan(0);
    expect(lags.at(-1)).toBe(0);
  }
  expect((await bridge.stop()).code).toBe(0);
  await expectConsistent(run);
});

test('(a) SIGKILL mid-batch, then a restart: nothing lost, nothing applied twice', async () => {
  const run = await newRun({ seed: 21, source: 'self-managed' });
  await run.produce(2_500);
  const first = run.startBridge();
  await waitFor('some batches to be committed', () => first.committed() >= 800, 90_000);
  first.kill();
  await first.exit;
  const second = run.startBridge();
  await waitDrained(run, 150_000);
  expect((await second.stop()).code).toBe(0);
  const { duplicateDeadLetters } = await expectConsistent(run, { allowDuplicateDeadLetters: true });
  if (duplicateDeadLetters > 0)
    console.info(`(a): ${duplicateDeadLetters} dead letters were sent twice (killed before their marker)`);
});

test('(e) two bridges in one consumer group, with a rebalance mid-run and another when one leaves', async () => {
  const run = await newRun({ seed: 31 });
  const producing = run.produce(2_500, 2_000);
  const a = run.startBridge();
  await waitFor('bridge A to commit', () => a.committed() >= 300, 60_000);
  const b = run.startBridge();
  await waitFor(
    'both bridges to share the partitions',
    () => {
      const shared = (bridge: typeof a) => (bridge.progress.get('orders')?.assigned.length ?? 0) > 0;
      return shared(a) && shared(b) && (a.progress.get('orders')?.assigned.length ?? 0) < 3;
    },
    60_000,
  );
  await producing;
  await sleep(2_000);
  expect((await a.stop()).code).toBe(0);
  await waitDrained(run, 120_000);
  expect(b.committed()).toBeGreaterThan(0);
  expect((await b.stop()).code).toBe(0);
  await expectConsistent(run);
});
