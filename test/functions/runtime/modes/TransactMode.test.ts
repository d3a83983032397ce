// Regression tests for `transact` mode's settling rules, against DynamoDB Local and ElasticMQ, with faults aimed at
// single requests where a real local service cannot produce them.
import { faultyRoute, requestKey, transactionHolds } from '../../../helpers/faultyRoute.ts';

const HOUR = 3_600_000;

test('a pack whose head is dead-lettered as exhausted still settles every other record of the pack', async () => {
  const route = await faultyRoute({
    settings: { retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 5, maxRecordAgeSeconds: 60 } },
  });
  // Every transaction holding the head fails transiently (a hot item); without it the rest commits.
  route.faults.dynamodb = (command, input) =>
    command === 'TransactWriteItemsCommand' && transactionHolds(input, `${route.route}#a`) ? 'before' : undefined;
  const old = Date.now() - 2 * HOUR;
  const result = await route.invoke([
    // Distinct accounts, so the three records share one transaction (a pack).
    { offset: 1, timestamp: old, value: { id: 'a', account: 'x', amount: 10 } },
    { offset: 2, timestamp: old, value: { id: 'b', account: 'y', amount: 20 } },
    { offset: 3, timestamp: old, value: { id: 'c', account: 'z', amount: 30 } },
  ]);
  expect(result.error).toBeUndefined();
  expect(await route.ledger()).toEqual(['b', 'c']);
  const letters = await route.letters();
  expect(letters.map((l) => [l.idempotencyKey, l.error.kind])).toEqual([['a', 'exhausted']]);
});

test('with partial batch responses, records before a rejected one are committed before its offset is reported', async () => {
  const route = await faultyRoute({ settings: { partialBatchResponse: true } });
  // The overdraft's dead-letter decision cannot be written: the partition must stop at it, with `a` settled.
  route.faults.dynamodb = (command, input) =>
    command === 'UpdateItemCommand' && requestKey(input) === `${route.route}#b` ? 'before' : undefined;
  const result = await route.invoke([
    { offset: 1, value: { id: 'a', account: 'x', amount: 10 } },
    { offset: 2, value: { id: 'b', account: 'y', amount: -500 } },
    { offset: 3, value: { id: 'c', account: 'z', amount: 5 } },
  ]);
  expect(result.error).toBeUndefined();
  expect(result.response?.batchItemFailures).toEqual([{ itemIdentifier: { partition: 'orders-0', offset: 2 } }]);
  expect(await route.ledger()).toContain('a');
  expect(await route.letters()).toEqual([]);
  // The redelivery from the reported offset dead-letters the overdraft and applies the rest, exactly once each.
  route.faults.dynamodb = () => undefined;
  const again = await route.invoke([
    { offset: 2, value: { id: 'b', account: 'y', amount: -500 } },
    { offset: 3, value: { id: 'c', account: 'z', amount: 5 } },
  ]);
  expect(again.response?.batchItemFailures).toEqual([]);
  expect(await route.ledger()).toEqual(['a', 'c']);
  expect((await route.letters()).map((l) => l.idempotencyKey)).toEqual(['b']);
});

test("a transient error from the route's own transact() counts attempts, so an old record is dead-lettered in the end", async () => {
  const route = await faultyRoute({
    transact: (tx) => {
      if (tx.id === 'stuck') throw Object.assign(new Error('downstream throttled'), { name: 'ThrottlingException' });
    },
  });
  const records = [{ offset: 1, timestamp: Date.now() - 2 * HOUR, value: { id: 'stuck', amount: 1 } }];
  const outcomes = [];
  for (let i = 0; i < 3; i++) outcomes.push(await route.invoke(records));
  expect(outcomes.slice(0, 2).every((o) => o.error !== undefined)).toBe(true);
  expect(outcomes[2]?.error).toBeUndefined();
  expect((await route.letters()).map((l) => [l.idempotencyKey, l.error.kind, l.attempts])).toEqual([
    ['stuck', 'exhausted', 3],
  ]);
  // And a record settled while its items keep failing to build is a duplicate, not a stall.
  const after = await route.invoke(records);
  expect(after.error).toBeUndefined();
  expect(after.summary?.duplicates).toBe(1);
});

test('a transaction applied whose answer was lost is a duplicate on the retry, never a business rejection', async () => {
  const route = await faultyRoute();
  let lost = 0;
  route.faults.dynamodb = (command) => (command === 'TransactWriteItemsCommand' && lost++ < 1 ? 'after' : undefined);
  const result = await route.invoke([
    { offset: 1, value: { id: 'a', account: 'x', amount: 10 } },
    { offset: 2, value: { id: 'b', account: 'y', amount: 20 } },
  ]);
  expect(result.error).toBeUndefined();
  expect(await route.ledger()).toEqual(['a', 'b']);
  expect(await route.letters()).toEqual([]);
});

test("the route's transact() runs once per record, even when a record must wait for the next pack", async () => {
  const builds = new Map<string, number>();
  const route = await faultyRoute({ transact: (tx) => void builds.set(tx.id, (builds.get(tx.id) ?? 0) + 1) });
  // One account: every record updates the same balance, so each pack holds one record.
  const result = await route.invoke(
    ['a', 'b', 'c', 'd'].map((id, i) => ({ offset: i, value: { id, account: 'same', amount: 5 } })),
  );
  expect(result.error).toBeUndefined();
  expect(await route.ledger()).toEqual(['a', 'b', 'c', 'd']);
  expect(Object.fromEntries(builds)).toEqual({ a: 1, b: 1, c: 1, d: 1 });
});
