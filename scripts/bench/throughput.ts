// Handler throughput: our route against the Powertools baseline, batch by batch, through the latency proxy.
//
// Each measured batch runs on a fresh handler instance (fresh module state, so our completed-key cache is empty)
// with warm SDK clients: a warm container meeting keys it has not seen. Duplicates are records whose keys an earlier
// invocation (another instance) already completed, so both sides pay the DynamoDB round trip to learn it. The
// `bridgeWarmCache` extra shows the same duplicates met by the instance that completed them; `bridgeKeyStrategy` the
// same route on the per-key strategy (an item per record), which business-keyed routes use.
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { type DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { CompletedKeyCache } from '../../functions/runtime/idempotency/CompletedKeyCache.ts';
import { DynamoDbIdempotencyStore } from '../../functions/runtime/idempotency/DynamoDbIdempotencyStore.ts';
import { addRequestCounter, countRequestsIn } from '../../functions/runtime/idempotency/requestCounter.ts';
import { createLambdaContext } from '../lib/lambdaContext.ts';
import { createTable, deleteTable } from './aws.ts';
import { type BenchRecord, duplicateSubset, mskEventOf, orderRecords } from './events.ts';
import type { ProxyWorker } from './proxyHost.ts';
import { type BenchHandler, bridgeRoute, powertoolsRoute, WorkMeter } from './routes.ts';
import type { SideThroughput, ThroughputScenario } from './schema.ts';
import { median, ratio, round } from './stats.ts';

export type Scenario = {
  readonly batchSize: number;
  readonly partitions: number;
  readonly duplicateRate: number;
  readonly rttMs: number;
};

export const SIDES = ['bridge', 'powertools', 'powertoolsUnordered', 'bridgeWarmCache', 'bridgeKeyStrategy'] as const;
export type Side = (typeof SIDES)[number];

/** The full matrix of DESIGN/issue 8: batch 100 and 1000 × 1 and 4 partitions × 0% and 20% duplicates × 0 and 5 ms. */
export const fullScenarios = (rtt: number): Scenario[] => {
  const out: Scenario[] = [];
  for (const batchSize of [100, 1000])
    for (const partitions of [1, 4])
      for (const duplicateRate of [0, 0.2])
        for (const rttMs of [0, rtt]) out.push({ batchSize, partitions, duplicateRate, rttMs });
  return out;
};

/**
 * The quick subset: every goal scenario (batch 100 × 4 partitions at the RTT, fresh records and duplicates) plus one
 * point along each axis (1 partition, batch 1000, RTT 0).
 */
export const quickScenarios = (rtt: number): Scenario[] => [
  { batchSize: 100, partitions: 4, duplicateRate: 0, rttMs: rtt },
  { batchSize: 100, partitions: 4, duplicateRate: 0.2, rttMs: rtt },
  { batchSize: 100, partitions: 1, duplicateRate: 0, rttMs: rtt },
  { batchSize: 1000, partitions: 4, duplicateRate: 0, rttMs: rtt },
  { batchSize: 100, partitions: 4, duplicateRate: 0, rttMs: 0 },
];

export type ThroughputDeps = {
  readonly proxy: ProxyWorker;
  /** Clients pointed at the proxy (measured) and straight at DynamoDB Local (setup). */
  readonly measured: DynamoDBClient;
  readonly direct: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly dlqUrl: string;
  readonly runId: string;
  readonly repetitions: number;
  /** Only these sides (profiling); default all. */
  readonly sides?: readonly Side[];
  /** DynamoDB Local's PID, to read its CPU time (Linux /proc); undefined when unknown. */
  readonly dynamodbPid?: number;
  readonly log: (line: string) => void;
};

type Run = { ms: number; requests: number; writeUnits: number; readUnits: number; cpuMs: number };

/** CPU time of this thread (the handler's; the proxy has its own thread), in ms. */
export const threadCpuMs = (): number => {
  const usage = process.threadCpuUsage();
  return (usage.user + usage.system) / 1000;
};

/** A process's CPU time in ms from /proc (Linux), or undefined. */
export const processCpuMs = (pid: number | undefined): number | undefined => {
  if (pid === undefined) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / CLOCK_TICKS : undefined;
  } catch {
    return undefined;
  }
};
/** USER_HZ: 100 on every Linux Node supports. */
const CLOCK_TICKS = 100;

