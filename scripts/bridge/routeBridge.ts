// One route of the local bridge: the Kafka I/O around the pure core (batching.ts, outcome.ts, kafkaEvents.ts).
//
// - It joins the route's consumer group (the ESM's own group id) and fetches itself, partition by partition, from
//   positions it controls: after every (re)join it reads the group's committed offsets, so a fetch started before a
//   rebalance can never move a position (fetch results carry the assignment epoch and stale ones are dropped).
// - Records go through the batch scheduler (batching.ts), shaped like the ESM: pollers that each own a share of the
//   partitions and run one invocation at a time, events holding records of several partitions, the route's filters,
//   and in provisioned mode the ESM's retry limit, record age and bisect. Each poller has its own worker
//   (handlerHost.ts), like its own Lambda instance, so a timeout restarts only that one.
// - The result decides the offsets (outcome.ts). Commits are queued, merged per partition and retried until they
//   land or the partition is no longer ours. A failed batch is redelivered from memory after a backoff, which is
//   the same as seeking back to the last committed offset: nothing after it was committed.
// - A batch the ESM would give up on (retries exhausted, records too old, a record over 6 MB) goes, as the ESM's
//   own metadata record (onFailureRecord.ts), to the local queue standing in for the route's on-failure
//   destination, and is committed past; with no destination it is dropped, loudly, as the ESM drops it.
// - A dead broker, a stalled group membership or a client error recreate the consumer after a backoff; the new
//   member starts again from the committed offsets.
import { randomUUID } from 'node:crypto';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { MetricName } from '../../functions/runtime/metrics.ts';
import type { BridgeConfig, RouteConfig } from '../../infra/config/index.ts';
import { consumerGroupIdOf, esmRetryLimits, isProvisioned, resolveHandlerEntry } from '../../infra/config/index.ts';
import { createConsumer, type RawConsumer, type RawRecordBatch } from '../lib/kafka.ts';
import {
  approximateRecordBytes,
  buildKafkaEvent,
  type EventSource,
  type LambdaKafkaRecord,
  partitionId,
  recordsOfBatches,
} from '../lib/kafkaEvents.ts';
import { type Batch, BatchScheduler, DEFAULT_MAX_BATCH_BYTES } from './batching.ts';
import { recordFilter } from './filters.ts';
import { HandlerHost } from './handlerHost.ts';
import { type OnFailureCondition, onFailureRecord } from './onFailureRecord.ts';
import { type BatchDecision, decideBatchOutcome } from './outcome.ts';
import { RetryQueuePoller } from './retryQueuePoller.ts';
import { emfMetrics, RouteStats } from './stats.ts';

export type RouteBridgeOptions = {
  readonly config: BridgeConfig;
  readonly route: RouteConfig;
  /** The route's environment contract (DESIGN §5). */
  readonly environment: Readonly<Record<string, string>>;
  readonly brokers: readonly string[];
  readonly source: EventSource;
  /** The local queue standing in for the route's on-failure destination, if it has one. */
  readonly onFailureQueueUrl?: string;
  /** The route's retry queue, for routes that park records: an SQS event source on it runs beside the topic's. */
  readonly retryQueueUrl?: string;
  /** ESM pollers, each with one invocation in flight (default: the route's minPollers in provisioned mode, else 1). */
  readonly pollers?: number;
  /** Overrides the route's maxBatchingWindowSeconds (the ESM default for Kafka is 500 ms). */
  readonly windowMs?: number;
  /** Redelivery backoff after a failed batch (default 500 ms doubling to 10 s). */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** Fetching pauses for a partition holding this many buffered records (default 2 batches, at least 1000). */
  readonly maxBufferedPerPartition?: number;
  /** Every line the handler prints (structured logs, EMF). */
  readonly onHandlerOutput?: (line: string) => void;
  readonly log: (line: string) => void;
};

const FETCH_MAX_WAIT_MS = 500;
const FETCH_MAX_BYTES = 16 * 1024 * 1024;
const EARLIEST = -2n;
const LATEST = -1n;
/** A consumer that cannot fetch or keep its membership for this long is replaced. */
const UNHEALTHY_MS = 15_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

type ConsumerGroupJoin = { assignments?: Array<{ topic: string; partitions: number[] }> | null };

