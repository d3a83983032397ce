import type { RetrySettings } from './settings.ts';

/** Time kept back from the Lambda timeout for flushing completes, dead letters and metrics. */
export const SAFETY_MARGIN_MS = 1_000;
/** No record is started this close to the deadline: its side effect could outlive the lease that guards it. */
export const START_MARGIN_MS = 250;

/** Exponential backoff with full jitter: uniform in [0, min(maxDelay, base * 2^(retry-1))]. */
export const backoffDelay = (
  retry: number,
  settings: Pick<RetrySettings, 'baseDelayMs' | 'maxDelayMs'>,
  random: () => number = Math.random,
): number => {
  const ceiling = Math.min(settings.maxDelayMs, settings.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(random() * ceiling);
};

/**
 * Whether a retry after `delayMs` can still finish in time: the wait plus one more
 * attempt as long as the last one took, within the remaining time less the margin.
 */
export const retryFits = (delayMs: number, lastAttemptMs: number, remainingMs: number): boolean =>
  delayMs + lastAttemptMs < remainingMs - SAFETY_MARGIN_MS;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
