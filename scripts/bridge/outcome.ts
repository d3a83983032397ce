// What an invocation's result means for the offsets of its batch, as the Kafka event source mapping decides it.
// Pure: the bridge applies the decision (commit, redeliver) with Kafka I/O elsewhere.
//
// - The handler threw (or timed out, or its worker died): nothing is committed; every partition of the batch is
//   redelivered from its first offset, which is the last committed offset.
// - It returned normally: every partition is committed past its last record, unless the route reports partial
//   batch responses (provisioned mode with `reportBatchItemFailures`). Then each `batchItemFailures` entry
//   `{ itemIdentifier: { partition: 'topic-p', offset } }` commits that partition up to the failed offset and
//   redelivers from it; the lowest offset of a partition wins. A malformed response, or one naming a record that
//   is not in the batch, fails the whole batch, as the ESM does with an invalid response.
// - An on-demand route's return value is ignored, as the ESM ignores it.

export type BatchPartition = {
  readonly topic: string;
  readonly partition: number;
  /** First and last offset of the partition's records in the batch (contiguous in practice). */
  readonly firstOffset: number;
  readonly lastOffset: number;
  /** Every offset in the batch, to validate item identifiers. */
  readonly offsets: ReadonlySet<number>;
};

export type InvocationResult =
  | { readonly ok: true; readonly response: unknown }
  | { readonly ok: false; readonly error: { readonly name: string; readonly message: string } };

export type PartitionDecision = {
  readonly id: string;
  readonly topic: string;
  readonly partition: number;
  /** The offset to commit (the next one to read), or undefined to commit nothing. */
  readonly commit?: number;
  /** Redeliver from this offset (after a backoff), or undefined when the partition is done. */
  readonly redeliverFrom?: number;
};

export type BatchDecision = {
  readonly kind: 'success' | 'partial' | 'failed';
  /** Why the batch failed, for the log. */
  readonly reason?: string;
  readonly partitions: readonly PartitionDecision[];
};

const failAll = (partitions: ReadonlyMap<string, BatchPartition>, reason: string): BatchDecision => ({
  kind: 'failed',
  reason,
  partitions: [...partitions].map(([id, p]) => ({
    id,
    topic: p.topic,
    partition: p.partition,
    redeliverFrom: p.firstOffset,
  })),
});

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

/** Decides commits and redeliveries for one finished invocation. */
export const decideBatchOutcome = (
  partitions: ReadonlyMap<string, BatchPartition>,
  result: InvocationResult,
  partialBatchResponse: boolean,
): BatchDecision => {
  if (!result.ok) return failAll(partitions, `${result.error.name}: ${result.error.message}`);
  const done = (): BatchDecision => ({
    kind: 'success',
    partitions: [...partitions].map(([id, p]) => ({
      id,
      topic: p.topic,
      partition: p.partition,
      commit: p.lastOffset + 1,
    })),
  });
  const response = result.response;
  if (!partialBatchResponse || response === undefined || response === null) return done();
  if (!isObject(response) || !('batchItemFailures' in response)) return done();
  const failures = response.batchItemFailures;
  if (failures === null || failures === undefined) return done();
  if (!Array.isArray(failures))
    return failAll(partitions, 'invalid partial batch response: batchItemFailures is not a list');
  if (failures.length === 0) return done();

  const failedAt = new Map<string, number>();
  for (const failure of failures) {
    const item = isObject(failure) ? failure.itemIdentifier : undefined;
    if (!isObject(item) || typeof item.partition !== 'string' || typeof item.offset !== 'number') {
      return failAll(partitions, `invalid partial batch response item: ${JSON.stringify(failure)}`);
    }
    const partition = partitions.get(item.partition);
    if (!partition?.offsets.has(item.offset)) {
      return failAll(
        partitions,
        `partial batch response names a record that is not in the batch: ${item.partition}@${item.offset}`,
      );
    }
    const previous = failedAt.get(item.partition);
    if (previous === undefined || item.offset < previous) failedAt.set(item.partition, item.offset);
  }
  return {
    kind: 'partial',
    partitions: [...partitions].map(([id, p]) => {
      const failed = failedAt.get(id);
      if (failed === undefined) return { id, topic: p.topic, partition: p.partition, commit: p.lastOffset + 1 };
      return {
        id,
        topic: p.topic,
        partition: p.partition,
        ...(failed > p.firstOffset ? { commit: failed } : {}),
        redeliverFrom: failed,
      };
    }),
  };
};