type FetchPartitionResponse = {
  partitionIndex: number;
  errorCode: number;
  highWatermark: bigint;
  records?: RawRecordBatch[] | null;
};
type FetchResponse = { responses: Array<{ topicId: string; partitions: FetchPartitionResponse[] }> };

export class RouteBridge {
  readonly stats: RouteStats;
  readonly route: RouteConfig;
  readonly groupId: string;
  readonly #options: RouteBridgeOptions;
  readonly #scheduler: BatchScheduler;
  /** One function instance per poller. */
  readonly #hosts: HandlerHost[];
  /** The retry queue's event source, with a function instance of its own. */
  readonly #retryQueue: { readonly poller: RetryQueuePoller; readonly host: HandlerHost } | undefined;
  readonly #partial: boolean;
  readonly #passesFilters: ((record: LambdaKafkaRecord) => boolean) | undefined;
  readonly #sqs = new SQSClient({});
  readonly #maxBuffered: number;
  readonly #clientId: string;
  #consumer: RawConsumer | undefined;
  /** Bumped at every (re)join and consumer replacement: fetch results of an older epoch are dropped. */
  #epoch = 0;
  #assigned = new Set<number>();
  #positions = new Map<number, bigint>();
  #positionsStale = true;
  readonly #highWatermarks = new Map<number, bigint>();
  readonly #pendingCommits = new Map<number, number>();
  readonly #committedByUs = new Map<number, number>();
  #committing: Promise<void> | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  #stopping = false;
  #wakeFetch: (() => void) | undefined;
  #dispatchTimer: NodeJS.Timeout | undefined;
  #fetchLoop: Promise<void> | undefined;
  #unhealthySince: number | undefined;
  #lastErrorLog = new Map<string, number>();

