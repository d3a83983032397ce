// The retry queue ("park", retry.park) against DynamoDB Local and ElasticMQ: a record that used up its in-invocation
// tries waits in SQS while its partition moves on, comes back through the same handler from an SQS event, and after
// its last stage is dead-lettered as exhausted with its whole history. Delays are 0 s so the tests need not wait.
import { TemporaryError, TransientError } from '../../../../functions/runtime/errors.ts';
import { faultyRoute, requestKey, type Tx } from '../../../helpers/faultyRoute.ts';

const park = { delaysSeconds: [0, 0] };
const retry = { maxAttempts: 10, baseDelayMs: 1, maxDelayMs: 5, transient: { tries: 1 }, temporary: { coolDownMs: 5 } };
const records = (n: number) => Array.from({ length: n }, (_, i) => ({ offset: i, value: { id: `r${i}`, amount: 1 } }));
const keyed = (offset: number, key: string) => ({ offset, key, value: { id: `r${offset}`, amount: 1 } });

/** A process route whose record `failingId` (`r1`) fails while `failing` says so; every application is counted. */
const parkingRoute = async (
  failing: () => Error | undefined,
  extra: Record<string, unknown> = {},
  { ordering, failingId = 'r1' }: { ordering?: 'key' | 'none'; failingId?: string } = {},
) => {
  const applied: string[] = [];
  const route = await faultyRoute({
    settings: { retry: { ...retry, park: { ...park, ...(ordering && { ordering }) } }, breaker: { enabled: false } },
    process: async (record: { value: Tx }) => {
      const error = record.value.id === failingId ? failing() : undefined;
      if (error) throw error;
      applied.push(record.value.id);
    },
    ...extra,
  });
  return { ...route, applied };
};

test('process mode: a failing record is parked and its partition moves on; from the retry queue it is applied once', async () => {
  let down = true;
  const route = await parkingRoute(() => (down ? new TransientError('downstream blip') : undefined));

  const first = await route.invoke(records(4));
  expect(first.error).toBeUndefined();
  expect(first.summary).toMatchObject({ processed: 3, parked: 1, failed: 0, deadLettered: 0 });
  expect(route.applied).toEqual(['r0', 'r2', 'r3']);
  expect(await route.item('orders-0@1')).toMatchObject({
    status: { S: 'PARKED' },
    parkStage: { N: '0' },
    letterSent: { BOOL: true },
  });

  // The Kafka batch comes again (the ESM retried it): the parked record is settled for its partition, not re-run.
  const again = await route.invoke(records(4));
  expect(again.summary).toMatchObject({ processed: 0, parked: 0, duplicates: 4 });

  const messages = await route.parked();
  expect(messages).toHaveLength(1);
  const body = JSON.parse(messages[0]?.Body ?? '{}');
  expect(body).toMatchObject({
    route: route.route,
    idempotencyKey: 'orders-0@1',
    source: { topic: 'orders', partition: 0, offset: 1 },
    error: { kind: 'transient', name: 'TransientError' },
    parked: { stage: 0, history: [{ stage: -1, kind: 'transient', name: 'TransientError' }] },
  });
  expect(body.error.message).toMatch(new RegExp(`route ${route.route}: orders-0@1: transient: .*downstream blip`));

  down = false;
  const retried = await route.invokeParked(messages);
  expect(retried.error).toBeUndefined();
  expect(retried.response).toEqual({ batchItemFailures: [] });
  expect(retried.summary).toMatchObject({ processed: 1, parked: 0 });
  expect(route.applied).toEqual(['r0', 'r2', 'r3', 'r1']);
  expect(await route.item('orders-0@1')).toMatchObject({ status: { S: 'COMPLETED' } });

  // SQS delivers at least once: the same message again is a duplicate.
  const copy = await route.invokeParked(messages);
  expect(copy.response).toEqual({ batchItemFailures: [] });
  expect(copy.summary).toMatchObject({ processed: 0, duplicates: 1 });
  expect(route.applied.filter((id) => id === 'r1')).toHaveLength(1);
  expect(await route.letters()).toEqual([]);
});

