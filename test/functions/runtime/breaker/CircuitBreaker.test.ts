import {
  type BreakerAdmission,
  type BreakerOutcome,
  type BreakerPermit,
  CircuitBreaker,
  PROBE_RECHECK_MS,
} from '../../../../functions/runtime/breaker/CircuitBreaker.ts';
import { BreakerSettings, type BreakerSettings as Settings } from '../../../../functions/runtime/settings.ts';

/** A clock the test moves by hand, and jitter it pins. */
const fakeClock = (start = 1_700_000_000_000) => {
  const clock = {
    ms: start,
    jitter: 0,
    now: () => clock.ms,
    random: () => clock.jitter,
    advance: (ms: number) => {
      clock.ms += ms;
    },
  };
  return clock;
};

const settings = (overrides: Partial<Settings> = {}): Settings =>
  BreakerSettings.parse({
    failureRateThreshold: 0.5,
    minimumCalls: 10,
    windowSeconds: 30,
    openMs: 1_000,
    maxOpenMs: 5_000,
    halfOpenProbes: 2,
    ...overrides,
  });

const permit = (admission: BreakerAdmission): BreakerPermit => {
  if (!admission.allowed) throw new Error(`refused until ${admission.retryAtMs}`);
  return admission;
};
/** One call through the breaker, with its outcome. */
const call = (breaker: CircuitBreaker, outcome: BreakerOutcome) => permit(breaker.tryAcquire()).record(outcome);
const calls = (breaker: CircuitBreaker, outcome: BreakerOutcome, times: number) => {
  for (let i = 0; i < times; i++) call(breaker, outcome);
};

/** Opens a fresh breaker with `minimumCalls` failures. */
const opened = (overrides: Partial<Settings> = {}) => {
  const clock = fakeClock();
  const breaker = new CircuitBreaker('payments-api', settings(overrides), clock);
  calls(breaker, 'failure', breaker.window().calls + (overrides.minimumCalls ?? 10));
  expect(breaker.state).toBe('open');
  return { clock, breaker };
};

describe('CircuitBreaker, closed', () => {
  test('stays closed below minimumCalls, however many of them failed', () => {
    const breaker = new CircuitBreaker('a', settings(), fakeClock());
    calls(breaker, 'failure', 9);
    expect(breaker.state).toBe('closed');
    expect(breaker.window()).toEqual({ calls: 9, failures: 9 });
    call(breaker, 'failure');
    expect(breaker.state).toBe('open');
    expect(breaker.opened).toBe(1);
  });

  test('opens when the failure rate reaches the threshold, not below it', () => {
    const below = new CircuitBreaker('a', settings(), fakeClock());
    calls(below, 'success', 6);
    calls(below, 'failure', 4);
    expect(below.window()).toEqual({ calls: 10, failures: 4 });
    expect(below.state).toBe('closed');

    const at = new CircuitBreaker('a', settings(), fakeClock());
    calls(at, 'success', 5);
    calls(at, 'failure', 4);
    expect(at.state).toBe('closed');
    call(at, 'failure');
    expect(at.window()).toEqual({ calls: 0, failures: 0 });
    expect(at.state).toBe('open');
  });

  test('ignored outcomes leave the window untouched', () => {
    const breaker = new CircuitBreaker('a', settings(), fakeClock());
    calls(breaker, 'ignored', 50);
    calls(breaker, 'failure', 9);
    expect(breaker.window()).toEqual({ calls: 9, failures: 9 });
    expect(breaker.state).toBe('closed');
  });

  test('the window slides: failures older than windowSeconds age out', () => {
    const clock = fakeClock(1_700_000_000_000);
    const breaker = new CircuitBreaker('a', settings({ windowSeconds: 10 }), clock);
    calls(breaker, 'failure', 5);
    clock.advance(5_000);
    calls(breaker, 'failure', 4);
    expect(breaker.window()).toEqual({ calls: 9, failures: 9 });
    // The first five are 10 s old now: out of the window, so the tenth failure finds only five calls.
    clock.advance(5_000);
    expect(breaker.window()).toEqual({ calls: 4, failures: 4 });
    call(breaker, 'failure');
    expect(breaker.state).toBe('closed');
    // Long after, the ring's old buckets count for nothing.
    clock.advance(60_000);
    expect(breaker.window()).toEqual({ calls: 0, failures: 0 });
    calls(breaker, 'success', 5);
    calls(breaker, 'failure', 5);
    expect(breaker.state).toBe('open');
  });

  test('a call let through before it opened changes nothing when it ends after', () => {
    const breaker = new CircuitBreaker('a', settings(), fakeClock());
    const straggler = permit(breaker.tryAcquire());
    calls(breaker, 'failure', 10);
    expect(breaker.state).toBe('open');
    straggler.record('success');
    straggler.record('failure');
    expect(breaker.state).toBe('open');
    expect(breaker.opened).toBe(1);
  });

  test('a permit records once', () => {
    const breaker = new CircuitBreaker('a', settings(), fakeClock());
    const once = permit(breaker.tryAcquire());
    once.record('failure');
    once.record('failure');
    expect(breaker.window()).toEqual({ calls: 1, failures: 1 });
  });
});

