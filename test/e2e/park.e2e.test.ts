// The retry queue ("park", retry.park) end to end: the counting route's downstream fails every call for 4 s while the
// local bridge drains its topic. Records that use up their in-invocation tries are parked in the route's retry queue
// (ElasticMQ, with real message timers) and their partitions move on; the bridge's SQS event source brings each back
// after its delay, later records of a parked record's key wait behind it, and in the end every record was applied
// exactly once, in its key's order, nothing but the poison was dead-lettered, and reconcile finds nothing missing,
// in progress or still parked.
import { readTopic } from '../../scripts/bridge/readTopic.ts';
import { COUNTED_PARK, expectConsistent, Run, sharedEndpoints, sleep, waitDrained, waitFor } from './harness.ts';

const OUTAGE_MS = 4_000;
let run: Run | undefined;
afterAll(async () => {
  await run?.cleanup();
});

test('a 4 s outage parks records instead of stopping partitions; the retry queue applies each once, in its key order', async () => {
  run = new Run(sharedEndpoints(), { routes: ['counted'], seed: 43, countedPark: true });
  await run.createResources();
  await run.produce(400);
  run.outageUntil = Date.now() + OUTAGE_MS;
  const bridge = run.startBridge();

  // The topic drains during the outage: failing records are parked, not retried in place.
  await waitDrained(run, 60_000);
  const parked = bridge.progress.get('counted')?.parked ?? 0;
  expect(parked).toBeGreaterThan(0);
  const current = run;
  // The longest a parked record can wait is the sum of the delays, plus the queue's polling.
  const longest = COUNTED_PARK.delaysSeconds.reduce((a, b) => a + b, 0) * 1000;
  await waitFor(
    'the retry queue to drain',
    async () => (await current.retryQueueDepth('counted')) === 0,
    longest + 60_000,
  );
  await sleep(500);
  expect((await bridge.stop()).code).toBe(0);

  // Exactly once, nothing but the poison in the DLQ, nothing missing, in progress or parked.
  await expectConsistent(run);
  const statuses = (await run.idempotencyItems('counted')).map((i) => i.status?.S);
  expect(statuses.filter((s) => s === 'PARKED' || s === 'IN_PROGRESS')).toEqual([]);

  // Per partition, each key's records were applied in offset order, the parked ones included.
  const applications = await run.applications();
  const records = await readTopic(run.endpoints.brokers, run.route('counted').topic);
  const last = new Map<string, { at: number; offset: number }>();
  const outOfOrder: string[] = [];
  for (const record of records) {
    const applied = applications.get(`${record.topic}-${record.partition}@${record.offset}`)?.appliedAt;
    if (applied === undefined || record.key === null) continue;
    const line = `${record.partition}/${record.key}`;
    const before = last.get(line);
    if (before && before.at > applied) outOfOrder.push(`${line}: @${record.offset} before @${before.offset}`);
    last.set(line, { at: applied, offset: record.offset });
  }
  expect(outOfOrder).toEqual([]);
});
