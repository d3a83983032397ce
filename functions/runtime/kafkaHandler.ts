import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { Breakers } from './breaker/Breakers.ts';
import { type Classifier, withOverride } from './classify.ts';
import { sharedDynamoDbClient, sharedSqsClient } from './clients.ts';
import { SqsDeadLetterSink } from './deadLetter/SqsDeadLetterSink.ts';
import type { KafkaRecord, ValueSpec } from './decode.ts';
import { BridgeError, type RecordProcessingError } from './errors.ts';
import { isSqsEvent, type KafkaBatchResponse, type SqsBatchResponse } from './event.ts';
import { CompletedKeyCache } from './idempotency/CompletedKeyCache.ts';
import { DynamoDbIdempotencyStore } from './idempotency/DynamoDbIdempotencyStore.ts';
import type { FingerprintSource } from './idempotency/fingerprint.ts';
import { addRequestCounter, countRequestsIn } from './idempotency/requestCounter.ts';
import { WatermarkStore } from './idempotency/WatermarkStore.ts';
import { createLogger } from './logger.ts';
import { DEFAULT_NAMESPACE, publishInvocationMetrics } from './metrics.ts';
import { emptySamples, emptySummary, type InvocationSummary } from './observability.ts';
import {
  BatchProcessor,
  type BatchResult,
  type ParkedBatchResult,
  type ProcessFn,
  type RouteDefinition,
  type TransactFn,
} from './processor.ts';
import { prepareSchemas } from './registry/prefetchSchemas.ts';
import { ROUTE_SETTINGS_ENV, RouteSettings, type RouteSettingsInput } from './settings.ts';

type Common<V, K> = {
  /**
   * The route's name when `BRIDGE_ROUTE` is not set (a handler run on its own); deployed and local routes take the
   * config's name from `BRIDGE_ROUTE`. Metrics, logs, dedupe keys and dead letters carry it. Leave it out, and the
   * handler runs only where `BRIDGE_ROUTE` names its route: a copied handler then cannot speak for another route.
   */
  route?: string;
  /** A zod schema for JSON values, or a `Decoder` for raw bytes. */
  value: ValueSpec<V>;
  /** Keys are UTF-8 strings unless a schema or decoder is given. */
  key?: ValueSpec<K>;
  /** Default: `${topic}-${partition}@${offset}` (for a replay, the original record's). */
  idempotencyKey?: (record: KafkaRecord<V, K>) => string;
  /**
   * What must not change between two records with the same `idempotencyKey`: a string, or named fields (`{ amount,
   * account }`) so a conflict says which differ. A later record with the same key and another fingerprint is never
   * applied: it is dead-lettered as a `conflict`. Needs a business `idempotencyKey`.
   */
  fingerprint?: (record: KafkaRecord<V, K>) => FingerprintSource;
  /** Overrides the default classification; return undefined to fall back to it. */
  classify?: Classifier;
  /** 'skip' (the default) counts tombstones and moves on; 'process' hands them to the route with `value: null`. */
  tombstones?: 'skip' | 'process';
  /** Overrides the settings the deployment passes in `BRIDGE_ROUTE_SETTINGS`. */
  settings?: RouteSettingsInput;
  /** The clients for the idempotency table and the DLQ; by default one shared client each per process. */
  clients?: { dynamodb?: DynamoDBClient; sqs?: SQSClient };
};

export type KafkaHandlerOptions<V, K> = Common<V, K> &
  (
    | { process: ProcessFn<V, K>; transact?: undefined }
    /** Exactly-once effects: the items commit in ONE transaction with the dedupe marker. */
    | { transact: TransactFn<V, K>; process?: undefined }
  );

type Container<V, K> = {
  readonly route: string;
  readonly settings: RouteSettings;
  readonly strategy: 'watermark' | 'key';
  readonly cache: CompletedKeyCache;
  readonly breakers: Breakers;
  readonly processor: BatchProcessor<V, K>;
  readonly logger: ReturnType<typeof createLogger>;
};

const summaries = new WeakMap<object, InvocationSummary>();
/** The summary of the invocation that ran with this context (used by `invoke` and the local bridge). */
export const invocationSummaryOf = (context: object): InvocationSummary | undefined => summaries.get(context);

/** An environment variable the route cannot run without; its absence names the route and the variable. */
export const requiredEnv = (name: string, route: string): string => {
  const value = process.env[name];
  if (!value) throw new BridgeError(`route ${route}: environment variable ${name} is not set`);
  return value;
};

