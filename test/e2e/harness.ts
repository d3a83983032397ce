// End-to-end harness: a config of its own per run (unique name, so tables, queues, topics and consumer groups never
// collide with another run), traffic with duplicates and poison, the bridge as real child processes (so it can be
// SIGKILLed), and the checks every scenario ends with.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { type BridgeConfig, localResourceNames, parseBridgeConfig } from '../../infra/config/index.ts';
import { peekDeadLetters } from '../../scripts/bridge/deadLetters.ts';
import { readTopic } from '../../scripts/bridge/readTopic.ts';
import { type ReconcileReport, reconcileRecords } from '../../scripts/bridge/reconcileRoute.ts';
import type { RouteSnapshot } from '../../scripts/bridge/stats.ts';
import { createProducer } from '../../scripts/lib/kafka.ts';
import { ensureLocalResources } from '../../scripts/lib/localResources.ts';
import { OrdersTraffic, PaymentsTraffic, produceTraffic, type TrafficRecord } from '../../scripts/lib/traffic.ts';
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

/** A run: its config on disk, its traffic, and clients on its endpoints. */
export class Run {
  readonly id = `e2e${randomUUID().slice(0, 8)}`;
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-e2e-'));
  readonly configPath = path.join(this.dir, 'bridge.config.json');
  readonly config: BridgeConfig;
  readonly endpoints: Endpoints;
  readonly dynamodb: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly orders: OrdersTraffic;
  readonly payments: PaymentsTraffic;
  readonly produced = { orders: [] as TrafficRecord[], payments: [] as TrafficRecord[] };
  readonly bridges: BridgeProcess[] = [];