test('each stage that fails parks the record for the next delay; after the last it is dead-lettered as exhausted with every stage', async () => {
  let calls = 0;
  let failWith: () => Error = () => new TransientError('blip from Kafka');
  const route = await parkingRoute(() => {
    calls += 1;
    return failWith();
  });
  await route.invoke(records(3));
  let messages = await route.parked();
  expect(messages).toHaveLength(1);

  failWith = () => new TemporaryError('rate limited');
  const stage0 = await route.invokeParked(messages);
  expect(stage0.response).toEqual({ batchItemFailures: [] });
  expect(stage0.summary).toMatchObject({ parked: 1, deadLettered: 0 });
  const stale = messages;
  messages = await route.parked();
  expect(JSON.parse(messages[0]?.Body ?? '{}').parked.stage).toBe(1);
  expect(await route.item('orders-0@1')).toMatchObject({ status: { S: 'PARKED' }, parkStage: { N: '1' } });

  // The stage-0 message delivered again is stale: the record waits for stage 1, and is not run.
  const callsBefore = calls;
  const late = await route.invokeParked(stale);
  expect(late.response).toEqual({ batchItemFailures: [] });
  expect(late.summary).toMatchObject({ processed: 0, duplicates: 1 });
  expect(calls).toBe(callsBefore);

  failWith = () => new TransientError('blip at stage 1');
  const stage1 = await route.invokeParked(messages);
  expect(stage1.response).toEqual({ batchItemFailures: [] });
  expect(stage1.summary).toMatchObject({ parked: 0, deadLettered: 1 });
  expect(await route.parked()).toEqual([]);
  expect(await route.item('orders-0@1')).toMatchObject({ status: { S: 'DEAD_LETTERED' } });
  const letters = await route.letters();
  expect(letters).toHaveLength(1);
  expect(letters[0]).toMatchObject({
    idempotencyKey: 'orders-0@1',
    error: { kind: 'exhausted' },
    parked: {
      stage: 1,
      history: [
        { stage: -1, kind: 'transient', name: 'TransientError', message: 'TransientError: blip from Kafka' },
        { stage: 0, kind: 'temporary', name: 'TemporaryError', message: 'TemporaryError: rate limited' },
        { stage: 1, kind: 'transient', name: 'TransientError', message: 'TransientError: blip at stage 1' },
      ],
    },
  });
  expect(route.applied).toEqual(['r0', 'r2']);
});

test('a parked message that could not be sent stops the partition; the redelivery sends it without running the record again', async () => {
  let calls = 0;
  const route = await parkingRoute(() => {
    calls += 1;
    return new TransientError('still down');
  });
  // The retry queue refuses every send (a fault ElasticMQ cannot be made to produce on its own).
  route.faults.sqs = (command) => (command === 'SendMessageBatchCommand' ? 'before' : undefined);
  const first = await route.invoke(records(3));
  expect(first.error?.message).toMatch(/orders-0@1/);
  expect(await route.item('orders-0@1')).toMatchObject({ status: { S: 'PARKED' }, letterSent: { BOOL: false } });
  const callsAfterFirst = calls;

  route.faults.sqs = () => undefined;
  const second = await route.invoke(records(3));
  expect(second.error).toBeUndefined();
  expect(calls).toBe(callsAfterFirst);
  expect(await route.parked()).toHaveLength(1);
  expect(await route.item('orders-0@1')).toMatchObject({ status: { S: 'PARKED' }, letterSent: { BOOL: true } });
  expect(route.applied.sort()).toEqual(['r0', 'r2']);
});

test('a lost answer to the park decision still parks the record once', async () => {
  const route = await parkingRoute(() => new TransientError('down'));
  let lost = false;
  route.faults.dynamodb = (command, input) => {
    if (command === 'UpdateItemCommand' && requestKey(input)?.endsWith('#orders-0@1') && !lost) {
      const update = String(input.UpdateExpression ?? '');
      if (update.includes('parkStage')) {
        lost = true;
        return 'after';
      }
    }
    return undefined;
  };
  const first = await route.invoke(records(3));
  expect(lost).toBe(true);
  expect(first.error).toBeUndefined();
  expect(first.summary).toMatchObject({ processed: 2, parked: 1 });
  expect(await route.parked()).toHaveLength(1);
});

