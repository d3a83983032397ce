// The watermark dedupe strategy (DESIGN §6, "partition watermarks"): for a route keyed by the record's coordinates,
// "already done" is one number per partition. One item per (route, topic, partition) holds `committedOffset` (every
// record at or below it is settled), `touchedOffset` (per-record items may exist up to it), a lease (`owner`,
// `leaseUntil`) and `epoch`, a fencing token that rises with each new owner.
//
// A record above both offsets takes the fast path: no per-record read or write. Everything else goes through the
// per-key store underneath, unchanged: records in (committed, touched] (a dead letter or a parked record may have an
// item there), replays, and every retry queue message.
//
// The writes, all conditioned on the partition's owner and epoch except the first:
//   acquire  at a batch's start, takes the lease (absent, lapsed, or ours) and raises the epoch;
//   advance  every ADVANCE_EVERY fast records settled (process mode), in the background, one at a time;
//   touch    raises touchedOffset before a per-record item is written above the watermark (a dead-letter or park
//            decision), so the next owner looks for it;
//   pack     (transact mode) one update in each transaction, `committedOffset < first of the pack`, so a pack that
//            landed with its answer lost cannot land twice, and a fenced owner's pack cannot land at all;
//   end      at the partition's end: the watermark up to what is settled, the stopped record's attempts, the lease
//            given back.
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { formatCoordinates, IdempotencyStoreError } from '../errors.ts';
import { backoffDelay, beforeDeadline, sleep } from '../retry.ts';
import type { DynamoDbIdempotencyStore } from './DynamoDbIdempotencyStore.ts';
import type {
  ClaimOwner,
  ClaimRequest,
  ClaimResult,
  Completion,
  DeadLetterDecision,
  FailedAttempt,
  IdempotencyStore,
  Letter,
  PartitionLease,
  PartitionWatermarks,
  Release,
  TransactEntry,
  TransactOutcome,
} from './IdempotencyStore.ts';

/** Fast records settled between two advances: the most a crash makes run again, per partition, in `process` mode. */
export const ADVANCE_EVERY = 25;
/** The watermark item's `kind`, which tells it from per-record items in a scan. */
export const WATERMARK_KIND = 'WATERMARK';
/** Tries of a background advance; the end write retries until the deadline. */
const ADVANCE_TRIES = 4;
const WRITE_BACKOFF = { baseDelayMs: 25, maxDelayMs: 1_000 };

const s = (value: string): AttributeValue => ({ S: value });
const n = (value: number): AttributeValue => ({ N: String(value) });
const num = (value: AttributeValue | undefined): number | undefined =>
  value?.N === undefined ? undefined : Number(value.N);
type Item = Record<string, AttributeValue>;
/** Placeholders for attribute names, several of which are DynamoDB reserved words. */
const NAMES = { '#owner': 'owner', '#partition': 'partition', '#topic': 'topic', '#kind': 'kind', '#epoch': 'epoch' };
/** The placeholders an expression uses: DynamoDB refuses unused ones. */
const namesIn = (...expressions: string[]): Record<string, string> =>
  Object.fromEntries(Object.entries(NAMES).filter(([name]) => expressions.some((e) => e.includes(name))));

/** The watermark item's `pk`: `<route>#wm#<topic>-<partition>`. A coordinate key always holds an `@`, so never this. */
export const watermarkPartitionKey = (route: string, topic: string, partition: number): string =>
  `${route}#wm#${topic}-${partition}`;

/** A watermark item as `watermarks` and `reconcile` read it. */
export type WatermarkItem = {
  readonly topic: string;
  readonly partition: number;
  readonly committedOffset: number;
  readonly touchedOffset: number;
  readonly owner?: string | undefined;
  readonly leaseUntil: number;
  readonly epoch: number;
  readonly head?: { readonly offset: number; readonly attempts: number } | undefined;
};

