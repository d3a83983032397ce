import { type AttributeValue, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { z } from 'zod';
import { TransientError } from '../../../../functions/runtime/errors.ts';
import { CompletedKeyCache } from '../../../../functions/runtime/idempotency/CompletedKeyCache.ts';
import {
  CLOCK_SKEW_MS,
  DynamoDbIdempotencyStore,
} from '../../../../functions/runtime/idempotency/DynamoDbIdempotencyStore.ts';
import { addRequestCounter, countRequestsIn } from '../../../../functions/runtime/idempotency/requestCounter.ts';
import { invocationSummaryOf, kafkaHandler } from '../../../../functions/runtime/kafkaHandler.ts';
import type { RouteSettingsInput } from '../../../../functions/runtime/settings.ts';
import { dynamodb, getItem, routeEnvironment, uniqueName } from '../../../helpers/aws.ts';
import { lambdaContext, mskEvent, type RecordSpec } from '../../../helpers/events.ts';

const Value = z.object({ id: z.string() });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const SKEW_MS = 200;
let table: string;

beforeAll(async () => {
  ({ table } = await routeEnvironment('dedupe'));
});

/** A route whose side effect is counting, so a test can see every time `process` ran. */
const countingRoute = (
  options: {
    route?: string;
    settings?: RouteSettingsInput;
    businessKey?: boolean;
    fail?: (id: string) => Error | undefined;
    hang?: (id: string) => boolean;
    clients?: { dynamodb?: DynamoDBClient };
  } = {},
) => {
  const effects = new Map<string, number>();
  const name = options.route ?? uniqueName('dedupe');
  // Each invocation is a fresh container (cold caches), so every dedupe answer comes from DynamoDB.
  const newHandler = () =>
    kafkaHandler({
      route: name,
      value: Value,
      ...(options.businessKey ? { idempotencyKey: (r: { value: { id: string } }) => r.value.id } : {}),
      settings: {
        retry: { maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 200, maxRecordAgeSeconds: 3600 },
        // A short margin keeps the lease tests short; lapsing still waits for it. The per-key strategy is the one
        // under test (WatermarkStore.test.ts has the watermark's).
        idempotency: { clockSkewMs: SKEW_MS, strategy: 'key' },
        ...options.settings,
      },
      ...(options.clients ? { clients: options.clients } : {}),
      process: async (record) => {
        if (options.hang?.(record.value.id)) await new Promise(() => {});
        const failure = options.fail?.(record.value.id);
        if (failure) throw failure;
        effects.set(record.value.id, (effects.get(record.value.id) ?? 0) + 1);
      },
    });
  /** The container `warm` invocations share; every other invocation starts a fresh one. */
  let container: ReturnType<typeof newHandler> | undefined;
  const invoke = async (records: RecordSpec[], timeoutMs = 20_000, warm = false) => {
    const context = lambdaContext(timeoutMs);
    if (warm) container ??= newHandler();
    const handler = warm && container ? container : newHandler();
    try {
      const response = await handler(mskEvent(records), context);
      return { response, error: undefined, summary: invocationSummaryOf(context) };
    } catch (error) {
      return { response: undefined, error: error as Error, summary: invocationSummaryOf(context) };
    }
  };
  return { name, invoke, effects };
};

const records = (count: number, from = 0, partitions = 1): RecordSpec[] =>
  Array.from({ length: count }, (_, i) => ({
    partition: (from + i) % partitions,
    offset: from + i,
    value: { id: `r${from + i}` },
  }));

describe('dedupe through the real handler against DynamoDB Local', () => {
  test('the same key twice in one batch and across two invocations is processed once', async () => {
    const route = countingRoute({ businessKey: true });
    const batch: RecordSpec[] = [
      { offset: 1, value: { id: 'order-1' } },
      { offset: 2, value: { id: 'order-1' } },
      { offset: 3, value: { id: 'order-2' } },
    ];
    const first = await route.invoke(batch);
    expect(first.error).toBeUndefined();
    expect(first.summary).toMatchObject({ processed: 2, duplicates: 1 });
    const second = await route.invoke(batch.map((r) => ({ ...r, offset: r.offset + 10 })));
    expect(second.summary).toMatchObject({ processed: 0, duplicates: 3 });
    expect(second.summary?.ddbRequests).toBeGreaterThan(0);
    expect(Object.fromEntries(route.effects)).toEqual({ 'order-1': 1, 'order-2': 1 });
  });

  test('two invocations on overlapping batches (a rebalance overlap) apply every record once', async () => {
    const route = countingRoute({
      settings: { retry: { maxAttempts: 8, baseDelayMs: 50, maxDelayMs: 400, maxRecordAgeSeconds: 3600 } },
    });
    const a = records(120, 0, 3);
    const b = records(120, 60, 3);
    let [ra, rb] = await Promise.all([route.invoke(a), route.invoke(b)]);
    // Whatever failed is re-delivered, as the event source would, until both succeed.
    for (let i = 0; i < 5 && (ra.error || rb.error); i++) {
      if (ra.error) ra = await route.invoke(a);
      if (rb.error) rb = await route.invoke(b);
    }
    expect(ra.error).toBeUndefined();
    expect(rb.error).toBeUndefined();
    expect(route.effects.size).toBe(180);
    expect([...route.effects.values()].every((n) => n === 1)).toBe(true);
  });

  test('a crashed claim blocks a redelivery until its lease ends, then the record runs and attempts show the history', async () => {
    const name = uniqueName('crash');
    // Crash: an invocation with a 3 s timeout claims the record and never returns.
    const crashed = countingRoute({ route: name, hang: () => true });
    const crashedAt = Date.now();
    void crashed.invoke([{ offset: 5, value: { id: 'crash' } }], 3_000);
    await sleep(300);
    const redelivery = countingRoute({ route: name });
    const early = await redelivery.invoke([{ offset: 5, value: { id: 'crash' } }], 1_800);
    expect(early.error?.message).toMatch(/orders-0@5: transient: RecordLockedError: another invocation/);
    expect(redelivery.effects.size).toBe(0);
    await sleep(crashedAt + 3_200 + SKEW_MS - Date.now());
    const late = await redelivery.invoke([{ offset: 5, value: { id: 'crash' } }]);
    expect(late.error).toBeUndefined();
    expect(redelivery.effects.get('crash')).toBe(1);
    expect(await getItem(table, { pk: { S: `${name}#orders-0@5` } })).toMatchObject({
      status: { S: 'COMPLETED' },
      attempts: { N: '2' },
    });
  });

  test('after a crash in process mode at most one flush window of records is processed twice', async () => {
    const name = uniqueName('window');
    const crashed = countingRoute({ route: name, hang: (id) => id === 'r40' });
    const crashedAt = Date.now();
    void crashed.invoke(records(60), 3_000);
    while (!crashed.effects.has('r39')) await sleep(20);
    await sleep(crashedAt + 3_200 + SKEW_MS - Date.now());
    const redelivery = countingRoute({ route: name });
    const result = await redelivery.invoke(records(60));
    expect(result.error).toBeUndefined();
    const twice = [...redelivery.effects.keys()].filter((id) => crashed.effects.has(id));
    expect(twice.length).toBeLessThanOrEqual(25);
    for (let i = 0; i < 60; i++) expect(crashed.effects.has(`r${i}`) || redelivery.effects.has(`r${i}`)).toBe(true);
  });

  test('a failed invocation releases its unprocessed claims, so an immediate redelivery proceeds', async () => {
    const name = uniqueName('release');
    let down = true;
    const route = countingRoute({
      route: name,
      fail: (id) => (down && id === 'r2' ? new TransientError('dependency down') : undefined),
      settings: { retry: { maxAttempts: 5, baseDelayMs: 10, maxDelayMs: 20, maxRecordAgeSeconds: 3600 } },
    });
    // A long timeout, so an unreleased claim would hold its record for a minute and stall the redelivery below.
    const first = await route.invoke(records(6), 60_000);
    expect(first.error?.message).toMatch(/orders-0@2: transient: TransientError: dependency down/);
    expect([...route.effects.keys()]).toEqual(['r0', 'r1']);
    for (const offset of [2, 3, 4, 5]) {
      const item = await getItem(table, { pk: { S: `${name}#orders-0@${offset}` } });
      expect(item?.leaseUntil).toEqual({ N: '0' });
      // Only offset 2 was attempted; the claims made ahead for 3..5 are given back uncounted.
      expect(item?.attempts).toEqual({ N: offset === 2 ? expect.stringMatching(/^[1-5]$/) : '0' });
    }
    down = false;
    const started = Date.now();
    const second = await route.invoke(records(6));
    expect(second.error).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(route.effects.size).toBe(6);
  });

  test('after maxAttempts failed attempts across invocations the record is dead-lettered as exhausted', async () => {
    const name = uniqueName('exhaust');
    const route = countingRoute({
      route: name,
      fail: (id) => (id === 'r0' ? new TransientError('always down') : undefined),
      settings: { retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 10, maxRecordAgeSeconds: 0 } },
    });
    const outcomes = [];
    // A 1 s timeout leaves nothing beyond the safety margin, so each invocation makes exactly one attempt.
    for (let i = 0; i < 3; i++) outcomes.push(await route.invoke(records(2), 1_000));
    expect(outcomes.map((o) => o.error === undefined)).toEqual([false, false, true]);
    expect(outcomes[2]?.summary).toMatchObject({ deadLettered: 1, processed: 1 });
    expect(await getItem(table, { pk: { S: `${name}#orders-0@0` } })).toMatchObject({
      status: { S: 'DEAD_LETTERED' },
      attempts: { N: '3' },
    });
  });

  test('with DynamoDB unreachable the batch fails with a clear error and no record is processed', async () => {
    const route = countingRoute({
      clients: { dynamodb: new DynamoDBClient({ endpoint: 'http://127.0.0.1:9', maxAttempts: 2 }) },
    });
    const result = await route.invoke(records(5));
    expect(result.error?.message).toMatch(
      /orders-0@0: transient: IdempotencyStoreError: claim of orders-0@0 failed \(in a batch of 5\): .*ECONNREFUSED/,
    );
    expect(route.effects.size).toBe(0);
  });

  test.each([10, 100, 250])(
    'request budget: %i fresh records cost one request per 25 to claim and one per 25 to settle',
    async (n) => {
      const batches = Math.ceil(n / 25);
      const route = countingRoute({ route: uniqueName('budget') });
      const result = await route.invoke(records(n, 0, 4), 20_000, true);
      expect(result.summary?.processed).toBe(n);
      // Claims coalesce per turn of the event loop, so a wave may split one batch of 25 in two.
      expect(result.summary?.ddbRequests).toBeLessThanOrEqual(2 * batches + 2);
      // A cold function (empty cache) seeing them again pays an insert batch and a read per 25.
      const cold = countingRoute({ route: route.name });
      const again = await cold.invoke(records(n, 0, 4));
      expect(again.summary).toMatchObject({ processed: 0, duplicates: n });
      expect(again.summary?.ddbRequests).toBeLessThanOrEqual(2 * batches + 2);
      // A warm one pays nothing: the completed keys are cached.
      const warm = await route.invoke(records(n, 0, 4), 20_000, true);
      expect(warm.summary).toMatchObject({ duplicates: n, ddbRequests: 0 });
    },
  );
});

