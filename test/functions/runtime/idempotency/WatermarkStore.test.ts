// The watermark dedupe strategy through the handler, against DynamoDB Local and ElasticMQ: one item per partition
// instead of two per record, the touched range that keeps per-record decisions visible to the next owner, fencing,
// and the writes a batch costs. Faults are scripted per request (test/helpers/faultyRoute.ts) where the local
// services cannot produce them: a lost answer, a refused send.

import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { BridgeError, TransientError } from '../../../../functions/runtime/errors.ts';
import { CompletedKeyCache } from '../../../../functions/runtime/idempotency/CompletedKeyCache.ts';
import { DynamoDbIdempotencyStore } from '../../../../functions/runtime/idempotency/DynamoDbIdempotencyStore.ts';
import { ADVANCE_EVERY, WatermarkStore } from '../../../../functions/runtime/idempotency/WatermarkStore.ts';
import { kafkaHandler } from '../../../../functions/runtime/kafkaHandler.ts';
import { createTable, dynamodb, getItem, uniqueName } from '../../../helpers/aws.ts';
import { lambdaContext, mskEvent } from '../../../helpers/events.ts';
import { faultyRoute, requestKey, type Tx } from '../../../helpers/faultyRoute.ts';

const records = (from: number, to: number, value: (i: number) => Partial<Tx> = () => ({})) =>
  Array.from({ length: to - from }, (_, i) => ({
    offset: from + i,
    value: { id: `r${from + i}`, amount: 1, ...value(from + i) },
  }));

/** A process route that applies every record it is given (and counts it), failing the ids `failing` names. */
const countingRoute = async (failing: (id: string) => Error | undefined = () => undefined, settings = {}) => {
  const applied: string[] = [];
  const route = await faultyRoute({
    settings: { breaker: { enabled: false }, ...settings },
    process: async (record: { value: Tx }) => {
      const error = failing(record.value.id);
      if (error) throw error;
      applied.push(record.value.id);
    },
  });
  /** The DynamoDB requests of the next invocations, by command. */
  const requests: string[] = [];
  route.faults.dynamodb = (command) => {
    requests.push(command);
    return undefined;
  };
  return { ...route, applied, requests };
};

const num = (value: { N?: string } | undefined) => (value?.N === undefined ? undefined : Number(value.N));

test('process mode: fresh records cost the partition item alone: a lease, an advance every 25 records, an end', async () => {
  const route = await countingRoute();
  const first = await route.invoke(records(0, 100));
  expect(first.error).toBeUndefined();
  expect(first.summary).toMatchObject({ received: 100, processed: 100, duplicates: 0 });
  expect(route.applied).toHaveLength(100);
  // Take, at most three advances (25, 50, 75: one in flight at a time; the 100th is the end's), end: at most 5
  // writes for 100 records, where the per-key strategy writes 200 items.
  expect(new Set(route.requests)).toEqual(new Set(['UpdateItemCommand']));
  expect(route.requests.length).toBeGreaterThanOrEqual(2);
  expect(route.requests.length).toBeLessThanOrEqual(100 / ADVANCE_EVERY + 1);
  expect(await route.recordItems()).toEqual([]);
  const mark = await route.watermark();
  expect({ committed: num(mark?.committedOffset), lease: num(mark?.leaseUntil), epoch: num(mark?.epoch) }).toEqual({
    committed: 99,
    lease: 0,
    epoch: 1,
  });

  // Delivered again (the ESM retried it): every record is a duplicate, found without a per-record read.
  route.requests.length = 0;
  const again = await route.invoke(records(0, 100));
  expect(again.summary).toMatchObject({ processed: 0, duplicates: 100 });
  expect(route.applied).toHaveLength(100);
  expect(route.requests).toEqual(['UpdateItemCommand', 'UpdateItemCommand']);
  expect(num((await route.watermark())?.epoch)).toBe(2);

  // 25 more records: the lease and the end, nothing between.
  route.requests.length = 0;
  await route.invoke(records(100, 125));
  expect(route.requests).toEqual(['UpdateItemCommand', 'UpdateItemCommand']);
});

test('a batch that starts above the watermark (a gap: compaction, transaction markers) just moves it', async () => {
  const route = await countingRoute();
  await route.invoke(records(0, 3));
  const gap = await route.invoke(records(10, 13));
  expect(gap.summary).toMatchObject({ processed: 3, duplicates: 0 });
  expect(num((await route.watermark())?.committedOffset)).toBe(12);
  // Records below the watermark are duplicates even if they were never delivered: the ESM committed past them.
  const old = await route.invoke(records(5, 8));
  expect(old.summary).toMatchObject({ processed: 0, duplicates: 3 });
});

