import { type BatchPartition, decideBatchOutcome } from '../../../scripts/bridge/outcome.ts';

const part = (topic: string, partition: number, first: number, last: number): [string, BatchPartition] => [
  `${topic}-${partition}`,
  {
    topic,
    partition,
    firstOffset: first,
    lastOffset: last,
    offsets: new Set(Array.from({ length: last - first + 1 }, (_, i) => first + i)),
  },
];
const batch = new Map([part('orders', 0, 10, 19), part('orders', 1, 100, 104)]);
const failure = (partition: string, offset: number) => ({ itemIdentifier: { partition, offset } });

test('success commits every partition past its last record', () => {
  const decision = decideBatchOutcome(batch, { ok: true, response: null }, false);
  expect(decision.kind).toBe('success');
  expect(decision.partitions.map((p) => [p.id, p.commit, p.redeliverFrom])).toEqual([
    ['orders-0', 20, undefined],
    ['orders-1', 105, undefined],
  ]);
});

test('a thrown error commits nothing and redelivers every partition from its first offset', () => {
  const decision = decideBatchOutcome(batch, { ok: false, error: { name: 'BatchFailedError', message: 'x' } }, true);
  expect(decision.kind).toBe('failed');
  expect(decision.reason).toContain('BatchFailedError');
  expect(decision.partitions.map((p) => [p.id, p.commit, p.redeliverFrom])).toEqual([
    ['orders-0', undefined, 10],
    ['orders-1', undefined, 100],
  ]);
});

test('a partial batch response commits up to the failed offset and redelivers from it', () => {
  const decision = decideBatchOutcome(
    batch,
    { ok: true, response: { batchItemFailures: [failure('orders-0', 15), failure('orders-0', 13)] } },
    true,
  );
  expect(decision.kind).toBe('partial');
  expect(decision.partitions.map((p) => [p.id, p.commit, p.redeliverFrom])).toEqual([
    ['orders-0', 13, 13],
    ['orders-1', 105, undefined],
  ]);
});

test('a failure at the first offset commits nothing for that partition', () => {
  const decision = decideBatchOutcome(
    batch,
    { ok: true, response: { batchItemFailures: [failure('orders-1', 100)] } },
    true,
  );
  expect(decision.partitions.find((p) => p.id === 'orders-1')).toEqual({
    id: 'orders-1',
    topic: 'orders',
    partition: 1,
    redeliverFrom: 100,
  });
});

test('an on-demand route ignores the response, as the ESM does', () => {
  const decision = decideBatchOutcome(
    batch,
    { ok: true, response: { batchItemFailures: [failure('orders-0', 15)] } },
    false,
  );
  expect(decision.kind).toBe('success');
});

test.each([
  ['an empty list', { batchItemFailures: [] }, 'success'],
  ['no batchItemFailures', { other: 1 }, 'success'],
  ['a list that is not one', { batchItemFailures: 'x' }, 'failed'],
  ['an item without an identifier', { batchItemFailures: [{}] }, 'failed'],
  ['a string identifier (the SQS shape)', { batchItemFailures: [{ itemIdentifier: 'orders-0@12' }] }, 'failed'],
  ['an unknown partition', { batchItemFailures: [failure('orders-7', 12)] }, 'failed'],
  ['an offset outside the batch', { batchItemFailures: [failure('orders-0', 99)] }, 'failed'],
])('a partial response with %s is a %s batch', (_name, response, kind) => {
  expect(decideBatchOutcome(batch, { ok: true, response }, true).kind).toBe(kind);
});
