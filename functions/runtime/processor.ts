import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import type { Classification } from './classify.ts';
import { Limiter } from './concurrency.ts';
import type { DeadLetterSink } from './deadLetter/DeadLetterSink.ts';
import { buildEnvelope, type DeadLetterSource } from './deadLetter/envelope.ts';
import { base64ToBuffer, decodeWith, type KafkaRecord, RecordHeaders, type ValueSpec } from './decode.ts';
import {
  BatchFailedError,
  ErrorKind,
  formatCoordinates,
  InvalidEventError,
  PermanentError,
  type RecordCoordinates,
  RecordLockedError,
  RecordProcessingError,
} from './errors.ts';
import { type KafkaBatchResponse, KafkaEvent, type WireRecord } from './event.ts';
import type { CompletedKeyCache } from './idempotency/CompletedKeyCache.ts';
import type {
  ClaimOwner,
  ClaimResult,
  IdempotencyStore,
  Release,
  TransactEntry,
  TransactOutcome,
} from './idempotency/IdempotencyStore.ts';
import { RecordStatus } from './idempotency/IdempotencyStore.ts';
import { emptySamples, emptySummary, type InvocationSamples, type InvocationSummary } from './observability.ts';
import { backoffDelay, retryFits, sleep } from './retry.ts';
import type { RouteSettings } from './settings.ts';

/** The header `replay` adds to a republished record: the original `topic-partition@offset`. */
export const REPLAY_HEADER = 'x-bridge-replay-of';
/** TransactWriteItems takes at most 100 actions. */
export const MAX_TRANSACT_ACTIONS = 100;

/** What `process` and `transact` receive beside the record. */
export type RecordContext = {
  readonly route: string;
  readonly requestId: string;
  /** 1 for the first attempt, counted across redeliveries. */
  readonly attempt: number;
  readonly remainingTimeMs: () => number;
  /** Adds to a route-defined count, published as a metric with the route's dimension. */
  readonly count: (metricName: string, value?: number) => void;
};

export type ProcessFn<V, K> = (record: KafkaRecord<V, K>, context: RecordContext) => Promise<void>;
export type TransactFn<V, K> = (
  record: KafkaRecord<V, K>,
  context: RecordContext,
) => readonly TransactWriteItem[] | Promise<readonly TransactWriteItem[]>;

/** A route, as the processor sees it: no middy, no environment. */
export type RouteDefinition<V, K> = {
  readonly route: string;
  readonly value: ValueSpec<V>;
  readonly key?: ValueSpec<K>;
  readonly idempotencyKey?: (record: KafkaRecord<V, K>) => string;
  readonly classify: (error: unknown) => Classification;
  /** 'skip' (the default) counts tombstones and moves on; 'process' hands them over with `value: null`. */
  readonly tombstones: 'skip' | 'process';
  readonly work:
    | { readonly mode: 'process'; readonly process: ProcessFn<V, K> }
    | { readonly mode: 'transact'; readonly transact: TransactFn<V, K> };
};

/** The parts of the Lambda context the processor uses. */
export type Invocation = {
  readonly awsRequestId: string;
  readonly getRemainingTimeInMillis: () => number;
};

export type InvocationDeps = {
  readonly store: IdempotencyStore;
  readonly sink: DeadLetterSink;
  readonly cache: CompletedKeyCache;
  readonly settings: RouteSettings;
  readonly now?: () => number;
  /** The jitter source; tests pin it to check the backoff curve. */
  readonly random?: () => number;
};

export type BatchResult = {
  /** The partial batch response, for provisioned-mode routes that report item failures. */
  readonly response?: KafkaBatchResponse;
  /** Set when the batch must be re-delivered; the adapter throws it in on-demand mode. */
  readonly error?: BatchFailedError;
  readonly summary: InvocationSummary;
  readonly samples: InvocationSamples;
  readonly failures: readonly RecordProcessingError[];
  /** The records sent to the dead-letter queue in this invocation. */
  readonly deadLetters: readonly RecordProcessingError[];
};

/** One record of the batch, decoded once. */
type Prepared<V, K> = {
  readonly wire: WireRecord;
  readonly coordinates: RecordCoordinates;
  readonly key: string;
  readonly replay: boolean;
  readonly record?: KafkaRecord<V, K>;
  readonly decodeError?: PermanentError;
  readonly tombstone: boolean;
  /** The same idempotency key appeared earlier in this batch. */
  duplicateInBatch: boolean;
};

