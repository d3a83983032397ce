// Regression tests for `process` mode against DynamoDB Local and ElasticMQ, with faults aimed at single requests
// where the real local services cannot produce them (DynamoDB Local never throttles or returns UnprocessedItems).
import type { WriteRequest } from '@aws-sdk/client-dynamodb';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { faultyRoute as anyRoute, type Tx } from '../../../helpers/faultyRoute.ts';

/** These tests read per-record items: routes on the per-key strategy (WatermarkStore.test.ts has the watermark's). */
const faultyRoute = (options: Parameters<typeof anyRoute>[0] = {}) =>
  anyRoute({
    ...options,
    settings: { ...options.settings, idempotency: { strategy: 'key', ...options.settings?.idempotency } },
  });

const counting = () => {
  const runs = new Map<string, number>();
  return {
    runs,
    process: async (record: { value: Tx }) => {
      runs.set(record.value.id, (runs.get(record.value.id) ?? 0) + 1);
    },
  };
};

test('completes that keep failing are retried within the invocation, so no record runs again', async () => {
  const effects = counting();
  const route = await faultyRoute({ process: effects.process });
  let attempts = 0;
  // Twelve throttled attempts, then UnprocessedItems twice: more than any fixed retry count would survive.
  route.faults.dynamodb = (command, input) => {
    if (command !== 'BatchWriteItemCommand') return undefined;
    attempts += 1;
    if (attempts <= 12) return 'before';
    if (attempts <= 14) return { output: { UnprocessedItems: input.RequestItems as Record<string, WriteRequest[]> } };
    return undefined;
  };
  const records = Array.from({ length: 30 }, (_, i) => ({ offset: i, value: { id: `r${i}`, amount: 1 } }));
  const result = await route.invoke(records);
  expect(result.error).toBeUndefined();
  expect(attempts).toBeGreaterThan(14);
  for (let i = 0; i < 30; i++) expect((await route.item(`orders-0@${i}`))?.status?.S).toBe('COMPLETED');
  // A redelivery (a new container) finds every record done.
  route.faults.dynamodb = () => undefined;
  const again = await route.invoke(records);
  expect(again.summary).toMatchObject({ processed: 0, duplicates: 30 });
  expect([...effects.runs.values()].every((n) => n === 1)).toBe(true);
});

test('a replay copy in the same batch as its original runs; the original and later copies are skipped', async () => {
  const effects = counting();
  const route = await faultyRoute({ process: effects.process });
  // The original was dead-lettered; `replay` deleted its DLQ message after republishing it.
  await route.dynamodb.send(
    new PutItemCommand({
      TableName: process.env.IDEMPOTENCY_TABLE_NAME,
      Item: {
        pk: { S: `${route.route}#orders-0@1` },
        status: { S: 'DEAD_LETTERED' },
        attempts: { N: '1' },
        expiresAt: { N: String(Math.floor(Date.now() / 1000) + 3600) },
      },
    }),
  );
  const replayOf: [string, string] = ['x-bridge-replay-of', 'orders-0@1'];
  const result = await route.invoke([
    { offset: 1, value: { id: 'original', amount: 1 } },
    { offset: 7, value: { id: 'replayed', amount: 1 }, headers: [replayOf] },
    { offset: 8, value: { id: 'replayed-again', amount: 1 }, headers: [replayOf] },
  ]);
  expect(result.error).toBeUndefined();
  expect([...effects.runs.keys()]).toEqual(['replayed']);
  expect(result.summary).toMatchObject({ processed: 1, duplicates: 2 });
  expect(await route.item('orders-0@1')).toMatchObject({ status: { S: 'COMPLETED' } });
});

