import type { Classification } from '../classify.ts';
import type { InvocationSummary } from '../observability.ts';
import type { BreakerSettings } from '../settings.ts';
import {
  BREAKER_STATE_VALUE,
  type BreakerClock,
  type BreakerOutcome,
  type BreakerPermit,
  type BreakerRefusal,
  BreakerState,
  CircuitBreaker,
} from './CircuitBreaker.ts';

/** The breaker of an attempt whose handler named no downstream, with `keyBy: 'route'`. */
export const ROUTE_BREAKER = 'route';
/**
 * Breakers a route may have. A handler naming downstreams from data (`context.breaker(record.value.host)`) would
 * otherwise grow the map without end; names past the cap count against the route's breaker.
 */
export const MAX_BREAKERS = 32;

/**
 * What an attempt's result says about its downstream. `permanent` is the record's fault, and says the downstream
 * answered; `conflict` (a key reused with other content) comes from the idempotency table, not the downstream.
 */
export const breakerOutcome = (errorClass: Classification | undefined): BreakerOutcome => {
  switch (errorClass) {
    case undefined:
    case 'permanent':
      return 'success';
    case 'transient':
    case 'temporary':
      return 'failure';
    default:
      return 'ignored';
  }
};

/** One attempt let through every breaker of the route. Record its result exactly once, whatever happens. */
export type BreakerAttempt = {
  readonly allowed: true;
  /** True when a half-open breaker let this attempt through as one of its probes. */
  readonly probe: boolean;
  /** The handler's `context.breaker(name)`: this attempt calls downstream `name`, and its result counts there. */
  use(name: string): void;
  /**
   * The attempt's result: `breakerOutcome(errorClass)`, with the error's class (undefined on success). It counts
   * against the downstreams the handler named, or else the route's breaker (or, with `keyBy: 'error-class'`, the
   * breaker of the error's class; a success against each of those). The other breakers' permits are given back.
   */
  record(outcome: BreakerOutcome, errorClass?: Classification): void;
};
export type BreakerGate = BreakerAttempt | BreakerRefusal;

const NOTHING_TO_RECORD: BreakerAttempt = { allowed: true, probe: false, use: () => {}, record: () => {} };

/** The classes an attempt's failure is keyed by with `keyBy: 'error-class'`. */
const ERROR_CLASS_KEYS: ReadonlySet<string> = new Set(['transient', 'temporary']);

/**
 * A route's breakers in this container, by name. Before each attempt the route asks them all (`tryAcquire`): the
 * downstreams a record will call are known only once its handler ran, so any open breaker stops the attempt, as the
 * record would most likely have failed on it and stopped its partition anyway.
 */
export class Breakers {
  readonly route: string;
  readonly settings: BreakerSettings;
  readonly #clock: BreakerClock;
  readonly #breakers = new Map<string, CircuitBreaker>();

  constructor(route: string, settings: BreakerSettings, clock: BreakerClock = { now: Date.now, random: Math.random }) {
    this.route = route;
    this.settings = settings;
    this.#clock = clock;
    if (settings.keyBy === 'route') this.get(ROUTE_BREAKER);
  }

  /** The breaker named `name`, made closed on first use; past MAX_BREAKERS names, the route's. */
  get(name: string): CircuitBreaker {
    const found = this.#breakers.get(name);
    if (found) return found;
    if (this.#breakers.size >= MAX_BREAKERS && name !== ROUTE_BREAKER) return this.get(ROUTE_BREAKER);
    const breaker = new CircuitBreaker(name, this.settings, this.#clock);
    this.#breakers.set(name, breaker);
    return breaker;
  }

  /** The breakers there are, by name. */
  get names(): string[] {
    return [...this.#breakers.keys()];
  }

  /**
   * Lets an attempt through when no breaker of the route is open (taking a probe's place in each half-open one), or
   * says when to ask again: when the last open one turns half-open, or shortly when half-open with every probe out.
   */
  tryAcquire(): BreakerGate {
    if (!this.settings.enabled) return NOTHING_TO_RECORD;
    const permits = new Map<string, BreakerPermit>();
    let refusedUntil: number | undefined;
    for (const [name, breaker] of this.#breakers) {
      const admission = breaker.tryAcquire();
      if (admission.allowed) permits.set(name, admission);
      else refusedUntil = Math.max(refusedUntil ?? 0, admission.retryAtMs);
    }
    if (refusedUntil !== undefined) {
      for (const permit of permits.values()) permit.record('ignored');
      return { allowed: false, retryAtMs: refusedUntil };
    }
    return this.#attempt(permits);
  }

  #attempt(permits: Map<string, BreakerPermit>): BreakerAttempt {
    const named = new Set<string>();
    let recorded = false;
    return {
      allowed: true,
      probe: [...permits.values()].some((p) => p.probe),
      use: (name) => {
        named.add(this.get(name).name);
      },
      record: (outcome, errorClass) => {
        if (recorded) return;
        recorded = true;
        const targets = this.#targets(named, outcome, errorClass);
        for (const [name, permit] of permits) permit.record(targets.has(name) ? outcome : 'ignored');
        for (const name of targets) {
          if (permits.has(name)) continue;
          // Made during the attempt (named by the handler, or a class failing for the first time): closed.
          const late = this.get(name).tryAcquire();
          if (late.allowed) late.record(outcome);
        }
      },
    };
  }

  #targets(named: ReadonlySet<string>, outcome: BreakerOutcome, errorClass: string | undefined): Set<string> {
    if (outcome === 'ignored') return new Set();
    if (named.size > 0) return new Set(named);
    if (this.settings.keyBy === 'route') return new Set([ROUTE_BREAKER]);
    if (outcome === 'failure')
      return new Set([this.get(errorClass && ERROR_CLASS_KEYS.has(errorClass) ? errorClass : ROUTE_BREAKER).name]);
    return new Set(this.names.filter((name) => ERROR_CLASS_KEYS.has(name)));
  }

  /** Times any of the route's breakers opened in this container, ever: the per-invocation count is a difference. */
  get opened(): number {
    let opened = 0;
    for (const breaker of this.#breakers.values()) opened += breaker.opened;
    return opened;
  }

  /** The worst state of the route's breakers now. */
  worstState(): BreakerState {
    let worst: BreakerState = BreakerState.closed;
    for (const breaker of this.#breakers.values()) {
      const state = breaker.state;
      if (BREAKER_STATE_VALUE[state] > BREAKER_STATE_VALUE[worst]) worst = state;
    }
    return worst;
  }

  /**
   * Call as an invocation starts; the function it returns, called as the invocation ends, writes `breakerOpened`
   * (opens during the invocation) and `breakerState` (the worst state then, 0 closed, 1 half-open, 2 open).
   */
  startInvocation(): (summary: Pick<InvocationSummary, 'breakerOpened' | 'breakerState'>) => void {
    const openedBefore = this.opened;
    return (summary) => {
      summary.breakerOpened = this.opened - openedBefore;
      summary.breakerState = BREAKER_STATE_VALUE[this.worstState()];
    };
  }
}
