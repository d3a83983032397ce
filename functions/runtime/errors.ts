/**
 * One error hierarchy for the whole runtime. Every subclass sets `name` and accepts
 * `ErrorOptions`, so `cause` chains survive logging and dead-lettering.
 */

export const ErrorKind = {
  permanent: 'permanent',
  transient: 'transient',
  exhausted: 'exhausted',
  /** The record's idempotency key is held by a record with other content (the route's `fingerprint`). */
  conflict: 'conflict',
} as const;
export type ErrorKind = (typeof ErrorKind)[keyof typeof ErrorKind];

/** `topic-partition@offset`, the way every message names a record. */
export type RecordCoordinates = { topic: string; partition: number; offset: number };
export const formatCoordinates = (c: RecordCoordinates): string => `${c.topic}-${c.partition}@${c.offset}`;

export class BridgeError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BridgeError';
  }
}

/** Retrying cannot help: bad bytes, a schema violation, a business rule. Dead-lettered at once. */
export class PermanentError extends BridgeError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PermanentError';
  }
}

/** Retrying may help: throttling, 5xx, timeouts, network. Retried with backoff. */
export class TransientError extends BridgeError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TransientError';
  }
}

/**
 * Retrying after a cool-down may help: a rate limit, a full connection pool, throttling. Waited out, then probed,
 * rather than retried at once (a TransientError, so everything that retries transient errors retries it).
 */
export class TemporaryError extends TransientError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TemporaryError';
  }
}

/** The record's bytes could not be turned into a value: bad base64, bad JSON, a failing decoder. */
export class DecodeError extends PermanentError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DecodeError';
  }
}

/** The decoded value (or key) does not match the route's schema. */
export class ValidationError extends PermanentError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ValidationError';
  }
}

/** The value is well-formed, but the domain refuses it (an illegal transition, an overdraft). */
export class BusinessRuleError extends PermanentError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BusinessRuleError';
  }
}

/**
 * The record's idempotency key is held by an earlier record with other content: applying it would silently drop
 * that difference, and skipping it as a duplicate would lose it. Never applied; dead-lettered as a `conflict`.
 */
export class IdempotencyConflictError extends PermanentError {
  readonly holder: string | undefined;
  readonly differingFields: readonly string[] | undefined;
  constructor(key: string, holder: string | undefined, differingFields: readonly string[] | undefined) {
    const where = holder ? `first seen at ${holder}` : 'held by an earlier record';
    const what = differingFields?.length ? `different ${differingFields.join(', ')}` : 'different content';
    super(`idempotency key ${JSON.stringify(key)} was ${where} with ${what}; this record is never applied`);
    this.name = 'IdempotencyConflictError';
    this.holder = holder;
    this.differingFields = differingFields;
  }
}

/** The event itself is not a Kafka event: nothing per-record can be dead-lettered. */
export class InvalidEventError extends PermanentError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidEventError';
  }
}

/** The route's circuit breaker is open: the downstream is failing, so records are not attempted until it probes well. */
export class BreakerOpenError extends TemporaryError {
  readonly retryAtMs: number;
  constructor(message: string, retryAtMs: number, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BreakerOpenError';
    this.retryAtMs = retryAtMs;
  }
}

export const breakerOpenError = (retryAtMs: number): BreakerOpenError =>
  new BreakerOpenError(
    `the circuit breaker is open until ${new Date(retryAtMs).toISOString()}: the record was not attempted`,
    retryAtMs,
  );

/** Another invocation holds a live lease on the record (a rebalance overlap). */
export class RecordLockedError extends TransientError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RecordLockedError';
  }
}

/** The idempotency table could not be reached or refused a write. The batch fails. */
export class IdempotencyStoreError extends TransientError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'IdempotencyStoreError';
  }
}

/** A transaction was cancelled for a reason worth retrying; `entry` is the pack entry the cancellation names. */
export class TransactConflictError extends TransientError {
  readonly entry: number | undefined;
  constructor(message: string, entry: number | undefined, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TransactConflictError';
    this.entry = entry;
  }
}

/** The dead-letter queue could not take a record. The batch fails so nothing is lost. */
export class DeadLetterError extends TransientError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DeadLetterError';
  }
}

/**
 * A record failed: wraps the cause with the route, the coordinates and the kind,
 * so the message alone tells an on-call engineer where to look.
 */
export class RecordProcessingError extends BridgeError {
  readonly route: string;
  readonly coordinates: RecordCoordinates;
  readonly kind: ErrorKind;
  /** The record's wire form; logged only when the route opts in to payload logging. */
  readonly record: { key?: string | null; value?: string | null } | undefined;
  constructor(
    route: string,
    coordinates: RecordCoordinates,
    kind: ErrorKind,
    cause: unknown,
    record?: { key?: string | null; value?: string | null },
  ) {
    super(`route ${route}: ${formatCoordinates(coordinates)}: ${kind}: ${describeError(cause)}`, { cause });
    this.name = 'RecordProcessingError';
    this.route = route;
    this.coordinates = coordinates;
    this.kind = kind;
    this.record = record;
  }
}

/** Thrown by the handler so the event source re-delivers the batch from its first unfinished record. */
export class BatchFailedError extends BridgeError {
  readonly failures: readonly RecordProcessingError[];
  constructor(route: string, failures: readonly RecordProcessingError[], cause?: unknown) {
    const detail = failures.length
      ? failures.map((f) => f.message).join('; ')
      : `route ${route}: ${describeError(cause)}`;
    super(`batch failed, it will be re-delivered: ${detail}`, { cause: cause ?? failures[0] });
    this.name = 'BatchFailedError';
    this.failures = failures;
  }
}

/** DynamoDB refuses the request itself (a key too large, an invalid expression): sending it again cannot help. */
export const isValidationException = (error: unknown): boolean =>
  (error as { name?: unknown } | null)?.name === 'ValidationException';

export const describeError = (error: unknown): string => {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
};