const loadSettings = (route: string, overrides: RouteSettingsInput | undefined): RouteSettings => {
  const raw = process.env[ROUTE_SETTINGS_ENV];
  let fromEnv: unknown = {};
  if (raw) {
    try {
      fromEnv = JSON.parse(raw);
    } catch (error) {
      throw new BridgeError(`route ${route}: ${ROUTE_SETTINGS_ENV} is not JSON`, { cause: error });
    }
  }
  const parsed = RouteSettings.safeParse({ ...(fromEnv as object), ...overrides });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BridgeError(`route ${route}: ${ROUTE_SETTINGS_ENV}: ${issue?.path.join('.')}: ${issue?.message}`);
  }
  return parsed.data;
};

/**
 * The framework-free runtime of one route: wires the store, the sink and the processor
 * for each invocation, and publishes metrics and logs whether it succeeds or not.
 */
export class KafkaRouteRuntime<V, K> {
  readonly #options: KafkaHandlerOptions<V, K>;
  #container: Container<V, K> | undefined;

  constructor(options: KafkaHandlerOptions<V, K>) {
    // Thrown where the handler module loads, so `invoke`, the local bridge and a deploy's first call all say it.
    if (options.fingerprint && !options.idempotencyKey)
      throw new BridgeError(
        `route ${options.route ?? process.env.BRIDGE_ROUTE ?? '?'}: a fingerprint needs a business idempotencyKey; ` +
          "keyed by the record's coordinates, a key never comes back with other content",
      );
    this.#options = options;
  }

