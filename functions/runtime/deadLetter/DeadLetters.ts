import type { BatchContext, PartitionFailure } from '../batch/BatchContext.ts';
import type { Prepared } from '../batch/prepare.ts';
import {
  DeadLetterError,
  describeError,
  ErrorKind,
  formatCoordinates,
  IdempotencyConflictError,
  isValidationException,
  RecordLockedError,
  type RecordProcessingError,
  TransientError,
} from '../errors.ts';
import {
  type ClaimRequest,
  type ConflictHolder,
  type DeadLetterDecision,
  type Fingerprint,
  type Letter,
  type ParkedTry,
  type Taken,
  WAITING_STAGE,
} from '../idempotency/IdempotencyStore.ts';
import { buildEnvelope, type DeadLetterSource, letterFor } from './envelope.ts';

/**
 * The dead-letter decision of one invocation, in one place for both work modes.
 *
 * The decision is written first (DEAD_LETTERED, the letter marked unsent) and only then is the envelope sent, so
 * once `deadLetter` returns, a redelivery never runs the record again: it finds the letter and, if the send was
 * never confirmed, sends it again. A failed send therefore stops the partition only to re-send, never to re-run.
 */
export class DeadLetters<V, K> {
  readonly #batch: BatchContext<V, K>;
  readonly #source: DeadLetterSource;
  /** Envelopes on their way; each settles to the failure it causes, if any. */
  readonly #sends: Array<Promise<PartitionFailure | undefined>> = [];
  /** The records whose envelopes reached the queue in this invocation. */
  readonly sent: RecordProcessingError[] = [];
  /**
   * Each envelope is in its queue before the partition moves past its record (the watermark strategy): a watermark
   * moved past a letter that never went out would hide its decision from every redelivery.
   */
  readonly #awaitSends: boolean;

  constructor(batch: BatchContext<V, K>, source: DeadLetterSource, awaitSends = false) {
    this.#batch = batch;
    this.#source = source;
    this.#awaitSends = awaitSends;
  }

  /**
   * Dead-letters a record whose claim we hold, or that anyone could claim (`transact` records are never claimed).
   * Returns the failure that stops the partition when the decision could not be written.
   */
  deadLetter(
    prepared: Prepared<V, K>,
    kind: ErrorKind,
    error: unknown,
    attempts: number,
    firstSeen: number,
  ): Promise<PartitionFailure | undefined> {
    const recordError = this.#batch.recordError(prepared, kind, error);
    return this.#settle(prepared, prepared, letterFor(kind, recordError, attempts, firstSeen), recordError);
  }

  /**
   * Dead-letters a record whose idempotency key another record holds with other content. The key's item is the
   * holder's, so the decision goes on an item of this record's own (`conflictDecisionKey`): a redelivery finds it
   * there and never sends the letter twice.
   */
  conflict(prepared: Prepared<V, K>, holder: ConflictHolder): Promise<PartitionFailure | undefined> {
    const batch = this.#batch;
    const holderAt = holder.coordinates && formatCoordinates(holder.coordinates);
    const fields = differingFields(prepared.fingerprint, holder.fields);
    const recordError = batch.recordError(
      prepared,
      ErrorKind.conflict,
      new IdempotencyConflictError(prepared.key, holderAt, fields),
    );
    const letter: Letter = {
      ...letterFor(ErrorKind.conflict, recordError, 1, batch.now()),
      conflict: { ...(holderAt && { holder: holderAt }), ...(fields && { fields }) },
    };
    const request = { key: conflictDecisionKey(prepared), coordinates: prepared.coordinates, replay: false };
    return this.#settle(prepared, request, letter, recordError);
  }

