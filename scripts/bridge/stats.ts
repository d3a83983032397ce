// Per-route counters for the progress line and the demo's live summary. Pure (time comes in as arguments).
import type { InvocationSummary } from '../../functions/runtime/observability.ts';

export type RouteSnapshot = {
  readonly route: string;
  readonly received: number;
  readonly processed: number;
  readonly duplicates: number;
  readonly tombstones: number;
  readonly deadLettered: number;
  readonly parked: number;
  readonly retried: number;
  readonly invocations: number;
  readonly failedInvocations: number;
  readonly redelivered: number;
  /** Records the route's filters left out: committed without an invocation. */
  readonly filteredOut: number;
  /** Times the route's circuit breaker opened, and records it kept from being attempted. */
  readonly breakerOpened: number;
  readonly breakerShortCircuited: number;
  /** The breaker's state after the latest invocation: `closed`, `half-open` or `open`. */
  readonly breakerState: 'closed' | 'half-open' | 'open';
  /** Records dead-lettered because their idempotency key came back with other content. */
  readonly idempotencyConflicts: number;
  /** Records the ESM gave up on, whose metadata went to the on-failure destination. */
  readonly toOnFailure: number;
  /** Records the ESM gave up on with nowhere to send them (no destination, or it refused). */
  readonly dropped: number;
  /** Records committed (done with) by this process. */
  readonly committed: number;
  /** Committed records per second over the last few seconds. */
  readonly recordsPerSec: number;
  /** Group lag: high watermark minus committed offset, summed over the topic's partitions; undefined if unknown. */
  readonly lag: number | undefined;
  readonly assigned: readonly string[];
  /** End-to-end latency (commit time minus record timestamp) over the recent window. */
  readonly p50LatencyMs: number | undefined;
  readonly p99LatencyMs: number | undefined;
  /** Route-defined counts from the handler's EMF output (for example StaleEventsIgnored). */
  readonly custom: Readonly<Record<string, number>>;
};

const RATE_WINDOW_MS = 5_000;
/** `BreakerState`'s metric values, as the runtime publishes them. */
const BREAKER_STATES = ['closed', 'half-open', 'open'] as const;
const LATENCY_SAMPLES = 5_000;

export const percentile = (sorted: readonly number[], p: number): number | undefined => {
  if (sorted.length === 0) return undefined;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
};

export class RouteStats {
  readonly route: string;
  received = 0;
  processed = 0;
  duplicates = 0;
  tombstones = 0;
  deadLettered = 0;
  parked = 0;
  retried = 0;
  invocations = 0;
  failedInvocations = 0;
  redelivered = 0;
  filteredOut = 0;
  breakerOpened = 0;
  breakerShortCircuited = 0;
  breakerState: RouteSnapshot['breakerState'] = 'closed';
  idempotencyConflicts = 0;
  toOnFailure = 0;
  dropped = 0;
  committed = 0;
  lag: number | undefined;
  assigned: string[] = [];
  readonly custom = new Map<string, number>();
  readonly #commits: Array<{ at: number; total: number }> = [];
  readonly #latencies: number[] = [];
  #latencyNext = 0;

  constructor(route: string) {
    this.route = route;
  }

  addSummary(summary: InvocationSummary | undefined): void {
    if (!summary) return;
    this.received += summary.received;
    this.processed += summary.processed;
    this.duplicates += summary.duplicates;
    this.tombstones += summary.tombstones;
    this.deadLettered += summary.deadLettered;
    this.parked += summary.parked;
    this.retried += summary.retried;
    this.breakerOpened += summary.breakerOpened;
    this.breakerShortCircuited += summary.breakerShortCircuited;
    this.breakerState = BREAKER_STATES[summary.breakerState] ?? 'closed';
    this.idempotencyConflicts += summary.idempotencyConflicts;
  }

