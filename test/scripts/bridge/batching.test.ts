import { type BatchingOptions, BatchScheduler } from '../../../scripts/bridge/batching.ts';
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
const rec = (partition: number, offset: number): LambdaKafkaRecord => ({
  topic: 't',
  partition,
  offset,
  timestamp: 0,
  timestampType: 'CREATE_TIME',
  key: null,
  value: 'e30=',
  headers: [],
});
const offer = (s: BatchScheduler, partition: number, offsets: number[], now = 0) => {
  for (const o of offsets) s.offer(rec(partition, o), 10, now);
};
const offsetsOf = (b: { records: readonly { record: LambdaKafkaRecord }[] }) => b.records.map((r) => r.record.offset);
const ok = { ok: true as const, response: null };
const failed = { ok: false as const, error: { name: 'Error', message: 'boom' } };

test('a full batch goes at once; a partial one waits for the batching window', () => {
  const s = new BatchScheduler(options);
  offer(s, 0, [0, 1, 2, 3]);
  offer(s, 1, [0]);
  const first = s.takeReady(0);
  expect(first.map(offsetsOf)).toEqual([[0, 1, 2]]);
  expect(s.takeReady(999)).toEqual([]);
  expect(s.nextWakeupIn(500)).toBe(500);
  const later = s.takeReady(1_000);
  expect(later.map((b) => [...b.partitions.keys()])).toEqual([['t-1']]);
});

test('at most one batch per partition is in flight; partitions run in parallel', () => {
  const s = new BatchScheduler(options);
  offer(s, 0, [0, 1, 2, 3, 4, 5]);
  offer(s, 1, [0, 1, 2]);
  const batches = s.takeReady(0);
  expect(batches.map(offsetsOf)).toEqual([
    [0, 1, 2],
    [0, 1, 2],
  ]);
  expect(s.takeReady(5_000)).toEqual([]);
  expect(s.inFlight).toBe(2);
  const effects = s.complete(
    batches[0] as never,
    decideBatchOutcome((batches[0] as never as { partitions: never }).partitions, ok, false),
    10,
  );
  expect(effects.commits).toEqual([{ topic: 't', partition: 0, offset: 3 }]);
  expect(effects.completed).toBe(3);
  expect(s.takeReady(10).map(offsetsOf)).toEqual([[3, 4, 5]]);
});

test('a failed batch is redelivered from its first offset, before newer records, after a backoff', () => {
  const s = new BatchScheduler(options);
  offer(s, 0, [0, 1, 2, 3]);
  const [batch] = s.takeReady(0);
  if (!batch) throw new Error('no batch');
  const effects = s.complete(batch, decideBatchOutcome(batch.partitions, failed, false), 100);
  expect(effects.commits).toEqual([]);
  expect(effects.redelivered).toBe(3);
  expect(effects.retryInMs).toBe(75); // equal jitter: half of 100 plus half of 100 * 0.5
  expect(s.takeReady(150)).toEqual([]);
  const [again] = s.takeReady(175);
  expect(again && offsetsOf(again)).toEqual([0, 1, 2]);
  expect(again?.attempt).toBe(1);
  // Backoff doubles with consecutive failures, and resets on success.
  const second = s.complete(
    again as never,
    decideBatchOutcome((again as never as { partitions: never }).partitions, failed, false),
    200,
  );
  expect(second.retryInMs).toBe(150);
});

test('a partial batch response commits before the failed record and redelivers from it', () => {
  const s = new BatchScheduler(options);
  offer(s, 0, [10, 11, 12, 13]);
  const [batch] = s.takeReady(0);
  if (!batch) throw new Error('no batch');
  const decision = decideBatchOutcome(
    batch.partitions,
    { ok: true, response: { batchItemFailures: [{ itemIdentifier: { partition: 't-0', offset: 11 } }] } },
    true,
  );
  const effects = s.complete(batch, decision, 0);
  expect(effects.commits).toEqual([{ topic: 't', partition: 0, offset: 11 }]);
  expect(effects.completed).toBe(1);
  expect(effects.redelivered).toBe(2);
  expect(s.takeReady(10_000).map(offsetsOf)).toEqual([[11, 12, 13]]);
});

test('a re-fetch of offsets already held is ignored', () => {
  const s = new BatchScheduler(options);
  offer(s, 0, [0, 1, 2]);
  expect(s.offer(rec(0, 1), 10, 0)).toBe(false);
  expect(s.offer(rec(0, 3), 10, 0)).toBe(true);
  expect(s.buffered).toBe(4);
});

test('the byte budget cuts a batch short, but a batch always holds at least one record', () => {
  const s = new BatchScheduler({ ...options, batchSize: 10, maxBatchBytes: 25 });
  offer(s, 0, [0, 1, 2]);
  expect(s.takeReady(0).map(offsetsOf)).toEqual([[0, 1]]);
  const big = new BatchScheduler({ ...options, maxBatchBytes: 5 });
  offer(big, 0, [0, 1]);
  expect(big.takeReady(0).map(offsetsOf)).toEqual([[0]]);
});

test('a rebalance drops buffers; a revoked partition keeps its batch in flight but its result commits nothing', () => {
  const s = new BatchScheduler(options);
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
  const effects = s.complete(revoked, decideBatchOutcome(revoked.partitions, ok, false), 0);
  expect(effects.commits).toEqual([]);
  expect(effects.stale).toEqual(['t-0']);
  expect(s.partitionIds()).toEqual(['t-1']);
});
