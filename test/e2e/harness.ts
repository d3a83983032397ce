// End-to-end harness: a config of its own per run (unique name, so tables, queues, topics and consumer groups never
// collide with another run), traffic with duplicates and poison, the bridge as real child processes (so it can be
// SIGKILLed), and the checks every scenario ends with.
//
// Routes: `orders` and `payments` (the example routes), and `counted` (test/e2e/countingHandler.ts), a process-mode
// route whose only effect is a per-record counter, so "nothing applied twice" is checked record by record (orders
// ignores a repeated version, and payments is exactly-once by construction). A run may instead make `payments` a
// provisioned-mode route with partial batch responses and `retry.maxRecordAgeSeconds: 0` (`paymentsPartial`), checked
// against a replay of the payments rules over what the topic holds.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetQueueUrlCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { PaymentEvent } from '../../functions/handlers/payments.ts';
import {
  ADVANCE_EVERY,
  WATERMARK_KIND,
  watermarkFromItem,
} from '../../functions/runtime/idempotency/WatermarkStore.ts';
import { MAX_UNCONFIRMED_COMPLETES } from '../../functions/runtime/modes/ProcessMode.ts';
import {
  type BridgeConfig,
  consumerGroupIdOf,
  localResourceNames,
  parseBridgeConfig,
  resolveHandlerEntry,
} from '../../infra/config/index.ts';
import { type DeadLetter, peekDeadLetters } from '../../scripts/bridge/deadLetters.ts';
import type { OnFailureRecord } from '../../scripts/bridge/onFailureRecord.ts';
import { readTopic } from '../../scripts/bridge/readTopic.ts';
import { type ReconcileReport, reconcileRecords } from '../../scripts/bridge/reconcileRoute.ts';
import type { RouteSnapshot } from '../../scripts/bridge/stats.ts';
import { createAdmin, createProducer } from '../../scripts/lib/kafka.ts';
import type { LambdaKafkaRecord } from '../../scripts/lib/kafkaEvents.ts';
import { createTableIfMissing, ensureLocalResources, queueMessages } from '../../scripts/lib/localResources.ts';
import {
  OrdersTraffic,
  PaymentsTraffic,
  produceTraffic,
  type TrafficRecord,
  toProducerMessage,
} from '../../scripts/lib/traffic.ts';
import { scanAll } from '../helpers/aws.ts';
import { ROOT } from '../helpers/cli.ts';

const PLACEHOLDER_ARN = 'arn:aws:kafka:us-east-1:123456789012:cluster/e2e/00000000-0000-0000-0000-000000000000-1';

/** Endpoints a scenario runs against (the shared local services, or instances of its own). */
export type Endpoints = { brokers: string[]; dynamodb: string; sqs: string };

export const sharedEndpoints = (): Endpoints => ({
  brokers: (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
  dynamodb: process.env.AWS_ENDPOINT_URL_DYNAMODB ?? 'http://127.0.0.1:8000',
  sqs: process.env.AWS_ENDPOINT_URL_SQS ?? 'http://127.0.0.1:9324',
});

/** What a child process (the bridge, `load`, `reconcile`) needs to use these endpoints, with local credentials. */
export const endpointEnv = (endpoints: Endpoints) => ({
  KAFKA_BROKERS: endpoints.brokers.join(','),
  AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
  AWS_ENDPOINT_URL_SQS: endpoints.sqs,
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'local',
  AWS_SECRET_ACCESS_KEY: 'local',
  LOG_LEVEL: 'WARN',
});

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** A sleep that does not keep the process (jest) alive once everything else is done. */
const timeout = (ms: number) => new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms).unref());

export const waitFor = async (
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
};

export type RouteName = 'orders' | 'payments' | 'counted';
export const ALL_ROUTES: readonly RouteName[] = ['orders', 'payments', 'counted'];

export type RunOptions = {
  source?: 'msk' | 'self-managed';
  seed?: number;
  /** The routes of the run's config (default all three). */
  routes?: readonly RouteName[];
  /**
   * `payments` in provisioned mode with partial batch responses (`eventSource.reportBatchItemFailures`), and
   * `retry: { maxAttempts: 2, maxRecordAgeSeconds: 0 }` and no circuit breaker, so a record that keeps failing
   * transiently is dead-lettered as `exhausted` after its second attempt instead of being retried for an hour.
   */
  paymentsPartial?: boolean;
  /**
   * `counted` as a provisioned-mode route with the ESM's own controls: 2 pollers, filters that leave out CANCELLED
   * orders, an on-failure destination, 5 ESM retries with bisect, and a 2 s timeout (a record whose orderId starts
   * with `hang-` never returns; see countingHandler.ts). A destination and a finite retry count let the ESM skip
   * batches the runtime still holds, so the route opts in explicitly (`eventSource.acceptSkippedBatches`).
   */
  countedEsm?: boolean;
  /**
   * `counted` as a provisioned-mode route whose ESM skips batches with Lambda's own defaults for a destination:
   * `retryAttempts` -1 (Lambda applies at most 10 retries), `maxRecordAgeSeconds` 600, no bisect, opted in with
   * `acceptSkippedBatches`; 2 pollers (partitions 0 and 2 share poller 0), batchSize 4, no batching window and a 2 s
   * timeout. The runtime's own policy (10 attempts, 590 s) never ends before the ESM's.
   */
  countedSkips?: boolean;
  /** `counted` with a small, quick circuit breaker (COUNTED_BREAKER), for outages of its downstream. */
  countedBreaker?: boolean;
  /** `counted` parks failing records in its retry queue (COUNTED_PARK, ordering by key), without a circuit breaker. */
  countedPark?: boolean;
};

