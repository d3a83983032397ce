// The committed benchmark results: their shape (DESIGN §9), not their timings, and that RESULTS.md is the rendering
// of exactly that results.json (so the numbers people read come from the run).
import fs from 'node:fs';
import { analysis, evaluateGoals, renderResultsMarkdown } from '../../../scripts/bench/report.ts';
import { BenchResults, type KeepingUpStep, keepsUp } from '../../../scripts/bench/schema.ts';

const RESULTS_JSON = new URL('../../../scripts/bench/results.json', import.meta.url);
const RESULTS_MD = new URL('../../../scripts/bench/RESULTS.md', import.meta.url);

const committed = (): unknown => JSON.parse(fs.readFileSync(RESULTS_JSON, 'utf8'));

test('results.json has the DESIGN §9 shape', () => {
  const parsed = BenchResults.safeParse(committed());
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n'));
  const results = parsed.data;
  expect(Object.keys(results.machine)).toEqual(expect.arrayContaining(['cores', 'node']));
  expect(results.machine.node).toMatch(/^v\d+\./);
  for (const scenario of results.handlerThroughput) {
    expect(Object.keys(scenario)).toEqual(
      expect.arrayContaining(['batchSize', 'partitions', 'duplicateRate', 'rttMs', 'bridge', 'powertools', 'ratio']),
    );
    for (const side of [scenario.bridge, scenario.powertools]) {
      expect(Object.keys(side)).toEqual(expect.arrayContaining(['recordsPerSec', 'ddbRequestsPerRecord']));
    }
  }
  for (const bundle of ['bridge', 'powertools', 'floor'] as const) {
    expect(Object.keys(results.coldStart[bundle])).toEqual(expect.arrayContaining(['bundleBytes', 'initMsMedian']));
  }
  expect(Object.keys(results.endToEnd)).toEqual(
    expect.arrayContaining(['records', 'recordsPerSec', 'p50LatencyMs', 'p99LatencyMs', 'baseline']),
  );
  expect(Object.keys(results.endToEnd.baseline)).toEqual(expect.arrayContaining(['recordsPerSec', 'p99LatencyMs']));
});

test('the committed results cover the goal scenario (batch 100 × 4 partitions at the RTT, fresh records)', () => {
  const results = BenchResults.parse(committed());
  const rtt = (results.options as { rttMs?: number } | undefined)?.rttMs ?? 5;
  expect(
    results.handlerThroughput.some(
      (s) => s.batchSize === 100 && s.partitions === 4 && s.duplicateRate === 0 && s.rttMs === rtt,
    ),
  ).toBe(true);
  // Issue #4's choice of BatchWriteItem for completes rests on this comparison.
  expect(results.settleStrategies?.map((s) => s.records)).toEqual([100, 1_000]);
});

test('RESULTS.md is the rendering of the committed results.json', () => {
  const results = BenchResults.parse(committed());
  expect(fs.readFileSync(RESULTS_MD, 'utf8')).toBe(renderResultsMarkdown(results));
});

test('the schema rejects a result that misses a §9 field or has a wrong type', () => {
  const valid = committed() as Record<string, unknown>;
  const { coldStart: _, ...withoutColdStart } = valid;
  expect(BenchResults.safeParse(withoutColdStart).success).toBe(false);
  const badMachine = { ...valid, machine: { cores: '2', node: 'v24' } };
  expect(BenchResults.safeParse(badMachine).success).toBe(false);
  expect(BenchResults.safeParse({ ...valid, handlerThroughput: [] }).success).toBe(false);
});

