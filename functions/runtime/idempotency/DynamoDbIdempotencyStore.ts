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
import { ErrorKind, IdempotencyStoreError, TransactConflictError } from '../errors.ts';
import { backoffDelay, beforeDeadline, FINISH_MARGIN_MS, sleep } from '../retry.ts';
import { type CompletedKeyCache, cacheKeyOf } from './CompletedKeyCache.ts';
import {
  type ClaimOwner,
  type ClaimRequest,
  type ClaimResult,
  type Completion,
  type ConflictHolder,
  type DeadLetterDecision,
  type FailedAttempt,
  type Fingerprint,
  type IdempotencyStore,
  type Letter,
  RecordStatus,
  type Release,
  type Taken,
  type TransactEntry,
  type TransactOutcome,
  WAITING_STAGE,
} from './IdempotencyStore.ts';

export type DynamoDbIdempotencyStoreOptions = {
  client: DynamoDBClient;
  tableName: string;
  route: string;
  ttlSeconds: number;
  cache: CompletedKeyCache;
  /** How far another claimant's clock may run ahead of ours; a lease counts as lapsed only this long after it ends. */
  clockSkewMs?: number;
};

/**
 * A lease is taken over only this long after it ended by the claimant's clock, so a claimant whose clock runs ahead,
 * or a write its owner sent just before its deadline, cannot let two invocations hold one record (the route's
 * `idempotency.clockSkewMs`, whose default this is).
 */
export const CLOCK_SKEW_MS = 2_000;
/** DynamoDB's limit on a partition key; a longer idempotency key is stored by its hash. */
const MAX_PARTITION_KEY_BYTES = 2048;
/** Releases and sent-marks in flight at once; claims are bounded by the caller. */
const WRITE_CONCURRENCY = 32;
/** BatchGetItem takes at most 100 keys per call. */
const BATCH_GET_KEYS = 100;
/** BatchWriteItem takes at most 25 items per call. */
const COMPLETE_BATCH_SIZE = 25;
/** BatchExecuteStatement takes at most 25 statements per call, on distinct keys. */
const CLAIM_BATCH_SIZE = 25;
/** Tries of a background complete batch before it waits for the flush, which retries until the deadline. */
const BACKGROUND_TRIES = 4;
const COMPLETE_BACKOFF = { baseDelayMs: 25, maxDelayMs: 1_000 };
/** What an item keeps of a dead letter's error message; the envelope carries the same text. */
const MAX_LETTER_MESSAGE = 2_048;
/** The owner of a `transact` marker: no invocation holds it, so no existing item is ever "ours". */
const NO_OWNER: ClaimOwner = { requestId: '', leaseUntilMs: 0 };

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
type Item = Record<string, AttributeValue>;

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

/**
 * Claimable: absent, expired, a lapsed IN_PROGRESS lease (of a record with the same content, when the route
 * fingerprints), for a replay a DEAD_LETTERED record, and for a record from the retry queue the item PARKED at the
 * stage its message was sent for (a message of an earlier stage is stale).
 */
const claimCondition = (request: ClaimRequest): string =>
  'attribute_not_exists(pk) OR expiresAt < :nowSec OR (#status = :inProgress AND leaseUntil < :lapsed' +
  // A lapsed lease of a record the retry queue holds (it has a stage) is its message's to take again, not Kafka's.
  (request.parkStage === undefined ? ' AND attribute_not_exists(parkStage)' : ' AND parkStage = :claimStage') +
  (request.fingerprint ? ' AND (attribute_not_exists(fingerprint) OR fingerprint = :fingerprint))' : ')') +
  (request.replay ? ' OR #status = :deadLettered' : '') +
  (request.parkStage !== undefined ? ' OR (#status = :parked AND parkStage = :claimStage)' : '');

/** The values of claimCondition's clause for a record from the retry queue. */
const parkedClaimValues = (request: ClaimRequest): Item =>
  request.parkStage === undefined ? {} : { ':parked': s(RecordStatus.parked), ':claimStage': n(request.parkStage) };

/** The attributes a fingerprinting route keeps on its items, set wherever a claim or a marker is written. */
const fingerprintAttributes = (fingerprint: Fingerprint | undefined): Item =>
  fingerprint
    ? {
        fingerprint: s(fingerprint.hash),
        ...(fingerprint.fields
          ? {
              fingerprintFields: {
                M: Object.fromEntries(Object.entries(fingerprint.fields).map(([k, v]) => [k, s(v)])),
              },
            }
          : {}),
      }
    : {};

/** `SET` clauses for fingerprintAttributes, with their values under `:fingerprint` and `:fingerprintFields`. */
const setFingerprint = (fingerprint: Fingerprint | undefined): string =>
  fingerprint
    ? `, fingerprint = :fingerprint${fingerprint.fields ? ', fingerprintFields = :fingerprintFields' : ''}`
    : '';

/**
 * The record holding `item` when it carries a fingerprint other than the request's: never for an unfingerprinted
 * request or item, nor for a replay over a dead letter (a replay may carry mended content).
 */
