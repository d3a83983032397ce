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

export const RetrySettings = z
  .object({
    /** Processing attempts per record across all deliveries, in-invocation retries included. */
    maxAttempts: z.number().int().min(1).max(100).default(5),
    /** Exponential backoff with full jitter, for transient errors and while another invocation holds a record. */
    baseDelayMs: z.number().int().min(0).max(60_000).default(100),
    maxDelayMs: z.number().int().min(0).max(300_000).default(2_000),
    transient: TransientPolicy.default(TransientPolicy.parse({})),
    temporary: TemporaryPolicy.default(TemporaryPolicy.parse({})),
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

export const RouteSettings = z
  .object({
    retry: RetrySettings.default(RetrySettings.parse({})),
    idempotency: IdempotencySettings.default(IdempotencySettings.parse({})),
    deadLetter: DeadLetterSettings.default(DeadLetterSettings.parse({})),
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