const context = (): Context => createLambdaContext({ functionName: 'orders-bench', timeoutSeconds: 900 });

/** A fresh Powertools or bridge instance on its own table. */
type Build = (meter: WorkMeter) => BenchHandler;

const invoke = async (handler: BenchHandler, records: readonly BenchRecord[]): Promise<void> => {
  await handler(mskEventOf(records), context());
};

const measureSide = async (
  deps: ThroughputDeps,
  build: Build,
  scenario: Scenario,
  topic: string,
  warmCache: boolean,
): Promise<Run> => {
  const records = orderRecords(topic, scenario.batchSize, scenario.partitions, Date.now());
  const duplicates = duplicateSubset(records, scenario.duplicateRate);
  const primeMeter = new WorkMeter();
  const primer = build(primeMeter);
  if (duplicates.length > 0) {
    await invoke(primer, duplicates);
    if (primeMeter.calls !== duplicates.length)
      throw new Error(`priming processed ${primeMeter.calls} of ${duplicates.length} records`);
  }
  const meter = warmCache ? primeMeter : new WorkMeter();
  const handler = warmCache ? primer : build(meter);
  const before = meter.calls;
  const event = mskEventOf(records);
  const ctx = context();
  await deps.proxy.resetCounts();
  const cpuStarted = threadCpuMs();
  const started = performance.now();
  await handler(event, ctx);
  const ms = performance.now() - started;
  const cpuMs = threadCpuMs() - cpuStarted;
  const { total, writeUnits, readUnits } = await deps.proxy.counts();
  const processed = meter.calls - before;
  const expected = records.length - duplicates.length;
  if (processed !== expected) throw new Error(`${topic}: processed ${processed} records, expected ${expected}`);
  return { ms, requests: total, writeUnits, readUnits, cpuMs };
};

/** Sequential conditional writes through the proxy: the round trip one request costs with nothing else going on. */
export const measureRoundTrip = async (client: DynamoDBClient, table: string, samples = 21): Promise<number> => {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const started = performance.now();
    await client.send(
      new UpdateItemCommand({
        TableName: table,
        Key: { pk: { S: `rtt-probe-${i}-${Math.random()}` } },
        UpdateExpression: 'SET #s = :s',
        ConditionExpression: 'attribute_not_exists(pk)',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':s': { S: 'IN_PROGRESS' } },
      }),
    );
    times.push(performance.now() - started);
  }
  return median(times);
};

/**
 * The DynamoDB requests our runtime makes for a batch of fresh records, made by its own idempotency store with no
 * processor around it: one wave of claims (at most 100 at once, as the runtime's claim limiter allows, which the
 * store sends as PartiQL insert batches of 25), then the settlements (BatchWriteItems of 25). What DynamoDB Local and
 * the SDK need for the batch on this machine, whatever the runtime does around them.
 */
export type RawWaves = {
  ms: number;
  requests: number;
  /** This thread's CPU (the bare SDK client's) per record. */
  clientCpuMsPerRecord: number;
  /** DynamoDB Local's CPU per record, when its PID is known. */
  serverCpuMsPerRecord?: number;
};

