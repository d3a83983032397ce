import { type Batch, type BatchingOptions, BatchScheduler } from '../../../scripts/bridge/batching.ts';
import { decideBatchOutcome } from '../../../scripts/bridge/outcome.ts';
import type { LambdaKafkaRecord } from '../../../scripts/lib/kafkaEvents.ts';

const options: BatchingOptions = {
  batchSize: 3,
  windowMs: 1_000,
  maxBatchBytes: 1_000_000,
  backoffBaseMs: 100,
  backoffMaxMs: 1_000,
  random: () => 0.5,
};
const rec = (partition: number, offset: number, timestamp = 0): LambdaKafkaRecord => ({
  topic: 't',
  partition,
  offset,
  timestamp,
  timestampType: 'CREATE_TIME',
  key: null,
  value: 'e30=',
  headers: [],
});
const offer = (s: BatchScheduler, partition: number, offsets: number[], now = 0) => {
  for (const o of offsets) s.offer(rec(partition, o), 10, now);
};
/** `t-0@1` for each record the handler gets. */
const idsOf = (b: Batch) => b.records.map((r) => `${r.record.topic}-${r.record.partition}@${r.record.offset}`);
const only = (batches: Batch[]): Batch => {
  expect(batches).toHaveLength(1);
  return batches[0] as Batch;
};
const ok = { ok: true as const, response: null };
const failed = { ok: false as const, error: { name: 'Error', message: 'boom' } };
const succeed = (s: BatchScheduler, b: Batch, now = 0) =>
  s.complete(b, decideBatchOutcome(b.partitions, ok, false), now);
const fail = (s: BatchScheduler, b: Batch, now = 0) =>
  s.complete(b, decideBatchOutcome(b.partitions, failed, false), now);

test('one event holds records of several partitions, batchSize counted across them; a short one waits for the window', () => {
  const s = new BatchScheduler(options);
  offer(s, 0, [0, 1, 2, 3]);
  offer(s, 1, [0]);
  const first = only(s.takeReady(0));
  // Taken round robin over the partitions; the event lists each partition's records in offset order.
  expect(idsOf(first)).toEqual(['t-0@0', 't-0@1', 't-1@0']);
  expect(succeed(s, first).commits).toEqual([
    { topic: 't', partition: 0, offset: 2 },
    { topic: 't', partition: 1, offset: 1 },
  ]);
  expect(s.takeReady(999)).toEqual([]);
  expect(s.nextWakeupIn(500)).toBe(500);
  expect(idsOf(only(s.takeReady(1_000)))).toEqual(['t-0@2', 't-0@3']);
});

test('each poller owns partition p % pollers and runs one invocation at a time; pollers run in parallel', () => {
  const s = new BatchScheduler({ ...options, pollers: 2 });
  offer(s, 0, [0, 1, 2, 3]);
  offer(s, 1, [0, 1, 2]);
  offer(s, 2, [0]);
  const batches = s.takeReady(0);
  expect(batches.map((b) => b.poller)).toEqual([0, 1]);
  expect(batches.map(idsOf)).toEqual([
    ['t-0@0', 't-0@1', 't-2@0'],
    ['t-1@0', 't-1@1', 't-1@2'],
  ]);
  expect(s.inFlight).toBe(2);
  expect(s.takeReady(5_000)).toEqual([]);
  succeed(s, batches[0] as Batch, 10);
  expect(idsOf(only(s.takeReady(5_000)))).toEqual(['t-0@2', 't-0@3']);
});

test('a failed event is retried whole, before anything newer of its partitions, so one bad partition stalls the others', () => {
  const s = new BatchScheduler(options);
  offer(s, 0, [0, 1]);
  offer(s, 1, [0, 1, 2]);
  const batch = only(s.takeReady(0));
  expect(idsOf(batch)).toEqual(['t-0@0', 't-0@1', 't-1@0']);
  const effects = fail(s, batch, 100);
  expect(effects.commits).toEqual([]);
  expect(effects.redelivered).toBe(3);
  expect(effects.retryInMs).toBe(75); // equal jitter: half of 100 plus half of 100 * 0.5
  expect(s.takeReady(150)).toEqual([]);
  const again = only(s.takeReady(175));
  expect(idsOf(again)).toEqual(idsOf(batch));
  expect(again.attempt).toBe(1);
  // Backoff doubles with consecutive failures; t-1's later records wait behind the event that holds t-0.
  expect(fail(s, again, 200).retryInMs).toBe(150);
  const third = only(s.takeReady(350));
  expect(third.attempt).toBe(2);
  succeed(s, third, 400);
  expect(idsOf(only(s.takeReady(5_000)))).toEqual(['t-1@1', 't-1@2']);
});

