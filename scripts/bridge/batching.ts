// The bridge's batching core: per-partition buffers, batch formation by size, bytes and batching window, at most
// one batch in flight per partition, and redelivery after a backoff. Pure: time comes in as arguments, Kafka and the
// handler live elsewhere (routeBridge.ts), so every decision here is unit-tested without either.
//
// Each batch holds one partition's records, in offset order, starting at the partition's first uncommitted
// offset. Partitions run in parallel. A failed batch goes back to the front of its partition's buffer, which is the
// same as seeking the partition back to its last committed offset: nothing after it was committed either.
import { type LambdaKafkaRecord, partitionId } from '../lib/kafkaEvents.ts';
import type { BatchDecision, BatchPartition } from './outcome.ts';

export type BatchingOptions = {
  /** Records per invocation (the route's batchSize). */
  readonly batchSize: number;
  /** How long the first buffered record of a partition may wait for the batch to fill (maxBatchingWindow). */
  readonly windowMs: number;
  /** The invocation payload budget; Lambda's is 6 MB. */
  readonly maxBatchBytes: number;
  /** Redelivery backoff after a failed batch: base * 2^(failures-1), capped, with equal jitter. */
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly random?: () => number;
};

export const DEFAULT_MAX_BATCH_BYTES = 6 * 1024 * 1024 - 64 * 1024;

export type BufferedRecord = {
  readonly record: LambdaKafkaRecord;
  readonly bytes: number;
  /** When the bridge received it (ms): the batching window runs from the first buffered record. */
  readonly receivedAt: number;
};

type PartitionState = {
  readonly id: string;
  readonly topic: string;
  readonly partition: number;
  buffer: BufferedRecord[];
  bufferedBytes: number;
  /** The offset after the last record taken in; older offsets from a re-fetch are already here. */
  nextOffset: number | undefined;
  inFlight: Batch | undefined;
  /** Not before this time after a failure. */
  retryAt: number;
  /** Consecutive failed batches. */
  failures: number;
  /** Revoked while a batch ran: that batch's result is dropped when it ends. */
  revoked: boolean;
};

export type Batch = {
  readonly id: number;
  readonly records: readonly BufferedRecord[];
  readonly partitions: ReadonlyMap<string, BatchPartition>;
  /** Redelivery count of its first record's partition (0 for a first delivery). */
  readonly attempt: number;
};

export type CompletionEffects = {
  /** Offsets to commit (the next offset to read per partition). */
  readonly commits: ReadonlyArray<{ topic: string; partition: number; offset: number }>;
  /** Records that went back to a buffer to be delivered again. */
  readonly redelivered: number;
  /** Records done with (committed). */
  readonly completed: number;
  /** Partitions revoked while the batch ran: their results are dropped, nothing is committed for them. */
  readonly stale: readonly string[];
  readonly retryInMs?: number;
};

export class BatchScheduler {
  readonly #options: BatchingOptions;
  readonly #random: () => number;
  readonly #partitions = new Map<string, PartitionState>();
  #nextBatchId = 1;
  #buffered = 0;

  constructor(options: BatchingOptions) {
    if (options.batchSize < 1) throw new RangeError('batchSize must be at least 1');
    this.#options = options;
    this.#random = options.random ?? Math.random;
  }

  /** Records waiting in buffers (not in flight). */
  get buffered(): number {
    return this.#buffered;
  }