/** The retry queue of a `countedPark` run: three tries from the queue, 4 s, 12 s and 28 s after parking. */
export const COUNTED_PARK = { delaysSeconds: [4, 8, 16], ordering: 'key' } as const;

/** What a `countedSkips` run's `counted` route is configured with, for its checks. */
export const COUNTED_SKIPS = { batchSize: 4, maxRecordAgeSeconds: 600 } as const;

/** The breaker of a `countedBreaker` run: opens after 5 calls, open 1 s doubling to 2 s, one probe. */
export const COUNTED_BREAKER = {
  minimumCalls: 5,
  windowSeconds: 10,
  openMs: 1_000,
  maxOpenMs: 2_000,
  halfOpenProbes: 1,
} as const;

/** The test-only handler of `counted`, and the hook that lets the bridge load it (see test/e2e/handlerOverride.ts). */
const COUNTING_HANDLER = path.join(ROOT, 'test/e2e/countingHandler.ts');
const HANDLER_OVERRIDE = path.join(ROOT, 'test/e2e/handlerOverride.ts');
/** What the config names as `counted`'s handler: it must exist under functions/handlers/; the hook replaces it. */
const COUNTED_PLACEHOLDER = 'audit.ts';

/**
 * The README's crash window in process mode, per invocation in flight. The counting route is keyed by coordinates, so
 * on the watermark strategy: per partition, the records settled since its last landed advance (an advance every
 * ADVANCE_EVERY, one in flight, and the next record waits while the partitions' records beyond one advance each reach
 * MAX_UNCONFIRMED_COMPLETES) plus the one it had started. The local bridge runs one invocation at a time per poller,
 * one poller by default, holding all of the topic's partitions.
 */
export const PARTITIONS = 3;
export const CRASH_WINDOW_PER_PARTITION = MAX_UNCONFIRMED_COMPLETES + ADVANCE_EVERY + 1;
export const CRASH_WINDOW = MAX_UNCONFIRMED_COMPLETES + (ADVANCE_EVERY + 1) * PARTITIONS;

/** The reason of a produced record that reuses an earlier txId with other content (see `produceConflicts`). */
const CONFLICT_REASON = 'conflict: reuses the txId of';

const coordinatesOf = (r: { topic: string; partition: number; offset: number }) =>
  `${r.topic}-${r.partition}@${r.offset}`;

/** A run: its config on disk, its traffic, and clients on its endpoints. */
export class Run {
  readonly id = `e2e${randomUUID().slice(0, 8)}`;
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-e2e-'));
  readonly configPath = path.join(this.dir, 'bridge.config.json');
  readonly config: BridgeConfig;
  readonly endpoints: Endpoints;
  readonly routes: readonly RouteName[];
  readonly paymentsPartial: boolean;
  readonly dynamodb: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly orders: OrdersTraffic;
  readonly payments: PaymentsTraffic;
  readonly counted: OrdersTraffic;
  readonly produced: Record<RouteName, TrafficRecord[]> = { orders: [], payments: [], counted: [] };
  readonly bridges: BridgeProcess[] = [];
  /** `counted`'s counter table, on the shared DynamoDB Local whatever the run's own endpoints are. */
  readonly countsTable: string;
  readonly countsEndpoint = sharedEndpoints().dynamodb;
  readonly counts: DynamoDBClient;
  /** Until this epoch ms, `counted`'s downstream fails every call (bridges started after it is set). */
  outageUntil = 0;
  /** If set, the outage fails only the records of this Kafka key (UTF-8). */
  outageKey: string | undefined;

