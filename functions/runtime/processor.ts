import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import {
  BatchContext,
  earliest,
  type Invocation,
  type InvocationDeps,
  type PartitionFailure,
  type WorkMode,
} from './batch/BatchContext.ts';
import { type Prepared, type PreparedBatch, partitionId, prepareBatch, prepareParkedBatch } from './batch/prepare.ts';
import type { Classification } from './classify.ts';
import { Limiter } from './concurrency.ts';
import { DeadLetters } from './deadLetter/DeadLetters.ts';
import type { KafkaRecord, ValueSpec } from './decode.ts';
import { BatchFailedError, RecordLockedError, type RecordProcessingError } from './errors.ts';
import type { KafkaBatchResponse, SqsBatchResponse } from './event.ts';
import type { FingerprintSource } from './idempotency/fingerprint.ts';
import type { PartitionLease, PartitionWatermarks } from './idempotency/IdempotencyStore.ts';
import { ProcessMode } from './modes/ProcessMode.ts';
import { TransactMode } from './modes/TransactMode.ts';
import type { InvocationSamples, InvocationSummary } from './observability.ts';
import { START_MARGIN_MS, sleep } from './retry.ts';

export type { Invocation, InvocationDeps } from './batch/BatchContext.ts';
export { REPLAY_HEADER } from './batch/prepare.ts';

/** What `process` and `transact` receive beside the record. */
export type RecordContext = {
  readonly route: string;
  readonly requestId: string;
  /** 1 for the first attempt, counted across redeliveries. */
  readonly attempt: number;
  readonly remainingTimeMs: () => number;
  /** Adds to a route-defined count, published as a metric with the route's dimension. */
  readonly count: (metricName: string, value?: number) => void;
  /**
   * Names the downstream this attempt calls (`context.breaker('payments-api')`): its result counts towards that
   * downstream's circuit breaker instead of the route's.
   */
  readonly breaker: (downstream: string) => void;
};

export type ProcessFn<V, K> = (record: KafkaRecord<V, K>, context: RecordContext) => Promise<void>;
export type TransactFn<V, K> = (
  record: KafkaRecord<V, K>,
  context: RecordContext,
) => readonly TransactWriteItem[] | Promise<readonly TransactWriteItem[]>;

/** A route, as the processor sees it: no middy, no environment. */
export type RouteDefinition<V, K> = {
  readonly route: string;
  readonly value: ValueSpec<V>;
  readonly key?: ValueSpec<K>;
  readonly idempotencyKey?: (record: KafkaRecord<V, K>) => string;
  readonly fingerprint?: (record: KafkaRecord<V, K>) => FingerprintSource;
  readonly classify: (error: unknown) => Classification;
  /** 'skip' (the default) counts tombstones and moves on; 'process' hands them over with `value: null`. */
  readonly tombstones: 'skip' | 'process';
  readonly work:
    | { readonly mode: 'process'; readonly process: ProcessFn<V, K> }
    | { readonly mode: 'transact'; readonly transact: TransactFn<V, K> };
};

export type BatchResult = {
  /** The partial batch response, for provisioned-mode routes that report item failures. */
  readonly response?: KafkaBatchResponse;
  /** Set when the batch must be re-delivered; the adapter throws it in on-demand mode. */
  readonly error?: BatchFailedError;
  readonly summary: InvocationSummary;
  readonly samples: InvocationSamples;
  readonly failures: readonly RecordProcessingError[];
  /** The records sent to the dead-letter queue in this invocation. */
  readonly deadLetters: readonly RecordProcessingError[];
};

export type ParkedBatchResult = {
  readonly response: SqsBatchResponse;
  readonly summary: InvocationSummary;
  readonly samples: InvocationSamples;
  readonly failures: readonly RecordProcessingError[];
  readonly deadLetters: readonly RecordProcessingError[];
  /** Messages that hold no parked record of this route, with why. */
  readonly unreadable: readonly { readonly messageId: string; readonly reason: string }[];
};

/**
 * Runs one Kafka batch for one route: decode, dedupe, run each partition in offset order through the route's work
 * mode, dead-letter, settle. Framework-free: the middy adapter and the tests call it alike.
 */
export class BatchProcessor<V, K> {
  readonly #route: RouteDefinition<V, K>;

  constructor(route: RouteDefinition<V, K>) {
    this.#route = route;
  }

