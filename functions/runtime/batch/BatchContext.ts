import { type BreakerAttempt, type BreakerGate, type Breakers, breakerOutcome } from '../breaker/Breakers.ts';
import type { BreakerOutcome } from '../breaker/CircuitBreaker.ts';
import type { Classification } from '../classify.ts';
import type { DeadLetterSink } from '../deadLetter/DeadLetterSink.ts';
import { type ErrorKind, RecordProcessingError } from '../errors.ts';
import { type CompletedKeyCache, cacheKeyOf } from '../idempotency/CompletedKeyCache.ts';
import type { ClaimOwner, IdempotencyStore, Release } from '../idempotency/IdempotencyStore.ts';
import { emptySamples, emptySummary } from '../observability.ts';
import type { RecordContext, RouteDefinition } from '../processor.ts';
import { backoffDelay, retryFits, sleep } from '../retry.ts';
import type { RouteSettings } from '../settings.ts';
import { type Prepared, partitionId } from './prepare.ts';

/** The parts of the Lambda context the processor uses. */
export type Invocation = {
  readonly awsRequestId: string;
  readonly getRemainingTimeInMillis: () => number;
};

export type InvocationDeps = {
  readonly store: IdempotencyStore;
  /** The container's breakers of the route: they outlive the invocation, as what they learnt of the downstream does. */
  readonly breakers: Breakers;
  readonly sink: DeadLetterSink;
  /** The route's retry queue, when it parks records (`retry.park`). */
  readonly retrySink?: DeadLetterSink | undefined;
  readonly cache: CompletedKeyCache;
  readonly settings: RouteSettings;
  readonly now?: () => number;
  /** The jitter source; tests pin it to check the backoff curve. */
  readonly random?: () => number;
};

/** Where a partition stops: every record below `offset` is settled, the one at it and those after come again. */
export type PartitionFailure = { readonly offset: number; readonly error: RecordProcessingError };

/** The earlier of two stops. */
export const earliest = (a: PartitionFailure | undefined, b: PartitionFailure | undefined) =>
  !a ? b : !b ? a : b.offset < a.offset ? b : a;

/** How one work mode runs one partition's records, in offset order. */
export interface WorkMode<V, K> {
  runPartition(id: string, records: readonly Prepared<V, K>[]): Promise<PartitionFailure | undefined>;
}

/** What one invocation shares between its work mode, its dead letters and its result. */
export class BatchContext<V, K> {
  readonly route: RouteDefinition<V, K>;
  readonly invocation: Invocation;
  readonly deps: InvocationDeps;
  readonly settings: RouteSettings;
  readonly now: () => number;
  readonly random: () => number;
  readonly started: number;
  readonly owner: ClaimOwner;
  readonly summary = emptySummary();
  readonly samples = emptySamples();
  /** Leases to end before returning, so a redelivery is not stalled by our own claims. */
  readonly releases: Release[] = [];
  /**
   * With `retry.park.ordering: 'key'`: the lines (Kafka keys) that hold parked records, so their later records park
   * behind them. Read at the batch's start, and joined by every record this invocation parks.
   */
  readonly parkedLines = new Set<string>();

  constructor(route: RouteDefinition<V, K>, invocation: Invocation, deps: InvocationDeps) {
    this.route = route;
    this.invocation = invocation;
    this.deps = deps;
    this.settings = deps.settings;
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
    this.started = this.now();
    this.owner = {
      requestId: invocation.awsRequestId,
      leaseUntilMs: this.started + Math.max(0, invocation.getRemainingTimeInMillis()),
    };
  }

  /** A record that stops its partition: counted, and named with the route and its coordinates. */
  failure(prepared: Prepared<V, K>, error: unknown, kind: ErrorKind = 'transient'): PartitionFailure {
    this.summary.failed += 1;
    return { offset: prepared.coordinates.offset, error: this.recordError(prepared, kind, error) };
  }

  recordError(prepared: Prepared<V, K>, kind: ErrorKind, error: unknown): RecordProcessingError {
    return new RecordProcessingError(this.route.route, prepared.coordinates, kind, error, prepared.wire);
  }

