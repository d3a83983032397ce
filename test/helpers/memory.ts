import type { DeadLetterSink } from '../../functions/runtime/deadLetter/DeadLetterSink.ts';
import type { DeadLetterEnvelope } from '../../functions/runtime/deadLetter/envelope.ts';
import type {
  ClaimOwner,
  ClaimRequest,
  ClaimResult,
  IdempotencyStore,
  Release,
  Settlement,
  TransactEntry,
  TransactOutcome,
} from '../../functions/runtime/idempotency/IdempotencyStore.ts';

/**
 * In-memory implementations of the processor's two ports, for unit tests of the
 * processing logic alone (ordering, retry, fuzzing). The real DynamoDB and SQS
 * adapters are tested against DynamoDB Local and ElasticMQ in their own suites.
 */
export class MemoryStore implements IdempotencyStore {
  readonly items = new Map<string, { status: string; attempts: number; leaseUntil: number; owner: string }>();
  requests = 0;

  async claim(request: ClaimRequest, owner: ClaimOwner, now: number): Promise<ClaimResult> {
    this.requests += 1;
    const item = this.items.get(request.key);
    if (item && item.status === 'COMPLETED') return { outcome: 'completed' };
    if (item && item.status === 'DEAD_LETTERED' && !request.replay) return { outcome: 'dead-lettered' };
    if (item && item.status === 'IN_PROGRESS' && item.leaseUntil >= now) {
      return { outcome: 'locked', leaseUntilMs: item.leaseUntil, owner: item.owner };
    }
    const attempts = (item?.attempts ?? 0) + 1;
    this.items.set(request.key, {
      status: 'IN_PROGRESS',
      attempts,
      leaseUntil: owner.leaseUntilMs,
      owner: owner.requestId,
    });
    return { outcome: 'claimed', attempts, firstSeen: now };
  }

  settle(settlement: Settlement): void {
    this.items.set(settlement.key, {
      status: settlement.status,
      attempts: settlement.attempts,
      leaseUntil: 0,
      owner: '',
    });
  }

  async flush(): Promise<void> {}

  async release(releases: readonly Release[], owner: ClaimOwner): Promise<void> {
    for (const release of releases) {
      const item = this.items.get(release.key);
      if (item && item.owner === owner.requestId && item.status === 'IN_PROGRESS') {
        item.leaseUntil = 0;
        item.attempts = release.attempts;
      }
    }
  }

  async transact(entries: readonly TransactEntry[]): Promise<TransactOutcome[]> {
    this.requests += 1;
    return entries.map((entry) => {
      const item = this.items.get(entry.key);
      if (item && item.status !== 'IN_PROGRESS') return { outcome: 'duplicate', status: item.status as 'COMPLETED' };
      this.items.set(entry.key, { status: 'COMPLETED', attempts: 1, leaseUntil: 0, owner: '' });
      return { outcome: 'committed' };
    });
  }

  async recordFailedAttempt(request: ClaimRequest): Promise<number> {
    const item = this.items.get(request.key) ?? { status: 'IN_PROGRESS', attempts: 0, leaseUntil: 0, owner: '' };
    item.attempts += 1;
    this.items.set(request.key, item);
    return item.attempts;
  }
}

export class MemorySink implements DeadLetterSink {
  readonly letters: DeadLetterEnvelope[] = [];
  async send(envelope: DeadLetterEnvelope): Promise<void> {
    this.letters.push(envelope);
  }
  async flush(): Promise<void> {}
}