describe('CircuitBreaker, open', () => {
  test('short-circuits every call until its open time is up, counting none', () => {
    const { clock, breaker } = opened();
    const openedAt = clock.ms;
    for (let i = 0; i < 5; i++) {
      expect(breaker.tryAcquire()).toEqual({ allowed: false, retryAtMs: openedAt + 1_000 });
      clock.advance(199);
    }
    expect(breaker.window()).toEqual({ calls: 0, failures: 0 });
    expect(breaker.openUntilMs).toBe(openedAt + 1_000);
    clock.advance(5);
    expect(breaker.state).toBe('half-open');
    expect(breaker.openUntilMs).toBeUndefined();
  });

  test('the open time doubles on each re-open, up to maxOpenMs, and jitter only shortens it', () => {
    const { clock, breaker } = opened();
    const openTimes: number[] = [];
    let openedAt = clock.ms;
    for (let i = 0; i < 5; i++) {
      const until = breaker.openUntilMs as number;
      openTimes.push(until - openedAt);
      clock.ms = until;
      const probe = permit(breaker.tryAcquire());
      expect(probe.probe).toBe(true);
      openedAt = clock.ms;
      probe.record('failure');
    }
    expect(openTimes).toEqual([1_000, 2_000, 4_000, 5_000, 5_000]);
    expect(breaker.opened).toBe(6);

    const jittered = opened();
    jittered.clock.jitter = 0.999;
    jittered.clock.ms = jittered.breaker.openUntilMs as number;
    const start = jittered.clock.ms;
    permit(jittered.breaker.tryAcquire()).record('failure');
    // 2 s less at most a tenth: containers do not probe in lockstep, and never beyond the cap.
    expect((jittered.breaker.openUntilMs as number) - start).toBe(2_000 - 199);
  });
});

describe('CircuitBreaker, half-open', () => {
  const halfOpen = (overrides: Partial<Settings> = {}) => {
    const { clock, breaker } = opened(overrides);
    clock.ms = breaker.openUntilMs as number;
    expect(breaker.state).toBe('half-open');
    return { clock, breaker };
  };

  test('lets halfOpenProbes probes through, refuses the rest briefly, and closes when all succeed', () => {
    const { clock, breaker } = halfOpen();
    const first = permit(breaker.tryAcquire());
    const second = permit(breaker.tryAcquire());
    expect([first.probe, second.probe]).toEqual([true, true]);
    expect(breaker.tryAcquire()).toEqual({ allowed: false, retryAtMs: clock.ms + PROBE_RECHECK_MS });
    first.record('success');
    // A probe that succeeded keeps its place: two successes, not one success twice, close it.
    expect(breaker.tryAcquire().allowed).toBe(false);
    expect(breaker.state).toBe('half-open');
    second.record('success');
    expect(breaker.state).toBe('closed');
    expect(permit(breaker.tryAcquire()).probe).toBe(false);
  });

  test('closing starts afresh: an empty window, and the first open time again', () => {
    const { clock, breaker } = halfOpen();
    permit(breaker.tryAcquire()).record('failure');
    clock.ms = breaker.openUntilMs as number;
    calls(breaker, 'success', 2);
    expect(breaker.state).toBe('closed');
    expect(breaker.window()).toEqual({ calls: 0, failures: 0 });
    calls(breaker, 'failure', 9);
    expect(breaker.state).toBe('closed');
    const openedAt = clock.ms;
    call(breaker, 'failure');
    expect(breaker.openUntilMs).toBe(openedAt + 1_000);
  });

  test('one failing probe re-opens it, for longer', () => {
    const { clock, breaker } = halfOpen();
    const first = permit(breaker.tryAcquire());
    const second = permit(breaker.tryAcquire());
    first.record('success');
    second.record('failure');
    expect(breaker.state).toBe('open');
    expect(breaker.openUntilMs).toBe(clock.ms + 2_000);
  });

  test('an ignored probe frees its place for another', () => {
    const { breaker } = halfOpen({ halfOpenProbes: 1 });
    const ignored = permit(breaker.tryAcquire());
    expect(breaker.tryAcquire().allowed).toBe(false);
    ignored.record('ignored');
    const next = permit(breaker.tryAcquire());
    expect(next.probe).toBe(true);
    next.record('success');
    expect(breaker.state).toBe('closed');
  });

  test('a probe never recorded is given back after maxOpenMs, so the breaker cannot stay stuck', () => {
    const { clock, breaker } = halfOpen({ halfOpenProbes: 1 });
    permit(breaker.tryAcquire());
    clock.advance(4_999);
    expect(breaker.tryAcquire().allowed).toBe(false);
    clock.advance(1);
    expect(permit(breaker.tryAcquire()).probe).toBe(true);
  });
});
