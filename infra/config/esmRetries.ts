import type { RouteConfig } from './schema.ts';

/**
 * With infinite retries and an on-failure destination, Lambda applies at most this many retries
 * (kafka-retry-configurations, kafka-on-failure-destination).
 */
export const DESTINATION_RETRY_CAP = 10;

/** What the event source mapping does with a batch that keeps failing: what the template sets, and what applies. */
export type EsmRetryLimits = {
  /** `MaximumRetryAttempts` as the template sets it (provisioned mode only; -1 is infinite). */
  readonly retryAttempts: number;
  /** `MaximumRecordAgeInSeconds` as the template sets it (provisioned mode only; -1 is no limit). */
  readonly maxRecordAgeSeconds: number;
  /** Retries Lambda really makes before it skips the batch; undefined: until it succeeds or leaves the topic. */
  readonly effectiveRetries: number | undefined;
  readonly effectiveMaxRecordAgeSeconds: number | undefined;
  readonly bisectOnError: boolean;
  /** Whether skipped batches leave a record (metadata only, for SQS and SNS) at an on-failure destination. */
  readonly destination: boolean;
};

/**
 * The ESM's retry limits for a route. Retry controls exist only in provisioned mode (kafka-retry-configurations);
 * an on-demand mapping retries "until processing succeeds or the messages expire" (with-msk-configure). The docs do
 * not say whether the cap of 10 also holds for an on-demand mapping with a destination, so it is assumed to.
 */
export const esmRetryLimits = (route: Pick<RouteConfig, 'mode' | 'eventSource'>): EsmRetryLimits => {
  const es = route.eventSource;
  const provisioned = route.mode !== 'on-demand';
  const destination = es.onFailure !== 'none';
  const retryAttempts = provisioned ? (es.retryAttempts ?? -1) : -1;
  const maxRecordAgeSeconds = provisioned ? (es.maxRecordAgeSeconds ?? -1) : -1;
  return {
    retryAttempts,
    maxRecordAgeSeconds,
    effectiveRetries: retryAttempts >= 0 ? retryAttempts : destination ? DESTINATION_RETRY_CAP : undefined,
    effectiveMaxRecordAgeSeconds: maxRecordAgeSeconds >= 0 ? maxRecordAgeSeconds : undefined,
    bisectOnError: provisioned && (es.bisectOnError ?? false),
    destination,
  };
};