  get inFlight(): number {
    let n = 0;
    for (const p of this.#partitions.values()) if (p.inFlight) n += 1;
    return n;
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
        retryAt: 0,
        failures: 0,
        revoked: false,
      };
      this.#partitions.set(id, state);
    }
    return state;
  }

  /**
   * Takes in a consumed record. Returns false for an offset this partition already holds (a re-fetch after a
   * rejoin starts again at the committed offset while a batch is still in flight).
   */
  offer(record: LambdaKafkaRecord, bytes: number, now: number): boolean {
    const state = this.#state(record.topic, record.partition);
    if (state.revoked) return false;
    if (state.nextOffset !== undefined && record.offset < state.nextOffset) return false;
    state.buffer.push({ record, bytes, receivedAt: now });
    state.bufferedBytes += bytes;
    state.nextOffset = record.offset + 1;
    this.#buffered += 1;
    return true;
  }

  #ready(state: PartitionState, now: number, flush: boolean): boolean {
    if (state.inFlight || state.buffer.length === 0 || state.retryAt > now) return false;
    if (flush) return true;
    if (state.buffer.length >= this.#options.batchSize || state.bufferedBytes >= this.#options.maxBatchBytes)
      return true;
    return (state.buffer[0] as BufferedRecord).receivedAt + this.#options.windowMs <= now;
  }

  /**
   * The batches to invoke now: a partition is ready when it has no batch in flight, is not backing off, and has a
   * full batch (by count or bytes) or a first record older than the window. `flush` ignores the window.
   */
  takeReady(now: number, flush = false): Batch[] {
    const batches: Batch[] = [];
    for (const state of this.#partitions.values()) {
      if (!this.#ready(state, now, flush)) continue;
      let count = 0;
      let bytes = 0;
      while (count < state.buffer.length && count < this.#options.batchSize) {
        const next = (state.buffer[count] as BufferedRecord).bytes;
        if (count > 0 && bytes + next > this.#options.maxBatchBytes) break;
        bytes += next;
        count += 1;
      }
      const records = state.buffer.splice(0, count);
      state.bufferedBytes -= bytes;
      this.#buffered -= count;
      const first = (records[0] as BufferedRecord).record.offset;
      const last = (records[records.length - 1] as BufferedRecord).record.offset;
      const batch: Batch = {
        id: this.#nextBatchId++,
        records,
        attempt: state.failures,
        partitions: new Map([
          [
            state.id,
            {
              topic: state.topic,
              partition: state.partition,
              firstOffset: first,
              lastOffset: last,
              offsets: new Set(records.map((r) => r.record.offset)),
            },
          ],
        ]),
      };
      state.inFlight = batch;
      batches.push(batch);
    }
    return batches;
  }

  /** Milliseconds until a partition may become ready without new records (window or backoff), if any waits. */
  nextWakeupIn(now: number): number | undefined {
    let earliest: number | undefined;
    for (const state of this.#partitions.values()) {
      if (state.inFlight || state.buffer.length === 0) continue;
      const windowEnds = (state.buffer[0] as BufferedRecord).receivedAt + this.#options.windowMs;
      const full = state.buffer.length >= this.#options.batchSize || state.bufferedBytes >= this.#options.maxBatchBytes;
      const at = Math.max(state.retryAt, full ? now : windowEnds);
      if (earliest === undefined || at < earliest) earliest = at;
    }
    return earliest === undefined ? undefined : Math.max(0, earliest - now);
  }

  #backoff(failures: number): number {
    const ceiling = Math.min(this.#options.backoffMaxMs, this.#options.backoffBaseMs * 2 ** Math.max(0, failures - 1));
    return Math.floor(ceiling / 2 + (this.#random() * ceiling) / 2);
  }

  /** Applies a decision (outcome.ts) to the batch's partitions and says what to commit. */
  complete(batch: Batch, decision: BatchDecision, now: number): CompletionEffects {
    const commits: Array<{ topic: string; partition: number; offset: number }> = [];
    const stale: string[] = [];
    let redelivered = 0;
    let completed = 0;
    let retryInMs: number | undefined;
    for (const part of decision.partitions) {
      const state = this.#partitions.get(part.id);
      if (!state || state.inFlight !== batch) {
        stale.push(part.id);
        continue;
      }
      state.inFlight = undefined;
      if (state.revoked) {
        this.#partitions.delete(part.id);
        stale.push(part.id);
        continue;
      }
      const records = batch.records.filter((r) => r.record.partition === part.partition);
      if (part.commit !== undefined) {
        commits.push({ topic: part.topic, partition: part.partition, offset: part.commit });
        completed += records.filter((r) => r.record.offset < (part.commit as number)).length;
      }
      if (part.redeliverFrom === undefined) {
        state.failures = 0;
        continue;
      }
      const again = records.filter((r) => r.record.offset >= (part.redeliverFrom as number));
      state.buffer = [...again, ...state.buffer];
      state.bufferedBytes += again.reduce((sum, r) => sum + r.bytes, 0);
      this.#buffered += again.length;
      redelivered += again.length;
      state.failures += 1;
      const wait = this.#backoff(state.failures);
      state.retryAt = now + wait;
      retryInMs = retryInMs === undefined ? wait : Math.min(retryInMs, wait);
    }
    return { commits, redelivered, completed, stale, ...(retryInMs !== undefined && { retryInMs }) };
  }

  /**
   * After a group rejoin the consumer fetches again from the committed offsets. Every partition drops what it
   * buffered (it is fetched again, in order). A partition no longer assigned is forgotten; if a batch of it is still
   * running, that batch's result is dropped when it ends (nothing committed) and the partition takes no new batch
   * until then, so one partition never has two batches in flight here. Returns the records dropped.
   */
  rebalance(assigned: ReadonlySet<string>): number {
    let dropped = 0;
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