export const watermarkFromItem = (item: Item): WatermarkItem => {
  const headOffset = num(item.headOffset);
  return {
    topic: item.topic?.S ?? '',
    partition: num(item.partition) ?? -1,
    committedOffset: num(item.committedOffset) ?? -1,
    touchedOffset: num(item.touchedOffset) ?? -1,
    owner: item.owner?.S,
    leaseUntil: num(item.leaseUntil) ?? 0,
    epoch: num(item.epoch) ?? 0,
    head: headOffset === undefined ? undefined : { offset: headOffset, attempts: num(item.headAttempts) ?? 0 },
  };
};

/** The attempts a record the partition stopped at has had, kept on the watermark for its redelivery. */
type Head = { readonly offset: number; readonly attempts: number; readonly firstSeen: number };

/** One partition this invocation holds. */
class HeldPartition {
  readonly pk: string;
  readonly owner: ClaimOwner;
  /** The batch's last record of the partition: the end write covers it, so no advance is made for it. */
  readonly lastOffset: number;
  readonly epoch: number;
  /** Records above this at acquisition take the fast path; below it, per-record items may exist. */
  readonly fastAbove: number;
  /** The watermark as last written by us (or found). */
  committed: number;
  touched: number;
  /** The stopped record of an earlier delivery, with its attempts. */
  readonly head: Head | undefined;
  /** Attempts counted in this invocation on fast records that failed. */
  readonly failed = new Map<number, Head>();
  /** The highest fast record settled, and how many have been (for the advance and the backpressure). */
  settled = -1;
  settledCount = 0;
  /** `settledCount` when the last landed advance started. */
  advancedCount = 0;
  advancing: Promise<void> | undefined;
  /** Set when a conditioned write found another owner: nothing more of ours may land. */
  fencedBy: string | undefined;

  constructor(pk: string, owner: ClaimOwner, lastOffset: number, item: Item) {
    const found = watermarkFromItem(item);
    this.pk = pk;
    this.owner = owner;
    this.lastOffset = lastOffset;
    this.epoch = found.epoch;
    this.committed = found.committedOffset;
    this.touched = found.touchedOffset;
    this.fastAbove = Math.max(found.committedOffset, found.touchedOffset);
    const headFirstSeen = num(item.headFirstSeen);
    this.head = found.head && { ...found.head, firstSeen: headFirstSeen ?? Date.now() };
  }

  /** Fast records settled that a crash now would run again. */
  get unadvanced(): number {
    return this.settledCount - this.advancedCount;
  }

  /** Attempts a fast record has had before this one, in earlier deliveries and in this invocation. */
  attemptsBefore(offset: number): Head | undefined {
    return this.failed.get(offset) ?? (this.head?.offset === offset ? this.head : undefined);
  }
}

export type WatermarkStoreOptions = {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly route: string;
  readonly ttlSeconds: number;
  readonly clockSkewMs: number;
  /** The per-key store for everything off the fast path. */
  readonly perKey: DynamoDbIdempotencyStore;
};

export class WatermarkStore implements IdempotencyStore, PartitionWatermarks {
  readonly watermarks: PartitionWatermarks = this;
  readonly #client: DynamoDBClient;
  readonly #table: string;
  readonly #route: string;
  readonly #ttlSeconds: number;
  readonly #skewMs: number;
  readonly #perKey: DynamoDbIdempotencyStore;
  /** The partitions this invocation holds, by `topic-partition`. */
  readonly #held = new Map<string, HeldPartition>();

  constructor(options: WatermarkStoreOptions) {
    this.#client = options.client;
    this.#table = options.tableName;
    this.#route = options.route;
    this.#ttlSeconds = options.ttlSeconds;
    this.#skewMs = options.clockSkewMs;
    this.#perKey = options.perKey;
  }

  #expiresAt(now: number): AttributeValue {
    return n(Math.floor(now / 1000) + this.#ttlSeconds);
  }