type PartitionFailure = { offset: number; error: RecordProcessingError };

const byOffset = (a: { offset: number }, b: { offset: number }) => a.offset - b.offset;

/**
 * Runs one Kafka batch for one route: decode, dedupe, process in partition order,
 * settle, dead-letter. Framework-free: the middy adapter and the tests call it alike.
 */
export class BatchProcessor<V, K> {
  readonly #route: RouteDefinition<V, K>;

  constructor(route: RouteDefinition<V, K>) {
    this.#route = route;
  }

  async run(event: unknown, invocation: Invocation, deps: InvocationDeps): Promise<BatchResult> {
    const run = new BatchRun(this.#route, invocation, deps);
    return run.execute(event);
  }
}

class BatchRun<V, K> {
  readonly #route: RouteDefinition<V, K>;
  readonly #invocation: Invocation;
  readonly #deps: InvocationDeps;
  readonly #settings: RouteSettings;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #started: number;
  readonly #owner: ClaimOwner;
  readonly summary = emptySummary();
  readonly samples = emptySamples();
  #source: DeadLetterSource = { eventSource: 'aws:kafka' };
  readonly #claims = new Limiter(100);
  /** Dead letters on their way, with the record they settle. */
  readonly #letters: Array<Promise<PartitionFailure | undefined>> = [];
  readonly #partitionFailures = new Map<string, PartitionFailure>();
  readonly #releases: Release[] = [];
  readonly #deadLetters: RecordProcessingError[] = [];

  constructor(route: RouteDefinition<V, K>, invocation: Invocation, deps: InvocationDeps) {
    this.#route = route;
    this.#invocation = invocation;
    this.#deps = deps;
    this.#settings = deps.settings;
    this.#now = deps.now ?? Date.now;
    this.#random = deps.random ?? Math.random;
    this.#started = this.#now();
    this.#owner = {
      requestId: invocation.awsRequestId,
      leaseUntilMs: this.#started + Math.max(0, invocation.getRemainingTimeInMillis()),
    };
  }

