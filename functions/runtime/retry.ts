import { TransientError } from './errors.ts';
import type { RetrySettings } from './settings.ts';

/** Time kept back from the Lambda timeout for flushing completes, dead letters and metrics. */
export const SAFETY_MARGIN_MS = 1_000;
/** No record is started this close to the deadline: its side effect could outlive the lease that guards it. */
export const START_MARGIN_MS = 250;
/**
 * What the end of an invocation keeps for itself after its last DynamoDB request (the result, logs and metrics), so a
 * slow answer never turns a clear error into a Lambda timeout.
 */
export const FINISH_MARGIN_MS = 100;

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
 * The wait before retrying, in this invocation, a record that failed with an error of `kind`, after `tries` retries
 * of that kind already; undefined when its policy allows no more. Transient: backoff with full jitter; temporary: the
 * cool-down, with up to a tenth of it added as jitter so probes of many partitions do not arrive together.
 */
export const retryDelay = (
  kind: 'transient' | 'temporary',
  tries: number,
  settings: Pick<RetrySettings, 'transient' | 'temporary' | 'baseDelayMs' | 'maxDelayMs'>,
  random: () => number = Math.random,
): number | undefined => {
  if (kind === 'temporary') {
    const { coolDownMs, probes } = settings.temporary;
    return tries < probes ? coolDownMs + Math.floor(random() * (coolDownMs / 10)) : undefined;
  }
  return tries < settings.transient.tries ? backoffDelay(tries + 1, settings, random) : undefined;
};

/**
 * Whether a retry after `delayMs` can still finish in time: the wait plus one more
 * attempt as long as the last one took, within the remaining time less the margin.
 */
export const retryFits = (delayMs: number, lastAttemptMs: number, remainingMs: number): boolean =>
  delayMs + lastAttemptMs < remainingMs - SAFETY_MARGIN_MS;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `work` with a signal that aborts at `deadlineMs`, and stops waiting for it then, whatever the SDK's own retries
 * are doing: past a deadline, an answer is worth less than returning in time.
 */
export const beforeDeadline = async <T>(deadlineMs: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> => {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => {
        const error = new TransientError(`no answer before the deadline (${new Date(deadlineMs).toISOString()})`);
        controller.abort(error);
        reject(error);
      },
      Math.max(0, deadlineMs - Date.now()),
    );
  });
  try {
    return await Promise.race([work(controller.signal), expired]);
  } finally {
    clearTimeout(timer);
  }
};
