import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import type { ErrorKind, RecordCoordinates } from '../errors.ts';

export const RecordStatus = {
  inProgress: 'IN_PROGRESS',
  completed: 'COMPLETED',
  deadLettered: 'DEAD_LETTERED',
  /** Waiting in the route's retry queue (`retry.park`); `parkStage` says for which of its delays. */
  parked: 'PARKED',
} as const;
export type RecordStatus = (typeof RecordStatus)[keyof typeof RecordStatus];

/**
 * What a record's content looks like to its route, beside its idempotency key: `hash` covers the whole fingerprint,
 * `fields` (when the route names fields) a short hash per field, so a conflict can say which fields differ without
 * the table ever holding their values.
 */
export type Fingerprint = { readonly hash: string; readonly fields?: Readonly<Record<string, string>> };

/** What a claim needs to know about one record. */
export type ClaimRequest = {
  readonly key: string;
  readonly coordinates: RecordCoordinates;
  /** A replay may claim a DEAD_LETTERED record once more. */
  readonly replay: boolean;
  /** Set on routes with a `fingerprint`: an item of this key with another fingerprint is a conflict. */
  readonly fingerprint?: Fingerprint | undefined;
  /** Set for a record taken from the retry queue: it may claim the item PARKED at this stage. */
  readonly parkStage?: number | undefined;
};

/** The record that holds a key another record claims with different content. */
export type ConflictHolder = {
  readonly coordinates?: RecordCoordinates;
  /** The holder's per-field hashes, when both fingerprints name fields. */
  readonly fields?: Readonly<Record<string, string>>;
};

/** The invocation making claims: its id owns them, its timeout ends their lease. */
export type ClaimOwner = { readonly requestId: string; readonly leaseUntilMs: number };

/** The `parkStage` of a record parked behind an earlier record of its Kafka key: no message until its turn. */
export const WAITING_STAGE = -1;

/** One failed stage of a parked record: the in-invocation tries that ended in it, and the error that ended them. */
export type ParkedTry = {
  /** -1 for the Kafka delivery that parked it, then the retry queue's stage. */
  readonly stage: number;
  /** Epoch ms. */
  readonly at: number;
  readonly kind: 'transient' | 'temporary';
  readonly name: string;
  readonly message: string;
  readonly attempts: number;
};

/**
 * What a DEAD_LETTERED item remembers of its dead letter. The decision is written before the envelope is sent, so a
 * redelivery that finds the letter unsent sends this again instead of running the record again.
 */
export type Letter = {
  readonly kind: ErrorKind;
  readonly name: string;
  readonly message: string;
  readonly attempts: number;
  /** Epoch ms of the record's first claim. */
  readonly firstFailedAt: number;
  /** For a `conflict`: the holder's coordinates and the fields that differ. */
  readonly conflict?: { readonly holder?: string; readonly fields?: readonly string[] };
  /**
   * For a parked record (and an `exhausted` one after its last stage): the retry queue's stage it waits for, and
   * every failed stage so far. A PARKED item keeps this letter as it keeps a dead letter, for a re-send.
   */
  readonly parked?: { readonly stage: number; readonly history: readonly ParkedTry[] };
};

/** A record someone else settled or holds: what a claim, a dead-letter decision or a transaction found instead. */
export type Taken =
  | { readonly outcome: 'completed' }
  /** `unsent` is set while the decision is written but the envelope was never confirmed sent. */
  | { readonly outcome: 'dead-lettered'; readonly unsent?: Letter }
  /** Waiting in the retry queue at `stage`; `unsent` while its message was never confirmed sent. */
  | { readonly outcome: 'parked'; readonly stage: number; readonly unsent?: Letter }
  /** Another invocation holds a live lease; it may be claimed again from `retryAtMs`. */
  | { readonly outcome: 'locked'; readonly retryAtMs: number; readonly owner: string }
  /** The key is held (in any state) by a record with another fingerprint: this one must never be applied. */
  | { readonly outcome: 'conflict'; readonly holder: ConflictHolder };

export type ClaimResult =
  /** Ours to process; `attempts` counts this attempt, `firstSeen` is epoch ms of the first claim. */
  { readonly outcome: 'claimed'; readonly attempts: number; readonly firstSeen: number } | Taken;

export type DeadLetterDecision = { readonly outcome: 'decided' } | Taken;

export type FailedAttempt = { readonly outcome: 'counted'; readonly attempts: number } | Taken;

/** A processed record's final state. */
export type Completion = {
  readonly key: string;
  readonly coordinates: RecordCoordinates;
  readonly fingerprint?: Fingerprint | undefined;
  readonly attempts: number;
  readonly firstSeen: number;
};

/**
 * Ends our lease on a claim we will not finish. `attempts` is how many processing attempts the record has had in all
 * (in-invocation retries included); without it the record was never tried, and its claim's attempt is given back.
 */
export type Release = { readonly key: string; readonly attempts?: number };

/** One record's part of a `transact` pack: the route's items plus the dedupe marker. */
export type TransactEntry = {
  readonly key: string;
  readonly coordinates: RecordCoordinates;
  readonly replay: boolean;
  readonly fingerprint?: Fingerprint | undefined;
  readonly items: readonly TransactWriteItem[];
};

export type TransactOutcome =
  | { readonly outcome: 'committed' }
  /** The marker's condition failed: the record is settled or held elsewhere. */
  | { readonly outcome: 'taken'; readonly taken: Taken }
  /** One of the route's own conditions failed, or its items are invalid: a business rule. */
  | { readonly outcome: 'rejected'; readonly reason: string }
  /** Fine itself, but cancelled with the pack because of another entry: try again without that one. */
  | { readonly outcome: 'cancelled' };