  async execute(event: unknown): Promise<BatchResult> {
    const partitions = this.#prepare(event);
    const limiter = new Limiter(this.#settings.partitionConcurrency);
    const claimsByRecord =
      this.#route.work.mode === 'process'
        ? this.#claimAhead(partitions)
        : new Map<Prepared<V, K>, Promise<ClaimOutcome>>();

    await Promise.all(
      [...partitions].map(([id, records]) =>
        limiter.run(async () => {
          const failure =
            this.#route.work.mode === 'process'
              ? await this.#processPartition(id, records, claimsByRecord)
              : await this.#transactPartition(records);
          if (failure) this.#failPartition(id, failure);
        }),
      ),
    );

    await this.#deps.sink.flush();
    for (const failure of await Promise.all(this.#letters)) {
      if (failure) this.#failPartition(partitionId(failure.error.coordinates), failure);
    }

    let storeError: unknown;
    try {
      await this.#deps.store.flush();
    } catch (error) {
      storeError = error;
    }
    if (this.#releases.length > 0) {
      try {
        await this.#deps.store.release(this.#releases, this.#owner);
      } catch {
        // The leases end on their own at this invocation's timeout; the batch fails either way.
      }
    }
    return this.#result(storeError);
  }

  #result(storeError: unknown): BatchResult {
    const failures = [...this.#partitionFailures.values()].sort((a, b) =>
      partitionId(a.error.coordinates).localeCompare(partitionId(b.error.coordinates)),
    );
    const recordErrors = failures.map((f) => f.error);
    this.summary.durationMs = this.#now() - this.#started;
    const base = {
      summary: this.summary,
      samples: this.samples,
      failures: recordErrors,
      deadLetters: this.#deadLetters,
    };
    if (storeError !== undefined) {
      // Completes that were never written: the whole batch must come again.
      return { ...base, error: new BatchFailedError(this.#route.route, recordErrors, storeError) };
    }
    if (failures.length === 0)
      return { ...base, ...(this.#settings.partialBatchResponse ? { response: { batchItemFailures: [] } } : {}) };
    if (this.#settings.partialBatchResponse) {
      this.summary.batchItemFailures = failures.length;
      return {
        ...base,
        response: {
          batchItemFailures: failures.map((f) => ({
            itemIdentifier: { partition: partitionId(f.error.coordinates), offset: f.offset },
          })),
        },
      };
    }
    return { ...base, error: new BatchFailedError(this.#route.route, recordErrors) };
  }

  #failPartition(id: string, failure: PartitionFailure): void {
    const existing = this.#partitionFailures.get(id);
    if (!existing || failure.offset < existing.offset) this.#partitionFailures.set(id, failure);
  }

  // ---- decoding --------------------------------------------------------------------------------

  #prepare(event: unknown): Map<string, Prepared<V, K>[]> {
    const parsed = KafkaEvent.safeParse(event);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new InvalidEventError(
        `route ${this.#route.route}: not a Kafka event: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`,
        { cause: parsed.error },
      );
    }
    this.#source = {
      eventSource: parsed.data.eventSource,
      ...(parsed.data.eventSourceArn ? { eventSourceArn: parsed.data.eventSourceArn } : {}),
    };
    const partitions = new Map<string, Prepared<V, K>[]>();
    const seen = new Set<string>();
    // Keys are checked in offset order per partition, so the earliest copy is the one processed.
    const all = Object.values(parsed.data.records).flat();
    for (const wire of all) {
      const id = partitionId(wire);
      const list = partitions.get(id) ?? [];
      list.push(this.#prepareRecord(wire));
      partitions.set(id, list);
    }
    for (const list of partitions.values()) {
      list.sort((a, b) => byOffset(a.coordinates, b.coordinates));
      for (const prepared of list) {
        if (prepared.tombstone && this.#route.tombstones === 'skip') continue;
        if (seen.has(prepared.key)) prepared.duplicateInBatch = true;
        seen.add(prepared.key);
      }
    }
    this.summary.received = all.length;
    return partitions;
  }

  #prepareRecord(wire: WireRecord): Prepared<V, K> {
    const coordinates = { topic: wire.topic, partition: wire.partition, offset: wire.offset };
    const replayOf = replayOrigin(wire);
    const fallbackKey = replayOf ?? formatCoordinates(coordinates);
    const tombstone = wire.value === null || wire.value === undefined;
    const base = { wire, coordinates, replay: replayOf !== undefined, tombstone, duplicateInBatch: false };
    try {
      const headers = RecordHeaders.fromWire(wire.headers);
      const keyBytes = wire.key === null || wire.key === undefined ? null : base64ToBuffer(wire.key, 'key');
      const key = (
        keyBytes === null
          ? null
          : this.#route.key
            ? decodeWith(this.#route.key, keyBytes, 'key')
            : keyBytes.toString('utf8')
      ) as K;
      const value = (
        tombstone ? null : decodeWith(this.#route.value, base64ToBuffer(wire.value as string, 'value'), 'value')
      ) as V;
      const record: KafkaRecord<V, K> = {
        topic: wire.topic,
        partition: wire.partition,
        offset: wire.offset,
        timestamp: wire.timestamp,
        timestampType: wire.timestampType,
        key,
        value,
        headers,
        raw: wire,
      };
      const custom = this.#route.idempotencyKey && !tombstone ? this.#route.idempotencyKey(record) : undefined;
      return { ...base, record, key: custom ?? fallbackKey };
    } catch (error) {
      const decodeError =
        error instanceof PermanentError
          ? error
          : new PermanentError(`decoding failed: ${(error as Error).message}`, { cause: error });
      return { ...base, key: fallbackKey, decodeError };
    }
  }

  /** Why a route never sees a record: a tombstone it skips, a copy within the batch, a key known complete. */
  #skipReason(prepared: Prepared<V, K>): 'tombstone' | 'duplicate' | undefined {
    if (prepared.tombstone && this.#route.tombstones === 'skip' && !prepared.decodeError) return 'tombstone';
    if (prepared.duplicateInBatch || this.#deps.cache.has(prepared.key, this.#now())) return 'duplicate';
    return undefined;
  }

  /** Counts and skips what the route never sees. */
  #skip(prepared: Prepared<V, K>): boolean {
    const reason = this.#skipReason(prepared);
    if (reason === 'tombstone') this.summary.tombstones += 1;
    if (reason === 'duplicate') this.summary.duplicates += 1;
    return reason !== undefined;
  }

  // ---- process mode ------------------------------------------------------------------------------

  /** Starts every claim the batch needs, partitions interleaved, so claims run ahead of processing. */
  #claimAhead(partitions: Map<string, Prepared<V, K>[]>): Map<Prepared<V, K>, Promise<ClaimOutcome>> {
    const claims = new Map<Prepared<V, K>, Promise<ClaimOutcome>>();
    const lists = [...partitions.entries()];
    const longest = Math.max(0, ...lists.map(([, l]) => l.length));
    for (let i = 0; i < longest; i++) {
      for (const [id, list] of lists) {
        const prepared = list[i];
        if (!prepared || this.#skipReason(prepared)) continue;
        claims.set(prepared, this.#claim(prepared, id));
      }
    }
    return claims;
  }

  #claim(prepared: Prepared<V, K>, tag: string): Promise<ClaimOutcome> {
    return this.#claims
      .run(async () => {
        const started = this.#now();
        const result = await this.#deps.store.claim(
          { key: prepared.key, coordinates: prepared.coordinates, replay: prepared.replay },
          this.#owner,
          started,
        );
        this.samples.dedupeLatency.push(this.#now() - started);
        return result;
      }, tag)
      .then(
        (result): ClaimOutcome => result,
        (error: unknown): ClaimOutcome => ({ outcome: 'error', error }),
      );
  }

  async #processPartition(
    id: string,
    records: Prepared<V, K>[],
    claims: Map<Prepared<V, K>, Promise<ClaimOutcome>>,
  ): Promise<PartitionFailure | undefined> {
    for (let index = 0; index < records.length; index++) {
      const prepared = records[index] as Prepared<V, K>;
      if (this.#skip(prepared)) continue;
      const claimed = await this.#awaitClaim(prepared, claims.get(prepared) ?? this.#claim(prepared, id));
      if (claimed.outcome === 'completed' || claimed.outcome === 'dead-lettered') {
        this.summary.duplicates += 1;
        continue;
      }
      let failure: PartitionFailure | undefined;
      if (claimed.outcome !== 'claimed') {
        failure = this.#failure(prepared, ErrorKind.transient, claimed.error);
      } else if (prepared.decodeError) {
        this.#deadLetter(prepared, ErrorKind.permanent, prepared.decodeError, claimed.attempts, claimed.firstSeen);
      } else {
        failure = await this.#processRecord(prepared, claimed.attempts, claimed.firstSeen);
      }
      if (failure) {
        await this.#abandon(id, records.slice(index + 1), claims);
        return failure;
      }
    }
    return undefined;
  }

  /** A claim held by another invocation is waited out with backoff while the time budget allows. */
  async #awaitClaim(prepared: Prepared<V, K>, pending: Promise<ClaimOutcome>): Promise<SettledClaim> {
    let outcome = await pending;
    for (let retry = 1; outcome.outcome === 'locked'; retry++) {
      const delay = Math.min(
        backoffDelay(retry, this.#settings.retry, this.#random),
        Math.max(0, outcome.leaseUntilMs - this.#now()),
      );
      if (
        retry >= this.#settings.retry.maxAttempts ||
        !retryFits(delay, 0, this.#invocation.getRemainingTimeInMillis())
      ) {
        return {
          outcome: 'error',
          error: new RecordLockedError(
            `another invocation (${outcome.owner}) holds the record until ${new Date(outcome.leaseUntilMs).toISOString()}`,
          ),
        };
      }
      await sleep(delay);
      outcome = await this.#claim(prepared, 'retry');
    }
    return outcome as SettledClaim;
  }

  async #processRecord(
    prepared: Prepared<V, K>,
    firstAttempt: number,
    firstSeen: number,
  ): Promise<PartitionFailure | undefined> {
    const work = this.#route.work;
    if (work.mode !== 'process') throw new Error('unreachable');
    const record = prepared.record as KafkaRecord<V, K>;
    const { retry } = this.#settings;
    let attempt = firstAttempt;
    let spent = 0;
    for (let retries = 1; ; retries++) {
      const started = this.#now();
      try {
        await work.process(record, this.#context(attempt));
        const finished = this.#now();
        this.samples.processingTime.push(spent + finished - started);
        this.samples.endToEndLatency.push(finished - record.timestamp);
        this.summary.processed += 1;
        this.#deps.store.settle({
          key: prepared.key,
          coordinates: prepared.coordinates,
          status: RecordStatus.completed,
          attempts: attempt,
          firstSeen,
        });
        return undefined;
      } catch (error) {
        const took = this.#now() - started;
        spent += took;
        const kind = this.#route.classify(error);
        if (kind === ErrorKind.permanent) {
          this.samples.processingTime.push(spent);
          this.#deadLetter(prepared, ErrorKind.permanent, error, attempt, firstSeen);
          return undefined;
        }
        if (attempt >= retry.maxAttempts) {
          if (this.#now() - record.timestamp >= retry.maxRecordAgeSeconds * 1000) {
            this.#deadLetter(prepared, ErrorKind.exhausted, error, attempt, firstSeen);
            return undefined;
          }
          return this.#failAndRelease(prepared, error, attempt);
        }
        const delay = backoffDelay(retries, retry, this.#random);
        if (!retryFits(delay, took, this.#invocation.getRemainingTimeInMillis())) {
          return this.#failAndRelease(prepared, error, attempt);
        }
        this.summary.retried += 1;
        await sleep(delay);
        attempt += 1;
      }
    }
  }

  #failAndRelease(prepared: Prepared<V, K>, error: unknown, attempts: number): PartitionFailure {
    this.#releases.push({ key: prepared.key, attempts });
    return this.#failure(prepared, ErrorKind.transient, error);
  }

  /** Stops the partition: queued claims are dropped, made ones are given back uncounted. */
  async #abandon(
    id: string,
    rest: Prepared<V, K>[],
    claims: Map<Prepared<V, K>, Promise<ClaimOutcome>>,
  ): Promise<void> {
    this.#claims.cancelQueued((tag) => tag === id, new Error('partition stopped'));
    for (const prepared of rest) {
      const pending = claims.get(prepared);
      if (!pending) continue;
      const outcome = await pending;
      if (outcome.outcome === 'claimed') this.#releases.push({ key: prepared.key, attempts: outcome.attempts - 1 });
    }
  }

  #failure(
    prepared: Prepared<V, K>,
    kind: typeof ErrorKind.transient | typeof ErrorKind.permanent,
    error: unknown,
  ): PartitionFailure {
    this.summary.failed += 1;
    return {
      offset: prepared.coordinates.offset,
      error: new RecordProcessingError(this.#route.route, prepared.coordinates, kind, error, prepared.wire),
    };
  }

  #context(attempt: number): RecordContext {
    return {
      route: this.#route.route,
      requestId: this.#invocation.awsRequestId,
      attempt,
      remainingTimeMs: this.#invocation.getRemainingTimeInMillis,
      count: (metricName, value = 1) => {
        this.samples.custom.set(metricName, (this.samples.custom.get(metricName) ?? 0) + value);
      },
    };
  }

  /**
   * Sends the record to the DLQ without holding up its partition, then marks it
   * DEAD_LETTERED. A failed send fails the partition at this record, so it comes again.
   */
  #deadLetter(prepared: Prepared<V, K>, kind: ErrorKind, error: unknown, attempts: number, firstSeen: number): void {
    this.summary.failed += 1;
    const recordError = new RecordProcessingError(this.#route.route, prepared.coordinates, kind, error, prepared.wire);
    const envelope = buildEnvelope({
      route: this.#route.route,
      idempotencyKey: prepared.key,
      source: this.#source,
      record: prepared.wire,
      kind,
      error: recordError,
      attempts,
      firstFailedAt: new Date(firstSeen),
    });
    this.#letters.push(
      this.#deps.sink.send(envelope).then(
        () => {
          this.summary.deadLettered += 1;
          this.#deadLetters.push(recordError);
          this.#deps.store.settle({
            key: prepared.key,
            coordinates: prepared.coordinates,
            status: RecordStatus.deadLettered,
            attempts,
            firstSeen,
          });
          return undefined;
        },
        (sendError: unknown) => {
          this.#releases.push({ key: prepared.key, attempts });
          return {
            offset: prepared.coordinates.offset,
            error: new RecordProcessingError(
              this.#route.route,
              prepared.coordinates,
              ErrorKind.transient,
              sendError,
              prepared.wire,
            ),
          };
        },
      ),
    );
  }

  // ---- transact mode -----------------------------------------------------------------------------

  async #transactPartition(records: Prepared<V, K>[]): Promise<PartitionFailure | undefined> {
    const work = this.#route.work;
    if (work.mode !== 'transact') throw new Error('unreachable');
    const queue = records.filter((prepared) => !this.#skip(prepared));
    let index = 0;
    while (index < queue.length) {
      const head = queue[index] as Prepared<V, K>;
      if (head.decodeError) {
        const failure = await this.#deadLetterByClaim(head, ErrorKind.permanent, head.decodeError);
        if (failure) return failure;
        index += 1;
        continue;
      }
      // Build a pack: consecutive records whose items touch distinct keys, within the action limit.
      const pack: Array<{ prepared: Prepared<V, K>; items: readonly TransactWriteItem[] }> = [];
      const touched = new Set<string>();
      let actions = 0;
      let next = index;
      let buildFailure: { prepared: Prepared<V, K>; error: unknown } | undefined;
      const started = this.#now();
      while (next < queue.length) {
        const prepared = queue[next] as Prepared<V, K>;
        if (prepared.decodeError) break;
        let items: readonly TransactWriteItem[];
        try {
          items = await work.transact(prepared.record as KafkaRecord<V, K>, this.#context(1));
        } catch (error) {
          if (pack.length === 0) buildFailure = { prepared, error };
          break;
        }
        const keys = items.map(itemKey).filter((k): k is string => k !== undefined);
        if (pack.length > 0 && (actions + items.length + 1 > MAX_TRANSACT_ACTIONS || keys.some((k) => touched.has(k))))
          break;
        if (items.length + 1 > MAX_TRANSACT_ACTIONS) {
          buildFailure = {
            prepared,
            error: new PermanentError(
              `transact returned ${items.length} items; at most ${MAX_TRANSACT_ACTIONS - 1} fit beside the marker`,
            ),
          };
          break;
        }
        for (const k of keys) touched.add(k);
        actions += items.length + 1;
        pack.push({ prepared, items });
        next += 1;
      }
      if (buildFailure) {
        const kind = this.#route.classify(buildFailure.error);
        const failure =
          kind === ErrorKind.permanent
            ? await this.#deadLetterByClaim(buildFailure.prepared, ErrorKind.permanent, buildFailure.error)
            : this.#failure(buildFailure.prepared, ErrorKind.transient, buildFailure.error);
        if (failure) return failure;
        index += 1;
        continue;
      }
      const failure = await this.#commitPack(pack, started);
      if (failure) return failure;
      index = next;
    }
    return undefined;
  }

  /** Commits a pack, retrying without the records whose own conditions failed. */
  async #commitPack(
    pack: Array<{ prepared: Prepared<V, K>; items: readonly TransactWriteItem[] }>,
    started: number,
  ): Promise<PartitionFailure | undefined> {
    let remaining = pack;
    let transientRetries = 0;
    while (remaining.length > 0) {
      const entries: TransactEntry[] = remaining.map(({ prepared, items }) => ({
        key: prepared.key,
        coordinates: prepared.coordinates,
        replay: prepared.replay,
        items,
      }));
      const callStarted = this.#now();
      let outcomes: TransactOutcome[];
      try {
        outcomes = await this.#deps.store.transact(
          entries,
          callStarted,
          `${this.#invocation.awsRequestId}:${callStarted}:${entries.map((e) => e.key).join(',')}`,
        );
        this.samples.dedupeLatency.push(this.#now() - callStarted);
      } catch (error) {
        const kind = this.#route.classify(error);
        const head = remaining[0] as { prepared: Prepared<V, K> };
        if (kind === ErrorKind.permanent) {
          if (remaining.length > 1) {
            // One record's items may be invalid: commit them one by one to find it.
            for (const single of remaining) {
              const failure = await this.#commitPack([single], this.#now());
              if (failure) return failure;
            }
            return undefined;
          }
          return this.#deadLetterByClaim(head.prepared, ErrorKind.permanent, error);
        }
        transientRetries += 1;
        const delay = backoffDelay(transientRetries, this.#settings.retry, this.#random);
        if (
          transientRetries < this.#settings.retry.maxAttempts &&
          retryFits(delay, this.#now() - callStarted, this.#invocation.getRemainingTimeInMillis())
        ) {
          this.summary.retried += 1;
          await sleep(delay);
          continue;
        }
        return this.#exhaustedInTransact(head.prepared, error);
      }
      const finished = this.#now();
      const retry: typeof remaining = [];
      for (let i = 0; i < remaining.length; i++) {
        const { prepared } = remaining[i] as { prepared: Prepared<V, K> };
        const outcome = outcomes[i] as TransactOutcome;
        switch (outcome.outcome) {
          case 'committed':
            this.summary.processed += 1;
            this.samples.processingTime.push(finished - started);
            this.samples.endToEndLatency.push(finished - prepared.wire.timestamp);
            break;
          case 'duplicate':
            this.summary.duplicates += 1;
            break;
          case 'cancelled':
            retry.push(remaining[i] as (typeof remaining)[number]);
            break;
          case 'locked': {
            // Another invocation is dead-lettering it right now; the order says wait.
            const failure = this.#failure(
              prepared,
              ErrorKind.transient,
              new RecordLockedError('another invocation holds the record'),
            );
            const earlier = await this.#commitPack(retry, started);
            return earlier ?? failure;
          }
          case 'rejected': {
            const failure = await this.#deadLetterByClaim(
              prepared,
              ErrorKind.permanent,
              new PermanentError(outcome.reason),
            );
            if (failure) return failure;
            break;
          }
        }
      }
      remaining = retry;
    }
    return undefined;
  }

  /** Counts the failed attempt; past the limits the record is dead-lettered, else the partition stops. */
  async #exhaustedInTransact(prepared: Prepared<V, K>, error: unknown): Promise<PartitionFailure | undefined> {
    const { retry } = this.#settings;
    let attempts: number;
    try {
      attempts = await this.#deps.store.recordFailedAttempt(
        { key: prepared.key, coordinates: prepared.coordinates, replay: prepared.replay },
        this.#now(),
      );
    } catch (storeError) {
      return this.#failure(prepared, ErrorKind.transient, storeError);
    }
    if (attempts >= retry.maxAttempts && this.#now() - prepared.wire.timestamp >= retry.maxRecordAgeSeconds * 1000) {
      return this.#deadLetterByClaim(prepared, ErrorKind.exhausted, error);
    }
    return this.#failure(prepared, ErrorKind.transient, error);
  }

  /** In transact mode a dead letter is claimed first, so two overlapping invocations never both send it. */
  async #deadLetterByClaim(
    prepared: Prepared<V, K>,
    kind: ErrorKind,
    error: unknown,
  ): Promise<PartitionFailure | undefined> {
    const claimed = await this.#awaitClaim(prepared, this.#claim(prepared, 'dead-letter'));
    if (claimed.outcome === 'completed' || claimed.outcome === 'dead-lettered') {
      this.summary.duplicates += 1;
      return undefined;
    }
    if (claimed.outcome !== 'claimed') return this.#failure(prepared, ErrorKind.transient, claimed.error);
    this.#deadLetter(prepared, kind, error, claimed.attempts, claimed.firstSeen);
    return undefined;
  }
}

type ClaimOutcome = ClaimResult | { readonly outcome: 'error'; readonly error: unknown };
/** A claim outcome once any lease held by another invocation has been waited out. */
type SettledClaim = Exclude<ClaimOutcome, { outcome: 'locked' }>;

const partitionId = (c: RecordCoordinates): string => `${c.topic}-${c.partition}`;

/** A replayed record carries its original coordinates, so its default key is the original's. */
const replayOrigin = (wire: WireRecord): string | undefined => {
  for (const header of wire.headers) {
    const bytes = header[REPLAY_HEADER];
    if (bytes) return Buffer.from(bytes).toString('utf8');
  }
  return undefined;
};

/** The table and key an action touches, so a pack never holds two actions on one item. */
const itemKey = (item: TransactWriteItem): string | undefined => {
  const op = item.Update ?? item.Delete ?? item.ConditionCheck;
  if (op?.Key) return `${op.TableName}|${JSON.stringify(op.Key)}`;
  return undefined;
};
