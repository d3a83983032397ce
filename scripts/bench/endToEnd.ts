// End to end: records through Kafka, the local bridge (a real consumer group, the route's handler in its worker)
// and DynamoDB Local behind the latency proxy; against a naive consumer on the same Kafka client that does one
// conditional PutItem per record, sequentially, through the same proxy.
//
// Load: the producer offers records at a fixed rate (the goal's 12,000 records/s by default) while the consumer
// runs, so latency is measured under that load: if a consumer keeps up, it shows its own latency; if not, the
// backlog grows and so does the latency, which is what a consumer that falls behind means.
import fs from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { ConditionalCheckFailedException, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { localResourceNames, parseBridgeConfig } from '../../infra/config/index.ts';
import { handlerLogPath, startBridge } from '../bridge/bridge.ts';
import { createAdmin, createConsumer, createProducer, ensureTopics, type RawProducer } from '../lib/kafka.ts';
import { createQueue, createTable, deleteQueue, deleteTable, dynamoDbClient, sqsClient } from './aws.ts';
import { WORK_DIR } from './coldStart.ts';
import type { ProxyWorker } from './proxyHost.ts';
import { type EndToEnd, KEEPING_UP_SHARES, type KeepingUpStep, keepsUp } from './schema.ts';
import { percentileSorted, round } from './stats.ts';
import { measureRawWaves, processCpuMs } from './throughput.ts';

export type EndToEndOptions = {
  readonly runId: string;
  readonly proxy: ProxyWorker;
  readonly rttMs: number;
  readonly brokers: readonly string[];
  readonly dynamodbEndpoint: string;
  readonly sqsEndpoint: string;
  readonly records: number;
  readonly baselineRecords: number;
  readonly partitions: number;
  /** Records/s the producer offers. */
  readonly offeredRate: number;
  readonly dynamodbPid?: number;
  readonly kafkaPid?: number;
  readonly log: (line: string) => void;
};

/**
 * Where the machine's CPU went while the bridge ran, per record, read from the OS: this process (the producer, the
 * bridge's consumers and the handler's worker), the Kafka broker and DynamoDB Local (Linux /proc; absent elsewhere).
 */
export type CpuSplit = {
  readonly benchProcessMsPerRecord: number;
  readonly kafkaMsPerRecord?: number;
  readonly dynamodbLocalMsPerRecord?: number;
  /** Their sum over the run, as a share of every core for its whole length. */
  readonly shareOfCores: number;
};

const cpuNow = (options: EndToEndOptions) => {
  const self = process.cpuUsage();
  return {
    self: (self.user + self.system) / 1000,
    kafka: processCpuMs(options.kafkaPid),
    dynamodb: processCpuMs(options.dynamodbPid),
  };
};

const cpuSplit = (
  before: ReturnType<typeof cpuNow>,
  after: ReturnType<typeof cpuNow>,
  records: number,
  elapsedMs: number,
): CpuSplit => {
  const delta = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined ? undefined : b - a;
  const self = after.self - before.self;
  const kafka = delta(before.kafka, after.kafka);
  const dynamodb = delta(before.dynamodb, after.dynamodb);
  return {
    benchProcessMsPerRecord: round(self / records, 3),
    ...(kafka === undefined ? {} : { kafkaMsPerRecord: round(kafka / records, 3) }),
    ...(dynamodb === undefined ? {} : { dynamodbLocalMsPerRecord: round(dynamodb / records, 3) }),
    shareOfCores: round((self + (kafka ?? 0) + (dynamodb ?? 0)) / (elapsedMs * os.cpus().length), 2),
  };
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A small audit value: the route accepts any JSON object. */
const auditValue = (i: number, now: number): Buffer =>
  Buffer.from(JSON.stringify({ id: i, kind: 'audit', at: now, actor: `user-${i % 97}` }));

/**
 * Sends `count` records round-robin over the partitions at `rate` records/s, in small batches (every ~10 ms), each
 * stamped with its send time. Returns when all are acknowledged.
 */
export const producePaced = async (
  producer: RawProducer,
  topic: string,
  options: { count: number; rate: number; partitions: number },
): Promise<{ firstAt: number; lastAt: number }> => {
  const started = Date.now();
  let sent = 0;
  let lastAt = started;
  const inFlight = new Set<Promise<unknown>>();
  while (sent < options.count) {
    const due = Math.min(options.count, Math.floor(((Date.now() - started) * options.rate) / 1000) + 1) - sent;
    if (due <= 0) {
      await sleep(5);
      continue;
    }
    const now = Date.now();
    const messages = Array.from({ length: Math.min(due, 2_000) }, (_, j) => {
      const i = sent + j;
      return {
        topic,
        partition: i % options.partitions,
        key: Buffer.from(`k-${i}`),
        value: auditValue(i, now),
        timestamp: BigInt(now),
      };
    });
    sent += messages.length;
    lastAt = now;
    const send = producer.send({ messages }).finally(() => inFlight.delete(send));
    inFlight.add(send);
    // A few sends in the air at most, so the pacing holds without queueing up in the client.
    if (inFlight.size >= 4) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  return { firstAt: started, lastAt };
};

/** Waits until a file has stopped growing for a few hundred ms (at most `maxMs`). */
const untilFileSettles = async (file: string, maxMs = 10_000): Promise<void> => {
  const size = () => (fs.existsSync(file) ? fs.statSync(file).size : 0);
  const deadline = Date.now() + maxMs;
  let last = -1;
  let stable = 0;
  while (stable < 3 && Date.now() < deadline) {
    const now = size();
    stable = now === last ? stable + 1 : 0;
    last = now;
    await sleep(150);
  }
};

/** The EndToEndLatency values (ms, per completed record) in the runtime's EMF lines. */
export const endToEndLatencies = (lines: Iterable<string>): number[] => {
  const values: number[] = [];
  for (const line of lines) {
    if (!line.includes('"EndToEndLatency"')) continue;
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (!parsed._aws) continue;
    const value = parsed.EndToEndLatency;
    if (Array.isArray(value)) for (const v of value) values.push(Number(v));
    else if (typeof value === 'number') values.push(value);
  }
  return values;
};

const latencySummary = (values: number[]) => {
  const sorted = Float64Array.from(values).sort();
  return {
    p50LatencyMs: round(percentileSorted(sorted, 50), 1),
    p99LatencyMs: round(percentileSorted(sorted, 99), 1),
    maxLatencyMs: round(sorted[sorted.length - 1] ?? 0, 1),
  };
};

const dropTopics = async (brokers: readonly string[], topics: string[], groups: string[]): Promise<void> => {
  const admin = createAdmin([...brokers]);
  try {
    await admin.deleteGroups({ groups }).catch(() => undefined);
    await admin.deleteTopics({ topics }).catch(() => undefined);
  } finally {
    await admin.close().catch(() => undefined);
  }
};

const runBridge = async (
  options: EndToEndOptions,
  load: {
    readonly name: string;
    readonly records: number;
    readonly rate: number;
    /** The route's maxBatchingWindowSeconds; the ESM's default (500 ms) when unset. */
    readonly windowSeconds?: number;
  },
) => {
  const { log } = options;
  const runId = `${options.runId}${load.name}`;
  const config = parseBridgeConfig({
    name: `bench-${runId}`,
    source: {
      kind: 'msk',
      clusterArn: 'arn:aws:kafka:us-east-1:123456789012:cluster/bench/abcd1234-abcd-cafe-abab-9876543210ab-4',
      auth: 'iam',
    },
    // The audit route: dedupe plus a count per record, like the naive baseline's one write (route defaults otherwise).
    routes: [
      {
        name: 'audit',
        topic: `bench-${runId}-e2e`,
        handler: 'audit.ts',
        ...(load.windowSeconds === undefined ? {} : { maxBatchingWindowSeconds: load.windowSeconds }),
      },
    ],
    observability: { namespace: 'KafkaLambdaBridgeBench' },
  });
  const route = config.routes[0] as (typeof config.routes)[number];
  const logFile = handlerLogPath(config, route.name, WORK_DIR);
  fs.rmSync(logFile, { force: true });
  // The route's function reads the standard endpoint variable, so the proxy goes there (restored afterwards).
  const savedEndpoint = process.env.AWS_ENDPOINT_URL_DYNAMODB;
  process.env.AWS_ENDPOINT_URL_DYNAMODB = options.proxy.url;
  const producer = createProducer([...options.brokers], { clientId: `bench-${runId}-producer` });
  try {
    const bridge = await startBridge({
      config,
      brokers: options.brokers,
      partitions: options.partitions,
      // Under a backlog the ESM scales its pollers up to one per partition; the benchmark measures that state.
      pollers: options.partitions,
      handlerOutput: { kind: 'file', dir: WORK_DIR },
      progressIntervalMs: 5_000,
      onProgress: (snapshots) => {
        const s = snapshots[0];
        if (s)
          log(
            `e2e bridge${load.name ? ` (${load.name})` : ''}: committed ${s.committed}/${load.records}, ${Math.round(s.recordsPerSec)} rec/s`,
          );
      },
      log: () => undefined,
    });
    try {
      const deadline = Date.now() + 60_000;
      while ((bridge.snapshots()[0]?.assigned.length ?? 0) < options.partitions) {
        if (Date.now() > deadline) throw new Error('the bridge did not get its partitions within 60 s');
        await sleep(50);
      }
      log(`e2e bridge${load.name ? ` (${load.name})` : ''}: producing ${load.records} records at ${load.rate} rec/s`);
      const produced = producePaced(producer, route.topic, {
        count: load.records,
        rate: load.rate,
        partitions: options.partitions,
      });
      const t0 = performance.now();
      const cpuBefore = cpuNow(options);
      const firstAt = Date.now();
      const timeoutMs = Math.max(120_000, load.records * 10);
      // The counter itself, not a snapshot: a snapshot sorts the latency samples, and this loop runs every 10 ms on the
      // cores it measures.
      const committed = () => bridge.routes[0]?.stats.committed ?? 0;
      while (committed() < load.records) {
        if (performance.now() - t0 > timeoutMs) throw new Error(`the bridge did not finish within ${timeoutMs} ms`);
        await sleep(10);
      }
      const elapsedMs = performance.now() - t0;
      const cpu = cpuSplit(cpuBefore, cpuNow(options), load.records, elapsedMs);
      const producedAt = await produced;
      const snapshot = bridge.snapshots()[0];
      // The handler's output reaches the log after its result (another channel from the worker): let it settle.
      await untilFileSettles(logFile);
      await bridge.stop(10_000);
      const latencies = endToEndLatencies(fs.readFileSync(logFile, 'utf8').split('\n'));
      if (latencies.length < load.records)
        throw new Error(`found ${latencies.length} EndToEndLatency values for ${load.records} records`);
      return {
        recordsPerSec: round((load.records * 1000) / elapsedMs, 0),
        ...latencySummary(latencies),
        producerSeconds: round((producedAt.lastAt - firstAt) / 1000, 2),
        processed: snapshot?.processed ?? 0,
        duplicates: snapshot?.duplicates ?? 0,
        invocations: snapshot?.invocations ?? 0,
        cpu,
      };
    } finally {
      await bridge.stop(10_000);
    }
  } finally {
    await producer.close().catch(() => undefined);
    if (savedEndpoint === undefined) delete process.env.AWS_ENDPOINT_URL_DYNAMODB;
    else process.env.AWS_ENDPOINT_URL_DYNAMODB = savedEndpoint;
    const names = localResourceNames(config);
    const direct = dynamoDbClient(options.dynamodbEndpoint);
    await deleteTable(direct, names.idempotencyTable).catch(() => undefined);
    const sqs = sqsClient(options.sqsEndpoint);
    // CreateQueue is idempotent: it hands back the URL of the queue the bridge created.
    const dlq = names.deadLetterQueues[route.name] as string;
    await deleteQueue(sqs, await createQueue(sqs, dlq)).catch(() => undefined);
    await dropTopics(options.brokers, [route.topic], [names.consumerGroups[route.name] as string]);
  }
};

const runBaseline = async (options: EndToEndOptions) => {
  const { runId, log } = options;
  const topic = `bench-${runId}-naive`;
  const table = `bench-${runId}-naive`;
  const groupId = `bench-${runId}-naive`;
  const direct = dynamoDbClient(options.dynamodbEndpoint);
  const measured = dynamoDbClient(options.proxy.url);
  await ensureTopics([...options.brokers], [{ topic, partitions: options.partitions }]);
  await createTable(direct, table, 'pk');
  const producer = createProducer([...options.brokers], { clientId: `bench-${runId}-naive-producer` });
  const consumer = createConsumer([...options.brokers], { groupId });
  try {
    const stream = await consumer.consume({
      topics: [topic],
      mode: 'committed',
      fallbackMode: 'earliest',
      autocommit: true,
    });
    log(`e2e baseline: producing ${options.baselineRecords} records at ${options.offeredRate} rec/s`);
    const t0 = performance.now();
    const produced = producePaced(producer, topic, {
      count: options.baselineRecords,
      rate: options.offeredRate,
      partitions: options.partitions,
    });
    const latencies: number[] = [];
    let duplicates = 0;
    for await (const message of stream) {
      const key = `${message.topic}-${message.partition}@${message.offset}`;
      try {
        await measured.send(
          new PutItemCommand({
            TableName: table,
            Item: {
              pk: { S: key },
              status: { S: 'COMPLETED' },
              expiresAt: { N: String(Math.floor(Date.now() / 1000) + 691_200) },
            },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        duplicates += 1;
      }
      latencies.push(Date.now() - Number(message.timestamp));
      if (latencies.length % 1_000 === 0) log(`e2e baseline: ${latencies.length}/${options.baselineRecords}`);
      if (latencies.length >= options.baselineRecords) break;
    }
    const elapsedMs = performance.now() - t0;
    await produced;
    await stream.close();
    return {
      records: options.baselineRecords,
      recordsPerSec: round((options.baselineRecords * 1000) / elapsedMs, 0),
      ...latencySummary(latencies),
      duplicates,
    };
  } finally {
    await consumer.close(true).catch(() => undefined);
    await producer.close().catch(() => undefined);
    await deleteTable(direct, table).catch(() => undefined);
    await dropTopics(options.brokers, [topic], [groupId]);
  }
};

/**
 * How many records per second the bridge's own idempotency store can claim and settle on this machine, with no
 * processor or Kafka, through the proxy: the local ceiling of the bridge, set by DynamoDB Local and the SDK.
 */
const measureLocalCeiling = async (options: EndToEndOptions) => {
  const table = `bench-${options.runId}-ceiling`;
  const direct = dynamoDbClient(options.dynamodbEndpoint);
  const measured = dynamoDbClient(options.proxy.url);
  await createTable(direct, table, 'pk');
  try {
    await measureRawWaves(measured, table, 500);
    const records = 3_000;
    const raw = await measureRawWaves(measured, table, records, options.dynamodbPid);
    return {
      recordsPerSec: round((records * 1000) / raw.ms, 0),
      clientCpuMsPerRecord: round(raw.clientCpuMsPerRecord, 3),
      ...(raw.serverCpuMsPerRecord === undefined
        ? {}
        : { dynamodbLocalCpuMsPerRecord: round(raw.serverCpuMsPerRecord, 3) }),
    };
  } finally {
    await deleteTable(direct, table);
  }
};

export const runEndToEnd = async (options: EndToEndOptions): Promise<EndToEnd> => {
  fs.mkdirSync(WORK_DIR, { recursive: true });
  await options.proxy.setDelay(options.rttMs);
  const ceiling = await measureLocalCeiling(options);
  options.log(
    `e2e: the idempotency store alone claims and settles ${ceiling.recordsPerSec} records/s through the proxy ` +
      `(client CPU ${ceiling.clientCpuMsPerRecord} ms/record` +
      `${ceiling.dynamodbLocalCpuMsPerRecord === undefined ? '' : `, DynamoDB Local CPU ${ceiling.dynamodbLocalCpuMsPerRecord} ms/record`})`,
  );
  const bridge = await runBridge(options, { name: '', records: options.records, rate: options.offeredRate });
  options.log(
    `e2e bridge: ${bridge.recordsPerSec} rec/s, P50 ${bridge.p50LatencyMs} ms, P99 ${bridge.p99LatencyMs} ms ` +
      `(${bridge.invocations} invocations)`,
  );
  // The latency of a bridge that keeps up, with the batching window chosen for latency (0 s: the ESM invokes as soon
  // as records arrive, in batches of what came meanwhile), for about 15 s a step. Keeping up is the goal's own measure:
  // consuming at least 95% of the offer with a P99 of at most 200 ms. The steps go down from three quarters of the
  // throughput just reached until one keeps up; every step is recorded, so the report shows how P99 grows with load.
  const attempt = async (share: number): Promise<KeepingUpStep> => {
    const rate = Math.max(1, Math.round(Math.min(bridge.recordsPerSec, options.offeredRate) * share));
    const records = Math.max(100, Math.min(options.records, rate * 15));
    const run = await runBridge(options, { name: `kept${Math.round(share * 100)}`, records, rate, windowSeconds: 0 });
    options.log(`e2e bridge at ${rate} rec/s (window 0 s): P50 ${run.p50LatencyMs} ms, P99 ${run.p99LatencyMs} ms`);
    return {
      offeredRatePerSec: rate,
      records,
      recordsPerSec: run.recordsPerSec,
      p50LatencyMs: run.p50LatencyMs,
      p99LatencyMs: run.p99LatencyMs,
      shareOfCores: run.cpu.shareOfCores,
      invocations: run.invocations,
      cpuMsPerRecord: round(
        run.cpu.benchProcessMsPerRecord + (run.cpu.kafkaMsPerRecord ?? 0) + (run.cpu.dynamodbLocalMsPerRecord ?? 0),
        3,
      ),
    };
  };
  const steps: KeepingUpStep[] = [];
  for (const share of KEEPING_UP_SHARES) {
    const step = await attempt(share);
    steps.push(step);
    if (keepsUp(step)) break;
  }
  // With no step kept, the lowest one stands, and the report marks the goal missed on its P99.
  const sustained = steps.find(keepsUp) ?? (steps[steps.length - 1] as KeepingUpStep);
  const baseline = await runBaseline(options);
  options.log(`e2e baseline: ${baseline.recordsPerSec} rec/s, P99 ${baseline.p99LatencyMs} ms`);
  return {
    records: options.records,
    recordsPerSec: bridge.recordsPerSec,
    p50LatencyMs: bridge.p50LatencyMs,
    p99LatencyMs: bridge.p99LatencyMs,
    baseline,
    maxLatencyMs: bridge.maxLatencyMs,
    rttMs: options.rttMs,
    partitions: options.partitions,
    offeredRatePerSec: options.offeredRate,
    route: 'audit',
    bridgeInvocations: bridge.invocations,
    cpuSplit: bridge.cpu,
    producerSeconds: bridge.producerSeconds,
    keepingUp: { ...sustained, batchingWindowSeconds: 0, steps },
    bareStoreRecordsPerSec: ceiling.recordsPerSec,
    bareSdkCpuMsPerRecord: ceiling.clientCpuMsPerRecord,
    ...(ceiling.dynamodbLocalCpuMsPerRecord === undefined
      ? {}
      : { dynamodbLocalCpuMsPerRecord: ceiling.dynamodbLocalCpuMsPerRecord }),
  };
};
