// Issue #4 asks to measure the two ways of writing completes and choose: BatchWriteItem (25 items a request, what
// the runtime does) against one UpdateItem per record sent in parallel. Both write the same COMPLETED items through
// the same latency proxy, one after the other, alternating which goes first.
import { performance } from 'node:perf_hooks';
import { type AttributeValue, type DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { forEachLimited } from '../../functions/runtime/concurrency.ts';
import { CompletedKeyCache } from '../../functions/runtime/idempotency/CompletedKeyCache.ts';
import { DynamoDbIdempotencyStore } from '../../functions/runtime/idempotency/DynamoDbIdempotencyStore.ts';
import { type Completion, RecordStatus } from '../../functions/runtime/idempotency/IdempotencyStore.ts';
import { addRequestCounter, countRequestsIn } from '../../functions/runtime/idempotency/requestCounter.ts';
import { createTable, deleteTable } from './aws.ts';
import type { ProxyWorker } from './proxyHost.ts';
import type { SettleStrategies, SettleStrategy } from './schema.ts';
import { median, round } from './stats.ts';
import { threadCpuMs } from './throughput.ts';

/** As many UpdateItems in flight as the runtime allows claims: the fairest parallel alternative. */
const PARALLEL_UPDATES = 100;

type Sample = { ms: number; requests: number; cpuMs: number };

const settlementsFor = (prefix: string, count: number): Completion[] =>
  Array.from({ length: count }, (_, offset) => ({
    key: `${prefix}@${offset}`,
    coordinates: { topic: prefix, partition: 0, offset },
    attempts: 1,
    firstSeen: Date.now(),
  }));

const timed = async (work: () => Promise<void>): Promise<Sample> => {
  const count = { requests: 0 };
  const cpuStarted = threadCpuMs();
  const started = performance.now();
  await countRequestsIn(count, work);
  return { ms: performance.now() - started, requests: count.requests, cpuMs: threadCpuMs() - cpuStarted };
};

const viaBatchWrites = (client: DynamoDBClient, table: string, settlements: readonly Completion[]) => {
  const store = new DynamoDbIdempotencyStore({
    client,
    tableName: table,
    route: 'settle',
    ttlSeconds: 3600,
    cache: new CompletedKeyCache(0),
  });
  return timed(async () => {
    for (const settlement of settlements) store.complete(settlement);
    await store.flush(Date.now() + 60_000);
  });
};

const viaParallelUpdates = (client: DynamoDBClient, table: string, settlements: readonly Completion[]) =>
  timed(() =>
    forEachLimited(settlements, PARALLEL_UPDATES, async ({ key, coordinates, attempts, firstSeen }) => {
      const now = Date.now();
      const values: Record<string, AttributeValue> = {
        ':status': { S: RecordStatus.completed },
        ':attempts': { N: String(attempts) },
        ':firstSeen': { N: String(firstSeen) },
        ':now': { N: String(now) },
        ':exp': { N: String(Math.floor(now / 1000) + 3600) },
        ':topic': { S: coordinates.topic },
        ':partition': { N: String(coordinates.partition) },
        ':offset': { N: String(coordinates.offset) },
      };
      await client.send(
        new UpdateItemCommand({
          TableName: table,
          Key: { pk: { S: `settle#${key}` } },
          UpdateExpression:
            'SET #status = :status, attempts = :attempts, firstSeen = :firstSeen, settledAt = :now, ' +
            'expiresAt = :exp, #topic = :topic, #partition = :partition, #offset = :offset',
          ExpressionAttributeNames: {
            '#status': 'status',
            '#topic': 'topic',
            '#partition': 'partition',
            '#offset': 'offset',
          },
          ExpressionAttributeValues: values,
        }),
      );
    }),
  );

const summarise = (samples: readonly Sample[], records: number): SettleStrategy => ({
  ms: round(median(samples.map((s) => s.ms)), 2),
  requests: median(samples.map((s) => s.requests)),
  cpuMsPerRecord: round(median(samples.map((s) => s.cpuMs)) / records, 3),
});

export type SettleStrategiesDeps = {
  readonly proxy: ProxyWorker;
  /** Goes through the proxy. */
  readonly measured: DynamoDBClient;
  /** Straight to DynamoDB Local, for the table itself. */
  readonly direct: DynamoDBClient;
  readonly rttMs: number;
  readonly repetitions: number;
  readonly runId: string;
  readonly log: (line: string) => void;
};

/** Batches of 100 (the goal scenario's) and 1,000 records. */
const RECORD_COUNTS = [100, 1_000];

export const runSettleStrategies = async (deps: SettleStrategiesDeps): Promise<SettleStrategies> => {
  const table = `bench-${deps.runId}-settle`;
  await createTable(deps.direct, table, 'pk');
  await deps.proxy.setDelay(deps.rttMs);
  try {
    const results = await measureSettleStrategies(deps.measured, table, deps.repetitions);
    for (const { records, batchWriteItem: b, parallelUpdateItem: u } of results) {
      deps.log(
        `completes of ${records} records at ${deps.rttMs} ms: BatchWriteItem ${b.ms} ms (${b.requests} requests, ` +
          `${b.cpuMsPerRecord} ms CPU/record), parallel UpdateItem ${u.ms} ms (${u.requests} requests, ` +
          `${u.cpuMsPerRecord} ms CPU/record)`,
      );
    }
    return results;
  } finally {
    await deleteTable(deps.direct, table);
  }
};

const measureSettleStrategies = async (
  measured: DynamoDBClient,
  table: string,
  repetitions: number,
): Promise<SettleStrategies> => {
  const client = addRequestCounter(measured);
  const out: SettleStrategies = [];
  for (const count of RECORD_COUNTS) {
    const batch: Sample[] = [];
    const parallel: Sample[] = [];
    for (let rep = -1; rep < repetitions; rep++) {
      const prefix = `settle-${count}-${rep}-${Math.random().toString(36).slice(2)}`;
      const runBatch = async () => {
        const sample = await viaBatchWrites(client, table, settlementsFor(`${prefix}-b`, count));
        if (rep >= 0) batch.push(sample);
      };
      const runParallel = async () => {
        const sample = await viaParallelUpdates(client, table, settlementsFor(`${prefix}-u`, count));
        if (rep >= 0) parallel.push(sample);
      };
      // rep -1 warms both paths up unmeasured; then the order alternates.
      if (rep % 2 === 0) {
        await runBatch();
        await runParallel();
      } else {
        await runParallel();
        await runBatch();
      }
    }
    out.push({
      records: count,
      batchWriteItem: summarise(batch, count),
      parallelUpdateItem: summarise(parallel, count),
    });
  }
  return out;
};
