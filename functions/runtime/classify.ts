import { ZodError } from 'zod';
import { ErrorKind, PermanentError, TransientError } from './errors.ts';

/** 'transient' errors are retried with backoff; 'permanent' ones go to the dead-letter queue at once. */
export type Classification = typeof ErrorKind.transient | typeof ErrorKind.permanent;
export type Classifier = (error: unknown) => Classification | undefined;

const THROTTLING_NAMES = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'TransactionConflictException',
  'TransactionInProgressException',
  'SlowDown',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InternalServerError',
  'InternalFailure',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'AbortError',
]);

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

type ErrorShape = {
  name?: unknown;
  code?: unknown;
  cause?: unknown;
  $retryable?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: unknown };
};

/**
 * The default classification. Our own errors say what they are; AWS SDK errors are
 * transient when throttled, 5xx, or failing on the network; `fetch` fails with a
 * TypeError whose cause carries the network code. Anything else (a TypeError in the
 * route's code, a 4xx) is permanent: retrying a bug only delays the dead-letter queue,
 * and a replay after the fix recovers it. Routes override this with `classify`.
 */
export const classifyError = (error: unknown, depth = 0): Classification => {
  if (error instanceof PermanentError || error instanceof ZodError) return ErrorKind.permanent;
  if (error instanceof TransientError) return ErrorKind.transient;
  if (typeof error !== 'object' || error === null) return ErrorKind.permanent;
  const e = error as ErrorShape;
  if (e.$retryable) return ErrorKind.transient;
  if (typeof e.name === 'string' && THROTTLING_NAMES.has(e.name)) return ErrorKind.transient;
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return ErrorKind.transient;
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number') return status >= 500 || status === 429 ? ErrorKind.transient : ErrorKind.permanent;
  if (e.$fault === 'server') return ErrorKind.transient;
  if (e.cause !== undefined && depth < 5) return classifyError(e.cause, depth + 1);
  return ErrorKind.permanent;
};

/** A route's own classifier goes first; when it returns undefined the default decides. */
export const withOverride =
  (override?: Classifier) =>
  (error: unknown): Classification =>
    override?.(error) ?? classifyError(error);