  constructor(options: RouteBridgeOptions) {
    this.#options = options;
    this.route = options.route;
    this.groupId = consumerGroupIdOf(options.config, options.route);
    this.stats = new RouteStats(options.route.name);
    this.#partial = isProvisioned(options.route) && options.route.eventSource.reportBatchItemFailures;
    this.#maxBuffered = options.maxBufferedPerPartition ?? Math.max(1_000, options.route.batchSize * 2);
    this.#clientId = `bridge-${options.route.name}-${process.pid}-${randomUUID().slice(0, 4)}`;
    const route = options.route;
    const limits = esmRetryLimits(route);
    const pollers = options.pollers ?? (route.mode === 'on-demand' ? 1 : route.mode.provisioned.minPollers);
    try {
      this.#passesFilters = recordFilter(route.eventSource.filters);
    } catch (error) {
      throw new Error(`route "${route.name}": eventSource.${(error as Error).message}`);
    }
    this.#scheduler = new BatchScheduler({
      batchSize: route.batchSize,
      windowMs:
        options.windowMs ??
        (route.maxBatchingWindowSeconds === undefined ? 500 : route.maxBatchingWindowSeconds * 1000),
      maxBatchBytes: DEFAULT_MAX_BATCH_BYTES,
      backoffBaseMs: options.backoffBaseMs ?? 500,
      backoffMaxMs: options.backoffMaxMs ?? 10_000,
      pollers,
      retry: {
        ...(limits.effectiveRetries !== undefined && { retries: limits.effectiveRetries }),
        ...(limits.effectiveMaxRecordAgeSeconds !== undefined && {
          maxRecordAgeMs: limits.effectiveMaxRecordAgeSeconds * 1000,
        }),
        bisect: limits.bisectOnError,
      },
    });
    const newHost = () =>
      new HandlerHost({
        handlerPath: resolveHandlerEntry(route),
        functionName: this.functionName,
        timeoutSeconds: route.timeoutSeconds,
        memoryMb: route.memoryMb,
        environment: options.environment,
        log: options.log,
        onOutput: (line) => {
          const metrics = emfMetrics(line);
          if (metrics) {
            for (const [name, value] of metrics) if (!STANDARD_METRICS.has(name)) this.stats.addCustom(name, value);
          }
          options.onHandlerOutput?.(line);
        },
      });
    this.#hosts = Array.from({ length: pollers }, newHost);
    if (options.retryQueueUrl) {
      const host = newHost();
      const poller = new RetryQueuePoller({
        queueUrl: options.retryQueueUrl,
        host,
        sqs: this.#sqs,
        stats: this.stats,
        visibilityTimeoutSeconds: route.timeoutSeconds + 5,
        log: (line) => this.#logError('retry-queue', line),
      });
      this.#retryQueue = { poller, host };
    }
  }

  get functionName(): string {
    return `${this.#options.config.name}-${this.route.name}`;
  }

  #log(line: string): void {
    this.#options.log(`[bridge] ${this.route.name}: ${line}`);
  }

  /** Logs an error at most every 5 s per kind, so an outage does not flood the terminal. */
  #logError(kind: string, message: string): void {
    const now = Date.now();
    if ((this.#lastErrorLog.get(kind) ?? 0) > now - 5_000) return;
    this.#lastErrorLog.set(kind, now);
    this.#log(message);
  }

  get topic(): string {
    return this.route.topic;
  }

  /** Loads the handler, joins the group and starts consuming. */
  async start(): Promise<void> {
    await Promise.all([...this.#hosts, ...(this.#retryQueue ? [this.#retryQueue.host] : [])].map((h) => h.start()));
    this.#fetchLoop = this.#run();
    this.#retryQueue?.poller.start();
  }

  // ---- membership ------------------------------------------------------------------------------------------

  async #connect(): Promise<RawConsumer | undefined> {
    for (let attempt = 1; !this.#stopping; attempt++) {
      const consumer = createConsumer([...this.#options.brokers], {
        groupId: this.groupId,
        clientId: this.#clientId,
        sessionTimeout: 10_000,
        heartbeatInterval: 1_000,
        maxWaitTime: FETCH_MAX_WAIT_MS,
      });
      consumer.on('error', (error: Error) => this.#logError('consumer', `consumer error: ${error.message}`));
      consumer.on('consumer:group:join', (payload: ConsumerGroupJoin) => {
        if (this.#consumer === consumer || this.#consumer === undefined) this.#onJoin(payload);
      });
      try {
        consumer.topics.track(this.topic);
        await consumer.joinGroup({});
        if (this.#stopping) {
          await this.#closeConsumer(consumer);
          return undefined;
        }
        this.#consumer = consumer;
        this.#unhealthySince = undefined;
        return consumer;
      } catch (error) {
        this.#logError(
          'join',
          `joining group ${this.groupId} failed (attempt ${attempt}): ${(error as Error).message}`,
        );
        await this.#closeConsumer(consumer);
        await sleep(Math.min(5_000, 250 * 2 ** Math.min(attempt, 5)));
      }
    }
    return undefined;
  }

  #onJoin(payload: ConsumerGroupJoin): void {
    this.#epoch += 1;
    const partitions = payload.assignments?.find((a) => a.topic === this.topic)?.partitions ?? [];
    this.#assigned = new Set(partitions);
    this.stats.assigned = [...partitions].sort((a, b) => a - b).map(String);
    const dropped = this.#scheduler.rebalance(new Set(partitions.map((p) => partitionId(this.topic, p))));
    this.#positions = new Map();
    this.#positionsStale = true;
    this.#log(
      `joined group ${this.groupId}: partitions [${this.stats.assigned.join(',')}]` +
        (dropped > 0 ? ` (${dropped} buffered records to fetch again)` : ''),
    );
    this.#wakeFetch?.();
  }

  async #closeConsumer(consumer: RawConsumer): Promise<void> {
    await Promise.race([consumer.close(true).catch(() => {}), sleep(3_000)]);
  }

  /** Replaces a consumer that lost its broker or its membership; the new one rejoins and re-reads positions. */
  async #replaceConsumer(reason: string): Promise<void> {
    const old = this.#consumer;
    this.#consumer = undefined;
    this.#epoch += 1;
    this.#positionsStale = true;
    this.#log(`replacing the Kafka consumer: ${reason}`);
    if (old) await this.#closeConsumer(old);
  }

  // ---- positions and fetching ------------------------------------------------------------------------------

  async #loadPositions(consumer: RawConsumer, epoch: number): Promise<void> {
    const partitions = [...this.#assigned].sort((a, b) => a - b);
    this.#positionsStale = false;
    if (partitions.length === 0) return;
    const committed = (await consumer.listCommittedOffsets({ topics: [{ topic: this.topic, partitions }] })).get(
      this.topic,
    );
    const missing = partitions.filter((p) => (committed?.[p] ?? -1n) < 0n);
    let fallback: bigint[] | undefined;
    if (missing.length > 0) {
      const start = this.route.startingPosition;
      const timestamp =
        start === 'LATEST'
          ? LATEST
          : start === 'AT_TIMESTAMP'
            ? BigInt((this.route.startingPositionTimestamp ?? 0) * 1000)
            : EARLIEST;
      const offsets = await consumer.listOffsets({
        topics: [this.topic],
        partitions: { [this.topic]: missing },
        timestamp,
      });
      fallback = offsets.get(this.topic);
      if (start !== 'LATEST' || !fallback) {
        const latest = await consumer.listOffsets({ topics: [this.topic], partitions: { [this.topic]: missing } });
        // AT_TIMESTAMP past the end answers -1: start at the end.
        fallback = fallback?.map((o, i) => (o < 0n ? (latest.get(this.topic)?.[i] ?? 0n) : o));
      }
    }
    if (epoch !== this.#epoch) return;
    const positions = new Map<number, bigint>();
    for (const p of partitions) {
      const c = committed?.[p] ?? -1n;
      let position = c >= 0n ? c : (fallback?.[p] ?? 0n);
      // Commits of ours still on their way are safe starting points too.
      const ours = this.#pendingCommits.get(p) ?? this.#committedByUs.get(p);
      if (ours !== undefined && BigInt(ours) > position) position = BigInt(ours);
      positions.set(p, position);
      // The ESM pins a starting position it fell back to, so a restart does not skip or re-read from elsewhere.
      if (c < 0n) this.#queueCommit(p, Number(position));
    }
    this.#positions = positions;
  }

  #fetchable(): number[] {
    return [...this.#assigned].filter(
      (p) => this.#positions.has(p) && this.#scheduler.bufferedIn(partitionId(this.topic, p)) < this.#maxBuffered,
    );
  }

  async #waitForWork(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wakeFetch = done;
    });
    this.#wakeFetch = undefined;
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopping) {
      const consumer = this.#consumer ?? (await this.#connect());
      if (!consumer || this.#stopping) break;
      const epoch = this.#epoch;
      try {
        if (!consumer.isActive()) {
          this.#unhealthySince ??= Date.now();
          if (Date.now() - this.#unhealthySince > UNHEALTHY_MS) {
            await this.#replaceConsumer('group membership lost');
            continue;
          }
          await this.#waitForWork(250);
          continue;
        }
        if (this.#positionsStale) await this.#loadPositions(consumer, epoch);
        const partitions = this.#fetchable();
        if (partitions.length === 0) {
          await this.#waitForWork(200);
          continue;
        }
        const response = await this.#fetch(consumer, partitions);
        if (epoch !== this.#epoch || this.#stopping) continue;
        this.#accept(response, partitions);
        failures = 0;
        this.#unhealthySince = undefined;
        this.#pump();
      } catch (error) {
        if (this.#stopping) break;
        failures += 1;
        this.#unhealthySince ??= Date.now();
        if (this.#resetOutOfRange(error)) continue;
        this.#logError('fetch', `fetch failed: ${(error as Error).message}; retrying`);
        if (Date.now() - this.#unhealthySince > UNHEALTHY_MS) {
          await this.#replaceConsumer('Kafka unreachable');
          this.#unhealthySince = undefined;
        }
        this.#positionsStale = true;
        await sleep(Math.min(2_000, 100 * 2 ** Math.min(failures, 5)));
      }
    }
  }

  async #fetch(consumer: RawConsumer, partitions: number[]): Promise<FetchResponse> {
    const metadata = await consumer.metadata({ topics: [this.topic] });
    const topic = metadata.topics.get(this.topic);
    if (!topic) throw new Error(`topic ${this.topic} not found`);
    const byLeader = new Map<number, number[]>();
    for (const p of partitions) {
      const leader = topic.partitions[p]?.leader ?? -1;
      if (leader < 0) throw new Error(`partition ${this.topic}-${p} has no leader`);
      byLeader.set(leader, [...(byLeader.get(leader) ?? []), p]);
    }
    const responses = await Promise.all(
      [...byLeader].map(([node, ps]) =>
        consumer.fetch({
          node,
          maxWaitTime: FETCH_MAX_WAIT_MS,
          minBytes: 1,
          maxBytes: FETCH_MAX_BYTES,
          topics: [
            {
              topicId: topic.id,
              partitions: ps.map((p) => ({
                partition: p,
                fetchOffset: this.#positions.get(p) as bigint,
                partitionMaxBytes: FETCH_MAX_BYTES / 4,
                currentLeaderEpoch: -1,
                lastFetchedEpoch: -1,
              })),
            },
          ],
        }),
      ),
    );
    return {
      responses: (responses as unknown as FetchResponse[]).flatMap((r) =>
        r.responses.map((t) => ({ ...t, topicId: t.topicId === topic.id ? this.topic : t.topicId })),
      ),
    };
  }

  /** OFFSET_OUT_OF_RANGE (retention removed what we were at): restart those partitions from the fallback. */
  #resetOutOfRange(error: unknown): boolean {
    const response = (error as { response?: FetchResponse }).response;
    const parts = response?.responses?.flatMap((t) => t.partitions).filter((p) => p.errorCode === 1) ?? [];
    if (parts.length === 0) return false;
    for (const p of parts) this.#positions.delete(p.partitionIndex);
    this.#positionsStale = true;
    this.#logError('range', `offset out of range on partitions ${parts.map((p) => p.partitionIndex)}; resetting`);
    return true;
  }

  #accept(response: FetchResponse, requested: number[]): void {
    const now = Date.now();
    const wanted = new Set(requested);
    for (const topic of response.responses) {
      if (topic.topicId !== this.topic) continue;
      for (const part of topic.partitions) {
        const p = part.partitionIndex;
        if (!wanted.has(p) || !this.#assigned.has(p)) continue;
        if (part.errorCode !== 0) {
          this.#positionsStale = part.errorCode === 1 || this.#positionsStale;
          this.#logError(`partition-${p}`, `fetch of partition ${p} answered error code ${part.errorCode}`);
          continue;
        }
        this.#highWatermarks.set(p, part.highWatermark);
        const requestedAt = this.#positions.get(p);
        if (requestedAt === undefined || !part.records) continue;
        const fetched = recordsOfBatches(this.topic, p, part.records, requestedAt);
        for (const record of fetched.records) {
          const filteredOut = this.#passesFilters ? !this.#passesFilters(record) : false;
          this.#scheduler.offer(record, approximateRecordBytes(record), now, filteredOut);
        }
        this.#positions.set(p, fetched.next);
      }
    }
  }

  // ---- invocations -----------------------------------------------------------------------------------------

  #pump(): void {
    if (this.#stopping) return;
    const now = Date.now();
    for (const batch of this.#scheduler.takeReady(now)) {
      const running = this.#invoke(batch).finally(() => this.#inFlight.delete(running));
      this.#inFlight.add(running);
    }
    clearTimeout(this.#dispatchTimer);
    const wait = this.#scheduler.nextWakeupIn(now);
    if (wait !== undefined) this.#dispatchTimer = setTimeout(() => this.#pump(), Math.max(5, wait));
  }

  async #invoke(batch: Batch): Promise<void> {
    const { decision, failure } = await this.#execute(batch);
    const now = Date.now();
    const effects = this.#scheduler.complete(batch, decision, now);
    if (decision.kind === 'failed') {
      this.stats.failedInvocations += 1;
      this.stats.redelivered += effects.redelivered;
      if (!this.#stopping && !effects.skipped) {
        this.#logError(
          'invoke',
          `batch of ${batch.records.length} failed (${decision.reason}); redelivering in ${effects.retryInMs ?? 0} ms`,
        );
      }
    } else if (decision.kind === 'partial') {
      this.stats.redelivered += effects.redelivered;
    }
    // A retried batch whose records expired was invoked before: its record says how often, as the ESM's does.
    if (failure) await this.#giveUp(failure.condition, batch, batch.attempt);
    if (effects.skipped)
      await this.#giveUp('RetryAttemptsExhausted', effects.skipped.batch, effects.skipped.invocations);
    const latencies: number[] = [];
    for (const commit of effects.commits) {
      this.#queueCommit(commit.partition, commit.offset);
      this.stats.filteredOut += batch.covered.filter(
        (r) => r.filteredOut && r.record.partition === commit.partition && r.record.offset < commit.offset,
      ).length;
      for (const r of batch.records) {
        if (r.record.partition === commit.partition && r.record.offset < commit.offset) {
          latencies.push(now - r.record.timestamp);
        }
      }
    }
    this.stats.addCommitted(effects.completed, latencies, now);
    this.#pump();
    this.#wakeFetch?.();
  }

  /** Invokes the batch's poller instance, unless the ESM would not: records it never sends, or only filtered ones. */
  async #execute(batch: Batch): Promise<{ decision: BatchDecision; failure?: { condition: OnFailureCondition } }> {
    const passed = decideBatchOutcome(batch.partitions, { ok: true, response: null }, false);
    if (batch.kind !== 'invoke') return { decision: passed, failure: { condition: batch.kind } };
    if (batch.records.length === 0) return { decision: passed };
    const event = buildKafkaEvent(
      this.#options.source,
      batch.records.map((r) => r.record),
    );
    this.stats.invocations += 1;
    const invocation = await (this.#hosts[batch.poller] as HandlerHost).invoke(event);
    this.stats.addSummary(invocation.summary);
    return { decision: decideBatchOutcome(batch.partitions, invocation.result, this.#partial) };
  }

  /**
   * The ESM gives up on a batch: its metadata goes to the on-failure destination (here, the local queue standing in
   * for it), or, with none, the records are dropped. Either way the batch is committed past.
   */
  async #giveUp(condition: OnFailureCondition, batch: Batch, invocations: number): Promise<void> {
    const records = batch.records.map((r) => r.record);
    const where = `${records.length} record(s) ${describeRange(records)}`;
    const queueUrl = this.#options.onFailureQueueUrl;
    if (queueUrl) {
      const body = onFailureRecord({
        condition,
        functionArn: `arn:aws:lambda:${process.env.AWS_REGION ?? 'us-east-1'}:000000000000:function:${this.functionName}`,
        source: this.#options.source,
        records,
        invocations,
        payloadSize: batch.records.reduce((sum, r) => sum + r.bytes, 0),
        now: new Date(),
      });
      for (let attempt = 1; attempt <= 5; attempt++) {
        try {
          await this.#sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(body) }));
          this.stats.toOnFailure += records.length;
          this.#log(`${condition}: ${where} skipped; their metadata went to the on-failure destination`);
          return;
        } catch (error) {
          if (attempt === 5) this.#log(`the on-failure destination refused the record: ${(error as Error).message}`);
          else await sleep(200 * attempt);
        }
      }
    }
    this.stats.dropped += records.length;
    this.#log(`${condition}: ${where} DROPPED: the ESM skips them, and the route has no on-failure destination`);
  }

  // ---- commits ---------------------------------------------------------------------------------------------

  #queueCommit(partition: number, offset: number): void {
    const pending = this.#pendingCommits.get(partition);
    if (pending === undefined || offset > pending) this.#pendingCommits.set(partition, offset);
    this.#committing ??= this.#flushCommits().finally(() => {
      this.#committing = undefined;
    });
  }

  async #flushCommits(): Promise<void> {
    let failures = 0;
    while (this.#pendingCommits.size > 0) {
      const consumer = this.#consumer;
      // Only partitions still ours: a revoked partition's new owner commits its own progress.
      for (const p of [...this.#pendingCommits.keys()]) if (!this.#assigned.has(p)) this.#pendingCommits.delete(p);
      if (this.#pendingCommits.size === 0) return;
      if (!consumer?.isActive()) {
        if (this.#stopping && !consumer) return;
        await sleep(200);
        continue;
      }
      const offsets = [...this.#pendingCommits];
      this.#pendingCommits.clear();
      try {
        await consumer.commit({
          offsets: offsets.map(([partition, offset]) => ({
            topic: this.topic,
            partition,
            offset: BigInt(offset),
            leaderEpoch: -1,
          })),
        });
        for (const [p, o] of offsets) {
          if ((this.#committedByUs.get(p) ?? -1) < o) this.#committedByUs.set(p, o);
        }
        failures = 0;
      } catch (error) {
        for (const [p, o] of offsets) {
          const pending = this.#pendingCommits.get(p);
          if (pending === undefined || pending < o) this.#pendingCommits.set(p, o);
        }
        failures += 1;
        if (this.#stopping && failures >= 5) {
          this.#log(`giving up on committing ${offsets.map(([p, o]) => `${p}@${o}`)}: ${(error as Error).message}`);
          return;
        }
        this.#logError('commit', `commit failed: ${(error as Error).message}; retrying`);
        await sleep(Math.min(2_000, 100 * 2 ** Math.min(failures, 5)));
      }
    }
  }

  // ---- lag -------------------------------------------------------------------------------------------------

  /** The group's lag over the whole topic, as the ESM's OffsetLag: high watermark minus committed offset. */
  async refreshLag(): Promise<number | undefined> {
    const consumer = this.#consumer;
    if (!consumer) return this.stats.lag;
    try {
      const metadata = await consumer.metadata({ topics: [this.topic] });
      const count = metadata.topics.get(this.topic)?.partitionsCount ?? 0;
      const partitions = Array.from({ length: count }, (_, i) => i);
      const [latest, earliest, committed] = await Promise.all([
        consumer.listOffsets({ topics: [this.topic] }),
        consumer.listOffsets({ topics: [this.topic], timestamp: EARLIEST }),
        consumer.listCommittedOffsets({ topics: [{ topic: this.topic, partitions }] }),
      ]);
      let lag = 0n;
      for (const p of partitions) {
        const high = latest.get(this.topic)?.[p] ?? 0n;
        const c = committed.get(this.topic)?.[p] ?? -1n;
        const from = c >= 0n ? c : (earliest.get(this.topic)?.[p] ?? 0n);
        if (high > from) lag += high - from;
      }
      this.stats.lag = Number(lag);
    } catch (error) {
      this.#logError('lag', `lag query failed: ${(error as Error).message}`);
    }
    return this.stats.lag;
  }

  // ---- shutdown --------------------------------------------------------------------------------------------

  /**
   * Stops taking batches, lets the ones in flight finish for up to `graceMs` (the rest are abandoned: not
   * committed, so the group redelivers them; their claims end at the invocation timeout), commits what succeeded,
   * leaves the group and stops the worker.
   */
  async stop(graceMs: number): Promise<{ abandoned: number }> {
    if (this.#stopping) return { abandoned: 0 };
    this.#stopping = true;
    clearTimeout(this.#dispatchTimer);
    this.#wakeFetch?.();
    const inFlight = [...this.#inFlight];
    let abandoned = 0;
    if (inFlight.length > 0) {
      const finished = await Promise.race([
        Promise.allSettled(inFlight).then(() => true),
        sleep(graceMs).then(() => false),
      ]);
      if (!finished) {
        abandoned = this.#scheduler.inFlight;
        this.#log(`abandoning ${abandoned} batch(es) still running after ${graceMs} ms; they will be redelivered`);
      }
    }
    await Promise.race([this.#retryQueue?.poller.stop(), sleep(graceMs)]);
    await Promise.all([...this.#hosts, ...(this.#retryQueue ? [this.#retryQueue.host] : [])].map((h) => h.close()));
    await Promise.allSettled([...this.#inFlight]);
    if (this.#committing) await Promise.race([this.#committing, sleep(10_000)]);
    await this.#fetchLoop?.catch(() => {});
    // The lag after the last commits, for the final summary.
    await this.refreshLag();
    const consumer = this.#consumer;
    this.#consumer = undefined;
    if (consumer) {
      try {
        await Promise.race([consumer.leaveGroup(), sleep(5_000)]);
      } catch (error) {
        this.#log(`leaving the group failed: ${(error as Error).message}`);
      }
      await this.#closeConsumer(consumer);
    }
    return { abandoned };
  }
}

/** `orders-0@10..14, orders-2@7` */
const describeRange = (records: readonly LambdaKafkaRecord[]): string => {
  const ranges = new Map<string, [number, number]>();
  for (const r of records) {
    const id = partitionId(r.topic, r.partition);
    const range = ranges.get(id);
    ranges.set(id, range ? [range[0], r.offset] : [r.offset, r.offset]);
  }
  return [...ranges].map(([id, [a, b]]) => (a === b ? `${id}@${a}` : `${id}@${a}..${b}`)).join(', ');
};

/** The runtime's own metrics; any other count in its EMF is the route's (for example StaleEventsIgnored). */
const STANDARD_METRICS = new Set<string>(Object.values(MetricName));
