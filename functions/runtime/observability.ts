/** What one invocation did; the adapter publishes it as EMF and `invoke` prints it. */
export type InvocationSummary = {
  received: number;
  processed: number;
  duplicates: number;
  tombstones: number;
  failed: number;
  retried: number;
  deadLettered: number;
  batchItemFailures: number;
  ddbRequests: number;
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
  batchItemFailures: 0,
  ddbRequests: 0,
  durationMs: 0,
});

export const emptySamples = (): InvocationSamples => ({
  processingTime: [],
  endToEndLatency: [],
  dedupeLatency: [],
  custom: new Map(),
});
