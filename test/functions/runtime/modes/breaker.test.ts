// The circuit breaker inside the work modes, against DynamoDB Local and ElasticMQ: a warm container whose downstream
// fails opens its breaker, stops attempting (and counting attempts) while it is open, and closes on a good probe.
import { TransientError } from '../../../../functions/runtime/errors.ts';
import { faultyRoute, type Tx } from '../../../helpers/faultyRoute.ts';

// Open for 2 s: long enough that a loaded machine's slow invocation still ends (and reports) while it is open.
const breaker = { minimumCalls: 4, windowSeconds: 10, openMs: 2_000, maxOpenMs: 4_000, halfOpenProbes: 1 };
const records = Array.from({ length: 20 }, (_, i) => ({ offset: i, value: { id: `r${i}`, amount: 1 } }));

test('process mode: failures open the breaker; while open, records are not attempted and attempts are given back; a good probe closes it', async () => {
  let down = true;
  const calls: string[] = [];
  const applied = new Set<string>();
  const route = await faultyRoute({
    warm: true,
    settings: {
      breaker,
      retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5, maxRecordAgeSeconds: 60, temporary: { coolDownMs: 5 } },
    },
    process: async (record: { value: Tx }) => {
      calls.push(record.value.id);
      if (down) throw new TransientError('the downstream is down');
      applied.add(record.value.id);
    },
  });

  // Three attempts of r0 (its transient tries), below minimumCalls: still closed.
  const first = await route.invoke(records);
  expect(first.summary).toMatchObject({ processed: 0, breakerOpened: 0, breakerState: 0 });
  expect(calls).toEqual(['r0', 'r0', 'r0']);
  // The fourth failure opens it.
  const second = await route.invoke(records);
  expect(second.summary).toMatchObject({ processed: 0, breakerOpened: 1, breakerState: 2, deadLettered: 0 });
  const attemptsWhenOpened = Number((await route.item('orders-0@0'))?.attempts?.N);
  const callsWhenOpened = calls.length;

  // Open: the record is not attempted, its claim's attempt is given back, and the partition stops.
  const third = await route.invoke(records);
  expect(third.error?.message).toMatch(/orders-0@0: transient: BreakerOpenError: the circuit breaker is open until/);
  expect(third.summary).toMatchObject({ processed: 0, breakerShortCircuited: 1, breakerState: 2, deadLettered: 0 });
  expect(calls.length).toBe(callsWhenOpened);
  expect(Number((await route.item('orders-0@0'))?.attempts?.N)).toBe(attemptsWhenOpened);

  // The downstream is back; after the open time one probe goes through, succeeds and closes it.
  down = false;
  await new Promise((resolve) => setTimeout(resolve, breaker.openMs + 50));
  const fourth = await route.invoke(records);
  expect(fourth.error).toBeUndefined();
  expect(fourth.summary).toMatchObject({ processed: 20, breakerState: 0, deadLettered: 0 });
  expect(applied.size).toBe(20);
  expect(await route.letters()).toEqual([]);
});

test('a breaker that turns half-open within the cool-down is waited for inside the invocation', async () => {
  let failures = 4;
  const route = await faultyRoute({
    warm: true,
    settings: {
      breaker: { ...breaker, openMs: 200, maxOpenMs: 400 },
      retry: {
        maxAttempts: 10,
        baseDelayMs: 1,
        maxDelayMs: 5,
        transient: { tries: 5 },
        temporary: { coolDownMs: 1_000 },
      },
    },
    process: async () => {
      if (failures-- > 0) throw new TransientError('blip');
    },
  });
  const started = Date.now();
  const result = await route.invoke(records.slice(0, 3));
  // Four failures opened it; the fifth try waited out the 200 ms open time instead of ending the invocation.
  expect(result.error).toBeUndefined();
  expect(result.summary).toMatchObject({ processed: 3, breakerOpened: 1, breakerShortCircuited: 0, breakerState: 0 });
  expect(Date.now() - started).toBeGreaterThanOrEqual(180);
});