  addCommitted(count: number, latenciesMs: readonly number[], now: number): void {
    this.#mark(now);
    this.committed += count;
    for (const latency of latenciesMs) {
      if (this.#latencies.length < LATENCY_SAMPLES) this.#latencies.push(latency);
      else this.#latencies[this.#latencyNext] = latency;
      this.#latencyNext = (this.#latencyNext + 1) % LATENCY_SAMPLES;
    }
  }

  addCustom(name: string, value: number): void {
    this.custom.set(name, (this.custom.get(name) ?? 0) + value);
  }

  #mark(now: number): void {
    this.#commits.push({ at: now, total: this.committed });
    while (this.#commits.length > 2 && (this.#commits[0] as { at: number }).at < now - RATE_WINDOW_MS)
      this.#commits.shift();
  }

  recordsPerSec(now: number): number {
    this.#mark(now);
    const first = this.#commits[0] as { at: number; total: number };
    const span = Math.max(now - first.at, 1_000);
    return ((this.committed - first.total) * 1000) / span;
  }

  snapshot(now: number): RouteSnapshot {
    const sorted = [...this.#latencies].sort((a, b) => a - b);
    return {
      route: this.route,
      received: this.received,
      processed: this.processed,
      duplicates: this.duplicates,
      tombstones: this.tombstones,
      deadLettered: this.deadLettered,
      parked: this.parked,
      retried: this.retried,
      invocations: this.invocations,
      failedInvocations: this.failedInvocations,
      redelivered: this.redelivered,
      filteredOut: this.filteredOut,
      breakerOpened: this.breakerOpened,
      breakerShortCircuited: this.breakerShortCircuited,
      breakerState: this.breakerState,
      idempotencyConflicts: this.idempotencyConflicts,
      toOnFailure: this.toOnFailure,
      dropped: this.dropped,
      committed: this.committed,
      recordsPerSec: this.recordsPerSec(now),
      lag: this.lag,
      assigned: [...this.assigned],
      p50LatencyMs: percentile(sorted, 50),
      p99LatencyMs: percentile(sorted, 99),
      custom: Object.fromEntries(this.custom),
    };
  }
}

/**
 * The metric values of one CloudWatch EMF line (what the runtime prints per invocation), or undefined for any other
 * line. Values may be a number or a list of numbers; lists are summed.
 */
export const emfMetrics = (line: string): Map<string, number> | undefined => {
  if (!line.startsWith('{') || !line.includes('"_aws"')) return undefined;
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const aws = parsed._aws as { CloudWatchMetrics?: Array<{ Metrics?: Array<{ Name?: string }> }> } | undefined;
  const definitions = aws?.CloudWatchMetrics?.flatMap((d) => d.Metrics ?? []) ?? [];
  const values = new Map<string, number>();
  for (const { Name } of definitions) {
    if (!Name) continue;
    const value = parsed[Name];
    const sum = Array.isArray(value)
      ? value.reduce((a: number, b: unknown) => a + (typeof b === 'number' ? b : 0), 0)
      : typeof value === 'number'
        ? value
        : 0;
    values.set(Name, (values.get(Name) ?? 0) + sum);
  }
  return values;
};

/** One progress line: `orders  412 rec/s  lag 0  committed 5000  processed 4950  dup 12  dlq 48 ...`. */
export const formatProgressLine = (s: RouteSnapshot): string => {
  const parts = [
    `[bridge] ${s.route}`,
    `${s.recordsPerSec.toFixed(0)} rec/s`,
    `lag ${s.lag ?? '?'}`,
    `committed ${s.committed}`,
    `processed ${s.processed}`,
    `duplicates ${s.duplicates}`,
    `dead-lettered ${s.deadLettered}`,
  ];
  if (s.parked > 0) parts.push(`parked ${s.parked}`);
  if (s.tombstones > 0) parts.push(`tombstones ${s.tombstones}`);
  if (s.failedInvocations > 0) parts.push(`failed invocations ${s.failedInvocations} (redelivered ${s.redelivered})`);
  if (s.filteredOut > 0) parts.push(`filtered out ${s.filteredOut}`);
  if (s.breakerState !== 'closed') parts.push(`BREAKER ${s.breakerState.toUpperCase()}`);
  if (s.breakerShortCircuited > 0) parts.push(`short-circuited ${s.breakerShortCircuited}`);
  if (s.idempotencyConflicts > 0) parts.push(`conflicts ${s.idempotencyConflicts}`);
  if (s.toOnFailure > 0) parts.push(`to on-failure destination ${s.toOnFailure}`);
  if (s.dropped > 0) parts.push(`DROPPED ${s.dropped}`);
  if (s.p99LatencyMs !== undefined) parts.push(`p99 ${Math.round(s.p99LatencyMs)} ms`);
  parts.push(`partitions [${s.assigned.join(',')}]`);
  return parts.join('  ');
};