  constructor(endpoints: Endpoints, options: RunOptions = {}) {
    this.endpoints = endpoints;
    this.routes = options.routes ?? ALL_ROUTES;
    this.paymentsPartial = options.paymentsPartial ?? false;
    this.countsTable = `${this.id}-counts`;
    const routes = {
      orders: {
        name: 'orders',
        topic: `${this.id}-orders`,
        handler: 'orders.ts',
        batchSize: 100,
        maxBatchingWindowSeconds: 0,
        timeoutSeconds: 12,
        retry: { maxAttempts: 5, baseDelayMs: 50, maxDelayMs: 1_000 },
        tables: [{ name: 'orders', partitionKey: 'orderId', env: 'ORDERS_TABLE_NAME' }],
      },
      payments: {
        name: 'payments',
        topic: `${this.id}-payments`,
        handler: 'payments.ts',
        batchSize: 50,
        maxBatchingWindowSeconds: 0,
        timeoutSeconds: 12,
        retry: { maxAttempts: 10, baseDelayMs: 50, maxDelayMs: 1_000 },
        tables: [
          { name: 'accounts', partitionKey: 'accountId', env: 'ACCOUNTS_TABLE_NAME' },
          { name: 'ledger', partitionKey: 'txId', env: 'LEDGER_TABLE_NAME' },
        ],
        ...(this.paymentsPartial && {
          mode: { provisioned: { minPollers: 1, maxPollers: 3 } },
          eventSource: { reportBatchItemFailures: true },
          retry: { maxAttempts: 2, baseDelayMs: 50, maxDelayMs: 500, maxRecordAgeSeconds: 0 },
          // This run is about the exhausted path; with the breaker on, an outage holds its records instead (see
          // breaker.e2e.test.ts), and none would ever be exhausted.
          breaker: { enabled: false },
        }),
      },
      counted: {
        name: 'counted',
        topic: `${this.id}-counted`,
        handler: COUNTED_PLACEHOLDER,
        batchSize: 100,
        maxBatchingWindowSeconds: 0,
        timeoutSeconds: 12,
        retry: { maxAttempts: 5, baseDelayMs: 50, maxDelayMs: 1_000 },
        ...(options.countedEsm && {
          mode: { provisioned: { minPollers: 2, maxPollers: 2 } },
          batchSize: 4,
          timeoutSeconds: 2,
          idempotency: { clockSkewMs: 200 },
          eventSource: {
            onFailure: 'sqs',
            retryAttempts: 5,
            bisectOnError: true,
            acceptSkippedBatches: true,
            filters: [{ value: { status: [{ 'anything-but': ['CANCELLED'] }] } }],
          },
        }),
        ...(options.countedSkips && {
          mode: { provisioned: { minPollers: 2, maxPollers: 2 } },
          batchSize: COUNTED_SKIPS.batchSize,
          timeoutSeconds: 2,
          idempotency: { clockSkewMs: 200 },
          retry: { maxAttempts: 10, baseDelayMs: 50, maxDelayMs: 1_000, maxRecordAgeSeconds: 590 },
          eventSource: {
            onFailure: 'sqs',
            retryAttempts: -1,
            maxRecordAgeSeconds: COUNTED_SKIPS.maxRecordAgeSeconds,
            acceptSkippedBatches: true,
          },
        }),
        ...(options.countedBreaker && { breaker: COUNTED_BREAKER }),
        ...(options.countedPark && {
          retry: { maxAttempts: 5, baseDelayMs: 50, maxDelayMs: 200, park: COUNTED_PARK },
          breaker: { enabled: false },
        }),
      },
    };
    const raw = {
      name: this.id,
      source:
        options.source === 'self-managed'
          ? {
              kind: 'self-managed',
              bootstrapServers: endpoints.brokers,
              auth: 'sasl-scram-512',
              secretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-abc',
            }
          : { kind: 'msk', clusterArn: PLACEHOLDER_ARN, auth: 'iam' },
      routes: this.routes.map((name) => routes[name]),
    };
    fs.writeFileSync(this.configPath, JSON.stringify(raw, null, 2));
    this.config = parseBridgeConfig(raw, this.configPath);
    const aws = { region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };
    this.dynamodb = new DynamoDBClient({ ...aws, endpoint: endpoints.dynamodb });
    this.sqs = new SQSClient({ ...aws, endpoint: endpoints.sqs });
    this.counts = new DynamoDBClient({ ...aws, endpoint: this.countsEndpoint });
    const seed = options.seed ?? 11;
    const traffic = { duplicates: 0.05, poison: 0.01, tombstones: 0.004, idPrefix: `${this.id}-` };
    this.orders = new OrdersTraffic({ seed, ...traffic, openOrders: 150 });
    this.payments = new PaymentsTraffic({ seed: seed + 1, ...traffic, accounts: 40 });
    this.counted = new OrdersTraffic({ seed: seed + 2, ...traffic, idPrefix: `${this.id}-c-`, openOrders: 150 });
  }