  constructor(endpoints: Endpoints, options: { source?: 'msk' | 'self-managed'; seed?: number } = {}) {
    this.endpoints = endpoints;
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
      routes: [
        {
          name: 'orders',
          topic: `${this.id}-orders`,
          handler: 'orders.ts',
          batchSize: 100,
          maxBatchingWindowSeconds: 0,
          timeoutSeconds: 12,
          retry: { maxAttempts: 5, baseDelayMs: 50, maxDelayMs: 1_000 },
          tables: [{ name: 'orders', partitionKey: 'orderId', env: 'ORDERS_TABLE_NAME' }],
        },
        {
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
        },
      ],
    };
    fs.writeFileSync(this.configPath, JSON.stringify(raw, null, 2));
    this.config = parseBridgeConfig(raw, this.configPath);
    const aws = { region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };
    this.dynamodb = new DynamoDBClient({ ...aws, endpoint: endpoints.dynamodb });
    this.sqs = new SQSClient({ ...aws, endpoint: endpoints.sqs });
    const seed = options.seed ?? 11;
    const traffic = { duplicates: 0.05, poison: 0.01, tombstones: 0.004, idPrefix: `${this.id}-` };
    this.orders = new OrdersTraffic({ seed, ...traffic, openOrders: 150 });
    this.payments = new PaymentsTraffic({ seed: seed + 1, ...traffic, accounts: 40 });
  }

  /** The environment of child processes: this run's endpoints. */
  env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      KAFKA_BROKERS: this.endpoints.brokers.join(','),
      AWS_ENDPOINT_URL_DYNAMODB: this.endpoints.dynamodb,
      AWS_ENDPOINT_URL_SQS: this.endpoints.sqs,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      LOG_LEVEL: 'WARN',
    };
  }

  route(name: 'orders' | 'payments') {
    return this.config.routes.find((r) => r.name === name) as BridgeConfig['routes'][number];
  }

  /** Tables, queues and 3-partition topics on this run's endpoints. */
  async createResources(): Promise<void> {
    const saved = { ...process.env };
    Object.assign(process.env, this.env());
    try {
      await ensureLocalResources(this.config, { dynamodb: this.dynamodb, sqs: this.sqs, partitions: 3 });
    } finally {
      for (const key of ['KAFKA_BROKERS', 'AWS_ENDPOINT_URL_DYNAMODB', 'AWS_ENDPOINT_URL_SQS']) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }
  }

  /** Produces `count` records to each route's topic (rate 0: at once). */
  async produce(count: number, rate = 0): Promise<void> {
    const producer = createProducer(this.endpoints.brokers, { clientId: `${this.id}-producer` });
    try {
      await Promise.all(
        (['orders', 'payments'] as const).map((name) =>
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
  }

  // ---- the checks ------------------------------------------------------------------------------------------

  async reconcile(name: 'orders' | 'payments'): Promise<ReconcileReport> {
    const route = this.route(name);
    const records = await readTopic(this.endpoints.brokers, route.topic);
    return reconcileRecords({
      config: this.config,
      route,
      records,
      dynamodb: this.dynamodb,
      sqs: this.sqs,
      queueUrl: await this.queueUrl(name),
    });
  }

  async queueUrl(name: 'orders' | 'payments'): Promise<string> {
    const queue = localResourceNames(this.config).deadLetterQueues[name] as string;
    const { QueueUrl } = await this.sqs.send(new GetQueueUrlCommand({ QueueName: queue }));
    return QueueUrl as string;
  }

  scan(table: string) {
    return scanAll(localResourceNames(this.config).tables[table] as string, this.dynamodb);
  }

  /** The DLQ holds exactly the poison records: same coordinates, once each. */
  async deadLetterCheck(name: 'orders' | 'payments') {
    const route = this.route(name);
    const poisonValues = new Set(
      this.produced[name].filter((r) => r.kind === 'poison').map((r) => (r.value as Buffer).toString('base64')),
    );
    const records = await readTopic(this.endpoints.brokers, route.topic);
    const poison = records
      .filter((r) => r.value !== null && poisonValues.has(r.value))
      .map((r) => `${r.partition}@${r.offset}`)
      .sort();
    const { letters } = await peekDeadLetters(this.sqs, await this.queueUrl(name));
    const dead = letters.map((l) => `${l.partition}@${l.offset}`).sort();
    return { poison, dead, produced: poisonValues.size };
  }

  /** Every distinct order event applied once: each order's final state is its last legitimate event. */
  async ordersState(): Promise<{ expected: Map<string, string>; actual: Map<string, string> }> {
    const expected = new Map([...this.orders.expected()].map(([id, s]) => [id, `${s.status}/${s.version}`]));
    const items = await this.scan('orders');
    const actual = new Map(items.map((i) => [i.orderId?.S as string, `${i.status?.S}/${i.version?.N}`]));
    return { expected, actual };
  }

  /** Every legitimate payment in the ledger once, and balances that add up to exactly those payments. */
  async paymentsState() {
    const { ledger, balances } = this.payments.expected();
    const ledgerItems = await this.scan('ledger');
    const accountItems = await this.scan('accounts');
    return {
      expectedLedger: new Map([...ledger].map(([id, p]) => [id, p.amount])),
      actualLedger: new Map(ledgerItems.map((i) => [i.txId?.S as string, Number(i.amount?.N)])),
      expectedBalances: new Map([...balances].map(([id, a]) => [id, a.balance])),
      actualBalances: new Map(accountItems.map((i) => [i.accountId?.S as string, Number(i.balance?.N)])),
    };
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

  constructor(run: Run, extraArgs: string[]) {
    this.child = spawn(
      process.execPath,
      [
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

  /** Both routes report lag 0 in a progress line that arrived after `since` (epoch ms), not in an older one. */
  drained(since = 0): boolean {
    return ['orders', 'payments'].every(
      (r) => this.progress.get(r)?.lag === 0 && (this.#progressAt.get(r) ?? 0) > since,
    );
  }

  output(): string {
    return this.lines.slice(-60).join('\n');
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

/** The checks every scenario ends with: 0 missing, 0 double-applied, the DLQ exactly the poison records. */
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
  } = {},
): Promise<{ duplicateDeadLetters: number }> => {
  let duplicateDeadLetters = 0;
  for (const name of ['orders', 'payments'] as const) {
    const report = await run.reconcile(name);
    expect({ route: name, missing: report.missingRecords, inProgress: report.inProgressRecords }).toEqual({
      route: name,
      missing: [],
      inProgress: [],
    });
    expect(report.records).toBe(run.produced[name].length);
    expect(report.skipped.tombstones).toBe(run.produced[name].filter((r) => r.kind === 'tombstone').length);
    const dlq = await run.deadLetterCheck(name);
    expect(dlq.poison.length).toBe(dlq.produced);
    const distinct = [...new Set(dlq.dead)];
    duplicateDeadLetters += dlq.dead.length - distinct.length;
    expect({ route: name, dead: options.allowDuplicateDeadLetters ? distinct : dlq.dead }).toEqual({
      route: name,
      dead: dlq.poison,
    });
  }
  const orders = await run.ordersState();
  expect(orders.actual).toEqual(orders.expected);
  const payments = await run.paymentsState();
  expect(payments.actualLedger).toEqual(payments.expectedLedger);
  expect(payments.actualBalances).toEqual(payments.expectedBalances);
  return { duplicateDeadLetters };
};