  /**
   * What a warm container keeps, built at its first invocation. The route's name comes from `BRIDGE_ROUTE` (the
   * CDK and the local tools set the config's name there, which alarms, the dashboard and the tables use); the name
   * written in the handler is the fallback, for a handler run on its own.
   */
  #warm(): Container<V, K> {
    if (this.#container) return this.#container;
    const options = this.#options;
    const route = process.env.BRIDGE_ROUTE || options.route;
    if (!route) throw new BridgeError('BRIDGE_ROUTE is not set, and the handler names no route of its own');
    const settings = loadSettings(route, options.settings);
    const strategy = settings.idempotency.strategy ?? (options.idempotencyKey ? 'key' : 'watermark');
    if (strategy === 'watermark' && options.idempotencyKey)
      throw new BridgeError(
        `route ${route}: idempotency.strategy 'watermark' dedupes by the record's coordinates, but the handler sets ` +
          "an idempotencyKey: leave the strategy unset (or 'key') for a business key",
      );
    const definition: RouteDefinition<V, K> = {
      route,
      value: options.value,
      ...(options.key ? { key: options.key } : {}),
      ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}),
      ...(options.fingerprint ? { fingerprint: options.fingerprint } : {}),
      classify: withOverride(options.classify),
      tombstones: options.tombstones ?? 'skip',
      work: options.transact
        ? { mode: 'transact', transact: options.transact }
        : { mode: 'process', process: options.process as ProcessFn<V, K> },
    };
    this.#container = {
      route,
      settings,
      strategy,
      cache: new CompletedKeyCache(settings.idempotency.cacheSize),
      breakers: new Breakers(route, settings.breaker),
      processor: new BatchProcessor(definition),
      logger: createLogger(route),
    };
    return this.#container;
  }

  async invoke(
    event: unknown,
    context: Pick<Context, 'awsRequestId' | 'getRemainingTimeInMillis'>,
  ): Promise<KafkaBatchResponse | SqsBatchResponse | undefined> {
    const { route, settings, cache, breakers, processor, logger, strategy } = this.#warm();
    const namespace = process.env.METRICS_NAMESPACE || DEFAULT_NAMESPACE;
    const count = { requests: 0 };
    const client = this.#options.clients?.dynamodb
      ? addRequestCounter(this.#options.clients.dynamodb)
      : sharedDynamoDbClient();
    const table = {
      client,
      tableName: requiredEnv('IDEMPOTENCY_TABLE_NAME', route),
      route,
      ttlSeconds: settings.idempotency.ttlSeconds,
      clockSkewMs: settings.idempotency.clockSkewMs,
    };
    const perKey = new DynamoDbIdempotencyStore({ ...table, cache });
    const store = strategy === 'watermark' ? new WatermarkStore({ ...table, perKey }) : perKey;
    const sqs = this.#options.clients?.sqs ?? sharedSqsClient();
    const { maxMessageBytes } = settings.deadLetter;
    const sink = new SqsDeadLetterSink({ client: sqs, queueUrl: requiredEnv('DLQ_URL', route), maxMessageBytes });
    const { park } = settings.retry;
    const retrySink =
      park &&
      new SqsDeadLetterSink({
        client: sqs,
        queueUrl: requiredEnv('RETRY_QUEUE_URL', route),
        maxMessageBytes,
        retryDelaysSeconds: park.delaysSeconds,
      });
    const deps = { store, sink, retrySink, cache, breakers, settings };
    const fromRetryQueue = isSqsEvent(event);
    const started = Date.now();
    try {
      if (fromRetryQueue && !park)
        throw new BridgeError(`route ${route}: an SQS event, but the route has no retry queue (retry.park)`);
      // Registry-framed records: their schemas are fetched now, so decoding stays synchronous (a no-op otherwise).
      if (!fromRetryQueue) await prepareSchemas(this.#options, event);
      const result = await countRequestsIn<BatchResult | ParkedBatchResult>(count, () =>
        fromRetryQueue ? processor.runParked(event, context, deps) : processor.run(event, context, deps),
      );
      result.summary.ddbRequests = count.requests;
      summaries.set(context, result.summary);
      publishInvocationMetrics(namespace, route, result.summary, result.samples);
      const describe = (failure: RecordProcessingError) => ({
        topic: failure.coordinates.topic,
        partition: failure.coordinates.partition,
        offset: failure.coordinates.offset,
        errorKind: failure.kind,
        ...(settings.logPayloads ? { key: failure.record?.key ?? null, value: failure.record?.value ?? null } : {}),
      });
      for (const failure of result.failures) logger.error(failure.message, describe(failure));
      for (const letter of result.deadLetters) logger.warn(`dead-lettered: ${letter.message}`, describe(letter));
      if ('unreadable' in result)
        for (const { messageId, reason } of result.unreadable)
          logger.error(`retry queue message ${messageId} is left for the queue's own dead-letter queue: ${reason}`);
      logger.info('batch done', { requestId: context.awsRequestId, ...result.summary });
      // A batch that failed without a record to blame (its completes never landed) still says why.
      if ('error' in result && result.error) {
        if (result.failures.length === 0) logger.error(result.error.message);
        throw result.error;
      }
      return result.response;
    } catch (error) {
      if (!summaries.has(context)) {
        // The batch never ran (a malformed event, missing configuration): still count it.
        const summary = { ...emptySummary(), ddbRequests: count.requests, durationMs: Date.now() - started };
        summaries.set(context, summary);
        publishInvocationMetrics(namespace, route, summary, emptySamples());
        logger.error((error as Error).message, { requestId: context.awsRequestId });
      }
      throw error;
    }
  }
}

/**
 * A Kafka event source handler for one route (DESIGN §4): decode, dedupe, process in
 * partition order, dead-letter, and publish metrics. The result is a middy handler, so
 * users can `.use()` more middlewares on it.
 */
export const kafkaHandler = <V, K = string | null>(options: KafkaHandlerOptions<V, K>) => {
  const runtime = new KafkaRouteRuntime(options);
  // The runtime keeps its own deadlines (nothing starts within START_MARGIN_MS of the timeout; DynamoDB is not waited
  // for past FINISH_MARGIN_MS before it), so middy's early timeout could only swap the runtime's error for an AbortError.
  const handler = middy<unknown, KafkaBatchResponse | SqsBatchResponse | undefined, Error, Context>({
    timeoutEarlyInMillis: 0,
  }).handler((event, context) => runtime.invoke(event, context));
  // The local tools make values from the route's own schema (`load`, `invoke --generate`, `new-route`); the CDK app
  // checks the route's dedupe settings against what the handler sets (infra/config/handlerRules.ts).
  return Object.assign(handler, {
    schemas: { value: options.value, key: options.key } as RouteSchemas<V, K>,
    dedupe: { businessKey: options.idempotencyKey !== undefined, fingerprint: options.fingerprint !== undefined },
  });
};

/** What a route decodes its records with, as `kafkaHandler` exposes it on the handler. */
export type RouteSchemas<V, K> = { readonly value: ValueSpec<V>; readonly key?: ValueSpec<K> | undefined };
/** How a handler dedupes, as `kafkaHandler` exposes it on the handler. */
export type HandlerDedupe = { readonly businessKey: boolean; readonly fingerprint: boolean };