  /**
   * The route's breakers' word on the next attempt. An open breaker that turns half-open within the cool-down of a
   * temporary error, and in time, is waited for once (the event source would redeliver the batch into it at once);
   * refused again, the partition stops, so an invocation in a long outage ends within about one open period and
   * reports what it saw.
   */
  async admission(): Promise<BreakerGate> {
    const gate = this.deps.breakers.tryAcquire();
    if (gate.allowed) return gate;
    const wait = Math.max(0, gate.retryAtMs - this.now());
    if (wait > this.settings.retry.temporary.coolDownMs) return gate;
    if (!retryFits(wait, 0, this.invocation.getRemainingTimeInMillis())) return gate;
    await sleep(wait);
    return this.deps.breakers.tryAcquire();
  }

  /**
   * The line a keyed Kafka record joins when parked, with `ordering: 'key'`: by partition and key bytes, as Kafka
   * orders a key only within its partition. Records without a key keep no order, so they have none.
   */
  lineOf(prepared: Prepared<V, K>): string | undefined {
    if (this.settings.retry.park?.ordering !== 'key' || prepared.wire.key == null) return undefined;
    return `parked#${partitionId(prepared.coordinates)}#${prepared.wire.key}`;
  }

  /** Whether a record from Kafka must wait behind parked records of its key. */
  waitsInLine(prepared: Prepared<V, K>): boolean {
    const line = this.lineOf(prepared);
    return line !== undefined && !prepared.parked && this.parkedLines.has(line);
  }

  /**
   * What an attempt's error tells the breakers. A record from the retry queue failed before, so its failing again
   * says little of the downstream's health, and the queue holds only such records: counted, a few bad ones would
   * keep the breaker open for the whole route. Its failure is ignored (a probe's place freed); its success counts.
   */
  breakerOutcomeOf(prepared: Pick<Prepared<V, K>, 'parked'>, kind: Classification): BreakerOutcome {
    const outcome = breakerOutcome(kind);
    return prepared.parked && outcome === 'failure' ? 'ignored' : outcome;
  }

  /**
   * The wait before asking again for what another invocation holds until `retryAtMs` (a record's claim, a partition's
   * lease): backoff, never past the holder's lease; undefined once the attempts or the time budget are spent.
   */
  lockedWait(retry: number, retryAtMs: number): number | undefined {
    const delay = Math.min(backoffDelay(retry, this.settings.retry, this.random), Math.max(0, retryAtMs - this.now()));
    const spent =
      retry >= this.settings.retry.maxAttempts || !retryFits(delay, 0, this.invocation.getRemainingTimeInMillis());
    return spent ? undefined : delay;
  }

  /** Whether a record is old enough, after its attempts ran out, to be dead-lettered instead of retried. */
  exhausted(prepared: Prepared<V, K>, attempts: number): boolean {
    const { retry } = this.settings;
    return attempts >= retry.maxAttempts && this.now() - prepared.wire.timestamp >= retry.maxRecordAgeSeconds * 1000;
  }

  /** `gate`: the breakers' admission of this attempt, which `context.breaker(name)` tells what the record calls. */
  recordContext(attempt: number, gate?: BreakerAttempt): RecordContext {
    return {
      route: this.route.route,
      requestId: this.invocation.awsRequestId,
      attempt,
      remainingTimeMs: this.invocation.getRemainingTimeInMillis,
      breaker: (name) => gate?.use(name),
      count: (metricName, value = 1) => {
        this.samples.custom.set(metricName, (this.samples.custom.get(metricName) ?? 0) + value);
      },
    };
  }

  /** Why a route never sees a record: a tombstone it skips, a copy within the batch, a key known complete. */
  skipReason(prepared: Prepared<V, K>): 'tombstone' | 'duplicate' | undefined {
    if (prepared.tombstone && this.route.tombstones === 'skip' && !prepared.decodeError) return 'tombstone';
    if (prepared.duplicateInBatch || this.deps.cache.has(cacheKeyOf(prepared), this.now())) return 'duplicate';
    return undefined;
  }

  /** Counts and skips what the route never sees. */
  skip(prepared: Prepared<V, K>): boolean {
    const reason = this.skipReason(prepared);
    if (reason === 'tombstone') this.summary.tombstones += 1;
    if (reason === 'duplicate') this.summary.duplicates += 1;
    return reason !== undefined;
  }
}