test('transact mode: a transaction that keeps failing parks the record; from the retry queue it commits once', async () => {
  let down = true;
  const route = await faultyRoute({
    settings: { retry: { ...retry, park }, breaker: { enabled: false } },
    transact: (tx) => {
      if (tx.id === 'r1' && down) throw new TransientError('the ledger service is down');
    },
  });
  const first = await route.invoke(records(3));
  expect(first.error).toBeUndefined();
  expect(first.summary).toMatchObject({ processed: 2, parked: 1 });
  expect(await route.ledger()).toEqual(['r0', 'r2']);
  expect(await route.item('r1')).toMatchObject({ status: { S: 'PARKED' }, parkStage: { N: '0' } });

  down = false;
  const messages = await route.parked();
  const retried = await route.invokeParked(messages);
  expect(retried.response).toEqual({ batchItemFailures: [] });
  expect(retried.summary).toMatchObject({ processed: 1 });
  const copy = await route.invokeParked(messages);
  expect(copy.summary).toMatchObject({ processed: 0, duplicates: 1 });
  expect(await route.ledger()).toEqual(['r0', 'r1', 'r2']);
  expect(await route.balance()).toBe(3);
  expect(await route.item('r1')).toMatchObject({ status: { S: 'COMPLETED' } });
});

test('a message that is not a parked record of the route is left for the retry queue’s own dead-letter queue', async () => {
  const route = await parkingRoute(() => undefined);
  const result = await route.invokeParked([{ MessageId: 'm-1', Body: '{"hello":1}' }]);
  expect(result.response).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-1' }] });
});

test("ordering 'key': later records of a parked record's key wait behind it, untried, and go in order as each one settles", async () => {
  let down = true;
  const route = await parkingRoute(() => (down ? new TransientError('down') : undefined), {}, { ordering: 'key' });
  const { applied } = route;

  const first = await route.invoke([keyed(0, 'k'), keyed(1, 'k'), keyed(2, 'k'), keyed(3, 'j')]);
  expect(first.error).toBeUndefined();
  expect(first.summary).toMatchObject({ processed: 2, parked: 2 });
  expect(applied).toEqual(['r0', 'r3']);
  expect(await route.item('orders-0@2')).toMatchObject({ status: { S: 'PARKED' }, parkStage: { N: '-1' } });

  // A later batch (a cold container) reads the key's line from the table: r4 waits too.
  const second = await route.invoke([keyed(4, 'k'), keyed(5, 'j')]);
  expect(second.summary).toMatchObject({ processed: 1, parked: 1 });
  expect(applied).toEqual(['r0', 'r3', 'r5']);

  down = false;
  let messages = await route.parked();
  expect(messages.map((m) => JSON.parse(m.Body ?? '{}').idempotencyKey)).toEqual(['orders-0@1']);
  const r1 = await route.invokeParked(messages);
  expect(r1.response).toEqual({ batchItemFailures: [] });
  // r1 settled, so r2's message went at once; a repeat of r1's message hands nothing over twice.
  const repeat = await route.invokeParked(messages);
  expect(repeat.response).toEqual({ batchItemFailures: [] });
  messages = await route.parked();
  expect(messages.map((m) => JSON.parse(m.Body ?? '{}').idempotencyKey)).toEqual(['orders-0@2']);
  expect(JSON.parse(messages[0]?.Body ?? '{}').parked).toEqual({ stage: 0, history: [] });

  await route.invokeParked(messages);
  messages = await route.parked();
  expect(messages.map((m) => JSON.parse(m.Body ?? '{}').idempotencyKey)).toEqual(['orders-0@4']);
  await route.invokeParked(messages);
  expect(await route.parked()).toEqual([]);
  expect(applied).toEqual(['r0', 'r3', 'r5', 'r1', 'r2', 'r4']);

  // The key's line is empty again: its next record runs at once.
  const third = await route.invoke([keyed(6, 'k')]);
  expect(third.summary).toMatchObject({ processed: 1, parked: 0 });
  expect(await route.letters()).toEqual([]);
});