const conflictWith = (item: Item, request: ClaimRequest | undefined): ConflictHolder | undefined => {
  const theirs = item.fingerprint?.S;
  const ours = request?.fingerprint;
  if (!ours || theirs === undefined || theirs === ours.hash) return undefined;
  if (request.replay && item.status?.S === RecordStatus.deadLettered) return undefined;
  const topic = item.topic?.S;
  const partition = num(item.partition);
  const offset = num(item.offset);
  const fields = item.fingerprintFields?.M;
  return {
    ...(topic !== undefined && partition !== undefined && offset !== undefined
      ? { coordinates: { topic, partition, offset } }
      : {}),
    ...(fields ? { fields: Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v.S ?? ''])) } : {}),
  };
};

const letterOf = (item: Item): Letter | undefined => {
  if (item.letterSent?.BOOL !== false || item.letter?.S === undefined) return undefined;
  try {
    return JSON.parse(item.letter.S) as Letter;
  } catch {
    return { kind: ErrorKind.permanent, name: 'Error', message: item.letter.S, attempts: 0, firstFailedAt: 0 };
  }
};

/**
 * A per-key item's `pk`: `<route>#<idempotencyKey>`, as DESIGN §6 fixes it; a key past DynamoDB's 2048-byte limit
 * goes by its hash. `reconcile` looks items up by the same function.
 */
export const idempotencyPartitionKey = (route: string, key: string): string => {
  const pk = `${route}#${key}`;
  if (Buffer.byteLength(pk) <= MAX_PARTITION_KEY_BYTES) return pk;
  return `${route}#sha256:${createHash('sha256').update(key).digest('hex')}`;
};

/** A claim waiting for the next batch of fresh-record inserts. */
type QueuedClaim = {
  readonly request: ClaimRequest;
  readonly owner: ClaimOwner;
  readonly now: number;
  readonly resolve: (result: ClaimResult) => void;
  readonly reject: (error: unknown) => void;
};

/** A COMPLETED marker on its way, with what the cache learns once it lands. */
type PendingComplete = { readonly request: WriteRequest; readonly key: string; readonly expiresAt: number };

export class DynamoDbIdempotencyStore implements IdempotencyStore {
  readonly #client: DynamoDBClient;
  readonly #table: string;
  readonly #route: string;
  readonly #ttlSeconds: number;
  readonly #cache: CompletedKeyCache;
  readonly #skewMs: number;
  #pending: PendingComplete[] = [];
  /** Completes whose background batch gave up; the flush retries them until its deadline. */
  #unwritten: PendingComplete[] = [];
  #lastWriteError: unknown;
  /** Completes queued and not yet written (pending, in flight or given up on). */
  #unconfirmed = 0;
  readonly #inFlight = new Set<Promise<void>>();
  #queuedClaims: QueuedClaim[] = [];
  /** The queued claims by key, so a second claim on a key in the same window never reaches DynamoDB. */
  readonly #windowClaims = new Map<
    string,
    { request: ClaimRequest; owner: ClaimOwner; result: Promise<ClaimResult> }
  >();
  /** The PartiQL insert per set of attributes (a fingerprinting route's items carry one or two more). */
  readonly #insertStatements = new Map<string, string>();

  constructor(options: DynamoDbIdempotencyStoreOptions) {
    this.#client = options.client;
    this.#table = options.tableName;
    this.#route = options.route;
    this.#ttlSeconds = options.ttlSeconds;
    this.#cache = options.cache;
    this.#skewMs = options.clockSkewMs ?? CLOCK_SKEW_MS;
  }