  /**
   * Parks a record that used up its in-invocation tries in the route's retry queue (`retry.park`), so its partition
   * moves on: PARKED at the next stage, then its message sent with that stage's delay. A record from the retry queue
   * whose last stage failed is dead-lettered as `exhausted`, with every stage's error. A record too large to go to
   * the retry queue whole stops its partition, as without a retry queue.
   */
  async park(
    prepared: Prepared<V, K>,
    kind: 'transient' | 'temporary',
    error: unknown,
    attempts: number,
    firstSeen: number,
    /** Not attempted (an open breaker refused it): a record from the retry queue waits its stage's delay again. */
    untried = false,
  ): Promise<PartitionFailure | undefined> {
    const batch = this.#batch;
    const delays = batch.settings.retry.park?.delaysSeconds ?? [];
    const recordError = batch.recordError(prepared, ErrorKind.transient, error);
    const failed = letterFor(ErrorKind.transient, recordError, attempts, firstSeen);
    if (untried && prepared.parked)
      return this.#settle(prepared, prepared, { ...failed, parked: prepared.parked }, recordError);
    const stage = prepared.parked?.stage ?? -1;
    // The record's coordinates are in the envelope; each stage keeps only what went wrong in it.
    const message = describeError(error).slice(0, MAX_TRY_MESSAGE);
    const tried: ParkedTry = { stage, at: batch.now(), kind, name: failed.name, message, attempts };
    const history = [...(prepared.parked?.history ?? []), tried];
    if (stage + 1 >= delays.length) {
      const exhausted = batch.recordError(prepared, ErrorKind.exhausted, error);
      const letter = { ...letterFor(ErrorKind.exhausted, exhausted, attempts, firstSeen), parked: { stage, history } };
      return this.#settle(prepared, prepared, letter, exhausted);
    }
    const letter: Letter = { ...failed, parked: { stage: stage + 1, history } };
    const sink = batch.deps.retrySink;
    if (!sink?.fitsWhole(this.#envelope(prepared, letter))) return batch.failure(prepared, error);
    // Parked from Kafka, a keyed record starts its key's line; from the retry queue it leads it already.
    const line = prepared.parked ? undefined : batch.lineOf(prepared);
    const failure = await this.#decide(prepared, prepared, letter, recordError, line);
    if (failure !== 'occupied') {
      if (line !== undefined && !failure) batch.parkedLines.add(line);
      return failure;
    }
    // Someone parked a record of its key meanwhile (an invocation beside ours): it waits its turn behind them.
    const behind = await this.parkBehind(prepared, attempts, firstSeen);
    return behind === 'free' ? batch.failure(prepared, error) : behind;
  }

  /**
   * `ordering: 'key'`: parks a record from Kafka behind the parked records of its key, untried. Its envelope waits
   * on its item; the retry queue's handler sends it when the record ahead settles. `free` when that line emptied
   * meanwhile: the record runs now.
   */
  async parkBehind(
    prepared: Prepared<V, K>,
    attempts: number,
    firstSeen: number,
  ): Promise<PartitionFailure | 'free' | undefined> {
    const batch = this.#batch;
    const line = batch.lineOf(prepared) as string;
    const recordError = batch.recordError(
      prepared,
      ErrorKind.transient,
      new TransientError('parked behind an earlier record of its Kafka key'),
    );
    const letter: Letter = {
      ...letterFor(ErrorKind.transient, recordError, attempts, firstSeen),
      parked: { stage: 0, history: [] },
    };
    const envelope = this.#envelope(prepared, letter);
    if (!batch.deps.retrySink?.fitsWhole(envelope)) return batch.failure(prepared, recordError);
    const waiting: Letter = { ...letter, parked: { stage: WAITING_STAGE, history: [] } };
    let decision: Awaited<ReturnType<typeof batch.deps.store.parkBehind>>;
    try {
      decision = await batch.deps.store.parkBehind(
        prepared,
        waiting,
        JSON.stringify(envelope),
        line,
        batch.owner,
        batch.now(),
      );
    } catch (storeError) {
      return batch.failure(prepared, storeError);
    }
    if (decision.outcome === 'free') {
      batch.parkedLines.delete(line);
      return 'free';
    }
    if (decision.outcome === 'decided') {
      batch.summary.parked += 1;
      return undefined;
    }
    return this.#taken(prepared, prepared, decision);
  }

  /** A decision without a line: to the dead-letter queue, or parked from the retry queue. */
  #settle(
    prepared: Prepared<V, K>,
    request: ClaimRequest,
    letter: Letter,
    recordError: RecordProcessingError,
  ): Promise<PartitionFailure | undefined> {
    // Only a record joining a line can find it occupied.
    return this.#decide(prepared, request, letter, recordError) as Promise<PartitionFailure | undefined>;
  }

  /** Writes the decision on `request`'s item (a parked record joining its key's `line`), then sends the envelope. */
  async #decide(
    prepared: Prepared<V, K>,
    request: ClaimRequest,
    letter: Letter,
    recordError: RecordProcessingError,
    line?: string,
  ): Promise<PartitionFailure | 'occupied' | undefined> {
    const batch = this.#batch;
    const { store } = batch.deps;
    let decision: DeadLetterDecision | { outcome: 'occupied' };
    try {
      decision = isParkLetter(letter)
        ? await store.decidePark(request, letter, batch.owner, batch.now(), line)
        : await store.decideDeadLetter(request, letter, batch.owner, batch.now());
    } catch (storeError) {
      // DynamoDB refuses this record's item outright, so no decision can ever be recorded: the envelope goes out
      // unmarked rather than block the partition for good (a redelivery may send it again).
      if (isValidationException((storeError as Error).cause)) {
        batch.summary.failed += 1;
        return this.#send(prepared, request.key, letter, recordError, false);
      }
      return batch.failure(prepared, storeError);
    }
    switch (decision.outcome) {
      case 'occupied':
        return 'occupied';
      case 'decided':
        if (isParkLetter(letter)) batch.summary.parked += 1;
        else batch.summary.failed += 1;
        if (letter.kind === ErrorKind.conflict) batch.summary.idempotencyConflicts += 1;
        return this.#send(prepared, request.key, letter, recordError, true);
      default:
        return this.#taken(prepared, request, decision);
    }
  }