test("ordering 'none': only the failing record is parked; later records of its key run at once", async () => {
  let down = true;
  const route = await parkingRoute(() => (down ? new TransientError('down') : undefined), {}, { ordering: 'none' });
  const { applied } = route;

  const first = await route.invoke([keyed(0, 'k'), keyed(1, 'k'), keyed(2, 'k'), keyed(3, 'j')]);
  expect(first.error).toBeUndefined();
  expect(first.summary).toMatchObject({ processed: 3, parked: 1 });
  expect(applied).toEqual(['r0', 'r2', 'r3']);
  // The parked record's decision is the only per-record item: r2 did not park behind it.
  expect((await route.recordItems()).map((i) => [i.pk?.S?.split('#').slice(1).join('#'), i.status?.S])).toEqual([
    ['orders-0@1', 'PARKED'],
  ]);

  down = false;
  const messages = await route.parked();
  expect(messages.map((m) => JSON.parse(m.Body ?? '{}').idempotencyKey)).toEqual(['orders-0@1']);
  expect((await route.invokeParked(messages)).response).toEqual({ batchItemFailures: [] });
  expect(applied).toEqual(['r0', 'r2', 'r3', 'r1']);
  expect(await route.parked()).toEqual([]);
});

test("ordering 'key': a hand-over cut off after its message went keeps the next record waiting until it completes", async () => {
  let down = true;
  const route = await parkingRoute(
    () => (down ? new TransientError('down') : undefined),
    {},
    { ordering: 'key', failingId: 'r0' },
  );
  const { applied } = route;
  await route.invoke([keyed(0, 'k'), keyed(1, 'k')]);
  const r0 = await route.parked();
  down = false;

  // The hand-over's last write (r0 leaves the line, r1 moves to stage 0) fails every time.
  route.faults.dynamodb = (command, input) =>
    command === 'TransactWriteItemsCommand' && JSON.stringify(input).includes('REMOVE waiting[0]')
      ? 'before'
      : undefined;
  const cut = await route.invokeParked(r0);
  expect(cut.response?.batchItemFailures).toHaveLength(1);
  const early = await route.parked();
  expect(early).toHaveLength(1);
  // r1's message came before its item moved on: it must come again, and r1 does not run yet.
  const tooSoon = await route.invokeParked(early);
  expect(tooSoon.response?.batchItemFailures).toHaveLength(1);
  expect(applied).toEqual(['r0']);

  route.faults.dynamodb = () => undefined;
  const again = await route.invokeParked(r0);
  expect(again.response).toEqual({ batchItemFailures: [] });
  const copies = [...early, ...(await route.parked())];
  expect(copies).toHaveLength(2);
  const r1 = await route.invokeParked(copies);
  expect(r1.response).toEqual({ batchItemFailures: [] });
  expect(applied).toEqual(['r0', 'r1']);
});

test('a parked record an open breaker refuses waits its stage again: its message is replaced, not left to the visibility timeout', async () => {
  const route = await faultyRoute({
    warm: true,
    settings: {
      retry: { ...retry, park },
      breaker: { minimumCalls: 2, windowSeconds: 30, openMs: 60_000, maxOpenMs: 60_000, halfOpenProbes: 1 },
    },
    process: async (record: { value: Tx }) => {
      if (record.value.id === 'r1') throw new TransientError('down');
    },
  });
  const first = await route.invoke(records(2));
  expect(first.summary).toMatchObject({ breakerOpened: 1, parked: 1 });
  const messages = await route.parked();
  expect(messages).toHaveLength(1);
  const attempts = (await route.item('orders-0@1'))?.attempts?.N;

  const refused = await route.invokeParked(messages);
  expect(refused.response).toEqual({ batchItemFailures: [] });
  expect(refused.summary).toMatchObject({ breakerShortCircuited: 1, parked: 1, processed: 0 });
  const again = await route.parked();
  expect(again).toHaveLength(1);
  const body = JSON.parse(again[0]?.Body ?? '{}');
  expect(body.parked).toEqual(JSON.parse(messages[0]?.Body ?? '{}').parked);
  expect(await route.item('orders-0@1')).toMatchObject({
    status: { S: 'PARKED' },
    parkStage: { N: '0' },
    attempts: { N: attempts },
  });
});
