import { ZodError } from 'zod';
import { ErrorKind, IdempotencyConflictError, PermanentError, TemporaryError, TransientError } from './errors.ts';

/**
 * The tiers of failure. `transient` (a network blip, a 5xx): retried at once with exponential backoff, a few times.
 * `temporary` (throttling, a rate limit, a full pool): waited out for a cool-down, then probed. `permanent`: to the
 * dead-letter queue at once. `conflict`: the same, as a `conflict` (the record's id is taken by other content; the
 * runtime finds these itself with a `fingerprint`, a route's `classify` may say so of a downstream's answer). The
 * policies are the route's `retry.transient` and `retry.temporary`.
 */
export const ErrorClass = {
  transient: 'transient',
  temporary: 'temporary',
  permanent: 'permanent',
  conflict: 'conflict',
} as const;
export type Classification = (typeof ErrorClass)[keyof typeof ErrorClass];
export type Classifier = (error: unknown) => Classification | undefined;

/** The service says: slow down. */
const THROTTLING_NAMES = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'SlowDown',
]);

/** The service failed this once: a conflict, a 5xx, a timeout. */
const TRANSIENT_NAMES = new Set([
  'TransactionConflictException',
  'TransactionInProgressException',
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
  $retryable?: { throttling?: unknown } | unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: unknown };
};

/**
 * The default classification. Our own errors say what they are. AWS SDK errors are temporary when throttled (by
 * name, `$retryable.throttling`, or status 429), and transient when 5xx or failing on the network; `fetch` fails
 * with a TypeError whose cause carries the network code. Anything else (a TypeError in the route's code, a 4xx) is
 * permanent: retrying a bug only delays the dead-letter queue, and a replay after the fix recovers it. Routes
 * override this with `classify`.
 */
export const classifyError = (error: unknown, depth = 0): Classification => {
  if (error instanceof IdempotencyConflictError) return ErrorClass.conflict;
  if (error instanceof PermanentError || error instanceof ZodError) return ErrorClass.permanent;
  if (error instanceof TemporaryError) return ErrorClass.temporary;
  if (error instanceof TransientError) return ErrorClass.transient;
  if (typeof error !== 'object' || error === null) return ErrorClass.permanent;
  const e = error as ErrorShape;
  const status = e.$metadata?.httpStatusCode;
  const throttled =
    (typeof e.name === 'string' && THROTTLING_NAMES.has(e.name)) ||
    status === 429 ||
    (typeof e.$retryable === 'object' &&
      e.$retryable !== null &&
      (e.$retryable as { throttling?: unknown }).throttling === true);
  if (throttled) return ErrorClass.temporary;
  if (e.$retryable) return ErrorClass.transient;
  if (typeof e.name === 'string' && TRANSIENT_NAMES.has(e.name)) return ErrorClass.transient;
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return ErrorClass.transient;
  if (typeof status === 'number') return status >= 500 ? ErrorClass.transient : ErrorClass.permanent;
  if (e.$fault === 'server') return ErrorClass.transient;
  if (e.cause !== undefined && depth < 5) return classifyError(e.cause, depth + 1);
  return ErrorClass.permanent;
};

/** A route's own classifier goes first; when it returns undefined the default decides. */
export const withOverride =
  (override?: Classifier) =>
  (error: unknown): Classification =>
    override?.(error) ?? classifyError(error);

/** The classes that go to the dead-letter queue at once, never retried. */
export const isFinal = (kind: Classification): kind is 'permanent' | 'conflict' =>
  kind === ErrorClass.permanent || kind === ErrorClass.conflict;

/** The dead-letter kind of a class that is never retried. */
export const deadLetterKindOf = (kind: 'permanent' | 'conflict'): ErrorKind =>
  kind === ErrorClass.conflict ? ErrorKind.conflict : ErrorKind.permanent;
