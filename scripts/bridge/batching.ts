// The bridge's batching core, shaped like the Kafka event source mapping (ESM): pollers that each own a share of the
// partitions and run one invocation at a time, events that hold records of several partitions (batchSize counted
// across them), the batching window, and the ESM's handling of a batch that fails: whole-batch retries with backoff,
// and in provisioned mode its retry limit, record age and bisect. Pure: time comes in as arguments, Kafka and the
// handler live elsewhere (routeBridge.ts), so every decision here is unit-tested without either.
//
// A failed event is retried as it was: the same records, before anything newer of its partitions. So one failing
// partition stalls the others in its event, as it does in production. Nothing after a partition's committed offset
// is committed while an earlier record of it is pending, so a skipped batch commits past itself only in order.
import { type LambdaKafkaRecord, partitionId } from '../lib/kafkaEvents.ts';
import type { BatchDecision, BatchPartition } from './outcome.ts';

/** The ESM's retry controls (provisioned mode; see esmRetryLimits). Unset fields mean no limit. */
export type RetryControls = {
  /** Retries after the first invocation; past them the batch is skipped (to the on-failure destination). */
  readonly retries?: number;
  /** Records older than this are not sent to the function. */
  readonly maxRecordAgeMs?: number;
  /** Split a failed batch in two and retry each half; splitting does not count as a retry. */
  readonly bisect?: boolean;
};

export type BatchingOptions = {
  /** Records per invocation (the route's batchSize), across the partitions of one poller. */
  readonly batchSize: number;
  /** How long the oldest buffered record of a poller may wait for the batch to fill (maxBatchingWindow). */
  readonly windowMs: number;
  /** The invocation payload budget; Lambda's is 6 MB. A record larger than this never reaches the handler. */
  readonly maxBatchBytes: number;
  /** Redelivery backoff after a failed batch: base * 2^(failures-1), capped, with equal jitter. */
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** ESM pollers: partition p belongs to poller p % pollers. Default 1. */
  readonly pollers?: number;
  readonly retry?: RetryControls;
  readonly random?: () => number;
};

export const DEFAULT_MAX_BATCH_BYTES = 6 * 1024 * 1024 - 64 * 1024;

export type BufferedRecord = {
  readonly record: LambdaKafkaRecord;
  readonly bytes: number;
  /** When the bridge received it (ms): the batching window runs from the oldest buffered record. */
  readonly receivedAt: number;
  /** Left out by the route's filters: committed with its batch, never handed to the handler. */
  readonly filteredOut?: boolean;
};

/**
 * What a batch is for: `invoke` runs the handler on its records; the others never reach the handler and go to the
 * on-failure destination with the ESM's condition: a record over the payload limit, or records past the age limit.
 */
export type BatchKind = 'invoke' | 'MaximumPayloadSizeExceeded' | 'RecordAgeExceeded';

export type Batch = {
  readonly id: number;
  readonly kind: BatchKind;
  readonly poller: number;
  /** The records handed to the handler (not the filtered-out ones). */
  readonly records: readonly BufferedRecord[];
  /** Every record the batch answers for, filtered-out ones included: they are committed with it. */
  readonly covered: readonly BufferedRecord[];
  readonly partitions: ReadonlyMap<string, BatchPartition>;
  /** How many times these records were invoked before (0 for a first delivery). */
  readonly attempt: number;
};

/** A batch the ESM gave up on after its retries: it goes to the on-failure destination, and is committed past. */
export type SkippedBatch = { readonly batch: Batch; readonly invocations: number };

export type CompletionEffects = {
  /** Offsets to commit (the next offset to read per partition). */
  readonly commits: ReadonlyArray<{ topic: string; partition: number; offset: number }>;
  /** Records that will be delivered again. */
  readonly redelivered: number;
  /** Records done with (committed). */
  readonly completed: number;
  /** Partitions revoked while the batch ran: their results are dropped, nothing is committed for them. */
  readonly stale: readonly string[];
  readonly retryInMs?: number;
  /** Set when the retry limit was reached. */
  readonly skipped?: SkippedBatch;
};

