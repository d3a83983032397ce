// The circuit breaker end to end: the counting route's downstream fails every call for about 10 s while the local
// bridge drains its topic. The breaker opens within its window, records stop being attempted (their attempts stop
// counting), nothing is dead-lettered for the outage, and processing resumes within one half-open cycle of its end.
import { COUNTED_BREAKER, expectConsistent, Run, sharedEndpoints, sleep, waitDrained } from './harness.ts';

const OUTAGE_MS = 10_000;
let run: Run | undefined;
afterAll(async () => {
  await run?.cleanup();
});

test('a 10 s downstream outage: the breaker opens, attempts stop counting, nothing is dead-lettered, and throughput returns within one half-open cycle', async () => {
  run = new Run(sharedEndpoints(), { routes: ['counted'], seed: 41, countedBreaker: true });
  await run.createResources();
  await run.produce(600);
  run.outageUntil = Date.now() + OUTAGE_MS;
  const bridge = run.startBridge();

  // During the outage: the breaker opens and short-circuits records; nothing is processed.
  const during = () => bridge.progress.get('counted');
  while (Date.now() < run.outageUntil - 500) await sleep(200);
  expect(during()?.breakerOpened ?? 0).toBeGreaterThanOrEqual(1);
  expect(during()?.breakerShortCircuited ?? 0).toBeGreaterThan(0);
  expect(during()?.processed ?? 0).toBe(0);

  // After it: processing resumes within one open period (at most maxOpenMs), plus a redelivery and a progress tick.
  while ((bridge.progress.get('counted')?.processed ?? 0) === 0) {
    expect(Date.now() - run.outageUntil).toBeLessThan(COUNTED_BREAKER.maxOpenMs + 5_000);
    await sleep(100);
  }
  const resumedAfterMs = Date.now() - run.outageUntil;
  expect(resumedAfterMs).toBeLessThan(COUNTED_BREAKER.maxOpenMs + 5_000);

  await waitDrained(run, 120_000);
  expect((await bridge.stop()).code).toBe(0);
  // Every record applied exactly once; the DLQ holds exactly the poison (nothing for the outage).
  await expectConsistent(run);
  // Attempts stopped counting while the breaker was open: only the calls that opened it and the half-open probes
  // count, a handful across the three partitions' head records, where ten seconds of retries and redeliveries would
  // count dozens.
  const extraAttempts = (await run.idempotencyItems('counted')).reduce(
    (sum, i) => sum + Math.max(0, Number(i.attempts?.N ?? 1) - 1),
    0,
  );
  const maxProbes = Math.ceil(OUTAGE_MS / COUNTED_BREAKER.openMs) * COUNTED_BREAKER.halfOpenProbes;
  expect(extraAttempts).toBeLessThanOrEqual(COUNTED_BREAKER.minimumCalls + maxProbes);
});