  /** The environment of child processes: this run's endpoints, and what `counted` and its handler override need. */
  env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      ...endpointEnv(this.endpoints),
      E2E_COUNTS_ENDPOINT: this.countsEndpoint,
      E2E_COUNTS_TABLE: this.countsTable,
      E2E_OUTAGE_UNTIL: String(this.outageUntil),
      E2E_OUTAGE_KEY: this.outageKey ?? '',
      E2E_HANDLER_OVERRIDES: JSON.stringify({
        counted: { replaces: resolveHandlerEntry({ handler: COUNTED_PLACEHOLDER }), module: COUNTING_HANDLER },
      }),
    };
  }

  route(name: RouteName) {
    return this.config.routes.find((r) => r.name === name) as BridgeConfig['routes'][number];
  }

  /** Tables, queues and 3-partition topics on this run's endpoints, and the counter table. */
  async createResources(): Promise<void> {
    const saved = { ...process.env };
    Object.assign(process.env, this.env());
    try {
      await ensureLocalResources(this.config, { dynamodb: this.dynamodb, sqs: this.sqs, partitions: PARTITIONS });
    } finally {
      for (const key of Object.keys(this.env())) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }
    if (this.routes.includes('counted')) await createTableIfMissing(this.counts, this.countsTable, 'pk', false);
  }

  /** Produces `count` records to each route's topic (rate 0: at once). */
  async produce(count: number, rate = 0): Promise<void> {
    const producer = createProducer(this.endpoints.brokers, { clientId: `${this.id}-producer` });
    try {
      await Promise.all(
        this.routes.map((name) =>
          produceTraffic(producer, this.route(name).topic, this[name], {
            rate,
            count,
            maxBatch: 500,
            onSent: (records) => this.produced[name].push(...records),
          }),
        ),
      );
    } finally {
      await producer.close();
    }
  }

  /**
   * Repeats the txIds of `count` earlier legitimate payments with the amount one higher (what a buggy upstream that
   * reuses ids sends). `payments` fingerprints its records, so each must be dead-lettered as a `conflict`, and the
   * tables must not change.
   */
  async produceConflicts(count: number): Promise<void> {
    const originals = this.produced.payments.filter((r) => r.kind === 'event').slice(0, count);
    const conflicting = originals.map((original): TrafficRecord => {
      const payment = JSON.parse((original.value as Buffer).toString('utf8')) as PaymentEvent;
      const value = Buffer.from(JSON.stringify({ ...payment, amount: payment.amount + 1 }));
      return { ...original, value, kind: 'poison', reason: `${CONFLICT_REASON} ${payment.txId}` };
    });
    const producer = createProducer(this.endpoints.brokers, { clientId: `${this.id}-conflicts` });
    try {
      await producer.send({ messages: conflicting.map((r) => toProducerMessage(this.route('payments').topic, r)) });
      this.produced.payments.push(...conflicting);
    } finally {
      await producer.close();
    }
  }

  startBridge(extraArgs: string[] = []): BridgeProcess {
    const bridge = new BridgeProcess(this, extraArgs);
    this.bridges.push(bridge);
    return bridge;
  }

  async cleanup(): Promise<void> {
    for (const bridge of this.bridges) bridge.kill();
    fs.rmSync(this.dir, { recursive: true, force: true });
    this.dynamodb.destroy();
    this.sqs.destroy();
    this.counts.destroy();
  }

  // ---- what the run's services hold ------------------------------------------------------------------------

  async queueUrl(name: RouteName): Promise<string> {
    const queue = localResourceNames(this.config).deadLetterQueues[name] as string;
    const { QueueUrl } = await this.sqs.send(new GetQueueUrlCommand({ QueueName: queue }));
    return QueueUrl as string;
  }

  /** Messages in the route's retry queue: visible, in flight or waiting out their delay. */
  async retryQueueDepth(name: RouteName): Promise<number> {
    const queue = localResourceNames(this.config).retryQueues[name] as string;
    const { QueueUrl } = await this.sqs.send(new GetQueueUrlCommand({ QueueName: queue }));
    return (await queueMessages(this.sqs, QueueUrl as string)).total;
  }

  /** What the local stand-in for the route's on-failure destination holds, read without consuming it. */
  async onFailureRecords(name: RouteName): Promise<OnFailureRecord[]> {
    const queue = localResourceNames(this.config).onFailureQueues[name] as string;
    const { QueueUrl } = await this.sqs.send(new GetQueueUrlCommand({ QueueName: queue }));
    const received = await this.sqs.send(
      new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 0, WaitTimeSeconds: 1 }),
    );
    return (received.Messages ?? []).map((m) => JSON.parse(m.Body as string) as OnFailureRecord);
  }

  /** The route's items in the idempotency table. */
  async idempotencyItems(name: RouteName) {
    const items = await scanAll(localResourceNames(this.config).idempotencyTable, this.dynamodb);
    return items.filter((i) => i.pk?.S?.startsWith(`${name}#`));
  }

  scan(table: string) {
    return scanAll(localResourceNames(this.config).tables[table] as string, this.dynamodb);
  }

  /** The route's dead letters, read without consuming them. */
  async deadLetters(name: RouteName): Promise<DeadLetter[]> {
    const { letters, unreadable } = await peekDeadLetters(this.sqs, await this.queueUrl(name));
    expect({ route: name, unreadable }).toEqual({ route: name, unreadable: 0 });
    return letters.filter((l) => l.route === name);
  }

  /** The group's committed offsets per partition of the route's topic (what a restarted bridge resumes from). */
  async committedOffsets(name: RouteName): Promise<Map<number, number>> {
    const admin = createAdmin(this.endpoints.brokers, { clientId: `${this.id}-admin` });
    try {
      const groupId = consumerGroupIdOf(this.config, this.route(name));
      const [group] = await admin.listConsumerGroupOffsets({ groups: [groupId] });
      const topic = group?.topics.find((t) => t.name === this.route(name).topic);
      return new Map((topic?.partitions ?? []).map((p) => [p.partitionIndex, Number(p.committedOffset)]));
    } finally {
      await admin.close();
    }
  }

  /** `counted`'s counters: coordinates → how many times the record was applied, and by which invocations. */
  async applications(): Promise<
    Map<string, { applications: number; requestIds: string[]; appliedAt: number | undefined }>
  > {
    const items = await scanAll(this.countsTable, this.counts);
    return new Map(
      items.map((i) => [
        i.pk?.S as string,
        {
          applications: Number(i.applications?.N ?? 0),
          requestIds: [...(i.requestIds?.SS ?? [])],
          appliedAt: i.appliedAt?.N === undefined ? undefined : Number(i.appliedAt.N),
        },
      ]),
    );
  }

  /** Every distinct order event applied once: each order's final state is its last legitimate event. */
  async ordersState(): Promise<{ expected: Map<string, string>; actual: Map<string, string> }> {
    const expected = new Map([...this.orders.expected()].map(([id, s]) => [id, `${s.status}/${s.version}`]));
    const items = await this.scan('orders');
    const actual = new Map(items.map((i) => [i.orderId?.S as string, `${i.status?.S}/${i.version?.N}`]));
    return { expected, actual };
  }

  /** The ledger and the balances the tables hold. */
  async paymentsTables() {
    const ledgerItems = await this.scan('ledger');
    const accountItems = await this.scan('accounts');
    return {
      ledger: new Map(ledgerItems.map((i) => [i.txId?.S as string, Number(i.amount?.N)])),
      balances: new Map(accountItems.map((i) => [i.accountId?.S as string, Number(i.balance?.N)])),
    };
  }

  /** Every legitimate payment in the ledger once, and balances that add up to exactly those payments. */
  async paymentsState() {
    const { ledger, balances } = this.payments.expected();
    const actual = await this.paymentsTables();
    return {
      expectedLedger: new Map([...ledger].map(([id, p]) => [id, p.amount])),
      actualLedger: actual.ledger,
      expectedBalances: new Map([...balances].map(([id, a]) => [id, a.balance])),
      actualBalances: actual.balances,
    };
  }

  /** The values of the produced records a route must dead-letter (for `counted`, only what fails the schema). */
  poisonValues(name: RouteName): Set<string> {
    const poison = this.produced[name].filter(
      (r) => r.kind === 'poison' && (name !== 'counted' || !r.reason?.startsWith('illegal transition')),
    );
    return new Set(poison.map((r) => (r.value as Buffer).toString('base64')));
  }
}