test('a dead letter above the watermark touches it first, and its envelope is sent before the partition moves on', async () => {
  const route = await countingRoute();
  const batch = [
    ...records(0, 3),
    { offset: 3, rawValue: Buffer.from('{not json').toString('base64') },
    ...records(4, 6),
  ];
  const first = await route.invoke(batch);
  expect(first.summary).toMatchObject({ processed: 5, deadLettered: 1 });
  const mark = await route.watermark();
  expect({ committed: num(mark?.committedOffset), touched: num(mark?.touchedOffset) }).toEqual({
    committed: 5,
    touched: 3,
  });
  expect((await route.recordItems()).map((i) => [i.pk?.S?.split('#')[1], i.status?.S])).toEqual([
    ['orders-0@3', 'DEAD_LETTERED'],
  ]);
  expect((await route.letters()).map((l) => l.idempotencyKey)).toEqual(['orders-0@3']);
});

test('the trap: a letter decided but not sent stops its partition below it; the next owner finds the decision in the touched range and sends it, never running the record', async () => {
  const route = await countingRoute((id) => (id === 'r3' ? new TransientError('down') : undefined), {
    retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 2, maxRecordAgeSeconds: 0, transient: { tries: 0 } },
  });
  // Its envelope is refused: the decision is written, the send fails.
  route.faults.sqs = (command) =>
    command === 'SendMessageBatchCommand' ? { error: new Error('SQS is down') } : undefined;
  const first = await route.invoke(records(0, 6), 20_000);
  expect(first.error).toBeDefined();
  expect(route.applied).toEqual(['r0', 'r1', 'r2']);
  const mark = await route.watermark();
  expect({ committed: num(mark?.committedOffset), touched: num(mark?.touchedOffset) }).toEqual({
    committed: 2,
    touched: 3,
  });
  expect(await route.item('orders-0@3')).toMatchObject({ status: { S: 'DEAD_LETTERED' }, letterSent: { BOOL: false } });

  route.faults.sqs = () => undefined;
  const again = await route.invoke(records(3, 6));
  expect(again.error).toBeUndefined();
  expect(again.summary).toMatchObject({ processed: 2, duplicates: 1, deadLettered: 1 });
  expect(route.applied).toEqual(['r0', 'r1', 'r2', 'r4', 'r5']);
  expect((await route.letters()).map((l) => [l.idempotencyKey, l.error.kind])).toEqual([['orders-0@3', 'exhausted']]);
  expect(num((await route.watermark())?.committedOffset)).toBe(5);
});

test('an end write that never lands fails the batch: records that ran are not committed past with no watermark over them', async () => {
  const route = await countingRoute(undefined, { idempotency: { clockSkewMs: 100 } });
  // The table stops taking the partition item's writes once the lease is taken (DynamoDB going away mid-batch).
  let taken = false;
  route.faults.dynamodb = (command, input) => {
    if (command !== 'UpdateItemCommand' || !String(requestKey(input)).includes('#wm#')) return undefined;
    if (!taken) {
      taken = true;
      return undefined;
    }
    return { error: new Error('DynamoDB is unreachable') };
  };
  const first = await route.invoke(records(0, 10), 3_000);
  expect(first.error?.message).toMatch(/the watermark of orders-0 was not moved to 9: the deadline came first/);
  expect(route.applied).toHaveLength(10);
  const mark = await route.watermark();
  expect(num(mark?.committedOffset)).toBe(-1);

  // The redelivery, once the unreleased lease lapsed, runs them again: the crash window, not a silent gap.
  route.faults.dynamodb = () => undefined;
  await new Promise((resolve) => setTimeout(resolve, (num(mark?.leaseUntil) ?? 0) + 200 - Date.now()));
  const again = await route.invoke(records(0, 10));
  expect(again.error).toBeUndefined();
  expect(route.applied).toHaveLength(20);
  expect(num((await route.watermark())?.committedOffset)).toBe(9);
});

test("a failing record's attempts are kept on the watermark between deliveries, so it is dead-lettered once they run out", async () => {
  const old = Date.now() - 2 * 3_600_000;
  const route = await countingRoute((id) => (id === 'r1' ? new TransientError('down') : undefined), {
    retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2, maxRecordAgeSeconds: 60, transient: { tries: 0 } },
    partialBatchResponse: true,
  });
  const batch = records(0, 3).map((r) => ({ ...r, timestamp: old }));
  const first = await route.invoke(batch);
  expect(first.response).toEqual({ batchItemFailures: [{ itemIdentifier: { partition: 'orders-0', offset: 1 } }] });
  expect(await route.watermark()).toMatchObject({
    committedOffset: { N: '0' },
    headOffset: { N: '1' },
    headAttempts: { N: '1' },
  });
  await route.invoke(batch.slice(1));
  expect(await route.watermark()).toMatchObject({ headOffset: { N: '1' }, headAttempts: { N: '2' } });
  const third = await route.invoke(batch.slice(1));
  expect(third.response).toEqual({ batchItemFailures: [] });
  expect((await route.letters()).map((l) => [l.idempotencyKey, l.error.kind, l.attempts])).toEqual([
    ['orders-0@1', 'exhausted', 3],
  ]);
  const mark = await route.watermark();
  expect(num(mark?.committedOffset)).toBe(2);
  expect(mark?.headOffset).toBeUndefined();
});