  partitionKey(key: string): string {
    return idempotencyPartitionKey(this.#route, key);
  }

  /** The values every write that claims or counts an attempt shares, `claimCondition`'s among them. */
  #attemptValues(request: ClaimRequest, now: number): Item {
    const nowSec = Math.floor(now / 1000);
    const { topic, partition, offset } = request.coordinates;
    return {
      ':inProgress': s(RecordStatus.inProgress),
      ':exp': n(nowSec + this.#ttlSeconds),
      ':now': n(now),
      ':nowSec': n(nowSec),
      ':lapsed': n(now - this.#skewMs),
      ':topic': s(topic),
      ':partition': n(partition),
      ':offset': n(offset),
      ...(request.replay ? { ':deadLettered': s(RecordStatus.deadLettered) } : {}),
      ...parkedClaimValues(request),
      ...(request.fingerprint ? { ':fingerprint': s(request.fingerprint.hash) } : {}),
      ...(request.fingerprint?.fields
        ? { ':fingerprintFields': fingerprintAttributes(request.fingerprint).fingerprintFields as AttributeValue }
        : {}),
    };
  }

  /**
   * Most records are new to the table, so claims made in the same turn of the event loop are first tried as plain
   * PartiQL inserts, 25 to a BatchExecuteStatement: one request instead of 25, and a tenth of the client CPU. An
   * insert fails only when the item exists; those keys are read together, and a key the read shows claimable
   * (expired, a lapsed lease) runs alone as the conditional update, which also serves a lone claim and a replay.
   */
  claim(request: ClaimRequest, owner: ClaimOwner, now: number): Promise<ClaimResult> {
    // Neither is new to the table, so neither tries the batched insert.
    if (request.replay || request.parkStage !== undefined) return this.#claimOne(request, owner, now);
    // A second claim on a key in the same window waits for the first: whoever wins holds it.
    const first = this.#windowClaims.get(request.key);
    if (first) {
      const sameContent = first.request.fingerprint?.hash === request.fingerprint?.hash;
      return first.result.then((result): ClaimResult | Promise<ClaimResult> => {
        if (result.outcome !== 'claimed') return sameContent ? result : this.#claimOne(request, owner, now);
        if (sameContent)
          return {
            outcome: 'locked',
            owner: first.owner.requestId,
            retryAtMs: first.owner.leaseUntilMs + this.#skewMs,
          };
        const fields = first.request.fingerprint?.fields;
        return { outcome: 'conflict', holder: { coordinates: first.request.coordinates, ...(fields && { fields }) } };
      });
    }
    const result = new Promise<ClaimResult>((resolve, reject) => {
      // setImmediate, not a microtask: the claims that finished requests start one by one as microtasks.
      if (this.#queuedClaims.push({ request, owner, now, resolve, reject }) === 1)
        setImmediate(() => this.#sendQueuedClaims());
    });
    this.#windowClaims.set(request.key, { request, owner, result });
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
          Statements: chunk.map(({ request, owner, now }) => this.#insert(request, owner, now)),
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
    let items: Map<string | undefined, Item>;
    try {
      const result = await this.#client.send(
        new BatchGetItemCommand({
          RequestItems: {
            [this.#table]: {
              Keys: claims.map(({ request }) => ({ pk: s(this.partitionKey(request.key)) })),
              ConsistentRead: true,
              ProjectionExpression:
                'pk, #status, #owner, leaseUntil, expiresAt, attempts, firstSeen, letter, letterSent, parkStage, ' +
                'fingerprint, fingerprintFields, #topic, #partition, #offset',
              ExpressionAttributeNames: NAMES,
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
      // Unprocessed keys come back missing from the map, and go the update path like any claimable key.
      if (item && !this.#claimable(item, claim.now, claim.request))
        claim.resolve(this.#taken(item, claim.owner, claim.now, claim.request));
      else this.#claimOne(claim.request, claim.owner, claim.now).then(claim.resolve, claim.reject);
    }
  }

  /** `claimCondition` for an item already read (replays never come this way). */
  #claimable(item: Item, now: number, request: ClaimRequest): boolean {
    if ((num(item.expiresAt) ?? 0) < Math.floor(now / 1000)) return true;
    if (conflictWith(item, request) || item.parkStage !== undefined) return false;
    return item.status?.S === RecordStatus.inProgress && (num(item.leaseUntil) ?? 0) < now - this.#skewMs;
  }

  #rejectAll(claims: readonly QueuedClaim[], error: unknown, step = ''): void {
    const reason = `failed${step} (in a batch of ${claims.length}): ${(error as Error).message}`;
    for (const { request, reject } of claims)
      reject(new IdempotencyStoreError(`claim of ${request.key} ${reason}`, { cause: error }));
  }

  /** A fresh claim's item as a PartiQL insert: what the conditional update writes on an absent key. */
  #insert(request: ClaimRequest, owner: ClaimOwner, now: number): { Statement: string; Parameters: AttributeValue[] } {
    const fingerprint = Object.entries(fingerprintAttributes(request.fingerprint));
    const names = [...INSERTED_ATTRIBUTES, ...fingerprint.map(([name]) => name)];
    const shape = names.join(',');
    let statement = this.#insertStatements.get(shape);
    if (!statement) {
      statement = `INSERT INTO "${this.#table}" VALUE {${names.map((name) => `'${name}': ?`).join(', ')}}`;
      this.#insertStatements.set(shape, statement);
    }
    return {
      Statement: statement,
      Parameters: [...this.#insertedValues(request, owner, now), ...fingerprint.map(([, value]) => value)],
    };
  }

  /** A fresh claim's values, in INSERTED_ATTRIBUTES order. */
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
    try {
      const result = await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: { pk: s(this.partitionKey(request.key)) },
          UpdateExpression: `SET #status = :inProgress, leaseUntil = :lease, #owner = :owner, expiresAt = :exp, ${RECORD_SIGHTING}${setFingerprint(request.fingerprint)} ADD attempts :one`,
          ConditionExpression: claimCondition(request),
          ExpressionAttributeNames: NAMES,
          ExpressionAttributeValues: {
            ...this.#attemptValues(request, now),
            ':lease': n(owner.leaseUntilMs),
            ':owner': s(owner.requestId),
            ':one': n(1),
          },
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
      if (error instanceof ConditionalCheckFailedException) return this.#taken(error.Item, owner, now, request);
      throw new IdempotencyStoreError(`claim of ${request.key} failed: ${(error as Error).message}`, { cause: error });
    }
  }

  /** What an existing, unclaimable item means to `owner` and the record `request` names. */
  #taken(item: Item | undefined, owner: ClaimOwner, now: number, request: ClaimRequest): ClaimResult {
    const holder = item && conflictWith(item, request);
    if (holder) return { outcome: 'conflict', holder };
    const status = item?.status?.S;
    if (!item || status === RecordStatus.completed) return { outcome: 'completed' };
    const lessee = item.owner?.S ?? 'unknown';
    const retryAtMs = (num(item.leaseUntil) ?? 0) + this.#skewMs;
    // Being run from the retry queue: settled as far as its partition is concerned.
    if (status === RecordStatus.inProgress && item.parkStage !== undefined && request.parkStage === undefined)
      return { outcome: 'parked', stage: num(item.parkStage) ?? 0 };
    if (status === RecordStatus.deadLettered || status === RecordStatus.parked) {
      const unsent = letterOf(item);
      const settled: Taken =
        status === RecordStatus.parked
          ? { outcome: 'parked', stage: num(item.parkStage) ?? 0, ...(unsent && { unsent }) }
          : { outcome: 'dead-lettered', ...(unsent && { unsent }) };
      // Its decider may be sending it right now; after its lease, anyone re-sends it.
      if (unsent && lessee !== owner.requestId && retryAtMs > now)
        return { outcome: 'locked', retryAtMs, owner: lessee };
      return settled;
    }
    // Our own live claim: a retried request whose first answer was lost. Waiting on ourselves would stall the
    // partition until our own timeout; the caller claims each key once per invocation, so it is ours to process.
    if (lessee === owner.requestId) {
      return { outcome: 'claimed', attempts: num(item.attempts) ?? 1, firstSeen: num(item.firstSeen) ?? now };
    }
    return { outcome: 'locked', retryAtMs, owner: lessee };
  }

  /** `#taken` where the item cannot be our own live claim (we never hold one there); if it is, it is busy. */
  #takenBy(item: Item | undefined, owner: ClaimOwner, now: number, request: ClaimRequest): Taken {
    const taken = this.#taken(item, owner, now, request);
    return taken.outcome === 'claimed' ? { outcome: 'locked', retryAtMs: now, owner: owner.requestId } : taken;
  }

  /** A COMPLETED item: what a complete and a `transact` marker write. */
  #completedItem(completion: Completion, now: number): Item {
    const { topic, partition, offset } = completion.coordinates;
    return {
      pk: s(this.partitionKey(completion.key)),
      status: s(RecordStatus.completed),
      attempts: n(completion.attempts),
      firstSeen: n(completion.firstSeen),
      settledAt: n(now),
      expiresAt: n(Math.floor(now / 1000) + this.#ttlSeconds),
      topic: s(topic),
      partition: n(partition),
      offset: n(offset),
      ...fingerprintAttributes(completion.fingerprint),
    };
  }

  complete(completion: Completion): void {
    const item = this.#completedItem(completion, Date.now());
    this.#unconfirmed += 1;
    this.#pending.push({
      request: { PutRequest: { Item: item } },
      key: cacheKeyOf(completion),
      expiresAt: Number(item.expiresAt?.N),
    });
    if (this.#pending.length >= COMPLETE_BATCH_SIZE) this.#startWrite(this.#pending.splice(0, COMPLETE_BATCH_SIZE));
  }

  /** Writes a batch in the background; what it cannot write within its tries waits for the flush. */
  #startWrite(batch: PendingComplete[], deadlineMs?: number): void {
    const write = this.#writeBatch(batch, deadlineMs)
      .then((unwritten) => {
        this.#unwritten.push(...unwritten);
      })
      .finally(() => this.#inFlight.delete(write));
    this.#inFlight.add(write);
  }

  /** Retries unprocessed items and failed requests, up to BACKGROUND_TRIES or until `deadlineMs`; returns the rest. */
  async #writeBatch(batch: PendingComplete[], deadlineMs?: number): Promise<PendingComplete[]> {
    let remaining = batch;
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.#client.send(
          new BatchWriteItemCommand({ RequestItems: { [this.#table]: remaining.map((p) => p.request) } }),
        );
        // The SDK returns fresh objects for unprocessed items, so they are matched back by key.
        const unprocessed = new Set(
          (result.UnprocessedItems?.[this.#table] ?? []).map((r) => r.PutRequest?.Item?.pk?.S),
        );
        const stillPending: PendingComplete[] = [];
        for (const pending of remaining) {
          if (unprocessed.has(pending.request.PutRequest?.Item?.pk?.S)) stillPending.push(pending);
          else this.#cache.add(pending.key, pending.expiresAt);
        }
        this.#unconfirmed -= remaining.length - stillPending.length;
        remaining = stillPending;
        if (remaining.length === 0) return [];
        this.#lastWriteError = new Error(`${remaining.length} items came back unprocessed`);
      } catch (error) {
        this.#lastWriteError = error;
      }
      const delay = backoffDelay(attempt, COMPLETE_BACKOFF);
      const outOfTries = deadlineMs === undefined ? attempt >= BACKGROUND_TRIES : Date.now() + delay >= deadlineMs;
      if (outOfTries) return remaining;
      await sleep(delay);
    }
  }

  unconfirmedCompletes(): number {
    return this.#unconfirmed;
  }

  async settleCompletes(deadlineMs: number, below: number): Promise<boolean> {
    while (this.#unconfirmed >= below) {
      if (Date.now() >= deadlineMs) return false;
      // What earlier tries gave up on goes out again, retried to the deadline; a part-filled batch only when nothing
      // else is on its way, so backpressure does not split batches.
      const retry = this.#unwritten.splice(0);
      if (retry.length === 0 && this.#inFlight.size === 0) retry.push(...this.#pending.splice(0));
      this.#startWrites(retry, deadlineMs);
      if (this.#inFlight.size === 0) break;
      // Writes started without a deadline (in the background) may outlast ours: stop waiting for them at it.
      const landed = await beforeDeadline(deadlineMs, () => Promise.race(this.#inFlight)).then(
        () => true,
        () => false,
      );
      if (!landed) break;
    }
    return this.#unconfirmed < below;
  }

  #startWrites(completes: PendingComplete[], deadlineMs?: number): void {
    for (let start = 0; start < completes.length; start += COMPLETE_BATCH_SIZE)
      this.#startWrite(completes.slice(start, start + COMPLETE_BATCH_SIZE), deadlineMs);
  }

  /** A complete that never lands makes its record run again once its lease lapses, so this retries to the deadline. */
  async flush(deadlineMs: number): Promise<void> {
    this.#startWrites(this.#pending.splice(0), deadlineMs);
    if (await this.settleCompletes(deadlineMs, 1)) return;
    throw new IdempotencyStoreError(
      `${this.#unconfirmed} completes were not written before the deadline: ${(this.#lastWriteError as Error)?.message}`,
      { cause: this.#lastWriteError },
    );
  }

  decideDeadLetter(request: ClaimRequest, letter: Letter, owner: ClaimOwner, now: number): Promise<DeadLetterDecision> {
    // `free` comes only for a record parked behind another.
    return this.#decide(RecordStatus.deadLettered, request, letter, owner, now) as Promise<DeadLetterDecision>;
  }

  decidePark(
    request: ClaimRequest,
    letter: Letter,
    owner: ClaimOwner,
    now: number,
    line?: string,
  ): Promise<DeadLetterDecision | { outcome: 'occupied' }> {
    const queue = line === undefined ? undefined : { line };
    return this.#decide(RecordStatus.parked, request, letter, owner, now, queue) as Promise<
      DeadLetterDecision | { outcome: 'occupied' }
    >;
  }

  parkBehind(
    request: ClaimRequest,
    letter: Letter,
    envelope: string,
    line: string,
    owner: ClaimOwner,
    now: number,
  ): Promise<DeadLetterDecision | { outcome: 'free' }> {
    return this.#decide(RecordStatus.parked, request, letter, owner, now, { line, envelope }) as Promise<
      DeadLetterDecision | { outcome: 'free' }
    >;
  }

  /**
   * A decision whose letter is sent next: DEAD_LETTERED, or PARKED at the letter's stage. With `queue`, a keyed
   * record's line (`ordering: 'key'`) changes in the same transaction: a record parked first joins its key's line
   * (starting it); one parked behind another (`envelope`, kept on its item until its turn) joins only a line that
   * still has someone in it, else it is `free` to run.
   */
  async #decide(
    status: typeof RecordStatus.deadLettered | typeof RecordStatus.parked,
    request: ClaimRequest,
    letter: Letter,
    owner: ClaimOwner,
    now: number,
    queue?: { line: string; envelope?: string },
  ): Promise<DeadLetterDecision | { outcome: 'free' | 'occupied' }> {
    const letterText = JSON.stringify({ ...letter, message: letter.message.slice(0, MAX_LETTER_MESSAGE) });
    const stage = status === RecordStatus.parked ? (letter.parked?.stage ?? 0) : undefined;
    const behind = queue?.envelope !== undefined;
    const update = {
      TableName: this.#table,
      Key: { pk: s(this.partitionKey(request.key)) },
      UpdateExpression:
        'SET #status = :decided, letter = :letter, letterSent = :sent, #owner = :owner, leaseUntil = :lease, ' +
        'attempts = :attempts, expiresAt = :exp, settledAt = :now, ' +
        `firstSeen = if_not_exists(firstSeen, :firstSeen), #topic = :topic, #partition = :partition, #offset = :offset${setFingerprint(request.fingerprint)}` +
        (stage === undefined ? '' : ', parkStage = :newStage') +
        (behind ? ', envelope = :envelope' : ''),
      // Over our own claim, or what anyone could claim; never over a COMPLETED marker or a live lease.
      ConditionExpression: `(#owner = :owner AND #status = :inProgress) OR ${claimCondition(request)}`,
      ExpressionAttributeNames: NAMES,
      ExpressionAttributeValues: {
        ...this.#attemptValues(request, now),
        ':decided': s(status),
        ':letter': s(letterText),
        // Behind another, there is nothing to send until its turn.
        ':sent': { BOOL: behind },
        ':owner': s(owner.requestId),
        ':lease': n(behind ? 0 : owner.leaseUntilMs),
        ':attempts': n(letter.attempts),
        ':firstSeen': n(letter.firstFailedAt),
        ...(stage === undefined ? {} : { ':newStage': n(stage) }),
        ...(behind ? { ':envelope': s(queue.envelope as string) } : {}),
      },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
    };
    const what = status === RecordStatus.parked ? 'park' : 'dead-letter';
    try {
      if (!queue) await this.#client.send(new UpdateItemCommand(update));
      else {
        await this.#client.send(
          new TransactWriteItemsCommand({
            TransactItems: [{ Update: update }, { Update: this.#lineUpdate(queue.line, request.key, behind, now) }],
            ClientRequestToken: requestToken(`${this.#table}:${owner.requestId}:${what}:${request.key}:${stage}`),
          }),
        );
      }
      return { outcome: 'decided' };
    } catch (error) {
      let item: Item | undefined;
      if (error instanceof ConditionalCheckFailedException) item = error.Item;
      else if (error instanceof TransactionCanceledException) {
        const [itemReason, lineReason] = error.CancellationReasons ?? [];
        if (itemReason?.Code === 'ConditionalCheckFailed') item = itemReason.Item;
        else if (lineReason?.Code === 'ConditionalCheckFailed') return { outcome: behind ? 'free' : 'occupied' };
        else
          throw new IdempotencyStoreError(`deciding to ${what} ${request.key} failed: ${error.message}`, {
            cause: error,
          });
      } else
        throw new IdempotencyStoreError(`deciding to ${what} ${request.key} failed: ${(error as Error).message}`, {
          cause: error,
        });
      // Our own decision, written by a request whose answer was lost and then retried.
      const ours =
        item?.status?.S === status &&
        item.owner?.S === owner.requestId &&
        (behind || letterOf(item) !== undefined) &&
        (stage === undefined || num(item.parkStage) === stage);
      if (ours) return { outcome: 'decided' };
      return this.#takenBy(item, owner, now, request);
    }
  }

  /**
   * Joins `key` to a Kafka key's line of parked records: at its head only while nobody is in it (an invocation that
   * had not seen the line parks behind instead), behind others only while someone is.
   */
  #lineUpdate(line: string, key: string, behind: boolean, now: number) {
    return {
      TableName: this.#table,
      Key: { pk: s(this.partitionKey(line)) },
      UpdateExpression: behind
        ? 'SET waiting = list_append(waiting, :me), expiresAt = :exp'
        : 'SET waiting = :me, expiresAt = :exp',
      ConditionExpression: behind ? 'size(waiting) > :zero' : 'attribute_not_exists(waiting) OR size(waiting) = :zero',
      ExpressionAttributeValues: {
        ':me': { L: [s(key)] },
        ':exp': n(Math.floor(now / 1000) + this.#ttlSeconds),
        ':zero': n(0),
      },
    };
  }

  async parkedLines(lines: readonly string[]): Promise<Set<string>> {
    const waiting = new Set<string>();
    for (let start = 0; start < lines.length; start += BATCH_GET_KEYS) {
      let keys = lines.slice(start, start + BATCH_GET_KEYS).map((line) => ({ pk: s(this.partitionKey(line)) }));
      for (let attempt = 1; keys.length > 0; attempt++) {
        const result = await this.#client.send(
          new BatchGetItemCommand({
            RequestItems: { [this.#table]: { Keys: keys, ConsistentRead: true, ProjectionExpression: 'pk, waiting' } },
          }),
        );
        for (const item of result.Responses?.[this.#table] ?? [])
          if ((item.waiting?.L?.length ?? 0) > 0 && item.pk?.S) waiting.add(item.pk.S);
        keys = (result.UnprocessedKeys?.[this.#table]?.Keys ?? []) as typeof keys;
        if (keys.length > 0) await sleep(backoffDelay(attempt, COMPLETE_BACKOFF));
      }
    }
    return new Set(lines.filter((line) => waiting.has(this.partitionKey(line))));
  }

  async nextInLine(
    line: string,
    settled: string,
  ): Promise<{ key: string; envelope: string } | 'not-first' | 'not-settled' | undefined> {
    const read = async (keys: string[]): Promise<Map<string | undefined, Item>> => {
      const result = await this.#client.send(
        new BatchGetItemCommand({
          RequestItems: {
            [this.#table]: { Keys: keys.map((key) => ({ pk: s(this.partitionKey(key)) })), ConsistentRead: true },
          },
        }),
      );
      if ((result.UnprocessedKeys?.[this.#table]?.Keys?.length ?? 0) > 0)
        throw new Error('the read came back unprocessed');
      return new Map((result.Responses?.[this.#table] ?? []).map((item) => [item.pk?.S, item]));
    };
    try {
      const items = await read([line, settled]);
      const waiting = items.get(this.partitionKey(line))?.waiting?.L ?? [];
      if (waiting[0]?.S !== settled) return 'not-first';
      const status = items.get(this.partitionKey(settled))?.status?.S;
      if (status !== RecordStatus.completed && status !== RecordStatus.deadLettered) return 'not-settled';
      const next = waiting[1]?.S;
      if (next === undefined) return undefined;
      const envelope = (await read([next])).get(this.partitionKey(next))?.envelope?.S;
      if (envelope === undefined) throw new Error(`${next}, next in line, has no parked envelope`);
      return { key: next, envelope };
    } catch (error) {
      throw new IdempotencyStoreError(`reading the line after ${settled} failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  async leaveLine(line: string, settled: string, next: string | undefined): Promise<void> {
    const leave = {
      TableName: this.#table,
      Key: { pk: s(this.partitionKey(line)) },
      UpdateExpression: 'REMOVE waiting[0]',
      ConditionExpression: 'waiting[0] = :settled',
      ExpressionAttributeValues: { ':settled': s(settled) },
    };
    try {
      if (next === undefined) await this.#client.send(new UpdateItemCommand(leave));
      else {
        // The next record's message is on its way at stage 0: its item waits for it there, and no longer needs the envelope.
        const release = {
          TableName: this.#table,
          Key: { pk: s(this.partitionKey(next)) },
          UpdateExpression: 'SET parkStage = :first REMOVE envelope',
          ConditionExpression: '#status = :parked AND parkStage = :waiting',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':parked': s(RecordStatus.parked),
            ':waiting': n(WAITING_STAGE),
            ':first': n(0),
          },
        };
        await this.#client.send(
          new TransactWriteItemsCommand({
            TransactItems: [{ Update: leave }, { Update: release }],
            // Tokens are the account's, not the table's: the pks (route included) and the table make it ours alone.
            ClientRequestToken: requestToken(`leave:${this.#table}:${this.partitionKey(line)}:${settled}`),
          }),
        );
      }
    } catch (error) {
      // Left already: a retry whose first answer was lost, or a repeated message of the settled record.
      if (error instanceof ConditionalCheckFailedException) return;
      if (
        error instanceof TransactionCanceledException &&
        error.CancellationReasons?.[0]?.Code === 'ConditionalCheckFailed'
      )
        return;
      throw new IdempotencyStoreError(`leaving the line of ${settled} failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  async markSent(key: string, parkStage?: number): Promise<void> {
    try {
      await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: { pk: s(this.partitionKey(key)) },
          UpdateExpression: 'SET letterSent = :true',
          ConditionExpression:
            parkStage === undefined ? '#status = :decided' : '#status = :decided AND parkStage = :stage',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':true': { BOOL: true },
            ...(parkStage === undefined
              ? { ':decided': s(RecordStatus.deadLettered) }
              : { ':decided': s(RecordStatus.parked), ':stage': n(parkStage) }),
          },
        }),
      );
    } catch (error) {
      // Replayed, retried from the queue or expired since: nothing left to mark.
      if (error instanceof ConditionalCheckFailedException) return;
      throw new IdempotencyStoreError(`marking the letter of ${key} sent failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  async release(releases: readonly Release[], owner: ClaimOwner): Promise<void> {
    const failures: unknown[] = [];
    // Past this, the invocation returns and the leases end on their own: a release never makes it time out.
    const deadlineMs = owner.leaseUntilMs - FINISH_MARGIN_MS;
    await forEachLimited(releases, WRITE_CONCURRENCY, async (release) => {
      try {
        const command = new UpdateItemCommand({
          TableName: this.#table,
          Key: { pk: s(this.partitionKey(release.key)) },
          UpdateExpression:
            release.attempts === undefined
              ? 'SET leaseUntil = :zero ADD attempts :minusOne'
              : 'SET leaseUntil = :zero, attempts = :attempts',
          // Our lease exactly, on our claim or on a letter we decided but could not send: a retried release
          // whose first answer was lost finds it ended and refunds nothing.
          ConditionExpression:
            '#owner = :owner AND leaseUntil = :lease AND (#status = :inProgress OR #status = :deadLettered OR #status = :parked)',
          ExpressionAttributeNames: { '#owner': 'owner', '#status': 'status' },
          ExpressionAttributeValues: {
            ':zero': n(0),
            ':owner': s(owner.requestId),
            ':lease': n(owner.leaseUntilMs),
            ':inProgress': s(RecordStatus.inProgress),
            ':deadLettered': s(RecordStatus.deadLettered),
            ':parked': s(RecordStatus.parked),
            ...(release.attempts === undefined ? { ':minusOne': n(-1) } : { ':attempts': n(release.attempts) }),
          },
        });
        await beforeDeadline(deadlineMs, (abortSignal) => this.#client.send(command, { abortSignal }));
      } catch (error) {
        // Someone else holds it now, it was settled, or it was never ours: either way it is not ours to end.
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

  async transact(
    entries: readonly TransactEntry[],
    now: number,
    token: string,
    watermark?: TransactWatermark,
  ): Promise<TransactOutcome[]> {
    const actions: TransactWriteItem[] = [];
    const owners: Array<{ entry: number; marker: boolean }> = [];
    entries.forEach((entry, index) => {
      for (const item of entry.items) {
        actions.push(item);
        owners.push({ entry: index, marker: false });
      }
      if (watermark?.markerless.has(index)) return;
      const values = this.#attemptValues(entry, now);
      actions.push({
        Put: {
          TableName: this.#table,
          Item: this.#completedItem({ ...entry, attempts: 1, firstSeen: now }, now),
          ConditionExpression: claimCondition(entry),
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':nowSec': values[':nowSec'] as AttributeValue,
            ':lapsed': values[':lapsed'] as AttributeValue,
            ':inProgress': values[':inProgress'] as AttributeValue,
            ...(entry.replay ? { ':deadLettered': values[':deadLettered'] as AttributeValue } : {}),
            ...parkedClaimValues(entry),
            ...(entry.fingerprint ? { ':fingerprint': values[':fingerprint'] as AttributeValue } : {}),
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      });
      owners.push({ entry: index, marker: true });
    });
    if (watermark) actions.push(watermark.action);

    try {
      await this.#client.send(
        new TransactWriteItemsCommand({ TransactItems: actions, ClientRequestToken: requestToken(token) }),
      );
      for (const entry of entries) this.#cache.add(cacheKeyOf(entry), Math.floor(now / 1000) + this.#ttlSeconds);
      return entries.map(() => ({ outcome: 'committed' }));
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const reasons = error.CancellationReasons ?? [];
      const outcomes: TransactOutcome[] = entries.map(() => ({ outcome: 'cancelled' }));
      let decided = false;
      let conflicted: number | undefined;
      reasons.forEach((reason, index) => {
        if (watermark && index === owners.length && reason.Code === 'ConditionalCheckFailed') {
          // The watermark's verdict (the pack landed before, or the partition has another owner) outranks the
          // route's own conditions, as the marker's does.
          decided = true;
          for (const entry of watermark.markerless) outcomes[entry] = watermark.refused(reason.Item, entry);
          return;
        }
        const owner = owners[index];
        if (!owner || !reason.Code || reason.Code === 'None') return;
        // The marker's verdict (settled or held elsewhere) outranks the route's own conditions on a retried pack.
        const taken = outcomes[owner.entry]?.outcome === 'taken';
        if (reason.Code === 'ConditionalCheckFailed') {
          decided = true;
          if (owner.marker) {
            const entry = entries[owner.entry] as TransactEntry;
            outcomes[owner.entry] = { outcome: 'taken', taken: this.#takenBy(reason.Item, NO_OWNER, now, entry) };
          } else if (!taken) {
            outcomes[owner.entry] = {
              outcome: 'rejected',
              reason: `a condition on ${describeAction(actions[index])} failed`,
            };
          }
        } else if (reason.Code === 'ValidationError') {
          decided = true;
          if (!taken)
            outcomes[owner.entry] = {
              outcome: 'rejected',
              reason: `invalid write: ${reason.Message ?? 'ValidationError'}`,
            };
        } else if (TRANSIENT_CANCELLATION_CODES.has(reason.Code)) {
          conflicted ??= owner.entry;
        }
      });
      if (decided) return outcomes;
      const codes = [...new Set(reasons.map((r) => r.Code).filter((c) => c && c !== 'None'))].join(', ');
      if (conflicted !== undefined || reasons.length === 0) {
        throw new TransactConflictError(`transaction cancelled (${codes || 'no reasons'})`, conflicted, {
          cause: error,
        });
      }
      throw error;
    }
  }

  async recordFailedAttempt(request: ClaimRequest, owner: ClaimOwner, now: number): Promise<FailedAttempt> {
    try {
      const result = await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: { pk: s(this.partitionKey(request.key)) },
          UpdateExpression: `SET #status = :inProgress, leaseUntil = :zero, #owner = :owner, expiresAt = :exp, ${RECORD_SIGHTING}${setFingerprint(request.fingerprint)} ADD attempts :one`,
          // The claim's condition: never over another invocation's live lease (a dead letter being decided).
          ConditionExpression: claimCondition(request),
          ExpressionAttributeNames: NAMES,
          ExpressionAttributeValues: {
            ...this.#attemptValues(request, now),
            ':zero': n(0),
            ':one': n(1),
            ':owner': s(owner.requestId),
          },
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { outcome: 'counted', attempts: num(result.Attributes?.attempts) ?? 1 };
    } catch (error) {
      // Settled (or held) elsewhere: the caller treats the record as a claim that found it so.
      if (error instanceof ConditionalCheckFailedException) return this.#takenBy(error.Item, owner, now, request);
      throw new IdempotencyStoreError(
        `recording a failed attempt of ${request.key} failed: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }
}

/**
 * The watermark strategy's part of a `transact` pack: the entries in `markerless` carry no marker of their own, and
 * `action` (the conditioned update of their partition's watermark) commits them instead. `refused` turns the item
 * its failed condition found into each markerless entry's outcome.
 */
export type TransactWatermark = {
  readonly markerless: ReadonlySet<number>;
  readonly action: TransactWriteItem;
  readonly refused: (item: Record<string, AttributeValue> | undefined, entry: number) => TransactOutcome;
};

/** ClientRequestToken allows 36 characters; the same pack retried keeps the same token. */
const requestToken = (seed: string): string => createHash('sha256').update(seed).digest('base64url').slice(0, 36);

const describeAction = (action: TransactWriteItem | undefined): string => {
  const op = action?.Put ?? action?.Update ?? action?.Delete ?? action?.ConditionCheck;
  const kind = action?.Put ? 'Put' : action?.Update ? 'Update' : action?.Delete ? 'Delete' : 'ConditionCheck';
  const key = action?.Put ? undefined : (op as { Key?: Item } | undefined)?.Key;
  const keyText = key
    ? Object.entries(key)
        .map(([k, v]) => `${k}=${v.S ?? v.N ?? '?'}`)
        .join(',')
    : '';
  return `${kind} ${op?.TableName ?? '?'}${keyText ? ` (${keyText})` : ''}`;
};