type PartitionState = {
  readonly id: string;
  readonly topic: string;
  readonly partition: number;
  buffer: BufferedRecord[];
  bufferedBytes: number;
  /** The offset after the last record taken in; older offsets from a re-fetch are already here. */
  nextOffset: number | undefined;
  /** The batch holding this partition's records, while it runs. */
  inFlight: Batch | undefined;
  /** Revoked while a batch ran: that batch's result is dropped when it ends. */
  revoked: boolean;
};

/** A failed batch waiting to be invoked again, as it was, before anything newer of its partitions. */
type PendingRetry = { readonly covered: readonly BufferedRecord[]; readonly attempt: number };

type PollerState = {
  inFlight: Batch | undefined;
  /** Not before this time after a failure. */
  retryAt: number;
  /** Consecutive failures, for the backoff. */
  failures: number;
  retries: PendingRetry[];
};

const offsetOf = (r: BufferedRecord) => r.record.offset;

export class BatchScheduler {
  readonly #options: BatchingOptions;
  readonly #random: () => number;
  readonly #partitions = new Map<string, PartitionState>();
  readonly #pollers: PollerState[];
  #nextBatchId = 1;
  #buffered = 0;

  constructor(options: BatchingOptions) {
    if (options.batchSize < 1) throw new RangeError('batchSize must be at least 1');
    const pollers = options.pollers ?? 1;
    if (!Number.isInteger(pollers) || pollers < 1) throw new RangeError('pollers must be a positive integer');
    this.#options = options;
    this.#random = options.random ?? Math.random;
    this.#pollers = Array.from({ length: pollers }, () => ({
      inFlight: undefined,
      retryAt: 0,
      failures: 0,
      retries: [],
    }));
  }

  /** Records waiting in buffers (not in flight, not waiting for a retry). */
  get buffered(): number {
    return this.#buffered;
  }

  /** Invocations in flight (at most one per poller). */
  get inFlight(): number {
    return this.#pollers.filter((p) => p.inFlight).length;
  }

  /** Records buffered for one partition (fetching pauses for a partition with too many). */
  bufferedIn(id: string): number {
    return this.#partitions.get(id)?.buffer.length ?? 0;
  }

  /** Partition ids with state (buffered or in flight). */
  partitionIds(): string[] {
    return [...this.#partitions.keys()];
  }

  #state(topic: string, partition: number): PartitionState {
    const id = partitionId(topic, partition);
    let state = this.#partitions.get(id);
    if (!state) {
      state = {
        id,
        topic,
        partition,
        buffer: [],
        bufferedBytes: 0,
        nextOffset: undefined,
        inFlight: undefined,
        revoked: false,
      };
      this.#partitions.set(id, state);
    }
    return state;
  }

  #pollerOf(state: PartitionState): number {
    return state.partition % this.#pollers.length;
  }

  /**
   * Takes in a consumed record. Returns false for an offset this partition already holds (a re-fetch after a
   * rejoin starts again at the committed offset while a batch is still in flight).
   */
  offer(record: LambdaKafkaRecord, bytes: number, now: number, filteredOut = false): boolean {
    const state = this.#state(record.topic, record.partition);
    if (state.revoked) return false;
    if (state.nextOffset !== undefined && record.offset < state.nextOffset) return false;
    state.buffer.push({ record, bytes, receivedAt: now, ...(filteredOut && { filteredOut }) });
    state.bufferedBytes += bytes;
    state.nextOffset = record.offset + 1;
    this.#buffered += 1;
    return true;
  }

  #expired(r: BufferedRecord, now: number): boolean {
    const maxAge = this.#options.retry?.maxRecordAgeMs;
    return maxAge !== undefined && now - r.record.timestamp > maxAge;
  }

  #oversized(r: BufferedRecord): boolean {
    return r.bytes > this.#options.maxBatchBytes;
  }

  #partitionsOf(poller: number): PartitionState[] {
    return [...this.#partitions.values()]
      .filter((s) => !s.revoked && s.buffer.length > 0 && this.#pollerOf(s) === poller)
      .sort((a, b) => a.partition - b.partition);
  }

  /** Records a batch of a poller would take now, counted as the handler sees them (filtered-out ones ride free). */
  #fill(states: readonly PartitionState[]): { count: number; bytes: number; oldest: number } {
    let count = 0;
    let bytes = 0;
    let oldest = Number.POSITIVE_INFINITY;
    for (const s of states) {
      oldest = Math.min(oldest, (s.buffer[0] as BufferedRecord).receivedAt);
      for (const r of s.buffer) {
        if (r.filteredOut) continue;
        count += 1;
        bytes += r.bytes;
      }
    }
    return { count, bytes, oldest };
  }

  #full(fill: { count: number; bytes: number }): boolean {
    return fill.count >= this.#options.batchSize || fill.bytes >= this.#options.maxBatchBytes;
  }

  #newBatch(kind: BatchKind, poller: number, covered: readonly BufferedRecord[], attempt: number): Batch {
    const byPartition = new Map<string, BufferedRecord[]>();
    for (const r of covered) {
      const id = partitionId(r.record.topic, r.record.partition);
      byPartition.set(id, [...(byPartition.get(id) ?? []), r]);
    }
    const records = kind === 'invoke' ? covered.filter((r) => !r.filteredOut) : covered;
    const partitions = new Map<string, BatchPartition>(
      [...byPartition].map(([id, rs]) => {
        const first = rs[0] as BufferedRecord;
        return [
          id,
          {
            topic: first.record.topic,
            partition: first.record.partition,
            firstOffset: offsetOf(first),
            lastOffset: offsetOf(rs[rs.length - 1] as BufferedRecord),
            offsets: new Set(rs.filter((r) => records.includes(r)).map(offsetOf)),
          },
        ];
      }),
    );
    const batch: Batch = { id: this.#nextBatchId++, kind, poller, records, covered, partitions, attempt };
    (this.#pollers[poller] as PollerState).inFlight = batch;
    for (const id of partitions.keys()) {
      const state = this.#partitions.get(id);
      if (state) state.inFlight = batch;
    }
    return batch;
  }

  #take(state: PartitionState, count: number): BufferedRecord[] {
    const taken = state.buffer.splice(0, count);
    state.bufferedBytes -= taken.reduce((sum, r) => sum + r.bytes, 0);
    this.#buffered -= taken.length;
    return taken;
  }

  /** A record the handler can never get (too large, or too old) at the head of a partition goes first, alone. */
  #unfitHead(
    states: readonly PartitionState[],
    now: number,
  ): { kind: BatchKind; records: BufferedRecord[] } | undefined {
    for (const s of states) {
      const head = s.buffer[0] as BufferedRecord;
      if (this.#oversized(head)) return { kind: 'MaximumPayloadSizeExceeded', records: this.#take(s, 1) };
      if (this.#expired(head, now)) {
        let n = 0;
        while (n < s.buffer.length && this.#expired(s.buffer[n] as BufferedRecord, now)) n += 1;
        return { kind: 'RecordAgeExceeded', records: this.#take(s, n) };
      }
    }
    return undefined;
  }

  /** Round robin over the poller's partitions, each in offset order, up to batchSize records and the byte budget. */
  #form(states: readonly PartitionState[], now: number): BufferedRecord[] {
    const taken: BufferedRecord[] = [];
    const counts = new Map<PartitionState, number>();
    const stopped = new Set<PartitionState>();
    let count = 0;
    let bytes = 0;
    while (count < this.#options.batchSize && stopped.size < states.length) {
      for (const s of states) {
        if (stopped.has(s) || count >= this.#options.batchSize) continue;
        const at = counts.get(s) ?? 0;
        const next = s.buffer[at];
        if (!next || this.#oversized(next) || this.#expired(next, now)) {
          stopped.add(s);
          continue;
        }
        if (!next.filteredOut) {
          if (count > 0 && bytes + next.bytes > this.#options.maxBatchBytes) {
            stopped.add(s);
            continue;
          }
          count += 1;
          bytes += next.bytes;
        }
        counts.set(s, at + 1);
      }
    }
    for (const s of states) taken.push(...this.#take(s, counts.get(s) ?? 0));
    return taken;
  }

  /**
   * The batches to run now. A poller is ready when it has nothing in flight and is not backing off; it then retries
   * its failed batch, or hands over a record the handler can never get, or forms a batch once it holds batchSize
   * records (or the byte budget) or its oldest record is older than the window. `flush` ignores the window.
   */
  takeReady(now: number, flush = false): Batch[] {
    const batches: Batch[] = [];
    this.#pollers.forEach((poller, index) => {
      if (poller.inFlight || poller.retryAt > now) return;
      const retry = poller.retries.shift();
      if (retry) {
        const expired = retry.covered.some((r) => this.#expired(r, now));
        batches.push(this.#newBatch(expired ? 'RecordAgeExceeded' : 'invoke', index, retry.covered, retry.attempt));
        return;
      }
      const states = this.#partitionsOf(index);
      if (states.length === 0) return;
      const unfit = this.#unfitHead(states, now);
      if (unfit) {
        batches.push(this.#newBatch(unfit.kind, index, unfit.records, 0));
        return;
      }
      const fill = this.#fill(states);
      if (!flush && !this.#full(fill) && fill.oldest + this.#options.windowMs > now) return;
      batches.push(this.#newBatch('invoke', index, this.#form(states, now), 0));
    });
    return batches;
  }

  /** Milliseconds until a poller may become ready without new records (window or backoff), if any waits. */
  nextWakeupIn(now: number): number | undefined {
    let earliest: number | undefined;
    this.#pollers.forEach((poller, index) => {
      if (poller.inFlight) return;
      let at: number;
      if (poller.retries.length > 0) at = poller.retryAt;
      else {
        const states = this.#partitionsOf(index);
        if (states.length === 0) return;
        const fill = this.#fill(states);
        at = Math.max(poller.retryAt, this.#full(fill) ? now : fill.oldest + this.#options.windowMs);
      }
      if (earliest === undefined || at < earliest) earliest = at;
    });
    return earliest === undefined ? undefined : Math.max(0, earliest - now);
  }

  #backoff(failures: number): number {
    const ceiling = Math.min(this.#options.backoffMaxMs, this.#options.backoffBaseMs * 2 ** Math.max(0, failures - 1));
    return Math.floor(ceiling / 2 + (this.#random() * ceiling) / 2);
  }

  /** Applies a decision (outcome.ts) to the batch's partitions and says what to commit. */
  complete(batch: Batch, decision: BatchDecision, now: number): CompletionEffects {
    const poller = this.#pollers[batch.poller] as PollerState;
    if (poller.inFlight === batch) poller.inFlight = undefined;
    const live = new Set<string>();
    const stale: string[] = [];
    for (const id of batch.partitions.keys()) {
      const state = this.#partitions.get(id);
      if (state?.inFlight === batch) state.inFlight = undefined;
      if (!state || state.revoked) {
        if (state) this.#partitions.delete(id);
        stale.push(id);
      } else live.add(id);
    }
    const ofLive = (r: BufferedRecord) => live.has(partitionId(r.record.topic, r.record.partition));
    const commitPast = (records: readonly BufferedRecord[]) => {
      const commits = [...batch.partitions]
        .filter(([id]) => live.has(id))
        .map(([, p]) => ({ topic: p.topic, partition: p.partition, offset: p.lastOffset + 1 }));
      return { commits, completed: records.filter(ofLive).length };
    };

    if (decision.kind === 'failed') {
      const covered = batch.covered.filter(ofLive);
      if (covered.length === 0) return { commits: [], redelivered: 0, completed: 0, stale };
      const controls = this.#options.retry ?? {};
      const invocations = batch.attempt + 1;
      if (controls.bisect && covered.filter((r) => !r.filteredOut).length > 1) {
        const half = Math.ceil(covered.length / 2);
        poller.retries.unshift(
          { covered: covered.slice(0, half), attempt: batch.attempt },
          { covered: covered.slice(half), attempt: batch.attempt },
        );
      } else if (controls.retries !== undefined && invocations > controls.retries) {
        poller.failures = 0;
        return { ...commitPast(covered), redelivered: 0, stale, skipped: { batch, invocations } };
      } else {
        poller.retries.unshift({ covered, attempt: invocations });
      }
      poller.failures += 1;
      const retryInMs = this.#backoff(poller.failures);
      poller.retryAt = now + retryInMs;
      return { commits: [], redelivered: covered.length, completed: 0, stale, retryInMs };
    }

    const commits: Array<{ topic: string; partition: number; offset: number }> = [];
    const again: BufferedRecord[] = [];
    let completed = 0;
    for (const part of decision.partitions) {
      if (!live.has(part.id)) continue;
      const records = batch.covered.filter((r) => r.record.partition === part.partition);
      if (part.commit !== undefined) {
        commits.push({ topic: part.topic, partition: part.partition, offset: part.commit });
        completed += records.filter((r) => offsetOf(r) < (part.commit as number)).length;
      }
      if (part.redeliverFrom !== undefined)
        again.push(...records.filter((r) => offsetOf(r) >= (part.redeliverFrom as number)));
    }
    const redelivered = again.length;
    if (poller.retries.length > 0) {
      // The other half of a bisected batch is waiting: what failed here comes before it.
      if (redelivered > 0) poller.retries.unshift({ covered: again, attempt: batch.attempt + 1 });
    } else {
      // Everything buffered for a partition is newer than what the batch held of it.
      for (const id of live) {
        const state = this.#partitions.get(id) as PartitionState;
        const mine = again.filter((r) => r.record.partition === state.partition);
        state.buffer = [...mine, ...state.buffer];
        state.bufferedBytes += mine.reduce((sum, r) => sum + r.bytes, 0);
        this.#buffered += mine.length;
      }
    }
    if (redelivered === 0) {
      poller.failures = 0;
      return { commits, redelivered, completed, stale };
    }
    poller.failures += 1;
    const retryInMs = this.#backoff(poller.failures);
    poller.retryAt = now + retryInMs;
    return { commits, redelivered, completed, stale, retryInMs };
  }

  /**
   * After a group rejoin the consumer fetches again from the committed offsets. Every partition drops what it
   * buffered, and every poller its pending retries (they are fetched again, in order). A partition no longer assigned
   * is forgotten; if a batch of it is still running, that batch's result is dropped when it ends (nothing committed)
   * and the partition takes no new batch until then, so one partition never has two batches in flight here.
   * Returns the records dropped.
   */
  rebalance(assigned: ReadonlySet<string>): number {
    let dropped = 0;
    for (const poller of this.#pollers) {
      dropped += poller.retries.reduce((sum, r) => sum + r.covered.length, 0);
      poller.retries = [];
      poller.failures = 0;
      poller.retryAt = 0;
    }
    for (const [id, state] of this.#partitions) {
      dropped += state.buffer.length;
      this.#buffered -= state.buffer.length;
      state.buffer = [];
      state.bufferedBytes = 0;
      const batch = state.inFlight;
      if (!assigned.has(id)) {
        if (batch) state.revoked = true;
        else this.#partitions.delete(id);
        continue;
      }
      state.revoked = false;
      state.nextOffset = batch ? (batch.partitions.get(id) as BatchPartition).lastOffset + 1 : undefined;
    }
    return dropped;
  }
}