test('a partial batch response commits each partition before its failed record and redelivers from it', () => {
  const s = new BatchScheduler({ ...options, batchSize: 10 });
  offer(s, 0, [10, 11, 12, 13]);
  offer(s, 1, [5, 6]);
  const batch = only(s.takeReady(5_000));
  const decision = decideBatchOutcome(
    batch.partitions,
    { ok: true, response: { batchItemFailures: [{ itemIdentifier: { partition: 't-0', offset: 11 } }] } },
    true,
  );
  const effects = s.complete(batch, decision, 0);
  expect(effects.commits).toEqual([
    { topic: 't', partition: 0, offset: 11 },
    { topic: 't', partition: 1, offset: 7 },
  ]);
  expect(effects.completed).toBe(3);
  expect(effects.redelivered).toBe(3);
  expect(idsOf(only(s.takeReady(10_000)))).toEqual(['t-0@11', 't-0@12', 't-0@13']);
});

test('past the retry limit the batch is skipped, for the on-failure destination, and committed past', () => {
  const s = new BatchScheduler({ ...options, retry: { retries: 2 } });
  offer(s, 0, [0, 1]);
  offer(s, 0, [2, 3, 4]);
  let batch = only(s.takeReady(0));
  for (let now = 1; ; now += 10_000) {
    const effects = fail(s, batch, now);
    if (effects.skipped) {
      // The first invocation and two retries.
      expect(effects.skipped.invocations).toBe(3);
      expect(idsOf(effects.skipped.batch)).toEqual(['t-0@0', 't-0@1', 't-0@2']);
      expect(effects.commits).toEqual([{ topic: 't', partition: 0, offset: 3 }]);
      break;
    }
    batch = only(s.takeReady(now + 5_000));
  }
  expect(idsOf(only(s.takeReady(100_000)))).toEqual(['t-0@3', 't-0@4']);
});

test('bisect splits a failed batch in two and retries each half; splitting counts no retry', () => {
  const s = new BatchScheduler({ ...options, batchSize: 4, retry: { retries: 0, bisect: true } });
  offer(s, 0, [0, 1, 2, 3]);
  const whole = only(s.takeReady(0));
  expect(fail(s, whole, 0).skipped).toBeUndefined();
  const firstHalf = only(s.takeReady(10_000));
  expect(idsOf(firstHalf)).toEqual(['t-0@0', 't-0@1']);
  expect(succeed(s, firstHalf, 10_000).commits).toEqual([{ topic: 't', partition: 0, offset: 2 }]);
  const secondHalf = only(s.takeReady(20_000));
  expect(idsOf(secondHalf)).toEqual(['t-0@2', 't-0@3']);
  fail(s, secondHalf, 20_000);
  const poison = only(s.takeReady(30_000));
  expect(idsOf(poison)).toEqual(['t-0@2']);
  // A single record cannot be split: with no retries left it is skipped.
  const skipped = fail(s, poison, 30_000);
  expect(skipped.skipped && idsOf(skipped.skipped.batch)).toEqual(['t-0@2']);
  expect(skipped.commits).toEqual([{ topic: 't', partition: 0, offset: 3 }]);
  expect(idsOf(only(s.takeReady(40_000)))).toEqual(['t-0@3']);
});

test('records older than the maximum record age never reach the handler, first delivery or retry', () => {
  const s = new BatchScheduler({ ...options, retry: { maxRecordAgeMs: 60_000 } });
  s.offer(rec(0, 0, 0), 10, 100_000);
  s.offer(rec(0, 1, 90_000), 10, 100_000);
  const old = only(s.takeReady(100_000));
  expect(old.kind).toBe('RecordAgeExceeded');
  expect(idsOf(old)).toEqual(['t-0@0']);
  expect(succeed(s, old, 100_000).commits).toEqual([{ topic: 't', partition: 0, offset: 1 }]);
  expect(old.attempt).toBe(0);
  const fresh = only(s.takeReady(101_000));
  expect(fresh.kind).toBe('invoke');
  fail(s, fresh, 101_000);
  fail(s, only(s.takeReady(110_000)), 110_000);
  // Retried after it aged out: skipped as too old, after the two invocations it had (its on-failure record says so).
  const expired = only(s.takeReady(200_000));
  expect(expired.kind).toBe('RecordAgeExceeded');
  expect(expired.attempt).toBe(2);
  expect(idsOf(expired)).toEqual(['t-0@1']);
});