test('goal verdicts follow the numbers', () => {
  const side = (recordsPerSec: number, ddbRequestsPerRecord: number, batchMsMedian?: number) => ({
    recordsPerSec,
    ddbRequestsPerRecord,
    ddbWriteUnitsPerRecord: ddbRequestsPerRecord < 1 ? 0.04 : 2,
    ddbReadUnitsPerRecord: 0,
    ...(batchMsMedian ? { batchMsMedian } : {}),
  });
  const results = BenchResults.parse({
    machine: { cores: 2, node: 'v24.0.0' },
    options: { rttMs: 5 },
    handlerThroughput: [
      {
        batchSize: 100,
        partitions: 4,
        duplicateRate: 0,
        rttMs: 5,
        bridge: side(8000, 0.04, 20),
        powertools: side(400, 2),
        ratio: 20,
        twoRoundTripIdealMs: 14,
      },
    ],
    coldStart: {
      bridge: { bundleBytes: 1, initMsMedian: 105 },
      powertools: { bundleBytes: 1, initMsMedian: 120 },
      floor: { bundleBytes: 1, initMsMedian: 100 },
    },
    endToEnd: {
      records: 100_000,
      recordsPerSec: 11_000,
      p50LatencyMs: 50,
      p99LatencyMs: 150,
      baseline: { recordsPerSec: 200, p99LatencyMs: 9000 },
    },
  });
  // Saturated 11,000 records/s misses 12,000; no keeping-up run was measured.
  expect(evaluateGoals(results).map((g) => g.met)).toEqual([true, true, true, true, true, false, undefined]);
});

test("keeping up is the goal's measure: 95% of the offer consumed with P99 ≤ 200 ms, at ≥ 10,000 records/s", () => {
  const withKeepingUp = (keepingUp: KeepingUpStep) => {
    const results = BenchResults.parse(committed());
    return { ...results, endToEnd: { ...results.endToEnd, keepingUp } } as typeof results;
  };
  const verdict = (step: KeepingUpStep) => evaluateGoals(withKeepingUp(step)).at(-1)?.met;
  const step = { offeredRatePerSec: 10_500, records: 100_000, recordsPerSec: 10_400, p50LatencyMs: 40 };
  expect(verdict({ ...step, p99LatencyMs: 190 })).toBe(true);
  expect(verdict({ ...step, p99LatencyMs: 250 })).toBe(false);
  expect(verdict({ ...step, recordsPerSec: 9_000, p99LatencyMs: 190 })).toBe(false);
  expect(verdict({ ...step, offeredRatePerSec: 9_000, recordsPerSec: 9_000, p99LatencyMs: 190 })).toBe(false);
  expect(keepsUp({ offeredRatePerSec: 1_000, recordsPerSec: 950, p99LatencyMs: 200 })).toBe(true);
  expect(keepsUp({ offeredRatePerSec: 1_000, recordsPerSec: 949, p99LatencyMs: 200 })).toBe(false);
});

test('the analysis states what bounds keeping up from the steps measured, the one that kept up marked', () => {
  const results = BenchResults.parse(committed());
  const steps = [
    { offeredRatePerSec: 4_000, records: 20_000, recordsPerSec: 3_990, p50LatencyMs: 60, p99LatencyMs: 400 },
    { offeredRatePerSec: 2_900, records: 20_000, recordsPerSec: 2_890, p50LatencyMs: 30, p99LatencyMs: 150 },
  ];
  const run = {
    ...results,
    endToEnd: {
      ...results.endToEnd,
      recordsPerSec: 5_000,
      cpuSplit: {
        benchProcessMsPerRecord: 0.2,
        kafkaMsPerRecord: 0.02,
        dynamodbLocalMsPerRecord: 0.03,
        shareOfCores: 0.8,
      },
      keepingUp: { ...(steps[1] as (typeof steps)[number]), batchingWindowSeconds: 0, steps },
    },
  } as typeof results;
  const bound = analysis(run).find((p) => p.startsWith('**What bounds keeping up.**'));
  expect(bound).toContain("keeps up, by the goal's measure, at 2,900 records/s");
  expect(bound).toContain('10,000 records/s alone would keep 2.5 cores busy');
  expect(renderResultsMarkdown(run)).toMatch(/offered 2,900 records\/s \(batching window 0 s\): \*\*keeping up\*\*/);
  expect(renderResultsMarkdown(run)).not.toMatch(
    /offered 4,000 records\/s \(batching window 0 s\): \*\*keeping up\*\*/,
  );
});
