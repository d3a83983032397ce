import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import type { RecordCoordinates } from '../errors.ts';

export const RecordStatus = {
  inProgress: 'IN_PROGRESS',
  completed: 'COMPLETED',
  deadLettered: 'DEAD_LETTERED',
} as const;
export type RecordStatus = (typeof RecordStatus)[keyof typeof RecordStatus];

/** What a claim needs to know about one record. */
export type ClaimRequest = {
  readonly key: string;
  readonly coordinates: RecordCoordinates;
  /** A replay may claim a DEAD_LETTERED record once more. */
  readonly replay: boolean;
};

/** The invocation making claims: its id owns them, its timeout ends their lease. */
export type ClaimOwner = { readonly requestId: string; readonly leaseUntilMs: number };

export type ClaimResult =
  /** Ours to process; `attempts` counts this attempt, `firstSeen` is epoch ms of the first claim. */
  | { readonly outcome: 'claimed'; readonly attempts: number; readonly firstSeen: number }
  | { readonly outcome: 'completed' }
  | { readonly outcome: 'dead-lettered' }
  /** Another invocation holds a live lease. */
  | { readonly outcome: 'locked'; readonly leaseUntilMs: number; readonly owner: string };

/** The final state written for a claimed record. */
export type Settlement = {
  readonly key: string;
  readonly coordinates: RecordCoordinates;
  readonly status: typeof RecordStatus.completed | typeof RecordStatus.deadLettered;
  readonly attempts: number;
  readonly firstSeen: number;
};

/** Ends our lease on a claim we will not finish, leaving `attempts` at the given count. */
export type Release = { readonly key: string; readonly attempts: number };

/** One record's part of a `transact` pack: the route's items plus the dedupe marker. */
export type TransactEntry = {
  readonly key: string;
  readonly coordinates: RecordCoordinates;
  readonly replay: boolean;
  readonly items: readonly TransactWriteItem[];
};

export type TransactOutcome =
  | { readonly outcome: 'committed' }
  | { readonly outcome: 'duplicate'; readonly status: RecordStatus }
  | { readonly outcome: 'locked' }
  /** One of the route's own conditions failed: a business rule. */
  | { readonly outcome: 'rejected'; readonly reason: string }
  /** Fine itself, but cancelled with the pack because of another entry: try again without it. */
  | { readonly outcome: 'cancelled' };

/**
 * The persistence behind dedupe. The processor talks only to this interface, so its
 * logic is tested once, and the DynamoDB calls once, each on their own.
 */
export interface IdempotencyStore {
  /**
   * Claims one record; the caller bounds how many run at once, and the store may send them together. A claim the
   * same owner already holds comes back `claimed` (a retried request whose answer was lost), so a caller claims
   * each key at most once per invocation.
   */
  claim(request: ClaimRequest, owner: ClaimOwner, now: number): Promise<ClaimResult>;
  /** Queues a final state; written in batches without blocking the caller, a DEAD_LETTERED marker at once. */
  settle(settlement: Settlement): void;
  /** Writes everything queued; throws IdempotencyStoreError if anything could not be written. */
  flush(): Promise<void>;
  /** Ends our own leases (conditioned on the owner) so a redelivery is not stalled. */
  release(releases: readonly Release[], owner: ClaimOwner): Promise<void>;
  /**
   * Commits one pack of `transact` records in a single transaction. Returns per-entry
   * outcomes when conditions fail; throws on anything else (classified by the caller).
   */
  transact(entries: readonly TransactEntry[], now: number, token: string): Promise<TransactOutcome[]>;
  /** Records a failed attempt on a `transact` record and returns the attempts so far. */
  recordFailedAttempt(request: ClaimRequest, now: number): Promise<number>;
}