test('a partition another live invocation holds is waited for, then stopped at its first record', async () => {
  const route = await countingRoute(undefined, {
    retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
    partialBatchResponse: true,
  });
  await route.invoke(records(0, 2));
  // Another invocation takes the lease and holds it for a minute.
  const other = watermarkStore(route.route, process.env.IDEMPOTENCY_TABLE_NAME as string);
  expect(
    await other.acquire('orders', 0, 10, { requestId: 'zombie', leaseUntilMs: Date.now() + 60_000 }, Date.now()),
  ).toEqual({ outcome: 'acquired', committed: 1 });
  const blocked = await route.invoke(records(2, 4));
  expect(blocked.response).toEqual({ batchItemFailures: [{ itemIdentifier: { partition: 'orders-0', offset: 2 } }] });
  expect(route.applied).toEqual(['r0', 'r1']);
});

test('transact mode: each pack commits with the watermark update, no marker; a pack whose answer was lost is not applied twice', async () => {
  const route = await faultyRoute({ byCoordinates: true, settings: { breaker: { enabled: false } } });
  let lost = 1;
  route.faults.dynamodb = (command) => (command === 'TransactWriteItemsCommand' && lost-- > 0 ? 'after' : undefined);
  const first = await route.invoke(records(0, 5));
  expect(first.error).toBeUndefined();
  expect(first.summary).toMatchObject({ processed: 5 });
  expect(await route.ledger()).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
  expect(await route.balance()).toBe(5);
  expect(await route.recordItems()).toEqual([]);
  expect(num((await route.watermark())?.committedOffset)).toBe(4);
  const again = await route.invoke(records(0, 5));
  expect(again.summary).toMatchObject({ processed: 0, duplicates: 5 });
  expect(await route.balance()).toBe(5);
});

test('fencing: a pack of an owner whose lease was taken over never lands, and its end leaves the new owner alone', async () => {
  const table = await createTable(uniqueName('wm-fence'));
  const route = uniqueName('fence');
  const a = watermarkStore(route, table);
  const b = watermarkStore(route, table);
  const now = Date.now();
  await a.acquire('orders', 0, 0, { requestId: 'a', leaseUntilMs: now - 10_000 }, now);
  // a's lease lapsed (and the skew with it): b takes the partition over, with a higher epoch.
  expect(await b.acquire('orders', 0, 0, { requestId: 'b', leaseUntilMs: now + 60_000 }, now)).toEqual({
    outcome: 'acquired',
    committed: -1,
  });
  const entry = {
    key: 'orders-0@0',
    coordinates: { topic: 'orders', partition: 0, offset: 0 },
    replay: false,
    items: [],
  };
  const outcomes = await a.transact([entry], now, 'a-pack');
  expect(outcomes).toEqual([{ outcome: 'taken', taken: { outcome: 'locked', retryAtMs: now + 60_000, owner: 'b' } }]);
  // a's records are covered by no watermark of a's: its batch must fail.
  await expect(a.end('orders', 0, 10, undefined, Date.now() + 5_000)).rejects.toThrow(
    'the watermark of orders-0 was not moved to 10: another invocation (b) holds the partition',
  );
  const item = await watermarkItem(table, route);
  expect({ owner: item?.owner?.S, committed: num(item?.committedOffset), epoch: num(item?.epoch) }).toEqual({
    owner: 'b',
    committed: -1,
    epoch: 2,
  });
});

test('a route with a business idempotencyKey cannot be put on the watermark strategy', async () => {
  const handler = kafkaHandler({
    route: 'wm-misconfigured',
    value: z.unknown(),
    idempotencyKey: () => 'k',
    settings: { idempotency: { strategy: 'watermark' } },
    process: async () => {},
  });
  await expect(handler(mskEvent(records(0, 1)), lambdaContext() as unknown as Context)).rejects.toThrow(BridgeError);
  await expect(handler(mskEvent(records(0, 1)), lambdaContext() as unknown as Context)).rejects.toThrow(
    /idempotency.strategy 'watermark' dedupes by the record's coordinates/,
  );
});

const watermarkStore = (route: string, table: string) => {
  const common = { client: dynamodb, tableName: table, route, ttlSeconds: 3_600, clockSkewMs: 100 };
  return new WatermarkStore({
    ...common,
    perKey: new DynamoDbIdempotencyStore({ ...common, cache: new CompletedKeyCache(0) }),
  });
};

const watermarkItem = (table: string, route: string) => getItem(table, { pk: { S: `${route}#wm#orders-0` } });