/** `npm run bridge` as a child process, its JSON progress parsed as it comes. */
export class BridgeProcess {
  readonly child: ChildProcess;
  readonly progress = new Map<string, RouteSnapshot>();
  /** When each route's latest progress line arrived. */
  readonly #progressAt = new Map<string, number>();
  readonly lines: string[] = [];
  /** Every lag value reported per route, in order. */
  readonly lags = new Map<string, number[]>();
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #exited = false;
  readonly #routes: readonly RouteName[];

  constructor(run: Run, extraArgs: string[]) {
    this.#routes = run.routes;
    this.child = spawn(
      process.execPath,
      [
        '--import',
        HANDLER_OVERRIDE,
        path.join(ROOT, 'scripts/bridge/cli.ts'),
        '--config',
        run.configPath,
        '--json',
        '--progress-interval',
        '1',
        '--backoff-ms',
        '200',
        '--max-backoff-ms',
        '2000',
        '--handler-logs',
        'none',
        '--no-create',
        ...extraArgs,
      ],
      { cwd: ROOT, env: run.env(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.exit = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.#exited = true;
        resolve({ code, signal });
      }),
    );
    for (const stream of [this.child.stdout, this.child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => {
        this.lines.push(line);
        if (!line.startsWith('{')) return;
        try {
          const message = JSON.parse(line) as { type: string } & RouteSnapshot;
          if (message.type === 'progress' || message.type === 'final') {
            this.progress.set(message.route, message);
            this.#progressAt.set(message.route, Date.now());
            if (message.lag !== undefined)
              this.lags.set(message.route, [...(this.lags.get(message.route) ?? []), message.lag]);
          }
        } catch {}
      });
    }
  }

  get alive(): boolean {
    return !this.#exited;
  }

  committed(): number {
    return [...this.progress.values()].reduce((sum, s) => sum + s.committed, 0);
  }

  /** Every route reports lag 0 in a progress line that arrived after `since` (epoch ms), not in an older one. */
  drained(since = 0): boolean {
    return this.#routes.every((r) => this.progress.get(r)?.lag === 0 && (this.#progressAt.get(r) ?? 0) > since);
  }

  output(): string {
    return this.lines.slice(-60).join('\n');
  }

  /** The messages of the bridge's own log lines (`{"type":"log"}`) from line `from` on. */
  logMessages(from = 0): string[] {
    return this.lines.slice(from).flatMap((line) => {
      if (!line.startsWith('{')) return [];
      try {
        const message = JSON.parse(line) as { type?: string; message?: string };
        return message.type === 'log' && typeof message.message === 'string' ? [message.message] : [];
      } catch {
        return [];
      }
    });
  }

  async stop(timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.#exited) return this.exit;
    this.child.kill('SIGTERM');
    const result = await Promise.race([this.exit, timeout(timeoutMs)]);
    if (!result) {
      this.child.kill('SIGKILL');
      throw new Error(`bridge did not stop within ${timeoutMs} ms:\n${this.output()}`);
    }
    return result;
  }

