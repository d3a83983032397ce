import type { BatchContext, PartitionFailure, WorkMode } from '../batch/BatchContext.ts';
import type { Prepared } from '../batch/prepare.ts';
import { deadLetterKindOf, isFinal } from '../classify.ts';
import { Limiter } from '../concurrency.ts';
import type { DeadLetters } from '../deadLetter/DeadLetters.ts';
import type { KafkaRecord } from '../decode.ts';
import { breakerOpenError, ErrorKind, IdempotencyStoreError, RecordLockedError, TransientError } from '../errors.ts';
import type { ClaimResult } from '../idempotency/IdempotencyStore.ts';
import type { ProcessFn } from '../processor.ts';
import { retryDelay, retryFits, START_MARGIN_MS, sleep } from '../retry.ts';

type ClaimOutcome = ClaimResult | { readonly outcome: 'error'; readonly error: unknown };
/** A claim outcome once any lease held by another invocation has been waited out. */
type SettledClaim = Exclude<ClaimOutcome, { outcome: 'locked' }>;

/** Claims in flight at once, across the batch's partitions. */
const CLAIMS_AHEAD = 100;
/** Records whose completes may be in doubt at once: two write batches. */
export const MAX_UNCONFIRMED_COMPLETES = 50;
/** Why a queued claim never went out: its partition stopped first. */
const PARTITION_STOPPED = new Error('partition stopped');

/**
 * `process` mode: claim, run the route's side effect, complete. Claims run ahead of processing, so a partition
 * rarely waits on DynamoDB; a complete is queued and written in batches. At least once in effect: a crash after the
 * side effect and before its complete lands runs the record again once its lease lapses.
 */
export class ProcessMode<V, K> implements WorkMode<V, K> {
  readonly #batch: BatchContext<V, K>;
  readonly #deadLetters: DeadLetters<V, K>;
  readonly #process: ProcessFn<V, K>;
  readonly #limiter = new Limiter(CLAIMS_AHEAD);
  readonly #claims = new Map<Prepared<V, K>, Promise<ClaimOutcome>>();

  constructor(
    batch: BatchContext<V, K>,
    deadLetters: DeadLetters<V, K>,
    process: ProcessFn<V, K>,
    partitions: ReadonlyMap<string, readonly Prepared<V, K>[]>,
  ) {
    this.#batch = batch;
    this.#deadLetters = deadLetters;
    this.#process = process;
    this.#claimAhead(partitions);
  }

  /** Starts every claim the batch needs, partitions interleaved, so claims run ahead of processing. */
  #claimAhead(partitions: ReadonlyMap<string, readonly Prepared<V, K>[]>): void {
    const lists = [...partitions.entries()];
    const longest = Math.max(0, ...lists.map(([, l]) => l.length));
    for (let i = 0; i < longest; i++) {
      for (const [id, list] of lists) {
        const prepared = list[i];
        if (!prepared || this.#batch.skipReason(prepared)) continue;
        this.#claims.set(prepared, this.#claim(prepared, id));
      }
    }
  }