  async acquire(
    topic: string,
    partition: number,
    lastOffset: number,
    owner: ClaimOwner,
    now: number,
  ): Promise<PartitionLease> {
    const pk = watermarkPartitionKey(this.#route, topic, partition);
    try {
      const result = await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: { pk: s(pk) },
          UpdateExpression:
            'SET #owner = :owner, leaseUntil = :lease, expiresAt = :exp, #kind = :kind, #topic = :topic, ' +
            '#partition = :partition, committedOffset = if_not_exists(committedOffset, :none), ' +
            'touchedOffset = if_not_exists(touchedOffset, :none) ADD #epoch :one',
          // Ours already: a retried request whose first answer was lost.
          ConditionExpression: 'attribute_not_exists(pk) OR leaseUntil < :lapsed OR #owner = :owner',
          ExpressionAttributeNames: NAMES,
          ExpressionAttributeValues: {
            ':owner': s(owner.requestId),
            ':lease': n(owner.leaseUntilMs),
            ':exp': this.#expiresAt(now),
            ':kind': s(WATERMARK_KIND),
            ':topic': s(topic),
            ':partition': n(partition),
            ':none': n(-1),
            ':one': n(1),
            ':lapsed': n(now - this.#skewMs),
          },
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      const held = new HeldPartition(pk, owner, lastOffset, result.Attributes ?? {});
      this.#held.set(`${topic}-${partition}`, held);
      return { outcome: 'acquired', committed: held.committed };
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) {
        const found = watermarkFromItem(error.Item ?? {});
        return { outcome: 'locked', retryAtMs: found.leaseUntil + this.#skewMs, owner: found.owner ?? '?' };
      }
      // It may have landed with its answer lost: give it back, so the redelivery need not wait out our lease.
      await this.#update(pk, 'SET leaseUntil = :zero', '#owner = :owner', {
        ':zero': n(0),
        ':owner': s(owner.requestId),
      }).catch(() => undefined);
      throw new IdempotencyStoreError(`taking the lease of ${topic}-${partition} failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  async end(
    topic: string,
    partition: number,
    through: number,
    stoppedAt: number | undefined,
    deadlineMs: number,
  ): Promise<void> {
    const held = this.#held.get(`${topic}-${partition}`);
    if (!held) return;
    this.#held.delete(`${topic}-${partition}`);
    await held.advancing;
    const to = Math.max(held.committed, through);
    // Records that ran and that no watermark of ours covers: the batch must not succeed, or they would be committed
    // past in Kafka with nothing in the table saying they are done.
    const uncovered = (why: string, cause?: unknown) =>
      new IdempotencyStoreError(`the watermark of ${topic}-${partition} was not moved to ${to}: ${why}`, { cause });
    if (held.fencedBy !== undefined) {
      if (to > held.committed) throw uncovered(`another invocation (${held.fencedBy}) holds the partition`);
      return;
    }
    const head = stoppedAt === undefined ? undefined : held.attemptsBefore(stoppedAt);
    const headUpdate = head
      ? ', headOffset = :ho, headAttempts = :ha, headFirstSeen = :hf'
      : ' REMOVE headOffset, headAttempts, headFirstSeen';
    const release = `SET leaseUntil = :zero, expiresAt = :exp${headUpdate}`;
    const values: Item = {
      ':zero': n(0),
      ':exp': this.#expiresAt(Date.now()),
      ...(head ? { ':ho': n(head.offset), ':ha': n(head.attempts), ':hf': n(head.firstSeen) } : {}),
    };
    for (let attempt = 1; ; attempt++) {
      try {
        // Never lower: a pack whose answer was lost may have moved it further than we know.
        await this.#fenced(
          held,
          `SET committedOffset = :to, leaseUntil = :zero, expiresAt = :exp${headUpdate}`,
          'committedOffset <= :to',
          { ...values, ':to': n(to) },
        );
        return;
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) {
          const found = watermarkFromItem(error.Item ?? {});
          if (!this.#ours(held, error.Item)) {
            if (to > held.committed) throw uncovered(`another invocation (${found.owner ?? '?'}) holds the partition`);
            return;
          }
          if (found.committedOffset > to) {
            await this.#fenced(held, release, undefined, values).catch(() => undefined);
            return;
          }
        }
        const delay = backoffDelay(attempt, WRITE_BACKOFF);
        if (Date.now() + delay >= deadlineMs) {
          // Only the lease and the head's attempts are lost: the lease ends on its own at the deadline.
          if (to <= held.committed) return;
          throw uncovered(`the deadline came first (${(error as Error).message})`, error);
        }
        await sleep(delay);
      }
    }
  }

  /**
   * The held partition a record is on, when it takes the fast path: keyed by its own coordinates (a replay is keyed
   * by its original's), from Kafka, above what the partition's earlier owners may have left per-record items for.
   */
  #fast(request: Pick<ClaimRequest, 'key' | 'coordinates'> & Partial<ClaimRequest>): HeldPartition | undefined {
    if (request.replay || request.parkStage !== undefined) return undefined;
    if (request.key !== formatCoordinates(request.coordinates)) return undefined;
    const { topic, partition, offset } = request.coordinates;
    const held = this.#held.get(`${topic}-${partition}`);
    return held && offset > held.fastAbove ? held : undefined;
  }

  async claim(request: ClaimRequest, owner: ClaimOwner, now: number): Promise<ClaimResult> {
    const held = this.#fast(request);
    if (!held) return this.#perKey.claim(request, owner, now);
    const before = held.attemptsBefore(request.coordinates.offset);
    return { outcome: 'claimed', attempts: (before?.attempts ?? 0) + 1, firstSeen: before?.firstSeen ?? now };
  }

  complete(completion: Completion): void {
    const held = this.#fast(completion);
    if (!held) {
      this.#perKey.complete(completion);
      return;
    }
    held.settled = Math.max(held.settled, completion.coordinates.offset);
    held.settledCount += 1;
    if (held.settledCount - held.advancedCount >= ADVANCE_EVERY && held.settled < held.lastOffset) this.#advance(held);
  }

  /** Moves the watermark to the highest fast record settled, in the background, one write at a time. */
  #advance(held: HeldPartition): void {
    if (held.advancing || held.fencedBy !== undefined) return;
    const to = held.settled;
    const count = held.settledCount;
    if (to <= held.committed) return;
    held.advancing = (async () => {
      for (let attempt = 1; attempt <= ADVANCE_TRIES; attempt++) {
        try {
          await this.#fenced(held, 'SET committedOffset = :to, expiresAt = :exp', undefined, {
            ':to': n(to),
            ':exp': this.#expiresAt(Date.now()),
          });
          held.committed = to;
          held.advancedCount = count;
          return;
        } catch (error) {
          if (error instanceof ConditionalCheckFailedException) {
            held.fencedBy = watermarkFromItem(error.Item ?? {}).owner ?? '?';
            return;
          }
          await sleep(backoffDelay(attempt, WRITE_BACKOFF));
        }
      }
    })().finally(() => {
      held.advancing = undefined;
    });
  }

  /** Fast records settled and not yet under a landed watermark, beyond one advance's worth per partition. */
  unconfirmedCompletes(): number {
    let beyond = 0;
    for (const held of this.#held.values()) {
      // A fenced partition's records are another owner's now: nothing more may start.
      if (held.fencedBy !== undefined) return Number.POSITIVE_INFINITY;
      beyond += Math.max(0, held.unadvanced - ADVANCE_EVERY);
    }
    return this.#perKey.unconfirmedCompletes() + beyond;
  }

  async settleCompletes(deadlineMs: number, below: number): Promise<boolean> {
    while (this.unconfirmedCompletes() >= below) {
      if (Date.now() >= deadlineMs) return false;
      const waits: Promise<unknown>[] = [];
      for (const held of this.#held.values()) {
        if (held.fencedBy !== undefined) return false;
        this.#advance(held);
        if (held.advancing) waits.push(held.advancing);
      }
      if (this.#perKey.unconfirmedCompletes() > 0)
        waits.push(this.#perKey.settleCompletes(deadlineMs, Math.max(1, this.#perKey.unconfirmedCompletes())));
      if (waits.length === 0) await sleep(WRITE_BACKOFF.baseDelayMs);
      else await beforeDeadline(deadlineMs, () => Promise.all(waits)).catch(() => undefined);
    }
    return true;
  }

  flush(deadlineMs: number): Promise<void> {
    return this.#perKey.flush(deadlineMs);
  }

  /**
   * Raises `touchedOffset` to the record's offset before a per-record item is written above the watermark: the
   * next owner of the partition then reads the item instead of taking the record for fresh.
   */
  async #touch(request: ClaimRequest): Promise<void> {
    const held = this.#fast(request);
    const { offset } = request.coordinates;
    if (!held || held.touched >= offset) return;
    try {
      await this.#fenced(held, 'SET touchedOffset = :at, expiresAt = :exp', 'touchedOffset < :at', {
        ':at': n(offset),
        ':exp': this.#expiresAt(Date.now()),
      });
    } catch (error) {
      const found = error instanceof ConditionalCheckFailedException ? error.Item : undefined;
      if (!found || !this.#ours(held, found) || (num(found.touchedOffset) ?? -1) < offset) {
        if (found && !this.#ours(held, found)) held.fencedBy = found.owner?.S ?? '?';
        throw new IdempotencyStoreError(
          `recording a per-record item above the watermark at ${formatCoordinates(request.coordinates)} failed: ${(error as Error).message}`,
          { cause: error },
        );
      }
    }
    held.touched = Math.max(held.touched, offset);
  }

  async decideDeadLetter(
    request: ClaimRequest,
    letter: Letter,
    owner: ClaimOwner,
    now: number,
  ): Promise<DeadLetterDecision> {
    await this.#touch(request);
    return this.#perKey.decideDeadLetter(request, letter, owner, now);
  }

  async decidePark(request: ClaimRequest, letter: Letter, owner: ClaimOwner, now: number, line?: string) {
    await this.#touch(request);
    return this.#perKey.decidePark(request, letter, owner, now, line);
  }

  async parkBehind(
    request: ClaimRequest,
    letter: Letter,
    envelope: string,
    line: string,
    owner: ClaimOwner,
    now: number,
  ) {
    await this.#touch(request);
    return this.#perKey.parkBehind(request, letter, envelope, line, owner, now);
  }

  parkedLines(lines: readonly string[]) {
    return this.#perKey.parkedLines(lines);
  }

  nextInLine(line: string, settled: string) {
    return this.#perKey.nextInLine(line, settled);
  }

  leaveLine(line: string, settled: string, next: string | undefined) {
    return this.#perKey.leaveLine(line, settled, next);
  }

  markSent(key: string, parkStage?: number) {
    return this.#perKey.markSent(key, parkStage);
  }

  /**
   * A fast record holds no lease of its own: its attempts go on the watermark when its partition ends. One with a
   * per-record item (a decision whose envelope could not be sent) ends that item's lease, as on the per-key path.
   */
  release(releases: readonly Release[], owner: ClaimOwner): Promise<void> {
    const perKey: Release[] = [];
    for (const release of releases) {
      const at = this.#fastByKey(release.key);
      if (!at || at.offset <= at.held.touched) perKey.push(release);
      else if (release.attempts !== undefined) {
        const before = at.held.attemptsBefore(at.offset);
        at.held.failed.set(at.offset, {
          offset: at.offset,
          attempts: release.attempts,
          firstSeen: before?.firstSeen ?? Date.now(),
        });
      }
    }
    return perKey.length > 0 ? this.#perKey.release(perKey, owner) : Promise.resolve();
  }

  /** The held partition and offset of a fast record's key (a coordinate key, `topic-partition@offset`). */
  #fastByKey(key: string): { held: HeldPartition; offset: number } | undefined {
    const at = key.lastIndexOf('@');
    const dash = key.lastIndexOf('-', at);
    if (at < 0 || dash < 0) return undefined;
    const coordinates = {
      topic: key.slice(0, dash),
      partition: Number(key.slice(dash + 1, at)),
      offset: Number(key.slice(at + 1)),
    };
    const held = this.#fast({ key, coordinates });
    return held && { held, offset: coordinates.offset };
  }

  async transact(entries: readonly TransactEntry[], now: number, token: string): Promise<TransactOutcome[]> {
    const markerless = new Set<number>();
    let held: HeldPartition | undefined;
    entries.forEach((entry, index) => {
      const fast = this.#fast(entry);
      if (fast) {
        markerless.add(index);
        held = fast;
      }
    });
    if (!held) return this.#perKey.transact(entries, now, token);
    const partition = held;
    const offsets = entries.map((entry) => entry.coordinates.offset);
    const first = Math.min(...[...markerless].map((index) => offsets[index] as number));
    const last = Math.max(...offsets);
    const outcomes = await this.#perKey.transact(entries, now, token, {
      markerless,
      action: {
        Update: {
          TableName: this.#table,
          Key: { pk: s(partition.pk) },
          UpdateExpression: 'SET committedOffset = :to, expiresAt = :exp',
          ConditionExpression: '#owner = :owner AND #epoch = :epoch AND committedOffset < :first',
          ExpressionAttributeNames: namesIn('#owner #epoch'),
          ExpressionAttributeValues: {
            ':to': n(last),
            ':exp': this.#expiresAt(now),
            ':owner': s(partition.owner.requestId),
            ':epoch': n(partition.epoch),
            ':first': n(first),
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      },
      refused: (item, entry) => {
        if (!this.#ours(partition, item)) {
          partition.fencedBy = item?.owner?.S ?? '?';
          return {
            outcome: 'taken',
            taken: { outcome: 'locked', retryAtMs: num(item?.leaseUntil) ?? 0, owner: partition.fencedBy },
          };
        }
        // Ours, and already past it: the pack landed before and its answer was lost.
        const committed = num(item?.committedOffset) ?? -1;
        partition.committed = Math.max(partition.committed, committed);
        return (offsets[entry] as number) <= committed ? { outcome: 'committed' } : { outcome: 'cancelled' };
      },
    });
    if (outcomes.every((outcome) => outcome.outcome === 'committed'))
      partition.committed = Math.max(partition.committed, last);
    return outcomes;
  }

  async recordFailedAttempt(request: ClaimRequest, owner: ClaimOwner, now: number): Promise<FailedAttempt> {
    const held = this.#fast(request);
    if (!held) return this.#perKey.recordFailedAttempt(request, owner, now);
    const { offset } = request.coordinates;
    const before = held.attemptsBefore(offset);
    const attempts = (before?.attempts ?? 0) + 1;
    held.failed.set(offset, { offset, attempts, firstSeen: before?.firstSeen ?? now });
    return { outcome: 'counted', attempts };
  }

  #ours(held: HeldPartition, item: Item | undefined): boolean {
    return item?.owner?.S === held.owner.requestId && num(item?.epoch) === held.epoch;
  }

  /** An update of a held partition's watermark, conditioned on our ownership (and `condition`). */
  #fenced(held: HeldPartition, update: string, condition: string | undefined, values: Item): Promise<unknown> {
    return this.#update(
      held.pk,
      update,
      `#owner = :owner AND #epoch = :epoch${condition ? ` AND ${condition}` : ''}`,
      { ...values, ':owner': s(held.owner.requestId), ':epoch': n(held.epoch) },
      held.owner.leaseUntilMs,
    );
  }

  #update(pk: string, update: string, condition: string, values: Item, deadlineMs?: number): Promise<unknown> {
    const command = new UpdateItemCommand({
      TableName: this.#table,
      Key: { pk: s(pk) },
      UpdateExpression: update,
      ConditionExpression: condition,
      ExpressionAttributeNames: namesIn(update, condition),
      ExpressionAttributeValues: values,
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
    return deadlineMs === undefined
      ? this.#client.send(command)
      : beforeDeadline(deadlineMs, (abortSignal) => this.#client.send(command, { abortSignal }));
  }
}
