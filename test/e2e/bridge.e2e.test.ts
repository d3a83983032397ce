// The local bridge end to end on the shared local services: 7,500 records (orders, payments and the counting route,
// 3 partitions each, with duplicates, poison and a few tombstones), then the same checks after a SIGKILL mid-batch and
// after a rebalance between two bridge processes in one consumer group.
import {
  CRASH_WINDOW,
  expectConsistent,
  PARTITIONS,
  Run,
  type RunOptions,
  sharedEndpoints,
  sleep,
  waitDrained,
  waitFor,
} from './harness.ts';

const runs: Run[] = [];
afterAll(async () => {
  await Promise.all(runs.map((r) => r.cleanup()));
});

const newRun = async (options: RunOptions = {}) => {
  const run = new Run(sharedEndpoints(), options);
  runs.push(run);
  await run.createResources();
  return run;
};

test('drains 7,500 records: reconcile finds none missing, effects applied once, the DLQ holds exactly the poison; lag falls to 0', async () => {
  const run = await newRun();
  await run.produce(2_500);
  const bridge = run.startBridge();
  await waitDrained(run, 120_000);
  // Lag was reported while there was work, and fell to 0.
  for (const route of run.routes) {
    const lags = bridge.lags.get(route) ?? [];
    expect(Math.max(...lags)).toBeGreaterThan(0);
    expect(lags.at(-1)).toBe(0);
  }
  expect((await bridge.stop()).code).toBe(0);
  const { appliedTwice } = await expectConsistent(run);
  expect(appliedTwice).toEqual([]);
});

test('(a) SIGKILL mid-batch, then a restart: nothing lost; only records in the crash window applied twice', async () => {
  const run = await newRun({ seed: 21, source: 'self-managed' });
  await run.produce(2_500);
  const first = run.startBridge();
  // Kill while the counting route is mid-stream, so invocations of it are in flight.
  await waitFor(
    'the counting route to commit some batches',
    () => (first.progress.get('counted')?.committed ?? 0) >= 400,
    90_000,
  );
  first.kill();
  await first.exit;
  expect(first.progress.get('counted')?.committed ?? 0).toBeLessThan(run.produced.counted.length);
  // What the group had committed when the bridge died: the restart resumes there, and only records at or above it
  // can have been applied without their completes reaching the table.
  const crashWindow = await run.committedOffsets('counted');
  const second = run.startBridge();
  await waitDrained(run, 150_000);
  expect((await second.stop()).code).toBe(0);
  const { duplicateDeadLetters, appliedTwice } = await expectConsistent(run, {
    allowDuplicateDeadLetters: true,
    crashWindow,
  });
  // One flush window per invocation in flight, and the bridge runs at most one invocation per partition.
  expect(appliedTwice.length).toBeLessThanOrEqual(CRASH_WINDOW);
  console.info(
    `(a): committed at the kill ${JSON.stringify([...crashWindow])}; ${appliedTwice.length} records applied twice` +
      `${appliedTwice.length > 0 ? ` (${appliedTwice.join(', ')})` : ''}; ${duplicateDeadLetters} dead letters sent twice`,
  );
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
      const shared = (bridge: typeof a) => (bridge.progress.get('counted')?.assigned.length ?? 0) > 0;
      return shared(a) && shared(b) && (a.progress.get('counted')?.assigned.length ?? 0) < PARTITIONS;
    },
    60_000,
  );
  await producing;
  await sleep(2_000);
  expect((await a.stop()).code).toBe(0);
  await waitDrained(run, 120_000);
  expect(b.committed()).toBeGreaterThan(0);
  expect((await b.stop()).code).toBe(0);
  // No crash here: a rebalance hands records over, leases keep two invocations off one record, nothing runs twice.
  const { appliedTwice } = await expectConsistent(run);
  expect(appliedTwice).toEqual([]);
});
