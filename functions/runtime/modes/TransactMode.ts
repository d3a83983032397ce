import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { type BatchContext, earliest, type PartitionFailure, type WorkMode } from '../batch/BatchContext.ts';
import type { Prepared } from '../batch/prepare.ts';
import { deadLetterKindOf, isFinal } from '../classify.ts';
import type { DeadLetters } from '../deadLetter/DeadLetters.ts';
import type { KafkaRecord } from '../decode.ts';
import {
  BusinessRuleError,
  breakerOpenError,
  ErrorKind,
  PermanentError,
  RecordLockedError,
  TransactConflictError,
} from '../errors.ts';
import type { FailedAttempt, Taken, TransactOutcome } from '../idempotency/IdempotencyStore.ts';
import type { TransactFn } from '../processor.ts';
import { retryDelay, retryFits, sleep } from '../retry.ts';

/** TransactWriteItems takes at most 100 actions. */
export const MAX_TRANSACT_ACTIONS = 100;

type Entry<V, K> = { readonly prepared: Prepared<V, K>; readonly items: readonly TransactWriteItem[] };

/**
 * `transact` mode: each record's items commit in one transaction with its dedupe marker, so a record is applied
 * exactly once or not at all. Consecutive records whose items touch distinct keys share a transaction (a pack).
 *
 * The rule that keeps the partition's order: `runPartition` returns a stop only once every record before it is
 * settled (committed, found settled, or dead-lettered), and every record it returns past is settled.
 */
export class TransactMode<V, K> implements WorkMode<V, K> {
  readonly #batch: BatchContext<V, K>;
  readonly #deadLetters: DeadLetters<V, K>;
  readonly #transact: TransactFn<V, K>;

  constructor(batch: BatchContext<V, K>, deadLetters: DeadLetters<V, K>, transact: TransactFn<V, K>) {
    this.#batch = batch;
    this.#deadLetters = deadLetters;
    this.#transact = transact;
  }