  async run(event: unknown, invocation: Invocation, deps: InvocationDeps): Promise<BatchResult> {
    const ran = await this.#runBatch(prepareBatch(event, this.#route), invocation, deps, false);
    return this.#result(ran.batch, [...ran.stops.values()], ran.deadLetters, ran.storeError);
  }

  /**
   * Runs an event of the route's retry queue (`retry.park`): each message holds one parked record, run on its own
   * (a failure holds back no other message). The response names the messages to deliver again: those whose record
   * must come again, and any that is not a parked record of this route (after the queue's maxReceiveCount they go
   * to its own dead-letter queue).
   */
  async runParked(event: unknown, invocation: Invocation, deps: InvocationDeps): Promise<ParkedBatchResult> {
    const { batch: prepared, unreadable } = await prepareParkedBatch(event, this.#route);
    const ran = await this.#runBatch(prepared, invocation, deps, true);
    const failed = new Set(unreadable.map((message) => message.messageId));
    for (const id of ran.storeError === undefined ? ran.stops.keys() : prepared.partitions.keys()) failed.add(id);
    ran.batch.summary.batchItemFailures = failed.size;
    ran.batch.summary.durationMs = ran.batch.now() - ran.batch.started;
    return {
      response: { batchItemFailures: [...failed].map((itemIdentifier) => ({ itemIdentifier })) },
      summary: ran.batch.summary,
      samples: ran.batch.samples,
      failures: [...ran.stops.values()].map((stop) => stop.error),
      deadLetters: ran.deadLetters,
      unreadable,
    };
  }

  /** Runs each group of records (a partition, or a retry queue message) through the work mode, then settles. */
  async #runBatch(
    prepared: PreparedBatch<V, K>,
    invocation: Invocation,
    deps: InvocationDeps,
    fromRetryQueue: boolean,
  ) {
    const batch = new BatchContext(this.#route, invocation, deps);
    const { source, partitions, received, groupsOf } = prepared;
    const keyOrdered = batch.settings.retry.park?.ordering === 'key';
    if (keyOrdered && !fromRetryQueue) {
      // One read tells which of the batch's keys have records parked ahead of them.
      const lines = new Set<string>();
      for (const records of partitions.values())
        for (const record of records) {
          const line = batch.lineOf(record);
          if (line !== undefined) lines.add(line);
        }
      if (lines.size > 0) for (const line of await deps.store.parkedLines([...lines])) batch.parkedLines.add(line);
    }
    const finishBreakers = deps.breakers.startInvocation();
    batch.summary.received = received;
    const stops = new Map<string, PartitionFailure>();
    const stopAt = (ids: readonly string[], failure: PartitionFailure | undefined) => {
      if (!failure) return;
      for (const id of ids) {
        const earlier = earliest(stops.get(id), failure);
        if (earlier) stops.set(id, earlier);
      }
    };
    const watermarks = fromRetryQueue ? undefined : deps.store.watermarks;
    const runnable = watermarks ? await takeLeases(batch, watermarks, partitions, stopAt) : partitions;
    const deadLetters = new DeadLetters(batch, source, watermarks !== undefined);
    const work = this.#workMode(batch, deadLetters, runnable);

    const limiter = new Limiter(batch.settings.partitionConcurrency);
    await Promise.all(
      [...runnable].map(([id, records]) => limiter.run(async () => stopAt([id], await work.runPartition(id, records)))),
    );
    // A letter whose send failed is decided already: its partition comes again only to send it again.
    for (const failure of await deadLetters.finish()) stopAt(groupsOf(failure.error.coordinates), failure);

    let storeError: unknown;
    try {
      await deps.store.flush(batch.owner.leaseUntilMs - START_MARGIN_MS);
    } catch (error) {
      storeError = error;
    }
    if (keyOrdered && fromRetryQueue && storeError === undefined) {
      // Settled records (their completes written now) let the next record of their key go.
      for (const [id, [record]] of partitions)
        if (record && !stops.has(id)) stopAt([id], await deadLetters.handOver(record));
    }
    if (batch.releases.length > 0) {
      try {
        await deps.store.release(batch.releases, batch.owner);
      } catch {
        // The leases end on their own at this invocation's timeout; the batch fails either way.
      }
    }
    if (watermarks) {
      // Each partition's watermark moves to the record before its stop (or its last record), and its lease ends.
      // A watermark left below records that ran fails the batch, as unwritten completes do: they run again on its
      // redelivery (process mode's crash window) instead of being committed past with nothing saying they are done.
      const ends = await Promise.allSettled(
        [...runnable.keys()].map((id) => {
          const records = partitions.get(id) as readonly Prepared<V, K>[];
          const { topic, partition, offset: last } = (records[records.length - 1] as Prepared<V, K>).coordinates;
          const stop = stops.get(id)?.offset;
          const through = stop === undefined ? last : stop - 1;
          return watermarks.end(topic, partition, through, stop, batch.owner.leaseUntilMs - START_MARGIN_MS);
        }),
      );
      for (const end of ends) if (end.status === 'rejected') storeError ??= end.reason;
    }
    finishBreakers(batch.summary);
    return { batch, stops, deadLetters: deadLetters.sent, storeError };
  }

  #workMode(
    batch: BatchContext<V, K>,
    deadLetters: DeadLetters<V, K>,
    partitions: ReadonlyMap<string, readonly Prepared<V, K>[]>,
  ): WorkMode<V, K> {
    const { work } = this.#route;
    return work.mode === 'process'
      ? new ProcessMode(batch, deadLetters, work.process, partitions)
      : new TransactMode(batch, deadLetters, work.transact);
  }