  kill(): void {
    if (!this.#exited) this.child.kill('SIGKILL');
  }
}

/**
 * Runs `npm run bridge` for one route of a config of the test's own (no Run), until the route has committed at least
 * `records` and its lag is 0; stops it gracefully and returns the route's last progress. `hook` preloads a module
 * (test/e2e/handlerOverride.ts) in the bridge's threads. The child is killed if the route does not drain.
 */
export const drainRoute = async (options: {
  configPath: string;
  route: string;
  records: number;
  env: NodeJS.ProcessEnv;
  hook?: string;
  timeoutMs: number;
}): Promise<RouteSnapshot | undefined> => {
  const progress = new Map<string, RouteSnapshot>();
  const child = spawn(
    process.execPath,
    [
      ...(options.hook ? ['--import', options.hook] : []),
      path.join(ROOT, 'scripts/bridge/cli.ts'),
      ...['--config', options.configPath, '--route', options.route, '--json'],
      ...['--progress-interval', '1', '--handler-logs', 'none'],
    ],
    { cwd: ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    if (!line.startsWith('{')) return;
    const message = JSON.parse(line) as { type: string } & RouteSnapshot;
    if (message.type === 'progress' || message.type === 'final') progress.set(message.route, message);
  });
  try {
    await waitFor(
      `the bridge to drain route ${options.route}`,
      () => progress.get(options.route)?.lag === 0 && (progress.get(options.route)?.committed ?? 0) >= options.records,
      options.timeoutMs,
    );
    child.kill('SIGTERM');
    await exited;
  } finally {
    child.kill('SIGKILL');
  }
  return progress.get(options.route);
};

/** Waits until every route of the run has lag 0, as reported by one of its live bridges. */
export const waitDrained = async (run: Run, timeoutMs: number): Promise<void> => {
  const since = Date.now();
  await waitFor(
    'the bridge to drain both topics (lag 0)',
    () => run.bridges.some((b) => b.alive && b.drained(since)),
    timeoutMs,
  ).catch((error: Error) => {
    const live = run.bridges.filter((b) => b.alive);
    throw new Error(`${error.message}\n${live.map((b) => b.output()).join('\n----\n')}`);
  });
};

/**
 * Where a SIGKILL left each partition of `counted`: the group's committed offsets right after the kill. Records below
 * them were committed, so their completes had been written; only records at or above them were in flight.
 */
export type CrashWindow = ReadonlyMap<number, number>;

export type Consistency = {
  /** Dead letters sent more than once (same record, same idempotency key). */
  duplicateDeadLetters: number;
  /** `counted` records applied twice, all inside the crash window. */
  appliedTwice: string[];
  /** Records dead-lettered as `exhausted` (only a `paymentsPartial` run has them). */
  exhausted: number;
  /** Letters ElasticMQ acknowledged and then lost with its stop (see `sqsStoppedAt`). */
  lostByElasticMq: string[];
};

/**
 * The checks every scenario ends with, per route: reconcile finds 0 missing and 0 in progress; the DLQ holds exactly
 * the records the route must dead-letter; `orders` and `payments` end in exactly the state their traffic model
 * predicts; every `counted` record not dead-lettered (and not a tombstone) was applied exactly once.
 */
export const expectConsistent = async (
  run: Run,
  options: {
    /**
     * The dead-letter queue is at least once: when DynamoDB fails, or the process dies, after a dead letter was sent
     * but before its DEAD_LETTERED marker was written, the redelivery sends the same envelope again; when SQS stops
     * after storing a message but before answering, the retried send stores it again. Scenarios that break a service
     * or kill the bridge accept such copies (same record, same idempotency key); the others must have none.
     */
    allowDuplicateDeadLetters?: boolean;
    /**
     * The bridge was SIGKILLed, or its table stopped taking writes: a `counted` record may have been applied twice if
     * it is inside the README's crash window: at or above its partition's committed offset then, at most
     * CRASH_WINDOW_PER_PARTITION per partition.
     */
    crashWindow?: CrashWindow;
    /**
     * When the run's ElasticMQ was stopped. ElasticMQ loses messages it acknowledged just before a SIGTERM under load
     * (19 to 42 of 190 to 330 messages acknowledged in the 0.7 s before each of six stops, measured with four senders
     * and its H2 message store), which SQS never does. A letter the runtime saw acknowledged (its decision marked
     * `letterSent`) and decided within LOST_LETTER_WINDOW_MS before the stop then counts as sent, and is logged.
     */
    sqsStoppedAt?: number;
  } = {},
): Promise<Consistency> => {
  const result: Consistency = { duplicateDeadLetters: 0, appliedTwice: [], exhausted: 0, lostByElasticMq: [] };
  for (const name of run.routes) {
    const route = run.route(name);
    const records = await readTopic(run.endpoints.brokers, route.topic);
    const report: ReconcileReport = await reconcileRecords({
      config: run.config,
      route,
      records,
      dynamodb: run.dynamodb,
      sqs: run.sqs,
      queueUrl: await run.queueUrl(name),
    });
    // One line each, so a failure stays readable in a clipped CI log.
    const missing = report.missingRecords.map(partitionOffset).join(' ');
    const inProgress = report.inProgressRecords.map(partitionOffset).join(' ');
    if (missing || inProgress) await logDiagnostics(run, name);
    expect({ route: name, missing, inProgress }).toEqual({ route: name, missing: '', inProgress: '' });
    expect(report.records).toBe(run.produced[name].length);
    expect(report.skipped.tombstones).toBe(run.produced[name].filter((r) => r.kind === 'tombstone').length);

    const letters = await run.deadLetters(name);
    const dead = letters.map((l) => `${l.partition}@${l.offset}`).sort();
    const lost =
      options.sqsStoppedAt === undefined ? [] : await lettersLostByStop(run, name, letters, options.sqsStoppedAt);
    result.lostByElasticMq.push(...lost.map(coordinatesOf));
    const distinct = [...new Set([...dead, ...lost.map((l) => `${l.partition}@${l.offset}`)])].sort();
    result.duplicateDeadLetters += dead.length - distinct.length;
    if (!options.allowDuplicateDeadLetters) expect({ route: name, dead }).toEqual({ route: name, dead: distinct });

    if (name === 'payments' && run.paymentsPartial) {
      result.exhausted += await expectPaymentsModel(run, records, letters);
      continue;
    }
    // The DLQ holds exactly the poison records, as permanent failures.
    const poisonValues = run.poisonValues(name);
    const poison = records
      .filter((r) => r.value !== null && poisonValues.has(r.value))
      .map((r) => `${r.partition}@${r.offset}`)
      .sort();
    expect(poison.length).toBe(poisonValues.size);
    expect({ route: name, dead: distinct }).toEqual({ route: name, dead: poison });
    // Poison is permanent; a reused txId with other content is a conflict.
    const conflicts = new Set(
      run.produced[name]
        .filter((r) => r.reason?.startsWith(CONFLICT_REASON))
        .map((r) => (r.value as Buffer).toString('base64')),
    );
    const kindOf = (l: DeadLetter) => (l.value !== null && conflicts.has(l.value) ? 'conflict' : 'permanent');
    expect(letters.filter((l) => l.errorKind !== kindOf(l))).toEqual([]);

    if (name === 'orders') {
      const orders = await run.ordersState();
      expect(orders.actual).toEqual(orders.expected);
    }
    if (name === 'payments') {
      const payments = await run.paymentsState();
      expect(payments.actualLedger).toEqual(payments.expectedLedger);
      expect(payments.actualBalances).toEqual(payments.expectedBalances);
    }
    if (name === 'counted')
      result.appliedTwice = await expectAppliedOnce(run, records, [...letters, ...lost], options.crashWindow);
  }
  return result;
};

/** How long before an ElasticMQ stop a lost letter may have been decided: an invocation's timeout (12 s) and more. */
const LOST_LETTER_WINDOW_MS = 15_000;

/** Letters the runtime had acknowledged by the queue just before it stopped, and that the queue no longer holds. */
const lettersLostByStop = async (
  run: Run,
  name: RouteName,
  letters: readonly DeadLetter[],
  stoppedAt: number,
): Promise<Array<{ topic: string; partition: number; offset: number }>> => {
  const inQueue = new Set(letters.map(coordinatesOf));
  return (await run.idempotencyItems(name))
    .filter((item) => {
      const settledAt = Number(item.settledAt?.N);
      return (
        item.status?.S === 'DEAD_LETTERED' &&
        item.letterSent?.BOOL === true &&
        settledAt >= stoppedAt - LOST_LETTER_WINDOW_MS &&
        settledAt <= stoppedAt
      );
    })
    .map((item) => ({
      topic: item.topic?.S ?? '',
      partition: Number(item.partition?.N),
      offset: Number(item.offset?.N),
    }))
    .filter((at) => !inQueue.has(coordinatesOf(at)));
};

const partitionOffset = (c: { readonly partition: number; readonly offset: number }) => `${c.partition}@${c.offset}`;

/** What a failed check needs to be understood from a CI log: the route's watermarks and its bridges' last words. */
const logDiagnostics = async (run: Run, name: RouteName): Promise<void> => {
  const items = await scanAll(localResourceNames(run.config).idempotencyTable, run.dynamodb);
  const watermarks = items
    .filter((item) => item.kind?.S === WATERMARK_KIND && item.pk?.S?.startsWith(`${name}#wm#`))
    .map((item) => {
      const w = watermarkFromItem(item);
      return `${w.partition}: committed ${w.committedOffset}, touched ${w.touchedOffset}, epoch ${w.epoch}, owner ${w.owner}`;
    });
  const messages = run.bridges.flatMap((bridge) => bridge.logMessages()).filter((m) => m.includes(name));
  console.info(
    `${name}: watermarks [${watermarks.join('; ')}]\n${name}: last bridge messages:\n${messages.slice(-40).join('\n')}`,
  );
};

/**
 * `counted`, record by record: a tombstone or a dead-lettered record was never applied; every other record was
 * applied exactly once, except, after a SIGKILL, records inside the crash window, which may have been applied twice.
 */
const expectAppliedOnce = async (
  run: Run,
  records: readonly LambdaKafkaRecord[],
  letters: ReadonlyArray<{ topic: string; partition: number; offset: number }>,
  crashWindow: CrashWindow | undefined,
): Promise<string[]> => {
  const applications = await run.applications();
  const dead = new Set(letters.map((l) => coordinatesOf(l)));
  const wrong: Array<{ record: string; expected: string; applications: number; requestIds: string[] }> = [];
  const twice: LambdaKafkaRecord[] = [];
  for (const record of records) {
    const c = coordinatesOf(record);
    const applied = applications.get(c) ?? { applications: 0, requestIds: [] };
    applications.delete(c);
    const never = record.value === null || dead.has(c);
    if (never && applied.applications === 0) continue;
    if (!never && applied.applications === 1) continue;
    const inWindow = crashWindow !== undefined && record.offset >= (crashWindow.get(record.partition) ?? 0);
    if (!never && applied.applications === 2 && inWindow) {
      twice.push(record);
      continue;
    }
    wrong.push({
      record: c,
      expected: never ? (record.value === null ? 'tombstone: 0' : 'dead-lettered: 0') : 'exactly 1',
      ...applied,
    });
  }
  // Counters for records the topic does not hold would be effects out of nowhere.
  for (const [c, applied] of applications) wrong.push({ record: c, expected: 'no such record', ...applied });
  if (wrong.length > 0) await logDiagnostics(run, 'counted');
  expect({
    route: 'counted',
    wrong: wrong.map((w) => `${w.record}: ${w.expected}, applied ${w.applications} (${w.requestIds.join(' ')})`),
  }).toEqual({ route: 'counted', wrong: [] });
  // The crash window: per partition (one invocation in flight each), its unwritten completes and one started record.
  const perPartition = new Map<number, number>();
  for (const r of twice) perPartition.set(r.partition, (perPartition.get(r.partition) ?? 0) + 1);
  for (const [partition, n] of perPartition) {
    expect({ partition, appliedTwice: n, window: CRASH_WINDOW_PER_PARTITION }).toEqual({
      partition,
      appliedTwice: Math.min(n, CRASH_WINDOW_PER_PARTITION),
      window: CRASH_WINDOW_PER_PARTITION,
    });
  }
  return twice.map(coordinatesOf);
};

/**
 * `payments` with partial batch responses and `maxRecordAgeSeconds: 0`: some legitimate payments were dead-lettered as
 * `exhausted`, and later payments of their accounts may then be refused (an overdraft once a credit is missing). The
 * payments rules are replayed over the topic, partition by partition in offset order, with the exhausted records
 * taken out: the ledger, the balances and the dead letters (records and kinds) must be exactly what they predict.
 */
const expectPaymentsModel = async (
  run: Run,
  records: readonly LambdaKafkaRecord[],
  letters: readonly DeadLetter[],
): Promise<number> => {
  const exhausted = new Set(letters.filter((l) => l.errorKind === 'exhausted').map((l) => coordinatesOf(l)));
  const ledger = new Map<string, number>();
  const accounts = new Map<string, { balance: number; currency: string }>();
  const deadLettered = new Map<string, string>();
  const keys = new Set<string>();
  const ordered = [...records].sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  for (const record of ordered) {
    if (record.value === null) continue;
    const c = coordinatesOf(record);
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(record.value, 'base64').toString('utf8'));
    } catch {
      deadLettered.set(c, 'permanent');
      continue;
    }
    const parsed = PaymentEvent.safeParse(json);
    if (!parsed.success) {
      deadLettered.set(c, 'permanent');
      continue;
    }
    const tx = parsed.data;
    // The idempotency key is the txId: a copy of a payment applied or dead-lettered before is a duplicate.
    if (keys.has(tx.txId)) continue;
    keys.add(tx.txId);
    if (exhausted.has(c)) {
      deadLettered.set(c, 'exhausted');
      continue;
    }
    const account = accounts.get(tx.accountId);
    const applies =
      tx.amount > 0
        ? account === undefined || account.currency === tx.currency
        : account !== undefined && account.currency === tx.currency && account.balance >= -tx.amount;
    if (!applies) {
      deadLettered.set(c, 'permanent');
      continue;
    }
    accounts.set(tx.accountId, { balance: (account?.balance ?? 0) + tx.amount, currency: tx.currency });
    ledger.set(tx.txId, tx.amount);
  }
  const actualLetters = new Map(letters.map((l) => [coordinatesOf(l), l.errorKind]));
  const actual = await run.paymentsTables();
  expect({ deadLetters: actualLetters, ledger: actual.ledger, balances: actual.balances }).toEqual({
    deadLetters: deadLettered,
    ledger,
    balances: new Map([...accounts].map(([id, a]) => [id, a.balance])),
  });
  return exhausted.size;
};

export type DemoRow = {
  produced: number;
  processed: number;
  duplicates: number;
  stale: number;
  deadLettered: number;
  lag: number;
};

/** The demo's last summary table (printed after it stopped), one row per route. */
export const demoSummary = (stdout: string): Map<string, DemoRow> => {
  const lines = stdout.split('\n');
  const header = lines.findLastIndex((line) => /^route\s+produced\s+processed/.test(line));
  if (header < 0) throw new Error(`no summary in the demo's output:\n${stdout}`);
  // route  produced  processed  duplicates  stale  dead-lettered  lag  records/s  p99 e2e
  const rows = new Map<string, DemoRow>();
  for (const line of lines.slice(header + 1)) {
    const cells = line.trim().split(/\s+/);
    if (cells.length < 7 || !/^\d+$/.test(cells[1] ?? '')) break;
    const [route, produced, processed, duplicates, stale, deadLettered, lag] = cells;
    rows.set(route as string, {
      produced: Number(produced),
      processed: Number(processed),
      duplicates: Number(duplicates),
      // '-': the route counted no stale events.
      stale: stale === '-' ? 0 : Number(stale),
      deadLettered: Number(deadLettered),
      lag: Number(lag),
    });
  }
  return rows;
};
