import {
  type BreakerAttempt,
  type BreakerGate,
  Breakers,
  breakerOutcome,
  MAX_BREAKERS,
  ROUTE_BREAKER,
} from '../../../../functions/runtime/breaker/Breakers.ts';
import type { Classification } from '../../../../functions/runtime/classify.ts';
import { emptySummary } from '../../../../functions/runtime/observability.ts';
import { BreakerSettings, type BreakerSettings as Settings } from '../../../../functions/runtime/settings.ts';

const fakeClock = () => {
  const clock = {
    ms: 1_700_000_000_000,
    now: () => clock.ms,
    random: () => 0,
  };
  return clock;
};

const settings = (overrides: Partial<Settings> = {}): Settings =>
  BreakerSettings.parse({ minimumCalls: 4, windowSeconds: 30, openMs: 1_000, halfOpenProbes: 1, ...overrides });

const attempt = (gate: BreakerGate): BreakerAttempt => {
  if (!gate.allowed) throw new Error(`refused until ${gate.retryAtMs}`);
  return gate;
};

/** One attempt as the work modes make it: acquire, let the handler name its downstreams, record the result. */
const run = (breakers: Breakers, errorClass: Classification | undefined, ...downstreams: string[]) => {
  const gate = attempt(breakers.tryAcquire());
  for (const name of downstreams) gate.use(name);
  gate.record(breakerOutcome(errorClass), errorClass);
};
const runTimes = (times: number, ...args: Parameters<typeof run>) => {
  for (let i = 0; i < times; i++) run(...args);
};

test('breakerOutcome: transient and temporary are failures; success and permanent say the downstream answered', () => {
  expect(breakerOutcome(undefined)).toBe('success');
  expect(breakerOutcome('permanent')).toBe('success');
  expect(breakerOutcome('transient')).toBe('failure');
  expect(breakerOutcome('temporary')).toBe('failure');
  expect(breakerOutcome('conflict')).toBe('ignored');
});

describe('Breakers keyed by downstream', () => {
  test('an attempt that names no downstream counts against the route breaker; permanent errors do not open it', () => {
    const breakers = new Breakers('orders', settings(), fakeClock());
    expect(breakers.names).toEqual([ROUTE_BREAKER]);
    runTimes(20, breakers, 'permanent');
    runTimes(3, breakers, 'transient');
    expect(breakers.get(ROUTE_BREAKER).window()).toEqual({ calls: 23, failures: 3 });
    expect(breakers.worstState()).toBe('closed');
  });

  test('named breakers are independent: one opening leaves the others closed and their windows as they were', () => {
    const breakers = new Breakers('payments', settings(), fakeClock());
    runTimes(3, breakers, undefined, 'ledger');
    runTimes(4, breakers, 'transient', 'payments-api');
    expect(breakers.get('payments-api').state).toBe('open');
    expect(breakers.get('ledger').state).toBe('closed');
    expect(breakers.get('ledger').window()).toEqual({ calls: 3, failures: 0 });
    expect(breakers.get(ROUTE_BREAKER).window()).toEqual({ calls: 0, failures: 0 });
    expect(breakers.opened).toBe(1);
  });

  test('an open breaker stops every attempt of the route until it turns half-open; the refusal counts nowhere', () => {
    const clock = fakeClock();
    const breakers = new Breakers('payments', settings(), clock);
    runTimes(4, breakers, 'temporary', 'payments-api');
    const openUntil = breakers.get('payments-api').openUntilMs as number;
    expect(breakers.tryAcquire()).toEqual({ allowed: false, retryAtMs: openUntil });
    expect(breakers.get(ROUTE_BREAKER).window()).toEqual({ calls: 0, failures: 0 });

    clock.ms = openUntil;
    const probe = attempt(breakers.tryAcquire());
    expect(probe.probe).toBe(true);
    // Half-open with its one probe out: the next attempt waits a moment.
    expect(breakers.tryAcquire().allowed).toBe(false);
    probe.use('payments-api');
    probe.record('success');
    expect(breakers.worstState()).toBe('closed');
  });

  test('a probe that did not call the half-open downstream gives its place back instead of closing it', () => {
    const clock = fakeClock();
    const breakers = new Breakers('payments', settings(), clock);
    runTimes(4, breakers, 'transient', 'payments-api');
    clock.ms = breakers.get('payments-api').openUntilMs as number;
    run(breakers, undefined, 'ledger');
    expect(breakers.get('payments-api').state).toBe('half-open');
    expect(breakers.get('ledger').window()).toEqual({ calls: 1, failures: 0 });
    run(breakers, undefined, 'payments-api');
    expect(breakers.get('payments-api').state).toBe('closed');
  });

  test('names past MAX_BREAKERS count against the route breaker', () => {
    const breakers = new Breakers('orders', settings(), fakeClock());
    for (let i = 0; i < MAX_BREAKERS + 10; i++) run(breakers, undefined, `host-${i}`);
    expect(breakers.names).toHaveLength(MAX_BREAKERS);
    expect(breakers.get(ROUTE_BREAKER).window().calls).toBe(11);
  });

  test('disabled, every attempt goes through and nothing is counted', () => {
    const breakers = new Breakers('orders', settings({ enabled: false }), fakeClock());
    runTimes(50, breakers, 'transient');
    expect(breakers.get(ROUTE_BREAKER).window()).toEqual({ calls: 0, failures: 0 });
    expect(breakers.tryAcquire().allowed).toBe(true);
  });
});

describe("Breakers keyed by the error's class", () => {
  test('throttling opens the temporary breaker only; successes count against each class', () => {
    const breakers = new Breakers('orders', settings({ keyBy: 'error-class' }), fakeClock());
    expect(breakers.names).toEqual([]);
    run(breakers, 'transient');
    runTimes(2, breakers, undefined);
    runTimes(4, breakers, 'temporary');
    expect(breakers.get('temporary').state).toBe('open');
    expect(breakers.get('transient').state).toBe('closed');
    expect(breakers.get('transient').window()).toEqual({ calls: 3, failures: 1 });
  });

  test('a named downstream still wins over the class', () => {
    const breakers = new Breakers('orders', settings({ keyBy: 'error-class' }), fakeClock());
    runTimes(4, breakers, 'transient', 'payments-api');
    expect(breakers.names).toEqual(['payments-api']);
    expect(breakers.worstState()).toBe('open');
  });
});

describe('per invocation and per container', () => {
  test('startInvocation reports the opens during the invocation and the worst state at its end', () => {
    const clock = fakeClock();
    const breakers = new Breakers('payments', settings(), clock);
    run(breakers, 'transient', 'a');
    const summary = emptySummary();
    const finish = breakers.startInvocation();
    runTimes(3, breakers, 'transient', 'a');
    finish(summary);
    expect(summary).toMatchObject({ breakerOpened: 1, breakerState: 2 });

    clock.ms += 1_000;
    const next = breakers.startInvocation();
    next(summary);
    expect(summary).toMatchObject({ breakerOpened: 0, breakerState: 1 });
  });
});