  /** What a decision found instead of our claim. */
  #taken(
    prepared: Prepared<V, K>,
    request: ClaimRequest,
    taken: Taken,
  ): Promise<PartitionFailure | undefined> | undefined {
    switch (taken.outcome) {
      case 'locked':
        return Promise.resolve(
          this.#batch.failure(prepared, new RecordLockedError(`another invocation (${taken.owner}) holds the record`)),
        );
      case 'conflict':
        // Another record took the key, with other content, while this one was failing.
        return this.conflict(prepared, taken.holder);
      default:
        // Settled by another invocation meanwhile (its lease outlived ours): nothing of ours to send.
        return this.settled(prepared, 'unsent' in taken ? taken.unsent : undefined, request.key);
    }
  }

  /**
   * A record found dead-lettered or parked. From the retry queue, an item parked at an earlier stage than the
   * message's means the message came before its item was moved on (a hand-over in flight): it must come again.
   * Otherwise the record is settled for its partition.
   */
  async found(
    prepared: Prepared<V, K>,
    taken: Extract<Taken, { outcome: 'dead-lettered' | 'parked' }>,
  ): Promise<PartitionFailure | undefined> {
    const batch = this.#batch;
    if (taken.outcome === 'parked' && prepared.parkStage !== undefined && taken.stage < prepared.parkStage)
      return batch.failure(prepared, new TransientError('its item is not yet parked for this stage'));
    // Parked by an invocation beside ours (a zombie of this batch): the rest of its key waits behind it here too.
    const line = taken.outcome === 'parked' && !prepared.parked ? batch.lineOf(prepared) : undefined;
    if (line !== undefined) batch.parkedLines.add(line);
    return this.settled(prepared, taken.unsent);
  }

  /**
   * A record found settled (or parked, which settles it for its partition): a duplicate, and if its letter (or its
   * retry queue message) was decided but never confirmed sent, sent again.
   * `decisionKey` is the item holding the decision, when it is not the record's idempotency key (a conflict).
   */
  async settled(
    prepared: Prepared<V, K>,
    unsent: Letter | undefined,
    decisionKey = prepared.key,
  ): Promise<PartitionFailure | undefined> {
    this.#batch.summary.duplicates += 1;
    if (!unsent) return undefined;
    return this.#send(
      prepared,
      decisionKey,
      unsent,
      this.#batch.recordError(prepared, unsent.kind, unsent.message),
      true,
    );
  }

  /** Sends an envelope; awaited only where the partition must not move past it before it is in its queue. */
  async #send(
    prepared: Prepared<V, K>,
    decisionKey: string,
    letter: Letter,
    recordError: RecordProcessingError,
    marked: boolean,
  ): Promise<PartitionFailure | undefined> {
    const batch = this.#batch;
    const parkedAt = isParkLetter(letter) ? letter.parked?.stage : undefined;
    const sink = parkedAt === undefined ? batch.deps.sink : batch.deps.retrySink;
    const sending = sink
      ? sink.send(this.#envelope(prepared, letter))
      : Promise.reject(new DeadLetterError('the route parks records, but has no retry queue (RETRY_QUEUE_URL)'));
    const settled = sending.then(
      async () => {
        if (parkedAt === undefined) {
          batch.summary.deadLettered += 1;
          this.sent.push(recordError);
        }
        if (!marked) return undefined;
        try {
          await batch.deps.store.markSent(decisionKey, parkedAt);
        } catch {
          // The letter stays marked unsent, so a redelivery sends it once more: the DLQ is at least once.
        }
        return undefined;
      },
      (sendError: unknown) => {
        // Our lease on the letter ends with the batch, so the redelivery sends it at once instead of waiting it out.
        if (marked) batch.releases.push({ key: decisionKey, attempts: letter.attempts });
        return batch.failure(prepared, sendError);
      },
    );
    if (!this.#awaitSends) {
      this.#sends.push(settled);
      return undefined;
    }
    await sink?.flush();
    return settled;
  }

  /**
   * With `ordering: 'key'`, a record from the retry queue that settled (applied, or dead-lettered and sent) lets the
   * next record of its line go: its envelope is sent at stage 0 at once, then the settled record leaves the line.
   * A failure leaves the settled record's message to come again, which tries the hand-over again.
   */
  async handOver(prepared: Prepared<V, K>): Promise<PartitionFailure | undefined> {
    const batch = this.#batch;
    const line = batch.lineOf(prepared);
    if (line === undefined || !prepared.parked) return undefined;
    try {
      const next = await batch.deps.store.nextInLine(line, prepared.key);
      if (next === 'not-first' || next === 'not-settled') return undefined;
      if (next !== undefined) {
        const { DeadLetterEnvelope } = await import('./envelopeSchema.ts');
        const sink = batch.deps.retrySink;
        const sent = sink?.send(DeadLetterEnvelope.parse(JSON.parse(next.envelope)), 0);
        await sink?.flush();
        await sent;
      }
      await batch.deps.store.leaveLine(line, prepared.key, next?.key);
      return undefined;
    } catch (error) {
      return batch.failure(prepared, error);
    }
  }

  #envelope(prepared: Prepared<V, K>, letter: Letter) {
    const { route } = this.#batch.route;
    return buildEnvelope({ route, idempotencyKey: prepared.key, source: this.#source, record: prepared.wire, letter });
  }

  /** Sends what is buffered and waits for every envelope; returns the partitions that must come again to re-send. */
  async finish(): Promise<PartitionFailure[]> {
    await Promise.all([this.#batch.deps.sink.flush(), this.#batch.deps.retrySink?.flush()]);
    const failures = await Promise.all(this.#sends);
    return failures.filter((failure): failure is PartitionFailure => failure !== undefined);
  }
}

/** What a parked record's history keeps of each stage's error message. */
const MAX_TRY_MESSAGE = 512;

/** A parked record's letter: its retry queue message, sent with the delay of its stage. */
const isParkLetter = (letter: Letter): boolean => letter.kind === ErrorKind.transient && letter.parked !== undefined;

/** Where a conflicting record's own dead-letter decision lives: beside the key it lost, named by its coordinates. */
export const conflictDecisionKey = (prepared: Pick<ClaimRequest, 'key' | 'coordinates'>): string =>
  `${prepared.key}#conflict@${formatCoordinates(prepared.coordinates)}`;

/** The fingerprint fields whose hashes differ (present on one side only counts), when both sides name fields. */
export const differingFields = (
  ours: Fingerprint | undefined,
  theirs: Readonly<Record<string, string>> | undefined,
): string[] | undefined => {
  if (!ours?.fields || !theirs) return undefined;
  const names = new Set([...Object.keys(ours.fields), ...Object.keys(theirs)]);
  return [...names].filter((name) => ours.fields?.[name] !== theirs[name]).sort();
};