  async runPartition(_id: string, records: readonly Prepared<V, K>[]): Promise<PartitionFailure | undefined> {
    const queue = records.filter((prepared) => !this.#batch.skip(prepared));
    // Items built for a record that did not fit its pack serve the next pack, so transact() runs once per record.
    const built = new Map<Prepared<V, K>, readonly TransactWriteItem[]>();
    let index = 0;
    while (index < queue.length) {
      const head = queue[index] as Prepared<V, K>;
      let failure: PartitionFailure | undefined;
      let behind: PartitionFailure | 'free' | undefined = 'free';
      if (!head.decodeError && this.#batch.waitsInLine(head))
        behind = await this.#deadLetters.parkBehind(head, 0, this.#batch.now());
      if (behind !== 'free') {
        failure = behind;
        index += 1;
      } else if (head.decodeError) {
        failure = await this.#deadLetter(head, ErrorKind.permanent, head.decodeError, 1);
        index += 1;
      } else {
        const { pack, buildError } = await this.#buildPack(queue, index, built);
        if (pack.length > 0) {
          failure = await this.#commit(pack);
          index += pack.length;
        } else {
          failure = await this.#failed(head, buildError);
          index += 1;
        }
      }
      if (failure) return failure;
    }
    return undefined;
  }

  /** Consecutive records whose items touch distinct keys, within the action limit; or the head's own error. */
  async #buildPack(
    queue: readonly Prepared<V, K>[],
    start: number,
    built: Map<Prepared<V, K>, readonly TransactWriteItem[]>,
  ): Promise<{ pack: Entry<V, K>[]; buildError?: unknown }> {
    const pack: Entry<V, K>[] = [];
    const touched = new Set<string>();
    // Copies of a key with other content (not duplicates, see markCopies) go in separate packs: one item, one action.
    const markers = new Set<string>();
    // With ordering 'key', one record per Kafka key: if it is parked, the next of its key must see that.
    const lines = new Set<string>();
    let actions = 0;
    for (let next = start; next < queue.length; next++) {
      const prepared = queue[next] as Prepared<V, K>;
      if (prepared.decodeError || markers.has(prepared.key)) break;
      const line = this.#batch.lineOf(prepared);
      if (next > start && line !== undefined && (lines.has(line) || this.#batch.waitsInLine(prepared))) break;
      if (line !== undefined) lines.add(line);
      let items = built.get(prepared);
      try {
        items ??= await this.#transact(prepared.record as KafkaRecord<V, K>, this.#batch.recordContext(1));
        built.set(prepared, items);
      } catch (error) {
        // A record after the first is built again as the head of the next pack, where its error is handled.
        if (pack.length === 0) return { pack, buildError: error };
        break;
      }
      if (items.length + 1 > MAX_TRANSACT_ACTIONS) {
        if (pack.length > 0) break;
        return {
          pack,
          buildError: new PermanentError(
            `transact returned ${items.length} items; at most ${MAX_TRANSACT_ACTIONS - 1} fit beside the marker`,
          ),
        };
      }
      const keys = items.map(itemKey).filter((k): k is string => k !== undefined);
      if (pack.length > 0 && (actions + items.length + 1 > MAX_TRANSACT_ACTIONS || keys.some((k) => touched.has(k))))
        break;
      for (const k of keys) touched.add(k);
      markers.add(prepared.key);
      actions += items.length + 1;
      pack.push({ prepared, items });
    }
    return { pack };
  }

  /** A record whose own work failed: dead-lettered if permanent, else its attempt counts. */
  #failed(prepared: Prepared<V, K>, error: unknown): Promise<PartitionFailure | undefined> {
    const kind = this.#batch.route.classify(error);
    if (isFinal(kind)) return this.#deadLetter(prepared, deadLetterKindOf(kind), error, 1);
    return this.#attemptFailed(prepared, error);
  }

  /** Counts a failed attempt; past the limits the record is dead-lettered, else the partition stops at it. */
  async #attemptFailed(prepared: Prepared<V, K>, error: unknown): Promise<PartitionFailure | undefined> {
    const batch = this.#batch;
    let counted: FailedAttempt;
    try {
      counted = await batch.deps.store.recordFailedAttempt(prepared, batch.owner, batch.now());
    } catch (storeError) {
      return batch.failure(prepared, storeError);
    }
    // Settled before (its letter maybe unsent), while its items keep failing to build: it is done, not stuck.
    if (counted.outcome !== 'counted') return this.#taken(prepared, counted);
    if (batch.settings.retry.park) {
      const kind = batch.route.classify(error) === 'temporary' ? 'temporary' : 'transient';
      return this.#deadLetters.park(prepared, kind, error, counted.attempts, batch.now());
    }
    if (batch.exhausted(prepared, counted.attempts))
      return this.#deadLetter(prepared, ErrorKind.exhausted, error, counted.attempts);
    return batch.failure(prepared, error);
  }

  /**
   * A record settled or held elsewhere: a duplicate (its unsent letter sent again), a stop while held, or a conflict
   * when the key's holder has other content.
   */
  async #taken(prepared: Prepared<V, K>, taken: Taken): Promise<PartitionFailure | undefined> {
    if (taken.outcome === 'locked')
      return this.#batch.failure(
        prepared,
        new RecordLockedError(`another invocation (${taken.owner}) holds the record`),
      );
    if (taken.outcome === 'completed') this.#batch.summary.duplicates += 1;
    else if (taken.outcome === 'dead-lettered' || taken.outcome === 'parked')
      return this.#deadLetters.found(prepared, taken);
    else return this.#deadLetters.conflict(prepared, taken.holder);
    return undefined;
  }

  #deadLetter(
    prepared: Prepared<V, K>,
    kind: ErrorKind,
    error: unknown,
    attempts: number,
  ): Promise<PartitionFailure | undefined> {
    return this.#deadLetters.deadLetter(prepared, kind, error, attempts, this.#batch.now());
  }

  /**
   * Commits a pack, again and again without the entries whose own conditions failed, until every entry is settled
   * or the partition must stop; entries past a stop are left for the redelivery.
   */
  async #commit(pack: readonly Entry<V, K>[]): Promise<PartitionFailure | undefined> {
    const batch = this.#batch;
    const started = batch.now();
    let remaining = pack;
    let stop: PartitionFailure | undefined;
    let tries = { transient: 0, temporary: 0 };
    while (remaining.length > 0) {
      const gate = await batch.admission();
      if (!gate.allowed) {
        // None of these was attempted, so none counts an attempt; they come again with the batch.
        batch.summary.breakerShortCircuited += remaining.length;
        const head = remaining[0] as Entry<V, K>;
        return earliest(stop, batch.failure(head.prepared, breakerOpenError(gate.retryAtMs)));
      }
      const callStarted = batch.now();
      let outcomes: TransactOutcome[];
      try {
        outcomes = await batch.deps.store.transact(
          remaining.map(({ prepared, items }) => ({ ...prepared, items })),
          callStarted,
          `${batch.invocation.awsRequestId}:${callStarted}:${remaining.map((e) => e.prepared.key).join(',')}`,
        );
        batch.samples.dedupeLatency.push(batch.now() - callStarted);
        gate.record('success');
      } catch (error) {
        const kind = batch.route.classify(error);
        // A pack from the retry queue holds one record (each message runs on its own).
        gate.record(batch.breakerOutcomeOf(remaining[0]?.prepared ?? {}, kind), kind);
        if (isFinal(kind)) {
          if (remaining.length === 1)
            return earliest(
              stop,
              await this.#deadLetter(remaining[0]?.prepared as Prepared<V, K>, deadLetterKindOf(kind), error, 1),
            );
          // One record's items may be invalid: commit them one by one, in order, to find it.
          for (const single of remaining) {
            const failure = await this.#commit([single]);
            if (failure) return earliest(stop, failure);
          }
          return stop;
        }
        const delay = retryDelay(kind, tries[kind], batch.settings.retry, batch.random);
        const remainingMs = batch.invocation.getRemainingTimeInMillis();
        if (delay !== undefined && retryFits(delay, batch.now() - callStarted, remainingMs)) {
          tries[kind] += 1;
          batch.summary.retried += 1;
          await sleep(delay);
          continue;
        }
        // Out of retries: the entry the cancellation names (else the first) counts a failed attempt.
        const head = remaining[0] as Entry<V, K>;
        const named =
          error instanceof TransactConflictError && error.entry !== undefined ? remaining[error.entry] : undefined;
        const blamed = named ?? head;
        const failure = await this.#attemptFailed(blamed.prepared, error);
        if (failure) return earliest(stop, blamed === head ? failure : batch.failure(head.prepared, error));
        // Dead-lettered as exhausted: the rest go on without it while there is time.
        remaining = remaining.filter((entry) => entry !== blamed);
        tries = { transient: 0, temporary: 0 };
        if (remaining.length > 0 && !retryFits(0, 0, batch.invocation.getRemainingTimeInMillis()))
          return earliest(stop, batch.failure((remaining[0] as Entry<V, K>).prepared, error));
        continue;
      }
      const finished = batch.now();
      const retry: Entry<V, K>[] = [];
      for (let i = 0; i < remaining.length; i++) {
        const entry = remaining[i] as Entry<V, K>;
        const outcome = outcomes[i] as TransactOutcome;
        const { prepared } = entry;
        if (stop && prepared.coordinates.offset > stop.offset) continue;
        switch (outcome.outcome) {
          case 'committed':
            batch.summary.processed += 1;
            batch.samples.processingTime.push(finished - started);
            batch.samples.endToEndLatency.push(finished - prepared.wire.timestamp);
            break;
          case 'cancelled':
            retry.push(entry);
            break;
          case 'rejected':
            stop = earliest(
              stop,
              await this.#deadLetter(prepared, ErrorKind.permanent, new BusinessRuleError(outcome.reason), 1),
            );
            break;
          case 'taken':
            stop = earliest(stop, await this.#taken(prepared, outcome.taken));
            break;
        }
      }
      // Records before a stop must be settled before it is reported; those after it come again anyway.
      const stopAt = stop?.offset;
      remaining = stopAt === undefined ? retry : retry.filter((entry) => entry.prepared.coordinates.offset < stopAt);
    }
    return stop;
  }
}

/** The table and key an action touches, so a pack never holds two actions on one item. */
const itemKey = (item: TransactWriteItem): string | undefined => {
  const op = item.Update ?? item.Delete ?? item.ConditionCheck;
  if (op?.Key) return `${op.TableName}|${JSON.stringify(op.Key)}`;
  return undefined;
};
