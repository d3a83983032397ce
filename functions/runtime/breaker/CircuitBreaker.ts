import type { BreakerSettings } from '../settings.ts';

/**
 * `closed`: calls go through and are counted. `open`: none go through until the open time ends. `half-open`: a few
 * probes go through, and their results close it or open it again.
 */
export const BreakerState = { closed: 'closed', halfOpen: 'half-open', open: 'open' } as const;
export type BreakerState = (typeof BreakerState)[keyof typeof BreakerState];

/** The `BreakerState` metric's value: higher is worse, so the worst of several breakers is their maximum. */
export const BREAKER_STATE_VALUE: Readonly<Record<BreakerState, number>> = {
  closed: 0,
  'half-open': 1,
  open: 2,
};

/**
 * What one call says about the downstream. `success`: it answered, including a `permanent` error, which is the
 * record's fault. `failure`: a `transient` or `temporary` error. `ignored`: nothing, such as an attempt that never
 * reached it; it leaves the window untouched and frees a probe's place.
 */
export type BreakerOutcome = 'success' | 'failure' | 'ignored';

/** A call let through. Record its outcome exactly once; later calls of `record` are ignored. */
export type BreakerPermit = {
  readonly allowed: true;
  /** True when the breaker is half-open and this call decides, with the other probes, whether it closes. */
  readonly probe: boolean;
  record(outcome: BreakerOutcome): void;
};
/** A call refused: nothing is attempted before `retryAtMs`. */
export type BreakerRefusal = { readonly allowed: false; readonly retryAtMs: number };
export type BreakerAdmission = BreakerPermit | BreakerRefusal;

export type BreakerClock = {
  readonly now: () => number;
  /** Jitter for the open time, in [0, 1). */
  readonly random: () => number;
};

/** When half-open with every probe out, how long a refused caller waits before asking again. */
export const PROBE_RECHECK_MS = 250;
/** Share of the open time taken off at random, so the containers of a route do not probe in lockstep. */
const OPEN_JITTER = 0.1;

type Bucket = { second: number; calls: number; failures: number };

/**
 * One circuit breaker. It opens when, over the last `windowSeconds`, at least `minimumCalls` calls were counted and
 * the share that failed reached `failureRateThreshold`. It stays open `openMs`, doubled on each re-open up to
 * `maxOpenMs`, less up to a tenth at random; then `halfOpenProbes` calls go through as probes: all of them
 * succeeding closes it, one failing opens it again.
 *
 * Framework-free and synchronous: the clock and the jitter are injected, and no timer runs, so open turns half-open
 * when a caller next asks. A Lambda container runs one invocation at a time, so there are no locks.
 */
export class CircuitBreaker {
  readonly name: string;
  readonly #settings: BreakerSettings;
  readonly #clock: BreakerClock;
  readonly #onOpen: (breaker: CircuitBreaker) => void;
  /** Ring of one-second buckets, indexed by second modulo the window. */
  readonly #buckets: Bucket[];
  #state: BreakerState = BreakerState.closed;
  /** Bumped on every transition, so an outcome recorded after one (a straggler) changes nothing. */
  #generation = 0;
  #openUntilMs = 0;
  /** Opens since it last closed: the exponent of the open time. */
  #reopens = 0;
  /** Probes out in this half-open period, by when each went: one lost (never recorded) is dropped after `maxOpenMs`. */
  #probesOut: number[] = [];
  /** Probes of this half-open period that succeeded. */
  #probeSuccesses = 0;
  #opened = 0;

  constructor(
    name: string,
    settings: BreakerSettings,
    clock: BreakerClock,
    onOpen: (breaker: CircuitBreaker) => void = () => {},
  ) {
    this.name = name;
    this.#settings = settings;
    this.#clock = clock;
    this.#onOpen = onOpen;
    this.#buckets = Array.from({ length: settings.windowSeconds }, () => ({ second: -1, calls: 0, failures: 0 }));
  }

  /** The state now: an open breaker whose time is up reads as half-open. */
  get state(): BreakerState {
    this.#advance(this.#clock.now());
    return this.#state;
  }

  /** Times it opened since it was made (a monotonic count; the registry reports the difference per invocation). */
  get opened(): number {
    return this.#opened;
  }

  /** When an open breaker turns half-open; undefined unless open. */
  get openUntilMs(): number | undefined {
    return this.state === BreakerState.open ? this.#openUntilMs : undefined;
  }

