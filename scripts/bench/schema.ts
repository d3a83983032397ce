// The shape of scripts/bench/results.json (DESIGN §9). The benchmark validates what it writes with it, and the test
// validates the committed file with it. Fields beyond §9 are optional extras, so a §9 reader is never surprised.
import { z } from 'zod';

const nonNegative = z.number().finite().min(0);
const positive = z.number().finite().positive();

export const SideThroughput = z.object({
  recordsPerSec: nonNegative,
  ddbRequestsPerRecord: nonNegative,
  /** Write and read capacity units per record, as DynamoDB bills them on demand (counted at the latency proxy). */
  ddbWriteUnitsPerRecord: nonNegative,
  ddbReadUnitsPerRecord: nonNegative,
  /** Extras: the median batch wall time, the repetitions' raw rates. */
  batchMsMedian: nonNegative.optional(),
  /** The handler thread's CPU time per record (the proxy runs on its own thread). */
  cpuMsPerRecord: nonNegative.optional(),
  runs: z.array(nonNegative).optional(),
});
export type SideThroughput = z.infer<typeof SideThroughput>;

export const ThroughputScenario = z.object({
  batchSize: z.number().int().positive(),
  partitions: z.number().int().positive(),
  duplicateRate: z.number().min(0).max(1),
  rttMs: nonNegative,
  bridge: SideThroughput,
  powertools: SideThroughput,
  /** bridge.recordsPerSec / powertools.recordsPerSec (Powertools in partition order). */
  ratio: nonNegative,
  /** Extras for transparency. */
  powertoolsUnordered: SideThroughput.optional(),
  /** Our route with the completed keys already in its in-memory cache (a warm instance seeing redeliveries). */
  bridgeWarmCache: SideThroughput.optional(),
  /** Our route on the per-key strategy (`idempotency.strategy: 'key'`), as business-keyed routes run. */
  bridgeKeyStrategy: SideThroughput.optional(),
  /** Two sequential round trips through the proxy, measured in the same run: the ideal batch wall time. */
  twoRoundTripIdealMs: nonNegative.optional(),
  /** The same DynamoDB requests as our runtime's, sent in two waves by a bare client: the local server's floor. */
  rawWavesMs: nonNegative.optional(),
  /** CPU per record of the bare SDK client and of DynamoDB Local (Linux only) during those bare requests. */
  bareSdkCpuMsPerRecord: nonNegative.optional(),
  dynamodbLocalCpuMsPerRecord: nonNegative.optional(),
});
export type ThroughputScenario = z.infer<typeof ThroughputScenario>;

export const ColdStartEntry = z.object({
  bundleBytes: z.number().int().positive(),
  initMsMedian: positive,
  /** Extras: how many fresh processes, and the spread. */
  samples: z.number().int().positive().optional(),
  initMsP10: positive.optional(),
  initMsP90: positive.optional(),
  /** The child's CPU time over the import. */
  initCpuMsMedian: positive.optional(),
  /** Median over rounds of this bundle's init / the floor's init in the same round. */
  vsFloorPairedMedian: positive.optional(),
});
export type ColdStartEntry = z.infer<typeof ColdStartEntry>;

/** The keeping-up steps of the end-to-end section, as shares of the saturated throughput, tried from the top. */
export const KEEPING_UP_SHARES = [0.75, 0.55, 0.4, 0.25] as const;

/** One keeping-up step: an offered rate, with the batching window at 0 s, and what the bridge made of it. */
export const KeepingUpStep = z.object({
  offeredRatePerSec: nonNegative,
  records: z.number().int().positive(),
  recordsPerSec: nonNegative,
  p50LatencyMs: nonNegative,
  p99LatencyMs: nonNegative,
  /** Extras: the machine's cores kept busy, the invocations, and CPU per record (this process, broker, DynamoDB Local). */
  shareOfCores: nonNegative.optional(),
  invocations: z.number().int().min(0).optional(),
  cpuMsPerRecord: nonNegative.optional(),
});
export type KeepingUpStep = z.infer<typeof KeepingUpStep>;

/** Keeping up, as the goal measures it: at least 95% of the offer consumed, with a P99 of at most 200 ms. */
export const keepsUp = (step: Pick<KeepingUpStep, 'offeredRatePerSec' | 'recordsPerSec' | 'p99LatencyMs'>): boolean =>
  step.recordsPerSec >= 0.95 * step.offeredRatePerSec && step.p99LatencyMs <= 200;

export const EndToEnd = z
  .object({
    records: z.number().int().positive(),
    recordsPerSec: nonNegative,
    p50LatencyMs: nonNegative,
    p99LatencyMs: nonNegative,
    /** The step that kept up (or, with none, the lowest tried), and every step tried, highest offer first. */
    keepingUp: KeepingUpStep.extend({
      batchingWindowSeconds: nonNegative.optional(),
      steps: z.array(KeepingUpStep).optional(),
    }).optional(),
    baseline: z
      .object({
        recordsPerSec: nonNegative,
        p99LatencyMs: nonNegative,
      })
      .catchall(z.unknown()),
  })
  .catchall(z.unknown());
export type EndToEnd = z.infer<typeof EndToEnd>;

/** One way of writing completes: wall time, requests and handler-thread CPU for a number of records. */
export const SettleStrategy = z.object({
  ms: nonNegative,
  requests: nonNegative,
  cpuMsPerRecord: nonNegative,
});
export type SettleStrategy = z.infer<typeof SettleStrategy>;

/** Completes written as the runtime writes them (BatchWriteItem) against one parallel UpdateItem per record. */
export const SettleStrategies = z.array(
  z.object({
    records: z.number().int().positive(),
    batchWriteItem: SettleStrategy,
    parallelUpdateItem: SettleStrategy,
  }),
);
export type SettleStrategies = z.infer<typeof SettleStrategies>;

export const BenchResults = z
  .object({
    machine: z.object({ cores: z.number().int().positive(), node: z.string().min(1) }).catchall(z.unknown()),
    handlerThroughput: z.array(ThroughputScenario).min(1),
    coldStart: z.object({ bridge: ColdStartEntry, powertools: ColdStartEntry, floor: ColdStartEntry }),
    endToEnd: EndToEnd,
    /** Extra, from the throughput section: how completes are written, measured both ways. */
    settleStrategies: SettleStrategies.optional(),
    /** Extras: when, how (quick or full), and with which options. */
    generatedAt: z.iso.datetime().optional(),
    quick: z.boolean().optional(),
    options: z.record(z.string(), z.unknown()).optional(),
    durationSec: nonNegative.optional(),
  })
  .catchall(z.unknown());
export type BenchResults = z.infer<typeof BenchResults>;