  #claim(prepared: Prepared<V, K>, tag: string): Promise<ClaimOutcome> {
    const batch = this.#batch;
    return this.#limiter
      .run(async () => {
        const started = batch.now();
        const result = await batch.deps.store.claim(prepared, batch.owner, started);
        batch.samples.dedupeLatency.push(batch.now() - started);
        return result;
      }, tag)
      .then(
        (result): ClaimOutcome => result,
        (error: unknown): ClaimOutcome => ({ outcome: 'error', error }),
      );
  }

  async runPartition(id: string, records: readonly Prepared<V, K>[]): Promise<PartitionFailure | undefined> {
    const batch = this.#batch;
    for (let index = 0; index < records.length; index++) {
      const prepared = records[index] as Prepared<V, K>;
      if (batch.skip(prepared)) continue;
      const claimed = await this.#awaitClaim(prepared, this.#claims.get(prepared) ?? this.#claim(prepared, id));
      let failure: PartitionFailure | undefined;
      if (claimed.outcome === 'completed') batch.summary.duplicates += 1;
      else if (claimed.outcome === 'dead-lettered' || claimed.outcome === 'parked')
        failure = await this.#deadLetters.found(prepared, claimed);
      else if (claimed.outcome === 'conflict') failure = await this.#deadLetters.conflict(prepared, claimed.holder);
      else if (claimed.outcome === 'error') {
        // The claim may have landed with its answer lost: end it, so the redelivery need not wait out our lease.
        batch.releases.push({ key: prepared.key });
        failure = batch.failure(prepared, claimed.error);
      } else if (batch.invocation.getRemainingTimeInMillis() <= START_MARGIN_MS) {
        // Too late to start: a side effect finishing past our lease could run beside the next claimant's.
        batch.releases.push({ key: prepared.key });
        failure = batch.failure(prepared, new TransientError('the invocation ran out of time before the record'));
      } else if (!(await this.#roomForCompletes())) {
        // The table is not taking completes: each record run now would run again if they never land.
        batch.releases.push({ key: prepared.key });
        failure = batch.failure(
          prepared,
          new IdempotencyStoreError('completes are not being written, so no more records start in this invocation'),
        );
      } else if (prepared.decodeError) {
        failure = await this.#deadLetter(prepared, ErrorKind.permanent, prepared.decodeError, claimed);
      } else if (batch.waitsInLine(prepared)) {
        // Untried, so the claim's attempt is given back.
        const behind = await this.#deadLetters.parkBehind(prepared, claimed.attempts - 1, claimed.firstSeen);
        if (behind === 'free') failure = await this.#processRecord(prepared, claimed);
        else if (behind) {
          batch.releases.push({ key: prepared.key });
          failure = behind;
        }
      } else {
        failure = await this.#processRecord(prepared, claimed);
      }
      if (failure) {
        await this.#abandon(id, records.slice(index + 1));
        return failure;
      }
    }
    return undefined;
  }

  /**
   * Backpressure: at most MAX_UNCONFIRMED_COMPLETES records may have run with their completes still unwritten, so a
   * crash, or a table that stops taking writes, runs at most that many again (plus the record each partition had
   * started). Past it, a record waits for completes to land, until the deadline.
   */
  async #roomForCompletes(): Promise<boolean> {
    const { store } = this.#batch.deps;
    if (store.unconfirmedCompletes() < MAX_UNCONFIRMED_COMPLETES) return true;
    return store.settleCompletes(this.#batch.owner.leaseUntilMs - START_MARGIN_MS, MAX_UNCONFIRMED_COMPLETES);
  }

  /** A claim held by another invocation is waited out with backoff while the time budget allows. */
  async #awaitClaim(prepared: Prepared<V, K>, pending: Promise<ClaimOutcome>): Promise<SettledClaim> {
    const batch = this.#batch;
    let outcome = await pending;
    for (let retry = 1; outcome.outcome === 'locked'; retry++) {
      const delay = batch.lockedWait(retry, outcome.retryAtMs);
      if (delay === undefined) {
        return {
          outcome: 'error',
          error: new RecordLockedError(
            `another invocation (${outcome.owner}) holds the record until ${new Date(outcome.retryAtMs).toISOString()}`,
          ),
        };
      }
      await sleep(delay);
      outcome = await this.#claim(prepared, 'retry');
    }
    return outcome;
  }

  async #processRecord(
    prepared: Prepared<V, K>,
    claim: { attempts: number; firstSeen: number },
  ): Promise<PartitionFailure | undefined> {
    const batch = this.#batch;
    const record = prepared.record as KafkaRecord<V, K>;
    const { retry } = batch.settings;
    let attempt = claim.attempts;
    let spent = 0;
    const tries = { transient: 0, temporary: 0 };
    for (;;) {
      const gate = await batch.admission();
      if (!gate.allowed) {
        // Not an attempt: the downstream was not called, so the claim's count is given back.
        batch.summary.breakerShortCircuited += 1;
        const refused = breakerOpenError(gate.retryAtMs);
        // Parked so its partition moves on; one from the retry queue waits its stage's delay again, not counting it
        // (left to the queue's visibility timeout, an outage could use up its receives and strand it in the
        // queue's own dead-letter queue).
        if (retry.park)
          return this.#park(
            prepared,
            'temporary',
            refused,
            { attempts: attempt - 1, firstSeen: claim.firstSeen },
            true,
          );
        return this.#failAndRelease(prepared, refused, attempt - 1);
      }
      const started = batch.now();
      try {
        await this.#process(record, batch.recordContext(attempt, gate));
        gate.record('success');
        const finished = batch.now();
        batch.samples.processingTime.push(spent + finished - started);
        batch.samples.endToEndLatency.push(finished - record.timestamp);
        batch.summary.processed += 1;
        batch.deps.store.complete({ ...prepared, attempts: attempt, firstSeen: claim.firstSeen });
        return undefined;
      } catch (error) {
        const took = batch.now() - started;
        spent += took;
        const attempted = { attempts: attempt, firstSeen: claim.firstSeen };
        const kind = batch.route.classify(error);
        gate.record(batch.breakerOutcomeOf(prepared, kind), kind);
        if (isFinal(kind)) {
          batch.samples.processingTime.push(spent);
          return this.#deadLetter(prepared, deadLetterKindOf(kind), error, attempted);
        }
        // From the retry queue, a stage ends when its in-invocation tries do; attempts count on across stages.
        if (attempt >= retry.maxAttempts && !prepared.parked) {
          if (retry.park) return this.#park(prepared, kind, error, attempted);
          if (batch.exhausted(prepared, attempt))
            return this.#deadLetter(prepared, ErrorKind.exhausted, error, attempted);
          return this.#failAndRelease(prepared, error, attempt);
        }
        const delay = retryDelay(kind, tries[kind], retry, batch.random);
        if (delay === undefined || !retryFits(delay, took, batch.invocation.getRemainingTimeInMillis())) {
          if (retry.park) return this.#park(prepared, kind, error, attempted);
          return this.#failAndRelease(prepared, error, attempt);
        }
        tries[kind] += 1;
        batch.summary.retried += 1;
        await sleep(delay);
        attempt += 1;
      }
    }
  }

  async #deadLetter(
    prepared: Prepared<V, K>,
    kind: ErrorKind,
    error: unknown,
    claim: { attempts: number; firstSeen: number },
  ): Promise<PartitionFailure | undefined> {
    const failure = await this.#deadLetters.deadLetter(prepared, kind, error, claim.attempts, claim.firstSeen);
    // The decision could not be written: the record is still ours, and comes again.
    if (failure) this.#batch.releases.push({ key: prepared.key, attempts: claim.attempts });
    return failure;
  }

  /** To the retry queue, so the partition moves on; a record it cannot take stops the partition instead. */
  async #park(
    prepared: Prepared<V, K>,
    kind: 'transient' | 'temporary',
    error: unknown,
    claim: { attempts: number; firstSeen: number },
    untried = false,
  ): Promise<PartitionFailure | undefined> {
    const failure = await this.#deadLetters.park(prepared, kind, error, claim.attempts, claim.firstSeen, untried);
    if (failure) this.#batch.releases.push({ key: prepared.key, attempts: claim.attempts });
    return failure;
  }

  #failAndRelease(prepared: Prepared<V, K>, error: unknown, attempts: number): PartitionFailure {
    this.#batch.releases.push({ key: prepared.key, attempts });
    return this.#batch.failure(prepared, error);
  }

  /** Stops the partition: queued claims are dropped, made ones are given back uncounted. */
  async #abandon(id: string, rest: readonly Prepared<V, K>[]): Promise<void> {
    this.#limiter.cancelQueued((tag) => tag === id, PARTITION_STOPPED);
    for (const prepared of rest) {
      const pending = this.#claims.get(prepared);
      if (!pending) continue;
      const outcome = await pending;
      // A claim that failed may have landed with its answer lost, so it is released too.
      const made =
        outcome.outcome === 'claimed' || (outcome.outcome === 'error' && outcome.error !== PARTITION_STOPPED);
      if (made) this.#batch.releases.push({ key: prepared.key });
    }
  }
}