test('a replay header that is not a coordinate is not ours: the record keeps its own key', async () => {
  const effects = counting();
  const route = await faultyRoute({ process: effects.process });
  const result = await route.invoke([
    { offset: 1, value: { id: 'empty', amount: 1 }, headers: [['x-bridge-replay-of', []]] },
    { offset: 2, value: { id: 'garbage', amount: 1 }, headers: [['x-bridge-replay-of', 'not a coordinate\n']] },
    { offset: 3, value: { id: 'long', amount: 1 }, headers: [['x-bridge-replay-of', `t-0@${'9'.repeat(400)}`]] },
  ]);
  expect(result.error).toBeUndefined();
  expect(result.summary?.processed).toBe(3);
  for (const offset of [1, 2, 3]) expect(await route.item(`orders-0@${offset}`)).toBeDefined();
});

test('while the table takes no completes, at most two batches of records run ahead of them', async () => {
  const effects = counting();
  const route = await faultyRoute({ process: effects.process, settings: { idempotency: { clockSkewMs: 100 } } });
  route.faults.dynamodb = (command) => (command === 'BatchWriteItemCommand' ? 'before' : undefined);
  const records = Array.from({ length: 100 }, (_, i) => ({ offset: i, value: { id: `r${i}`, amount: 1 } }));
  const started = Date.now();
  const outage = await route.invoke(records, 2_000);
  expect(outage.error?.message).toMatch(/completes are not being written/);
  // MAX_UNCONFIRMED_COMPLETES records ran; the rest never started.
  expect(effects.runs.size).toBe(50);
  // The outage lasts past the leases (and the skew margin), and past the writes the first container left retrying,
  // so none of its completes lands late. Then the table is back, and the redelivery applies what is left.
  await new Promise((resolve) => setTimeout(resolve, started + 3_000 - Date.now()));
  route.faults.dynamodb = () => undefined;
  const after = await route.invoke(records);
  expect(after.error).toBeUndefined();
  expect(effects.runs.size).toBe(100);
  const twice = [...effects.runs.values()].filter((n) => n === 2).length;
  expect(twice).toBe(50);
  expect([...effects.runs.values()].every((n) => n <= 2)).toBe(true);
});

test('a throttled downstream is waited out for its cool-down, then probed; a transient blip is retried at once', async () => {
  const calls: Array<{ id: string; at: number }> = [];
  const failures = new Map<string, Error[]>([
    ['throttled', [Object.assign(new Error('slow down'), { name: 'ThrottlingException' })]],
    ['blip', [Object.assign(new Error('reset'), { code: 'ECONNRESET' })]],
  ]);
  const route = await faultyRoute({
    settings: { retry: { baseDelayMs: 1, maxDelayMs: 5, temporary: { coolDownMs: 300, probes: 1 } } },
    process: async (record) => {
      calls.push({ id: record.value.id, at: Date.now() });
      const error = failures.get(record.value.id)?.shift();
      if (error) throw error;
    },
  });
  const result = await route.invoke([
    { offset: 0, value: { id: 'throttled', amount: 1 } },
    { offset: 1, value: { id: 'blip', amount: 1 } },
  ]);
  expect(result.error).toBeUndefined();
  expect(result.summary).toMatchObject({ processed: 2, retried: 2, deadLettered: 0 });
  const gap = (id: string) => {
    const [first, second] = calls.filter((c) => c.id === id);
    return (second?.at ?? 0) - (first?.at ?? 0);
  };
  expect(gap('throttled')).toBeGreaterThanOrEqual(300);
  expect(gap('blip')).toBeLessThan(100);
});

test('out of tries for its tier, the record stops its partition for the redelivery, with its attempts counted', async () => {
  const route = await faultyRoute({
    settings: { retry: { maxAttempts: 10, baseDelayMs: 1, maxDelayMs: 2, transient: { tries: 2 } } },
    process: async () => {
      throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
    },
  });
  const result = await route.invoke([{ offset: 0, value: { id: 'down', amount: 1 } }]);
  expect(result.error).toBeDefined();
  expect(result.summary).toMatchObject({ retried: 2, deadLettered: 0 });
  // The first attempt and two tries: three attempts count towards retry.maxAttempts.
  expect((await route.item('orders-0@0'))?.attempts?.N).toBe('3');
});