test('one event counts batchSize across its partitions, never per partition', () => {
  const s = new BatchScheduler({ ...options, batchSize: 4, pollers: 2 });
  // Partitions 0 and 2 share poller 0, partition 1 has poller 1 to itself.
  for (const p of [0, 1, 2]) offer(s, p, [0, 1, 2, 3, 4, 5]);
  const seen: string[][] = [];
  for (let now = 0; seen.flat().length < 18; now += 1) {
    for (const batch of s.takeReady(now, true)) {
      expect(batch.records.length).toBeLessThanOrEqual(4);
      seen.push(idsOf(batch));
      succeed(s, batch, now);
    }
  }
  expect(seen).toContainEqual(['t-0@0', 't-0@1', 't-2@0', 't-2@1']);
  expect(seen.every((ids) => ids.length === 4 || ids.length === 2)).toBe(true);
});

test('a record over the payload limit goes alone to the destination once the records before it are done', () => {
  const s = new BatchScheduler({ ...options, batchSize: 10, maxBatchBytes: 100 });
  s.offer(rec(0, 0), 10, 0);
  s.offer(rec(0, 1), 500, 0);
  s.offer(rec(0, 2), 10, 0);
  s.offer(rec(1, 0), 10, 0);
  const before = only(s.takeReady(5_000));
  // The large record stops its partition's share of the event; the other partition goes on.
  expect(idsOf(before)).toEqual(['t-0@0', 't-1@0']);
  succeed(s, before);
  const large = only(s.takeReady(5_000));
  expect(large.kind).toBe('MaximumPayloadSizeExceeded');
  expect(idsOf(large)).toEqual(['t-0@1']);
  expect(succeed(s, large).commits).toEqual([{ topic: 't', partition: 0, offset: 2 }]);
  expect(idsOf(only(s.takeReady(5_000)))).toEqual(['t-0@2']);
});

test('filtered-out records ride along uninvoked and are committed with their batch', () => {
  const s = new BatchScheduler(options);
  s.offer(rec(0, 0), 10, 0, true);
  s.offer(rec(0, 1), 10, 0);
  s.offer(rec(0, 2), 10, 0, true);
  const batch = only(s.takeReady(5_000));
  expect(idsOf(batch)).toEqual(['t-0@1']);
  expect(batch.covered).toHaveLength(3);
  expect(succeed(s, batch).commits).toEqual([{ topic: 't', partition: 0, offset: 3 }]);
  s.offer(rec(0, 3), 10, 10_000, true);
  const none = only(s.takeReady(20_000));
  expect(none.records).toEqual([]);
  expect(succeed(s, none).commits).toEqual([{ topic: 't', partition: 0, offset: 4 }]);
});

test('a re-fetch of offsets already held is ignored', () => {
  const s = new BatchScheduler(options);
  offer(s, 0, [0, 1, 2]);
  expect(s.offer(rec(0, 1), 10, 0)).toBe(false);
  expect(s.offer(rec(0, 3), 10, 0)).toBe(true);
  expect(s.buffered).toBe(4);
});

test('the byte budget cuts a batch short', () => {
  const s = new BatchScheduler({ ...options, batchSize: 10, maxBatchBytes: 25 });
  offer(s, 0, [0, 1, 2]);
  expect(idsOf(only(s.takeReady(0)))).toEqual(['t-0@0', 't-0@1']);
});

test('a rebalance drops buffers and pending retries; a revoked partition keeps its batch in flight but its result commits nothing', () => {
  const s = new BatchScheduler({ ...options, pollers: 2 });
  offer(s, 0, [0, 1, 2, 3]);
  offer(s, 1, [0, 1, 2, 3]);
  const batches = s.takeReady(0);
  expect(s.rebalance(new Set(['t-1']))).toBe(2);
  expect(s.buffered).toBe(0);
  // t-1 is kept: a re-fetch from the committed offset does not duplicate the batch in flight.
  expect(s.offer(rec(1, 2), 10, 0)).toBe(false);
  expect(s.offer(rec(1, 3), 10, 0)).toBe(true);
  // t-0 is revoked: nothing new is taken in, and its batch's success commits nothing.
  expect(s.offer(rec(0, 3), 10, 0)).toBe(false);
  const revoked = batches.find((b) => b.partitions.has('t-0'));
  if (!revoked) throw new Error('no batch');
  const effects = succeed(s, revoked);
  expect(effects.commits).toEqual([]);
  expect(effects.stale).toEqual(['t-0']);
  expect(s.partitionIds()).toEqual(['t-1']);
});
