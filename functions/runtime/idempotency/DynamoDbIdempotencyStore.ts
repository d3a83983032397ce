import { createHash } from 'node:crypto';
import {
  type AttributeValue,
  BatchExecuteStatementCommand,
  BatchGetItemCommand,
  type BatchStatementResponse,
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  TransactionCanceledException,
  type TransactWriteItem,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { forEachLimited } from '../concurrency.ts';
import { IdempotencyStoreError, TransientError } from '../errors.ts';
import { backoffDelay, sleep } from '../retry.ts';
import type { CompletedKeyCache } from './CompletedKeyCache.ts';
import {
  type ClaimOwner,
  type ClaimRequest,
  type ClaimResult,
  type IdempotencyStore,
  RecordStatus,
  type Release,
  type Settlement,
  type TransactEntry,
  type TransactOutcome,
} from './IdempotencyStore.ts';

export type DynamoDbIdempotencyStoreOptions = {
  client: DynamoDBClient;
  tableName: string;
  route: string;
  ttlSeconds: number;
  cache: CompletedKeyCache;
};

/** Releases in flight at once; claims are bounded by the caller. */
const RELEASE_CONCURRENCY = 32;
/** BatchWriteItem takes at most 25 items per call. */
const SETTLE_BATCH_SIZE = 25;
/** BatchExecuteStatement takes at most 25 statements per call, on distinct keys. */
const CLAIM_BATCH_SIZE = 25;
const UNPROCESSED_RETRIES = 8;
const UNPROCESSED_BACKOFF = { baseDelayMs: 25, maxDelayMs: 1_000 };

/** Placeholders for attribute names, several of which are DynamoDB reserved words. */
const NAMES = {
  '#status': 'status',
  '#owner': 'owner',
  '#topic': 'topic',
  '#partition': 'partition',
  '#offset': 'offset',
};
const TRANSIENT_CANCELLATION_CODES = new Set([
  'TransactionConflict',
  'ThrottlingError',
  'ProvisionedThroughputExceeded',
  'RequestLimitExceeded',
]);

const s = (value: string): AttributeValue => ({ S: value });
const n = (value: number): AttributeValue => ({ N: String(value) });
const num = (value: AttributeValue | undefined): number | undefined =>
  value?.N === undefined ? undefined : Number(value.N);

/** The values every write that records a claim or an attempt shares, `claimCondition`'s among them. */
const attemptValues = (request: ClaimRequest, now: number, ttlSeconds: number): Record<string, AttributeValue> => {
  const nowSec = Math.floor(now / 1000);
  const { topic, partition, offset } = request.coordinates;
  return {
    ':inProgress': s(RecordStatus.inProgress),
    ':exp': n(nowSec + ttlSeconds),
    ':now': n(now),
    ':nowSec': n(nowSec),
    ':topic': s(topic),
    ':partition': n(partition),
    ':offset': n(offset),
    ':one': n(1),
    ...(request.replay ? { ':deadLettered': s(RecordStatus.deadLettered) } : {}),
  };
};

/** The attributes of a fresh claim's item, as the batched insert writes them. */
const INSERTED_ATTRIBUTES = [
  'pk',
  'status',
  'leaseUntil',
  'owner',
  'expiresAt',
  'firstSeen',
  'topic',
  'partition',
  'offset',
  'attempts',
] as const;

/** The part of a claim or failed-attempt update that records the first sighting and the coordinates. */
const RECORD_SIGHTING =
  'firstSeen = if_not_exists(firstSeen, :now), #topic = :topic, #partition = :partition, #offset = :offset';

/** Claimable: absent, expired, a lapsed IN_PROGRESS lease, and for a replay a DEAD_LETTERED record. */
const claimCondition = (replay: boolean): string =>
  'attribute_not_exists(pk) OR expiresAt < :nowSec OR (#status = :inProgress AND leaseUntil < :now)' +
  (replay ? ' OR #status = :deadLettered' : '');

/** A claim waiting for the next batch of fresh-record inserts. */
type QueuedClaim = {
  readonly request: ClaimRequest;
  readonly owner: ClaimOwner;
  readonly now: number;
  readonly resolve: (result: ClaimResult) => void;
  readonly reject: (error: unknown) => void;
};

export class DynamoDbIdempotencyStore implements IdempotencyStore {
  readonly #client: DynamoDBClient;
  readonly #table: string;
  readonly #route: string;
  readonly #ttlSeconds: number;
  readonly #cache: CompletedKeyCache;
  #pending: WriteRequest[] = [];
  readonly #pendingKeys = new Map<WriteRequest, { key: string; completed: boolean; expiresAt: number }>();
  readonly #inFlight = new Set<Promise<void>>();
  #flushFailure: unknown;
  #queuedClaims: QueuedClaim[] = [];
  /** The queued claims by key, so a second claim on a key in the same window never reaches DynamoDB. */
  readonly #windowClaims = new Map<string, { owner: ClaimOwner; result: Promise<ClaimResult> }>();
  readonly #insertStatement: string;

  constructor(options: DynamoDbIdempotencyStoreOptions) {
    this.#client = options.client;
    this.#table = options.tableName;
    this.#route = options.route;
    this.#ttlSeconds = options.ttlSeconds;
    this.#cache = options.cache;
    this.#insertStatement = `INSERT INTO "${this.#table}" VALUE {${INSERTED_ATTRIBUTES.map((name) => `'${name}': ?`).join(', ')}}`;
  }

  /** `<route>#<idempotencyKey>`, as DESIGN §6 fixes it. */
  partitionKey(key: string): string {
    return `${this.#route}#${key}`;
  }

  /**
   * Most records are new to the table, so claims made in the same turn of the event loop are first tried as plain
   * PartiQL inserts, 25 to a BatchExecuteStatement: one request instead of 25, and a tenth of the client CPU. An
   * insert fails only when the item exists; those keys are read together, and a key the read shows claimable
   * (expired, a lapsed lease) runs alone as the conditional update, which also serves a lone claim and a replay.
   */
  claim(request: ClaimRequest, owner: ClaimOwner, now: number): Promise<ClaimResult> {
    if (request.replay) return this.#claimOne(request, owner, now);
    // A second claim on a key in the same window waits for the first: whoever wins holds it.
    const first = this.#windowClaims.get(request.key);
    if (first) {
      return first.result.then(
        (result): ClaimResult =>
          result.outcome === 'claimed'
            ? { outcome: 'locked', owner: first.owner.requestId, leaseUntilMs: first.owner.leaseUntilMs }
            : result,
      );
    }
    const result = new Promise<ClaimResult>((resolve, reject) => {
      // setImmediate, not a microtask: the claims that finished requests start one by one as microtasks.
      if (this.#queuedClaims.push({ request, owner, now, resolve, reject }) === 1)
        setImmediate(() => this.#sendQueuedClaims());
    });
    this.#windowClaims.set(request.key, { owner, result });
    return result;
  }

  #sendQueuedClaims(): void {
    const queued = this.#queuedClaims;
    this.#queuedClaims = [];
    this.#windowClaims.clear();
    if (queued.length === 1) {
      const [only] = queued as [QueuedClaim];
      this.#claimOne(only.request, only.owner, only.now).then(only.resolve, only.reject);
      return;
    }
    // Keys are distinct within a window, as BatchExecuteStatement requires.
    for (let start = 0; start < queued.length; start += CLAIM_BATCH_SIZE)
      this.#startInsert(queued.slice(start, start + CLAIM_BATCH_SIZE));
  }

  #startInsert(chunk: readonly QueuedClaim[]): void {
    // A claim already settled ignores the rejection; none is left waiting forever.
    this.#insertClaims(chunk).catch((error: unknown) => this.#rejectAll(chunk, error));
  }

  async #insertClaims(chunk: readonly QueuedClaim[]): Promise<void> {
    let responses: BatchStatementResponse[];
    try {
      const result = await this.#client.send(
        new BatchExecuteStatementCommand({
          Statements: chunk.map(({ request, owner, now }) => ({
            Statement: this.#insertStatement,
            Parameters: this.#insertedValues(request, owner, now),
          })),
        }),
      );
      responses = result.Responses ?? [];
    } catch (error) {
      this.#rejectAll(chunk, error);
      return;
    }
    const existing: QueuedClaim[] = [];
    chunk.forEach((claim, index) => {
      // Responses come in statement order.
      const error = responses[index]?.Error;
      if (responses[index] !== undefined && error === undefined)
        claim.resolve({ outcome: 'claimed', attempts: 1, firstSeen: claim.now });
      else if (error?.Code === 'DuplicateItem') existing.push(claim);
      else this.#claimOne(claim.request, claim.owner, claim.now).then(claim.resolve, claim.reject);
    });
    if (existing.length > 0) await this.#claimExisting(existing);
  }

  /**
   * The keys an insert found taken are mostly duplicates, settled long ago: one consistent BatchGetItem tells
   * which (a read is a fifth of a write's price). Only those the read shows claimable go on to the update, whose
   * condition decides again, so a change between the read and the update is never lost.
   */
  async #claimExisting(claims: readonly QueuedClaim[]): Promise<void> {
    if (claims.length === 1) {
      const [only] = claims as [QueuedClaim];
      return this.#claimOne(only.request, only.owner, only.now).then(only.resolve, only.reject);
    }
    let items: Map<string | undefined, Record<string, AttributeValue>>;
    try {
      const result = await this.#client.send(
        new BatchGetItemCommand({
          RequestItems: {
            [this.#table]: {
              Keys: claims.map(({ request }) => ({ pk: s(this.partitionKey(request.key)) })),
              ConsistentRead: true,
              ProjectionExpression: 'pk, #status, #owner, leaseUntil, expiresAt, attempts, firstSeen',
              ExpressionAttributeNames: { '#status': 'status', '#owner': 'owner' },
            },
          },
        }),
      );
      items = new Map((result.Responses?.[this.#table] ?? []).map((item) => [item.pk?.S, item]));
    } catch (error) {
      this.#rejectAll(claims, error, ' reading the existing item');
      return;
    }
    for (const claim of claims) {
      const item = items.get(this.partitionKey(claim.request.key));
      const held = item && (num(item.expiresAt) ?? 0) >= Math.floor(claim.now / 1000);
      const lapsed = item?.status?.S === RecordStatus.inProgress && (num(item.leaseUntil) ?? 0) < claim.now;
      // Unprocessed keys come back missing from the map, and go the update path like any claimable key.
      if (item && held && !lapsed) claim.resolve(this.#conflict(item, claim.now, claim.owner));
      else this.#claimOne(claim.request, claim.owner, claim.now).then(claim.resolve, claim.reject);
    }
  }

  #rejectAll(claims: readonly QueuedClaim[], error: unknown, step = ''): void {
    const reason = `failed${step} (in a batch of ${claims.length}): ${(error as Error).message}`;
    for (const { request, reject } of claims)
      reject(new IdempotencyStoreError(`claim of ${request.key} ${reason}`, { cause: error }));
  }

  /** A fresh claim's item, in INSERTED_ATTRIBUTES order: what the conditional update writes on an absent key. */
  #insertedValues(request: ClaimRequest, owner: ClaimOwner, now: number): AttributeValue[] {
    const { topic, partition, offset } = request.coordinates;
    return [
      s(this.partitionKey(request.key)),
      s(RecordStatus.inProgress),
      n(owner.leaseUntilMs),
      s(owner.requestId),
      n(Math.floor(now / 1000) + this.#ttlSeconds),
      n(now),
      s(topic),
      n(partition),
      n(offset),
      n(1),
    ];
  }

  async #claimOne(request: ClaimRequest, owner: ClaimOwner, now: number): Promise<ClaimResult> {
    const nowSec = Math.floor(now / 1000);
    const values = {
      ...attemptValues(request, now, this.#ttlSeconds),
      ':lease': n(owner.leaseUntilMs),
      ':owner': s(owner.requestId),
    };
    try {
      const result = await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: { pk: s(this.partitionKey(request.key)) },
          UpdateExpression: `SET #status = :inProgress, leaseUntil = :lease, #owner = :owner, expiresAt = :exp, ${RECORD_SIGHTING} ADD attempts :one`,
          ConditionExpression: claimCondition(request.replay),
          ExpressionAttributeNames: NAMES,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_OLD',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      const old = result.Attributes;
      // An expired item starts a fresh history; a live one carries its attempts and first sighting.
      const fresh = !old || (num(old.expiresAt) ?? 0) < nowSec;
      return {
        outcome: 'claimed',
        attempts: fresh ? 1 : (num(old.attempts) ?? 0) + 1,
        firstSeen: fresh ? now : (num(old.firstSeen) ?? now),
      };
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return this.#conflict(error.Item, now, owner);
      throw new IdempotencyStoreError(`claim of ${request.key} failed: ${(error as Error).message}`, { cause: error });
    }
  }

  #conflict(item: Record<string, AttributeValue> | undefined, now: number, owner: ClaimOwner): ClaimResult {
    const status = item?.status?.S;
    if (status === RecordStatus.completed) return { outcome: 'completed' };
    if (status === RecordStatus.deadLettered) return { outcome: 'dead-lettered' };
    // Our own live claim: a retried request whose first answer was lost. Waiting on ourselves would stall the
    // partition until our own timeout; the caller claims each key once per invocation, so it is ours to process.
    if (item?.owner?.S === owner.requestId) {
      return { outcome: 'claimed', attempts: num(item.attempts) ?? 1, firstSeen: num(item.firstSeen) ?? now };
    }
    return { outcome: 'locked', leaseUntilMs: num(item?.leaseUntil) ?? now, owner: item?.owner?.S ?? 'unknown' };
  }

  /** A record's final item: what a settlement and a `transact` marker write. */
  #settledItem(settlement: Settlement, now: number): Record<string, AttributeValue> {
    const { topic, partition, offset } = settlement.coordinates;
    return {
      pk: s(this.partitionKey(settlement.key)),
      status: s(settlement.status),
      attempts: n(settlement.attempts),
      firstSeen: n(settlement.firstSeen),
      settledAt: n(now),
      expiresAt: n(Math.floor(now / 1000) + this.#ttlSeconds),
      topic: s(topic),
      partition: n(partition),
      offset: n(offset),
    };
  }

  settle(settlement: Settlement): void {
    const item = this.#settledItem(settlement, Date.now());
    const expiresAt = Number(item.expiresAt?.N);
    const request: WriteRequest = { PutRequest: { Item: item } };
    this.#pending.push(request);
    this.#pendingKeys.set(request, {
      key: settlement.key,
      completed: settlement.status === RecordStatus.completed,
      expiresAt,
    });
    // A dead letter's marker goes out at once (with the completes pending beside it): until it is written, a crash
    // makes the redelivery send the envelope again.
    if (this.#pending.length >= SETTLE_BATCH_SIZE || settlement.status === RecordStatus.deadLettered)
      this.#startFlush();
  }

  #startFlush(): void {
    const batch = this.#pending.splice(0, SETTLE_BATCH_SIZE);
    if (batch.length === 0) return;
    const write = this.#writeBatch(batch)
      .catch((error: unknown) => {
        this.#flushFailure ??= error;
      })
      .finally(() => this.#inFlight.delete(write));
    this.#inFlight.add(write);
  }

  async #writeBatch(batch: WriteRequest[]): Promise<void> {
    let remaining = batch;
    for (let attempt = 1; ; attempt++) {
      const result = await this.#client.send(new BatchWriteItemCommand({ RequestItems: { [this.#table]: remaining } }));
      // The SDK returns fresh objects for unprocessed items, so they are matched back by key.
      const unprocessed = new Set((result.UnprocessedItems?.[this.#table] ?? []).map((r) => r.PutRequest?.Item?.pk?.S));
      const stillPending: WriteRequest[] = [];
      for (const request of remaining) {
        if (unprocessed.has(request.PutRequest?.Item?.pk?.S)) {
          stillPending.push(request);
          continue;
        }
        const written = this.#pendingKeys.get(request);
        this.#pendingKeys.delete(request);
        if (written?.completed) this.#cache.add(written.key, written.expiresAt);
      }
      remaining = stillPending;
      if (remaining.length === 0) return;
      if (attempt >= UNPROCESSED_RETRIES) {
        throw new IdempotencyStoreError(`${remaining.length} settlements stayed unprocessed after ${attempt} attempts`);
      }
      await sleep(backoffDelay(attempt, UNPROCESSED_BACKOFF));
    }
  }

  async flush(): Promise<void> {
    while (this.#pending.length > 0) this.#startFlush();
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
    if (this.#flushFailure !== undefined) {
      const failure = this.#flushFailure;
      this.#flushFailure = undefined;
      throw failure instanceof IdempotencyStoreError
        ? failure
        : new IdempotencyStoreError(`writing settlements failed: ${(failure as Error).message}`, { cause: failure });
    }
  }

  async release(releases: readonly Release[], owner: ClaimOwner): Promise<void> {
    const failures: unknown[] = [];
    await forEachLimited(releases, RELEASE_CONCURRENCY, async (release) => {
      try {
        await this.#client.send(
          new UpdateItemCommand({
            TableName: this.#table,
            Key: { pk: s(this.partitionKey(release.key)) },
            UpdateExpression: 'SET leaseUntil = :zero, attempts = :attempts',
            ConditionExpression: '#owner = :owner AND #status = :inProgress',
            ExpressionAttributeNames: { '#owner': 'owner', '#status': 'status' },
            ExpressionAttributeValues: {
              ':zero': n(0),
              ':attempts': n(release.attempts),
              ':owner': s(owner.requestId),
              ':inProgress': s(RecordStatus.inProgress),
            },
          }),
        );
      } catch (error) {
        // Someone else holds it now, or it was settled: either way it is not ours to end.
        if (!(error instanceof ConditionalCheckFailedException)) failures.push(error);
      }
    });
    if (failures.length > 0) {
      throw new IdempotencyStoreError(
        `${failures.length} of ${releases.length} releases failed; those leases end on their own at the invocation timeout`,
        { cause: failures[0] },
      );
    }
  }

  async transact(entries: readonly TransactEntry[], now: number, token: string): Promise<TransactOutcome[]> {
    const nowSec = Math.floor(now / 1000);
    const actions: TransactWriteItem[] = [];
    const owners: Array<{ entry: number; marker: boolean }> = [];
    entries.forEach((entry, index) => {
      for (const item of entry.items) {
        actions.push(item);
        owners.push({ entry: index, marker: false });
      }
      const values: Record<string, AttributeValue> = {
        ':nowSec': n(nowSec),
        ':now': n(now),
        ':inProgress': s(RecordStatus.inProgress),
      };
      if (entry.replay) values[':deadLettered'] = s(RecordStatus.deadLettered);
      actions.push({
        Put: {
          TableName: this.#table,
          Item: this.#settledItem(
            {
              key: entry.key,
              coordinates: entry.coordinates,
              status: RecordStatus.completed,
              attempts: 1,
              firstSeen: now,
            },
            now,
          ),
          ConditionExpression: claimCondition(entry.replay),
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: values,
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      });
      owners.push({ entry: index, marker: true });
    });

    try {
      await this.#client.send(
        new TransactWriteItemsCommand({ TransactItems: actions, ClientRequestToken: requestToken(token) }),
      );
      for (const entry of entries) this.#cache.add(entry.key, nowSec + this.#ttlSeconds);
      return entries.map(() => ({ outcome: 'committed' }));
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const reasons = error.CancellationReasons ?? [];
      const outcomes: TransactOutcome[] = entries.map(() => ({ outcome: 'cancelled' }));
      let conditionFailed = false;
      reasons.forEach((reason, index) => {
        const owner = owners[index];
        if (!owner || !reason.Code || reason.Code === 'None') return;
        if (reason.Code === 'ConditionalCheckFailed') {
          conditionFailed = true;
          if (owner.marker) {
            const status = reason.Item?.status?.S as RecordStatus | undefined;
            outcomes[owner.entry] =
              status === RecordStatus.inProgress
                ? { outcome: 'locked' }
                : { outcome: 'duplicate', status: status ?? RecordStatus.completed };
          } else if (outcomes[owner.entry]?.outcome === 'cancelled') {
            outcomes[owner.entry] = {
              outcome: 'rejected',
              reason: `a condition on ${describeAction(actions[index])} failed`,
            };
          }
        } else if (reason.Code === 'ValidationError') {
          conditionFailed = true;
          outcomes[owner.entry] = {
            outcome: 'rejected',
            reason: `invalid write: ${reason.Message ?? 'ValidationError'}`,
          };
        }
      });
      if (conditionFailed) return outcomes;
      const codes = [...new Set(reasons.map((r) => r.Code).filter((c) => c && c !== 'None'))].join(', ');
      if (reasons.some((r) => r.Code && TRANSIENT_CANCELLATION_CODES.has(r.Code))) {
        throw new TransientError(`transaction cancelled (${codes})`, { cause: error });
      }
      throw error;
    }
  }

  async recordFailedAttempt(request: ClaimRequest, now: number): Promise<number> {
    try {
      const result = await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: { pk: s(this.partitionKey(request.key)) },
          UpdateExpression: `SET #status = :inProgress, leaseUntil = :zero, expiresAt = :exp, ${RECORD_SIGHTING} ADD attempts :one`,
          // The claim's condition: never over another invocation's live lease (a dead letter being claimed).
          ConditionExpression: claimCondition(request.replay),
          ExpressionAttributeNames: {
            '#status': 'status',
            '#topic': 'topic',
            '#partition': 'partition',
            '#offset': 'offset',
          },
          ExpressionAttributeValues: { ...attemptValues(request, now, this.#ttlSeconds), ':zero': n(0) },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return num(result.Attributes?.attempts) ?? 1;
    } catch (error) {
      // Settled meanwhile by another invocation: nothing left to count.
      if (error instanceof ConditionalCheckFailedException) return 0;
      throw new IdempotencyStoreError(
        `recording a failed attempt of ${request.key} failed: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }
}

/** ClientRequestToken allows 36 characters; the same pack retried keeps the same token. */
const requestToken = (seed: string): string => createHash('sha256').update(seed).digest('base64url').slice(0, 36);

const describeAction = (action: TransactWriteItem | undefined): string => {
  const op = action?.Put ?? action?.Update ?? action?.Delete ?? action?.ConditionCheck;
  const kind = action?.Put ? 'Put' : action?.Update ? 'Update' : action?.Delete ? 'Delete' : 'ConditionCheck';
  const key = action?.Put ? undefined : (op as { Key?: Record<string, AttributeValue> } | undefined)?.Key;
  const keyText = key
    ? Object.entries(key)
        .map(([k, v]) => `${k}=${v.S ?? v.N ?? '?'}`)
        .join(',')
    : '';
  return `${kind} ${op?.TableName ?? '?'}${keyText ? ` (${keyText})` : ''}`;
};