export const measureRawWaves = async (
  client: DynamoDBClient,
  table: string,
  count: number,
  serverPid?: number,
): Promise<RawWaves> => {
  const store = new DynamoDbIdempotencyStore({
    client: addRequestCounter(client),
    tableName: table,
    route: 'bare',
    ttlSeconds: 8 * 24 * 3600,
    cache: new CompletedKeyCache(0),
  });
  const prefix = `bare-${Math.random().toString(36).slice(2)}`;
  const requests = Array.from({ length: count }, (_, offset) => ({
    key: `${prefix}@${offset}`,
    coordinates: { topic: prefix, partition: 0, offset },
    replay: false,
  }));
  const serverStarted = processCpuMs(serverPid);
  const cpuStarted = threadCpuMs();
  const started = performance.now();
  const owner = { requestId: prefix, leaseUntilMs: Date.now() + 900_000 };
  const counted = { requests: 0 };
  await countRequestsIn(counted, async () => {
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(100, count) }, async () => {
        while (next < requests.length) {
          const request = requests[next++] as (typeof requests)[number];
          const claimed = await store.claim(request, owner, Date.now());
          if (claimed.outcome !== 'claimed') throw new Error(`bare claim of ${request.key}: ${claimed.outcome}`);
        }
      }),
    );
    for (const request of requests) {
      store.complete({ ...request, attempts: 1, firstSeen: owner.leaseUntilMs });
    }
    await store.flush(owner.leaseUntilMs);
  });
  const ms = performance.now() - started;
  const serverCpu =
    serverStarted === undefined ? undefined : (processCpuMs(serverPid) ?? serverStarted) - serverStarted;
  return {
    ms,
    requests: counted.requests,
    clientCpuMsPerRecord: (threadCpuMs() - cpuStarted) / count,
    ...(serverCpu === undefined ? {} : { serverCpuMsPerRecord: serverCpu / count }),
  };
};

const summarise = (runs: readonly Run[], batchSize: number): SideThroughput => {
  const ms = median(runs.map((r) => r.ms));
  return {
    recordsPerSec: round((batchSize * 1000) / ms, 0),
    ddbRequestsPerRecord: round(median(runs.map((r) => r.requests)) / batchSize, 3),
    ddbWriteUnitsPerRecord: round(median(runs.map((r) => r.writeUnits)) / batchSize, 3),
    ddbReadUnitsPerRecord: round(median(runs.map((r) => r.readUnits)) / batchSize, 3),
    batchMsMedian: round(ms, 2),
    cpuMsPerRecord: round(median(runs.map((r) => r.cpuMs)) / batchSize, 3),
    runs: runs.map((r) => round((batchSize * 1000) / r.ms, 0)),
  };
};

const scenarioLabel = (s: Scenario): string =>
  `batch ${s.batchSize} × ${s.partitions}p × ${Math.round(s.duplicateRate * 100)}% dup × ${s.rttMs} ms`;

