/** What one invocation did; the adapter publishes it as EMF and `invoke` prints it. */
export type InvocationSummary = {
  received: number;
  processed: number;
  duplicates: number;
  tombstones: number;
  failed: number;
  retried: number;
  deadLettered: number;
  /** Records parked in the route's retry queue (`retry.park`) in this invocation. */
  parked: number;
  batchItemFailures: number;
  ddbRequests: number;
  /** Times one of the route's circuit breakers opened during the invocation. */
  breakerOpened: number;
  /** Records not attempted because a breaker was open (or half-open with every probe out). */
  breakerShortCircuited: number;
  /** The worst of the route's breakers as the invocation ended: 0 closed, 1 half-open, 2 open. */
  breakerState: number;
  /** Records whose idempotency key was seen before with other content (a different fingerprint): never applied. */
  idempotencyConflicts: number;
  durationMs: number;
};

export type InvocationSamples = {
  /** Per record, milliseconds spent in `process` / `transact` (all attempts). */
  processingTime: number[];
  /** Per completed record, now minus the record timestamp. */
  endToEndLatency: number[];
  /** Per claim or transaction, milliseconds waited for DynamoDB. */
  dedupeLatency: number[];
  /** Route-defined counts, such as stale events ignored. */
  custom: Map<string, number>;
};

export const emptySummary = (): InvocationSummary => ({
  received: 0,
  processed: 0,
  duplicates: 0,
  tombstones: 0,
  failed: 0,
  retried: 0,
  deadLettered: 0,
  parked: 0,
  batchItemFailures: 0,
  ddbRequests: 0,
  breakerOpened: 0,
  breakerShortCircuited: 0,
  breakerState: 0,
  idempotencyConflicts: 0,
  durationMs: 0,
});

export const emptySamples = (): InvocationSamples => ({
  processingTime: [],
  endToEndLatency: [],
  dedupeLatency: [],
  custom: new Map(),
});