/** A partition's lease, as the watermark strategy takes it at a batch's start. */
export type PartitionLease =
  /** Ours: every record at or below `committed` is settled. */
  | { readonly outcome: 'acquired'; readonly committed: number }
  /** Another live invocation holds it; it may be taken from `retryAtMs`. */
  | { readonly outcome: 'locked'; readonly retryAtMs: number; readonly owner: string };

/**
 * The watermark strategy's per-partition state: one item per (route, topic, partition) holding the offset through
 * which its records are settled, and a lease with a fencing epoch. Records above it need no per-record item.
 */
export interface PartitionWatermarks {
  /**
   * Takes the partition's lease: absent, lapsed or already ours. `lastOffset` is the batch's last record of the
   * partition, which the end write covers (no advance is made for it).
   */
  acquire(
    topic: string,
    partition: number,
    lastOffset: number,
    owner: ClaimOwner,
    now: number,
  ): Promise<PartitionLease>;
  /**
   * Ends our lease: the watermark moves up to `through` (never down), and the attempts of the record the partition
   * stopped at (`stoppedAt`) are kept for its redelivery. Retries until `deadlineMs`. Throws when the watermark is
   * left below `through` (the write never landed, or another invocation holds the partition): records that ran are
   * then covered by nothing, and the batch must fail. A lease that could not be given back ends on its own.
   */
  end(
    topic: string,
    partition: number,
    through: number,
    stoppedAt: number | undefined,
    deadlineMs: number,
  ): Promise<void>;
}

/**
 * The persistence behind per-key dedupe. The processor talks only to this interface, so its logic is tested once,
 * and the DynamoDB calls once, each on their own. A second strategy (per-partition watermarks) fits behind it.
 */
export interface IdempotencyStore {
  /** Set on the watermark strategy: Kafka batches take each partition's lease first, and end it last. */
  readonly watermarks?: PartitionWatermarks;
  /**
   * Claims one record; the caller bounds how many run at once, and the store may send them together. A claim the
   * same owner already holds comes back `claimed` (a retried request whose answer was lost), so a caller claims
   * each key at most once per invocation.
   */
  claim(request: ClaimRequest, owner: ClaimOwner, now: number): Promise<ClaimResult>;
  /** Queues a COMPLETED marker; written in batches without blocking the caller. */
  complete(completion: Completion): void;
  /** Completes queued and not yet written: the records that would run again if the invocation died now. */
  unconfirmedCompletes(): number;
  /**
   * Writes, retrying until `deadlineMs`, until fewer than `below` completes are unconfirmed; whether it got there.
   * The caller's backpressure: it starts no more side effects while too many of their completes are in doubt.
   */
  settleCompletes(deadlineMs: number, below: number): Promise<boolean>;
  /** Writes every queued marker, retrying until `deadlineMs`; throws IdempotencyStoreError if some never landed. */
  flush(deadlineMs: number): Promise<void>;
  /**
   * Makes the decision to dead-letter a record durable, before its envelope is sent: DEAD_LETTERED with the letter
   * marked unsent. Only over our own claim or a claimable item, so it never overwrites another invocation's result.
   */
  decideDeadLetter(request: ClaimRequest, letter: Letter, owner: ClaimOwner, now: number): Promise<DeadLetterDecision>;
  /**
   * The same for parking a record in the retry queue: PARKED at `letter.parked.stage`, its message marked unsent.
   * Only over our own claim or a claimable item. With `line`, it starts its Kafka key's line in the same write;
   * `occupied` when someone is in that line already (the record must park behind them).
   */
  decidePark(
    request: ClaimRequest,
    letter: Letter,
    owner: ClaimOwner,
    now: number,
    line?: string,
  ): Promise<DeadLetterDecision | { readonly outcome: 'occupied' }>;
  /**
   * `ordering: 'key'`: parks a record behind the records of its Kafka key's `line` already parked, keeping its
   * envelope on its item until its turn; `free` when the line emptied meanwhile, so the record runs now.
   */
  parkBehind(
    request: ClaimRequest,
    letter: Letter,
    envelope: string,
    line: string,
    owner: ClaimOwner,
    now: number,
  ): Promise<DeadLetterDecision | { readonly outcome: 'free' }>;
  /** The lines, of those given, that hold parked records: their keys' later records must wait behind them. */
  parkedLines(lines: readonly string[]): Promise<Set<string>>;
  /**
   * Who comes after `settled` in its line: `not-first` when `settled` no longer leads it (it left already),
   * `not-settled` while it is parked for a later stage or being run, undefined when nobody waits.
   */
  nextInLine(
    line: string,
    settled: string,
  ): Promise<{ key: string; envelope: string } | 'not-first' | 'not-settled' | undefined>;
  /** `settled` leaves the head of its line; `next`, whose message was just sent, moves to stage 0 in the same write. */
  leaveLine(line: string, settled: string, next: string | undefined): Promise<void>;
  /**
   * Notes that a decided letter reached its queue, so a redelivery does not send it again. `parkStage` for a parked
   * record's message: only that stage is marked, never a later one decided meanwhile.
   */
  markSent(key: string, parkStage?: number): Promise<void>;
  /** Ends our own leases, on claims and on letters we could not send (conditioned on owner and lease). */
  release(releases: readonly Release[], owner: ClaimOwner): Promise<void>;
  /**
   * Commits one pack of `transact` records in a single transaction. Returns per-entry outcomes when conditions fail;
   * throws on anything else (classified by the caller). A TransactConflictError names the entry to blame.
   */
  transact(entries: readonly TransactEntry[], now: number, token: string): Promise<TransactOutcome[]>;
  /** Counts a failed attempt on a `transact` record: the attempts so far, or what holds the record instead. */
  recordFailedAttempt(request: ClaimRequest, owner: ClaimOwner, now: number): Promise<FailedAttempt>;
}
