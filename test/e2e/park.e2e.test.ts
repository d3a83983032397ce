// The retry queue ("park", retry.park) end to end: the counting route's downstream fails every call for 4 s while the
// local bridge drains its topic. Records that use up their in-invocation tries are parked in the route's retry queue
// (ElasticMQ, with real message timers) and their partitions move on; the bridge's SQS event source brings each back
// after its delay, later records of a parked record's key wait behind it, and in the end every record was applied
// exactly once, in its key's order, nothing but the poison was dead-lettered, and reconcile finds nothing missing,
// in progress or still parked. Then one key's downstream fails for 20 s: with park, the other keys of its partition
// flow meanwhile and the key's records apply after it, in order; without, its partition waits behind it.
import { readTopic } from '../../scripts/bridge/readTopic.ts';
import type { LambdaKafkaRecord } from '../../scripts/lib/kafkaEvents.ts';
import { COUNTED_PARK, expectConsistent, Run, sharedEndpoints, sleep, waitDrained, waitFor } from './harness.ts';

const OUTAGE_MS = 4_000;
const runs: Run[] = [];
afterAll(async () => {
  await Promise.all(runs.map((r) => r.cleanup()));
});

const newRun = async (seed: number, park: boolean): Promise<Run> => {
  const run = new Run(sharedEndpoints(), { routes: ['counted'], seed, countedPark: park });
  runs.push(run);
  await run.createResources();
  return run;
};

/** The longest a parked record can wait: the sum of the delays, plus the queue's polling. */
const PARK_WAIT_MS = COUNTED_PARK.delaysSeconds.reduce((a, b) => a + b, 0) * 1000 + 60_000;

/** The topic's records with the time each was applied (undefined: never), and its UTF-8 key. */
const appliedRecords = async (run: Run) => {
  const applications = await run.applications();
  const records = await readTopic(run.endpoints.brokers, run.route('counted').topic);
  return records.map((record: LambdaKafkaRecord) => ({
    record,
    key: record.key === null ? null : Buffer.from(record.key, 'base64').toString('utf8'),
    appliedAt: applications.get(`${record.topic}-${record.partition}@${record.offset}`)?.appliedAt,
  }));
};

/** Per partition, each key's records were applied in offset order. */
const expectKeyOrder = (applied: Awaited<ReturnType<typeof appliedRecords>>) => {
  const last = new Map<string, { at: number; offset: number }>();
  const outOfOrder: string[] = [];
  for (const { record, key, appliedAt } of applied) {
    if (appliedAt === undefined || key === null) continue;
    const line = `${record.partition}/${key}`;
    const before = last.get(line);
    if (before && before.at > appliedAt) outOfOrder.push(`${line}: @${record.offset} before @${before.offset}`);
    last.set(line, { at: appliedAt, offset: record.offset });
  }
  expect(outOfOrder).toEqual([]);
};

/** The key with the most legitimate records in `run`'s traffic: the one the downstream will be sick for. */
const busiestKey = (run: Run): string => {
  const counts = new Map<string, number>();
  for (const r of run.produced.counted)
    if (r.kind === 'event' && r.key !== null)
      counts.set(r.key.toString('utf8'), (counts.get(r.key.toString('utf8')) ?? 0) + 1);
  const [key, count] = [...counts].sort((a, b) => b[1] - a[1])[0] ?? [];
  if (key === undefined || (count ?? 0) < 3) throw new Error('no key with at least 3 records in the traffic');
  return key;
};

test('a 4 s outage parks records instead of stopping partitions; the retry queue applies each once, in its key order', async () => {
  const run = await newRun(43, true);
  await run.produce(400);
  run.outageUntil = Date.now() + OUTAGE_MS;
  const bridge = run.startBridge();

  // The topic drains during the outage: failing records are parked, not retried in place.
  await waitDrained(run, 60_000);
  const parked = bridge.progress.get('counted')?.parked ?? 0;
  expect(parked).toBeGreaterThan(0);
  await waitFor('the retry queue to drain', async () => (await run.retryQueueDepth('counted')) === 0, PARK_WAIT_MS);
  await sleep(500);
  expect((await bridge.stop()).code).toBe(0);

  // Exactly once, nothing but the poison in the DLQ, nothing missing, in progress or parked.
  await expectConsistent(run);
  const statuses = (await run.idempotencyItems('counted')).map((i) => i.status?.S);
  expect(statuses.filter((s) => s === 'PARKED' || s === 'IN_PROGRESS')).toEqual([]);

  // Per partition, each key's records were applied in offset order, the parked ones included.
  expectKeyOrder(await appliedRecords(run));
});

const SICK_KEY_MS = 20_000;

/** 400 records, then the bridge, with the downstream failing for 20 s for the busiest key only. */
const startWithSickKey = async (seed: number, park: boolean) => {
  const run = await newRun(seed, park);
  await run.produce(400);
  const sick = busiestKey(run);
  run.outageKey = sick;
  run.outageUntil = Date.now() + SICK_KEY_MS;
  return { run, sick, bridge: run.startBridge() };
};

test('one key failing for 20 s, with park: the other keys of its partition flow meanwhile; its records apply after, in order', async () => {
  const { run, sick, bridge } = await startWithSickKey(45, true);
  // The topic drains while the key is still failing: its records are parked, the rest of the partition moves on.
  await waitDrained(run, 60_000);
  expect(Date.now()).toBeLessThan(run.outageUntil);
  await waitFor('the retry queue to drain', async () => (await run.retryQueueDepth('counted')) === 0, PARK_WAIT_MS);
  await sleep(500);
  expect((await bridge.stop()).code).toBe(0);
  await expectConsistent(run);

  const applied = await appliedRecords(run);
  const ofSick = applied.filter((r) => r.key === sick);
  const partition = ofSick[0]?.record.partition;
  expect(ofSick.length).toBeGreaterThanOrEqual(3);
  // Every record of the key applied, none while it was failing.
  expect(ofSick.filter((r) => r.appliedAt === undefined || r.appliedAt < run.outageUntil)).toEqual([]);
  // Its partition's other keys behind its first record were all applied before the outage ended.
  const behind = applied.filter(
    (r) => r.record.partition === partition && r.key !== sick && r.record.offset > (ofSick[0]?.record.offset ?? 0),
  );
  expect(behind.filter((r) => r.appliedAt !== undefined).length).toBeGreaterThan(0);
  expect(behind.filter((r) => r.appliedAt !== undefined && r.appliedAt >= run.outageUntil)).toEqual([]);
  expectKeyOrder(applied);
});

test('one key failing for 20 s, without park: its partition waits behind it, as the event source mapping does', async () => {
  const { run, sick, bridge } = await startWithSickKey(47, false);
  await waitDrained(run, SICK_KEY_MS + 120_000);
  expect((await bridge.stop()).code).toBe(0);
  await expectConsistent(run);

  const applied = await appliedRecords(run);
  const first = applied.find((r) => r.key === sick);
  // Nothing of the partition behind the key's first record ran before the key's downstream came back.
  const behind = applied.filter(
    (r) => r.record.partition === first?.record.partition && r.record.offset >= (first?.record.offset ?? 0),
  );
  expect(behind.filter((r) => r.appliedAt !== undefined && r.appliedAt < run.outageUntil)).toEqual([]);
  expect(behind.filter((r) => r.appliedAt !== undefined).length).toBeGreaterThan(0);
  expectKeyOrder(applied);
});