describe('DynamoDbIdempotencyStore', () => {
  const store = (route: string) =>
    new DynamoDbIdempotencyStore({
      client: dynamodb,
      tableName: table,
      route,
      ttlSeconds: 3600,
      cache: new CompletedKeyCache(100),
    });
  const request = (key: string) => ({ key, coordinates: { topic: 't', partition: 0, offset: 1 }, replay: false });

  test('claims made together: fresh keys are inserted 25 to a request, taken keys read at once, and only claimable ones updated', async () => {
    const counted = addRequestCounter(new DynamoDBClient({}));
    const s = new DynamoDbIdempotencyStore({
      client: counted,
      tableName: table,
      route: 'together',
      ttlSeconds: 3600,
      cache: new CompletedKeyCache(100),
    });
    const now = Date.now();
    const nowSec = Math.floor(now / 1000);
    const existing: Record<string, Record<string, AttributeValue>> = {
      completed: { status: { S: 'COMPLETED' }, expiresAt: { N: String(nowSec + 60) } },
      dead: { status: { S: 'DEAD_LETTERED' }, expiresAt: { N: String(nowSec + 60) } },
      held: {
        status: { S: 'IN_PROGRESS' },
        owner: { S: 'other' },
        leaseUntil: { N: String(now + 60_000) },
        expiresAt: { N: String(nowSec + 60) },
      },
      lapsed: {
        status: { S: 'IN_PROGRESS' },
        owner: { S: 'other' },
        // Lapsed by more than the clock-skew margin.
        leaseUntil: { N: String(now - CLOCK_SKEW_MS - 1) },
        attempts: { N: '2' },
        firstSeen: { N: '1000' },
        expiresAt: { N: String(nowSec + 60) },
      },
      expired: { status: { S: 'COMPLETED' }, attempts: { N: '4' }, expiresAt: { N: String(nowSec - 10) } },
    };
    for (const [key, item] of Object.entries(existing))
      await dynamodb.send(new PutItemCommand({ TableName: table, Item: { pk: { S: `together#${key}` }, ...item } }));
    const fresh = Array.from({ length: 25 }, (_, i) => `fresh-${i}`);
    const keys = [...Object.keys(existing), ...fresh];
    const owner = { requestId: 'me', leaseUntilMs: now + 30_000 };
    const count = { requests: 0 };
    const results = await countRequestsIn(count, () =>
      Promise.all(
        keys.map((key, offset) =>
          s.claim({ key, coordinates: { topic: 't', partition: 2, offset }, replay: false }, owner, now),
        ),
      ),
    );
    const byKey = Object.fromEntries(keys.map((key, i) => [key, results[i]]));
    expect(byKey).toMatchObject({
      completed: { outcome: 'completed' },
      dead: { outcome: 'dead-lettered' },
      held: { outcome: 'locked', owner: 'other', retryAtMs: now + 60_000 + CLOCK_SKEW_MS },
      lapsed: { outcome: 'claimed', attempts: 3, firstSeen: 1000 },
      expired: { outcome: 'claimed', attempts: 1, firstSeen: now },
    });
    for (const key of fresh) expect(byKey[key]).toEqual({ outcome: 'claimed', attempts: 1, firstSeen: now });
    // Two inserts (25 + 5), one read of the 5 taken keys, one update each for the lapsed and the expired.
    expect(count.requests).toBe(5);
    // The inserted item is the one the conditional update writes for an absent key.
    expect(await getItem(table, { pk: { S: 'together#fresh-3' } })).toEqual({
      pk: { S: 'together#fresh-3' },
      status: { S: 'IN_PROGRESS' },
      owner: { S: 'me' },
      leaseUntil: { N: String(now + 30_000) },
      attempts: { N: '1' },
      firstSeen: { N: String(now) },
      expiresAt: { N: String(nowSec + 3600) },
      topic: { S: 't' },
      partition: { N: '2' },
      offset: { N: '8' },
    });
  });

  test('the same key claimed twice at once: one claim wins, the other finds it held by us', async () => {
    const s = store('twice');
    const now = Date.now();
    const owner = { requestId: 'me', leaseUntilMs: now + 30_000 };
    const [first, other, second] = await Promise.all([
      s.claim(request('k'), owner, now),
      s.claim(request('other'), owner, now),
      s.claim(request('k'), owner, now),
    ]);
    expect(other).toEqual({ outcome: 'claimed', attempts: 1, firstSeen: now });
    expect([first, second]).toEqual(
      expect.arrayContaining([
        { outcome: 'claimed', attempts: 1, firstSeen: now },
        // Claimable again once the lease and the clock-skew margin have passed.
        { outcome: 'locked', owner: 'me', retryAtMs: now + 30_000 + CLOCK_SKEW_MS },
      ]),
    );
  });

  test('a dead-letter decision is durable when it returns, while completes wait for their batch or the flush', async () => {
    const s = store('marker');
    const now = Date.now();
    const me = { requestId: 'me', leaseUntilMs: now + 60_000 };
    const coordinates = { topic: 't', partition: 0, offset: 1 };
    s.complete({ key: 'done', coordinates, attempts: 1, firstSeen: now });
    await s.claim(request('dead'), me, now);
    const letter = {
      kind: 'permanent' as const,
      name: 'ValidationError',
      message: 'bad',
      attempts: 1,
      firstFailedAt: now,
    };
    expect(await s.decideDeadLetter(request('dead'), letter, me, now)).toEqual({ outcome: 'decided' });
    expect(await getItem(table, { pk: { S: 'marker#dead' } })).toMatchObject({
      status: { S: 'DEAD_LETTERED' },
      letterSent: { BOOL: false },
      owner: { S: 'me' },
    });
    expect(await getItem(table, { pk: { S: 'marker#done' } })).toBeUndefined();
    // A redelivery finds the letter unsent (once our lease is over) and is told what to send again.
    const later = { requestId: 'later', leaseUntilMs: now + 200_000 };
    expect(await s.claim(request('dead'), later, now + 60_000 + CLOCK_SKEW_MS + 1)).toEqual({
      outcome: 'dead-lettered',
      unsent: letter,
    });
    await s.markSent('dead');
    expect(await s.claim(request('dead'), later, now + 60_000 + CLOCK_SKEW_MS + 1)).toEqual({
      outcome: 'dead-lettered',
    });
    await s.flush(Date.now() + 5_000);
    expect(await getItem(table, { pk: { S: 'marker#done' } })).toMatchObject({ status: { S: 'COMPLETED' } });
  });

  test('a dead-letter decision never overwrites a COMPLETED marker or another live claim', async () => {
    const s = store('decide');
    const now = Date.now();
    const me = { requestId: 'me', leaseUntilMs: now + 1_000 };
    const other = { requestId: 'other', leaseUntilMs: now + 60_000 };
    const letter = { kind: 'permanent' as const, name: 'Error', message: 'late', attempts: 1, firstFailedAt: now };
    // Our lease lapsed, another invocation claimed and completed the record: our decision must not land.
    await s.claim(request('done'), me, now);
    const after = now + 1_000 + CLOCK_SKEW_MS + 1;
    expect(await s.claim(request('done'), other, after)).toMatchObject({ outcome: 'claimed', attempts: 2 });
    s.complete({ key: 'done', coordinates: request('done').coordinates, attempts: 2, firstSeen: now });
    await s.flush(Date.now() + 5_000);
    expect(await s.decideDeadLetter(request('done'), letter, me, after)).toEqual({ outcome: 'completed' });
    // Still held by the other invocation: ours waits.
    await s.claim(request('held'), other, now);
    expect(await s.decideDeadLetter(request('held'), letter, me, now)).toMatchObject({
      outcome: 'locked',
      owner: 'other',
    });
    expect(await getItem(table, { pk: { S: 'decide#done' } })).toMatchObject({ status: { S: 'COMPLETED' } });
    expect(await getItem(table, { pk: { S: 'decide#held' } })).toMatchObject({ status: { S: 'IN_PROGRESS' } });
  });

  test('a key longer than the 2048-byte partition-key limit is stored by its hash', async () => {
    const s = store('long');
    const key = 'k'.repeat(3_000);
    const now = Date.now();
    expect(await s.claim(request(key), { requestId: 'me', leaseUntilMs: now + 5_000 }, now)).toMatchObject({
      outcome: 'claimed',
    });
    expect(s.partitionKey(key)).toMatch(/^long#sha256:[0-9a-f]{64}$/);
    expect(await getItem(table, { pk: { S: s.partitionKey(key) } })).toMatchObject({ status: { S: 'IN_PROGRESS' } });
  });

  test('a claim we already hold (a retried request whose answer was lost) comes back claimed, not locked by us', async () => {
    const s = store('own');
    const now = Date.now();
    const me = { requestId: 'me', leaseUntilMs: now + 60_000 };
    await Promise.all([s.claim(request('a'), me, now), s.claim(request('b'), me, now)]);
    const held = { outcome: 'claimed', attempts: 1, firstSeen: now };
    // Alone: the conditional update's ALL_OLD tells; together: the read of the keys the inserts found taken.
    expect(await s.claim(request('a'), me, now + 5)).toEqual(held);
    expect(await Promise.all([s.claim(request('a'), me, now + 5), s.claim(request('b'), me, now + 5)])).toEqual([
      held,
      held,
    ]);
    // Anyone else still finds it locked.
    expect(await s.claim(request('a'), { requestId: 'other', leaseUntilMs: now + 60_000 }, now + 5)).toMatchObject({
      outcome: 'locked',
      owner: 'me',
    });
  });

  test("counting a failed attempt never takes over another invocation's live claim", async () => {
    const s = store('attempt');
    const now = Date.now();
    await s.claim(request('held'), { requestId: 'other', leaseUntilMs: now + 60_000 }, now);
    expect(
      await s.recordFailedAttempt(request('held'), { requestId: 'me', leaseUntilMs: now + 5_000 }, now),
    ).toMatchObject({ outcome: 'locked', owner: 'other' });
    expect(await getItem(table, { pk: { S: 'attempt#held' } })).toMatchObject({
      owner: { S: 'other' },
      leaseUntil: { N: String(now + 60_000) },
      attempts: { N: '1' },
    });
    // A replayed dead letter counts on from its history, as a replay claim does.
    await dynamodb.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          pk: { S: 'attempt#dead' },
          status: { S: 'DEAD_LETTERED' },
          attempts: { N: '5' },
          expiresAt: { N: String(Math.floor(now / 1000) + 60) },
        },
      }),
    );
    const me = { requestId: 'me', leaseUntilMs: now + 5_000 };
    // Settled: nothing to count, and the caller learns how it was settled.
    expect(await s.recordFailedAttempt(request('dead'), me, now)).toEqual({ outcome: 'dead-lettered' });
    expect(await s.recordFailedAttempt({ ...request('dead'), replay: true }, me, now)).toEqual({
      outcome: 'counted',
      attempts: 6,
    });
  });

  test('an expired item can be claimed again and starts a fresh history', async () => {
    const s = store('expiry');
    await dynamodb.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          pk: { S: 'expiry#old' },
          status: { S: 'COMPLETED' },
          attempts: { N: '4' },
          expiresAt: { N: String(Math.floor(Date.now() / 1000) - 10) },
        },
      }),
    );
    const result = await s.claim(request('old'), { requestId: 'r1', leaseUntilMs: Date.now() + 5_000 }, Date.now());
    expect(result).toMatchObject({ outcome: 'claimed', attempts: 1 });
  });

  test('a release never touches a claim someone else holds', async () => {
    const s = store('release');
    const now = Date.now();
    await s.claim(request('k'), { requestId: 'owner-a', leaseUntilMs: now + 60_000 }, now);
    await s.release([{ key: 'k' }], { requestId: 'owner-b', leaseUntilMs: now + 60_000 });
    expect(await getItem(table, { pk: { S: 'release#k' } })).toMatchObject({
      owner: { S: 'owner-a' },
      leaseUntil: { N: String(now + 60_000) },
      attempts: { N: '1' },
    });
    await s.release([{ key: 'k' }], { requestId: 'owner-a', leaseUntilMs: now + 60_000 });
    expect(await getItem(table, { pk: { S: 'release#k' } })).toMatchObject({
      leaseUntil: { N: '0' },
      attempts: { N: '0' },
    });
    // The same release again (a retry whose first answer was lost) refunds nothing more.
    await s.release([{ key: 'k' }], { requestId: 'owner-a', leaseUntilMs: now + 60_000 });
    expect(await getItem(table, { pk: { S: 'release#k' } })).toMatchObject({ attempts: { N: '0' } });
  });

  test('TransientError is what an unreachable table becomes', async () => {
    const unreachable = new DynamoDbIdempotencyStore({
      client: new DynamoDBClient({ endpoint: 'http://127.0.0.1:9', maxAttempts: 1 }),
      tableName: table,
      route: 'down',
      ttlSeconds: 60,
      cache: new CompletedKeyCache(1),
    });
    await expect(
      unreachable.claim(request('x'), { requestId: 'r', leaseUntilMs: Date.now() + 1000 }, Date.now()),
    ).rejects.toBeInstanceOf(TransientError);
  });
});
