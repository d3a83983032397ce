import { z } from 'zod';

/**
 * The part of a route's config that the handler runtime needs at run time.
 *
 * The CDK (and the local bridge, `invoke` and `replay`) serialise it into the
 * `BRIDGE_ROUTE_SETTINGS` environment variable, so a deployed function never
 * needs the config file itself. `infra/config/` embeds these schemas in the
 * bridge config, so one schema serves the CDK, the bridge and the runtime.
 */
/** `transient` errors: retried `tries` times in one invocation, with `retry.baseDelayMs`/`maxDelayMs` backoff. */
export const TransientPolicy = z
  .object({
    tries: z.number().int().min(0).max(100).default(3),
  })
  .strict();

/** `temporary` errors (throttling, rate limits): a cool-down waited out, then a probe, `probes` times in one invocation. */
export const TemporaryPolicy = z
  .object({
    coolDownMs: z.number().int().min(0).max(300_000).default(5_000),
    probes: z.number().int().min(0).max(100).default(2),
  })
  .strict();

/**
 * The route's retry queue ("park"): a record that used up its in-invocation retries waits in SQS (message timers, at
 * most 900 s) instead of stopping its partition, and is tried again from there once per delay; after the last one it
 * is dead-lettered as `exhausted`, with the history of every stage.
 */
export const ParkSettings = z
  .object({
    /** The wait before each try from the retry queue; their number is the number of those tries. */
    delaysSeconds: z.array(z.number().int().min(0).max(900)).min(1).max(10).default([30, 300, 900]),
    /**
     * `key`: a later record with the same Kafka key is parked behind a parked one (the key's line is kept in the
     * idempotency table), so each key's records still apply in order; records without a key keep no order. `none`:
     * only the failing record is parked, and later records of its key may pass it.
     */
    ordering: z.enum(['key', 'none']).default('key'),
  })
  .strict();
export type ParkSettings = z.infer<typeof ParkSettings>;

export const RetrySettings = z
  .object({
    /** Processing attempts per record across all deliveries, in-invocation retries included. */
    maxAttempts: z.number().int().min(1).max(100).default(5),
    /** Exponential backoff with full jitter, for transient errors and while another invocation holds a record. */
    baseDelayMs: z.number().int().min(0).max(60_000).default(100),
    maxDelayMs: z.number().int().min(0).max(300_000).default(2_000),
    transient: TransientPolicy.prefault({}),
    temporary: TemporaryPolicy.prefault({}),
    /** Off by default: without a retry queue a failing record stops its partition until it succeeds or is exhausted. */
    park: ParkSettings.optional(),
    /**
     * A record that keeps failing transiently is dead-lettered only once it is also older than this.
     * It stops a downstream outage from flooding the DLQ; offset lag alarms fire meanwhile.
     */
    maxRecordAgeSeconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 3600)
      .default(3600),
  })
  .strict()
  .refine((r) => r.maxDelayMs >= r.baseDelayMs, { message: 'retry.maxDelayMs must be >= retry.baseDelayMs' });
export type RetrySettings = z.infer<typeof RetrySettings>;

export const IdempotencySettings = z
  .object({
    /**
     * How records are deduplicated. `watermark`: one item per partition holds the offset through which its records
     * are settled, so a fresh record costs no write of its own (a route keyed by the record's coordinates only).
     * `key`: an item per record (claim, then settlement), for a business `idempotencyKey`. Unset: `watermark` when
     * the handler sets no `idempotencyKey`, else `key`.
     */
    strategy: z.enum(['watermark', 'key']).optional(),
    /** How long a marker outlives its record. Kafka's default retention is 7 days, so 8 covers any re-read. */
    ttlSeconds: z
      .number()
      .int()
      .min(60)
      .max(365 * 24 * 3600)
      .default(8 * 24 * 3600),
    /** Completed keys remembered in memory by a warm function. 0 turns the cache off. */
    cacheSize: z.number().int().min(0).max(1_000_000).default(10_000),
    /**
     * How far two invocations' clocks may disagree. A lease is taken over only this long after it ended, so a write
     * its owner sent just before its deadline cannot land beside the next claimant's work.
     */
    clockSkewMs: z.number().int().min(0).max(60_000).default(2_000),
  })
  .strict();
export type IdempotencySettings = z.infer<typeof IdempotencySettings>;

export const DeadLetterSettings = z
  .object({
    /** SQS accepts 256 KiB on every queue; AWS queues can be raised to 1 MiB. */
    maxMessageBytes: z
      .number()
      .int()
      .min(1024)
      .max(1024 * 1024)
      .default(256 * 1024),
  })
  .strict();
export type DeadLetterSettings = z.infer<typeof DeadLetterSettings>;

/**
 * The route's circuit breaker (functions/runtime/breaker): while a downstream fails, records are not attempted, so a
 * sick service is not hammered by every partition at once and records do not use up their attempts on an outage.
 * Kept per container (each sees the downstream's health itself); see the README's "Circuit breaker".
 */
export const BreakerSettings = z
  .object({
    /** Off: every record is attempted, as before the breaker existed. */
    enabled: z.boolean().default(true),
    /**
     * It opens once this share of the calls in the window failed `transient` or `temporary` (0.5: half of them).
     * Successes and `permanent` errors (the record's fault, not the downstream's) count as calls that did not fail.
     */
    failureRateThreshold: z.number().gt(0).max(1).default(0.5),
    /** Calls the window must hold before the rate counts: three failures of the first four calls prove nothing. */
    minimumCalls: z.number().int().min(1).max(10_000).default(10),
    /** The sliding window: the calls of the last this many seconds, in one-second buckets. */
    windowSeconds: z.number().int().min(1).max(3_600).default(30),
    /** How long it stays open the first time, before half-open probes; it doubles on each re-open. */
    openMs: z.number().int().min(100).max(600_000).default(5_000),
    /** The cap of the doubling open time. */
    maxOpenMs: z.number().int().min(100).max(3_600_000).default(60_000),
    /** Calls let through when half-open; all of them must succeed to close it, and one failure re-opens it. */
    halfOpenProbes: z.number().int().min(1).max(100).default(2),
    /**
     * The breaker an attempt counts against when its handler names no downstream (`context.breaker('payments-api')`):
     * `route`, one for the whole route; `error-class`, one per failing class (`transient`, `temporary`), so a
     * rate-limited downstream is probed apart from a broken one. A downstream failing with both classes at once is
     * split between the two, so `route` is the default.
     */
    keyBy: z.enum(['route', 'error-class']).default('route'),
  })
  .strict()
  .refine((b) => b.maxOpenMs >= b.openMs, { message: 'breaker.maxOpenMs must be >= breaker.openMs' });
export type BreakerSettings = z.infer<typeof BreakerSettings>;

export const RouteSettings = z
  .object({
    retry: RetrySettings.prefault({}),
    idempotency: IdempotencySettings.prefault({}),
    deadLetter: DeadLetterSettings.prefault({}),
    breaker: BreakerSettings.prefault({}),
    /** True only for provisioned-mode routes with `eventSource.reportBatchItemFailures`. */
    partialBatchResponse: z.boolean().default(false),
    /** Partitions processed at once within one invocation. */
    partitionConcurrency: z.number().int().min(1).max(1000).default(16),
    /** Payload values are never logged unless a route opts in. */
    logPayloads: z.boolean().default(false),
  })
  .strict();
export type RouteSettings = z.infer<typeof RouteSettings>;
export type RouteSettingsInput = z.input<typeof RouteSettings>;

export const ROUTE_SETTINGS_ENV = 'BRIDGE_ROUTE_SETTINGS';