  /** The calls and failures in the window now. */
  window(): { calls: number; failures: number } {
    return this.#tally(Math.floor(this.#clock.now() / 1000));
  }

  /** Lets a call through, as a probe when half-open, or says when to ask again. */
  tryAcquire(): BreakerAdmission {
    const now = this.#clock.now();
    this.#advance(now);
    if (this.#state === BreakerState.open) return { allowed: false, retryAtMs: this.#openUntilMs };
    if (this.#state === BreakerState.closed) return this.#permit(false, () => {});
    // A probe holds its place until it fails, succeeds (for good: it counts towards closing) or is ignored (freed).
    if (this.#probesOut.length + this.#probeSuccesses >= this.#settings.halfOpenProbes)
      return { allowed: false, retryAtMs: now + PROBE_RECHECK_MS };
    this.#probesOut.push(now);
    const sentAt = now;
    return this.#permit(true, () => this.#probeReturned(sentAt));
  }

  #permit(probe: boolean, returned: () => void): BreakerPermit {
    const generation = this.#generation;
    let recorded = false;
    return {
      allowed: true,
      probe,
      record: (outcome) => {
        if (recorded) return;
        recorded = true;
        const now = this.#clock.now();
        this.#advance(now);
        // A call let through before the last transition says nothing about the state since.
        if (generation !== this.#generation) return;
        if (probe) returned();
        if (outcome === 'ignored') return;
        if (this.#state === BreakerState.halfOpen) this.#probeAnswered(outcome, now);
        else this.#count(outcome, now);
      },
    };
  }

  #probeReturned(sentAt: number): void {
    const index = this.#probesOut.indexOf(sentAt);
    if (index >= 0) this.#probesOut.splice(index, 1);
  }

  #probeAnswered(outcome: 'success' | 'failure', now: number): void {
    if (outcome === 'failure') {
      this.#open(now);
      return;
    }
    this.#probeSuccesses += 1;
    if (this.#probeSuccesses >= this.#settings.halfOpenProbes) this.#close();
  }

  #count(outcome: 'success' | 'failure', now: number): void {
    const second = Math.floor(now / 1000);
    const bucket = this.#buckets[second % this.#buckets.length] as Bucket;
    if (bucket.second !== second) Object.assign(bucket, { second, calls: 0, failures: 0 });
    bucket.calls += 1;
    if (outcome === 'failure') bucket.failures += 1;
    if (outcome === 'success') return;
    const { calls, failures } = this.#tally(second);
    if (calls >= this.#settings.minimumCalls && failures / calls >= this.#settings.failureRateThreshold)
      this.#open(now);
  }

  #tally(second: number): { calls: number; failures: number } {
    let calls = 0;
    let failures = 0;
    for (const bucket of this.#buckets) {
      if (bucket.second <= second - this.#buckets.length || bucket.second > second) continue;
      calls += bucket.calls;
      failures += bucket.failures;
    }
    return { calls, failures };
  }

  /** Open turns half-open once its time is up; a probe lost for `maxOpenMs` (its outcome never recorded) is given back. */
  #advance(now: number): void {
    if (this.#state === BreakerState.open && now >= this.#openUntilMs) {
      this.#transition(BreakerState.halfOpen);
      this.#probesOut = [];
      this.#probeSuccesses = 0;
    }
    if (this.#state === BreakerState.halfOpen)
      this.#probesOut = this.#probesOut.filter((sentAt) => now - sentAt < this.#settings.maxOpenMs);
  }

  #open(now: number): void {
    const { openMs, maxOpenMs } = this.#settings;
    const ceiling = Math.min(maxOpenMs, openMs * 2 ** this.#reopens);
    this.#openUntilMs = now + ceiling - Math.floor(this.#clock.random() * ceiling * OPEN_JITTER);
    this.#reopens += 1;
    this.#opened += 1;
    this.#clearWindow();
    this.#transition(BreakerState.open);
    this.#onOpen(this);
  }

  #close(): void {
    this.#reopens = 0;
    this.#clearWindow();
    this.#transition(BreakerState.closed);
  }

  #clearWindow(): void {
    for (const bucket of this.#buckets) Object.assign(bucket, { second: -1, calls: 0, failures: 0 });
  }

  #transition(state: BreakerState): void {
    this.#state = state;
    this.#generation += 1;
  }
}