export const runHandlerThroughput = async (
  deps: ThroughputDeps,
  scenarios: readonly Scenario[],
): Promise<ThroughputScenario[]> => {
  const results: ThroughputScenario[] = [];
  for (const [index, scenario] of scenarios.entries()) {
    const ours = `bench-${deps.runId}-s${index}-bridge`;
    const theirs = `bench-${deps.runId}-s${index}-powertools`;
    await createTable(deps.direct, ours, 'pk');
    await createTable(deps.direct, theirs, 'id');
    process.env.IDEMPOTENCY_TABLE_NAME = ours;
    process.env.DLQ_URL = deps.dlqUrl;
    try {
      await deps.proxy.setDelay(scenario.rttMs);
      const builders: Record<Side, Build> = {
        bridge: (meter) => bridgeRoute(meter, { dynamodb: deps.measured, sqs: deps.sqs }),
        bridgeWarmCache: (meter) => bridgeRoute(meter, { dynamodb: deps.measured, sqs: deps.sqs }),
        bridgeKeyStrategy: (meter) => bridgeRoute(meter, { dynamodb: deps.measured, sqs: deps.sqs }, 'key'),
        powertools: (meter) => powertoolsRoute(meter, { client: deps.measured, tableName: theirs, ordered: true }),
        powertoolsUnordered: (meter) =>
          powertoolsRoute(meter, { client: deps.measured, tableName: theirs, ordered: false }),
      };
      const sides = SIDES.filter(
        (side) =>
          (side !== 'bridgeWarmCache' || scenario.duplicateRate > 0) && (!deps.sides || deps.sides.includes(side)),
      );
      // One unmeasured batch per side first: JIT, connection pools.
      for (const side of sides) {
        const warmUp = { ...scenario, batchSize: Math.min(scenario.batchSize, 100) };
        await measureSide(deps, builders[side], warmUp, `w-${deps.runId}-${index}-${side}`, side === 'bridgeWarmCache');
      }
      const runs = new Map<Side, Run[]>(sides.map((side) => [side, []]));
      const roundTrips: number[] = [];
      const raw: RawWaves[] = [];
      for (let rep = 0; rep < deps.repetitions; rep++) {
        // Rotate the order each repetition, so no side always follows the same neighbour; the reference
        // measurements (one round trip, the store's requests alone) run in the same rotation, under the same load.
        const order = sides.map((_, i) => sides[(i + rep) % sides.length] as Side);
        for (const side of order) {
          const topic = `t-${deps.runId}-${index}-${rep}-${side}`;
          runs.get(side)?.push(await measureSide(deps, builders[side], scenario, topic, side === 'bridgeWarmCache'));
        }
        roundTrips.push(await measureRoundTrip(deps.measured, ours, 11));
        raw.push(await measureRawWaves(deps.measured, ours, scenario.batchSize, deps.dynamodbPid));
      }
      const roundTripMs = median(roundTrips);
      const rawWavesMs = median(raw.map((r) => r.ms));
      const serverCpu = raw.flatMap((r) => (r.serverCpuMsPerRecord === undefined ? [] : [r.serverCpuMsPerRecord]));
      const empty: SideThroughput = {
        recordsPerSec: 0,
        ddbRequestsPerRecord: 0,
        ddbWriteUnitsPerRecord: 0,
        ddbReadUnitsPerRecord: 0,
      };
      const side = (name: Side) => {
        const list = runs.get(name) ?? [];
        return list.length > 0 ? summarise(list, scenario.batchSize) : empty;
      };
      const bridge = side('bridge');
      const powertools = side('powertools');
      const result: ThroughputScenario = {
        ...scenario,
        bridge,
        powertools,
        ratio: ratio(bridge.recordsPerSec, powertools.recordsPerSec),
        powertoolsUnordered: side('powertoolsUnordered'),
        ...(scenario.duplicateRate > 0 ? { bridgeWarmCache: side('bridgeWarmCache') } : {}),
        bridgeKeyStrategy: side('bridgeKeyStrategy'),
        twoRoundTripIdealMs: round(2 * roundTripMs, 2),
        rawWavesMs: round(rawWavesMs, 2),
        bareSdkCpuMsPerRecord: round(median(raw.map((r) => r.clientCpuMsPerRecord)), 3),
        ...(serverCpu.length > 0 ? { dynamodbLocalCpuMsPerRecord: round(median(serverCpu), 3) } : {}),
      };
      results.push(result);
      deps.log(
        `${scenarioLabel(scenario)}: bridge ${bridge.recordsPerSec} rec/s (${bridge.ddbRequestsPerRecord} req/rec, ` +
          `${bridge.ddbWriteUnitsPerRecord} WRU/rec, ` +
          `${bridge.batchMsMedian} ms/batch), powertools ${powertools.recordsPerSec} rec/s ` +
          `(${powertools.ddbRequestsPerRecord} req/rec, ${powertools.ddbWriteUnitsPerRecord} WRU/rec), ratio ${result.ratio}×; ideal ${result.twoRoundTripIdealMs} ms, ` +
          `bare requests ${result.rawWavesMs} ms; CPU ms/record bridge ${bridge.cpuMsPerRecord ?? '–'}, ` +
          `powertools ${powertools.cpuMsPerRecord ?? '–'}`,
      );
    } finally {
      await deleteTable(deps.direct, ours);
      await deleteTable(deps.direct, theirs);
    }
  }
  return results;
};