  #result(
    batch: BatchContext<V, K>,
    stops: PartitionFailure[],
    deadLetters: readonly RecordProcessingError[],
    storeError: unknown,
  ): BatchResult {
    const failures = stops.sort((a, b) =>
      partitionId(a.error.coordinates).localeCompare(partitionId(b.error.coordinates)),
    );
    const recordErrors = failures.map((f) => f.error);
    batch.summary.durationMs = batch.now() - batch.started;
    const base = { summary: batch.summary, samples: batch.samples, failures: recordErrors, deadLetters };
    const route = this.#route.route;
    if (storeError !== undefined) {
      // Completes that were never written: the whole batch must come again.
      return { ...base, error: new BatchFailedError(route, recordErrors, storeError) };
    }
    if (!batch.settings.partialBatchResponse) {
      return failures.length === 0 ? base : { ...base, error: new BatchFailedError(route, recordErrors) };
    }
    batch.summary.batchItemFailures = failures.length;
    return {
      ...base,
      response: {
        batchItemFailures: failures.map((f) => ({
          itemIdentifier: { partition: partitionId(f.error.coordinates), offset: f.offset },
        })),
      },
    };
  }
}

/**
 * The watermark strategy's start of a Kafka batch: each partition's lease, waited for while another live invocation
 * holds it (as a locked record is), and its records at or below the watermark dropped as duplicates. A partition
 * whose lease cannot be had stops at its first record. Returns the partitions to run.
 */
const takeLeases = async <V, K>(
  batch: BatchContext<V, K>,
  watermarks: PartitionWatermarks,
  partitions: ReadonlyMap<string, readonly Prepared<V, K>[]>,
  stopAt: (ids: readonly string[], failure: PartitionFailure | undefined) => void,
): Promise<Map<string, Prepared<V, K>[]>> => {
  const runnable = new Map<string, Prepared<V, K>[]>();
  await Promise.all(
    [...partitions].map(async ([id, records]) => {
      const first = records[0];
      if (!first) return;
      const { topic, partition } = first.coordinates;
      const last = (records[records.length - 1] as Prepared<V, K>).coordinates.offset;
      for (let retry = 1; ; retry++) {
        let lease: PartitionLease;
        try {
          lease = await watermarks.acquire(topic, partition, last, batch.owner, batch.now());
        } catch (error) {
          stopAt([id], batch.failure(first, error));
          return;
        }
        if (lease.outcome === 'acquired') {
          // A replay is keyed by its original record and deduped by that key, wherever it sits in the partition.
          const fresh = records.filter((prepared) => prepared.replay || prepared.coordinates.offset > lease.committed);
          batch.summary.duplicates += records.length - fresh.length;
          runnable.set(id, fresh);
          return;
        }
        const delay = batch.lockedWait(retry, lease.retryAtMs);
        if (delay === undefined) {
          const until = new Date(lease.retryAtMs).toISOString();
          stopAt(
            [id],
            batch.failure(
              first,
              new RecordLockedError(`another invocation (${lease.owner}) holds partition ${id} until ${until}`),
            ),
          );
          return;
        }
        await sleep(delay);
      }
    }),
  );
  return runnable;
};
