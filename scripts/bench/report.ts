// RESULTS.md from results.json: the goals with met/missed, a table per section, the machine and how to reproduce.
// Pure: everything said here is computed from the results it is given, so the file always matches its run.
import {
  type BenchResults,
  KEEPING_UP_SHARES,
  type KeepingUpStep,
  keepsUp,
  type ThroughputScenario,
} from './schema.ts';

export type GoalVerdict = {
  readonly goal: string;
  readonly target: string;
  readonly result: string;
  /** undefined when the run did not cover it. */
  readonly met: boolean | undefined;
};

const fmt = (n: number | undefined, decimals = 0): string =>
  n === undefined || Number.isNaN(n)
    ? '–'
    : n.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
const pct = (rate: number) => `${Math.round(rate * 100)}%`;
const times = (n: number | undefined) => (n === undefined ? '–' : `${fmt(n, 2)}×`);

/** The RTT of the "at 5 ms" scenarios: the run's --rtt. */
const rttOf = (results: BenchResults): number => {
  const fromOptions = (results.options as { rttMs?: unknown } | undefined)?.rttMs;
  if (typeof fromOptions === 'number') return fromOptions;
  return Math.max(...results.handlerThroughput.map((s) => s.rttMs));
};

export const findScenario = (
  results: BenchResults,
  match: Partial<Pick<ThroughputScenario, 'batchSize' | 'partitions' | 'duplicateRate' | 'rttMs'>>,
): ThroughputScenario | undefined =>
  results.handlerThroughput.find((s) =>
    (Object.entries(match) as Array<[keyof ThroughputScenario, number]>).every(([k, v]) => s[k] === v),
  );

export const evaluateGoals = (results: BenchResults): GoalVerdict[] => {
  const rtt = rttOf(results);
  const verdicts: GoalVerdict[] = [];
  const goal = findScenario(results, { batchSize: 100, partitions: 4, duplicateRate: 0, rttMs: rtt });
  verdicts.push({
    goal: `Throughput vs Powertools (ordered), batch 100 × 4 partitions, ${rtt} ms RTT, fresh records`,
    target: '≥ 15×',
    result: goal
      ? `${times(goal.ratio)} (${fmt(goal.bridge.recordsPerSec)} vs ${fmt(goal.powertools.recordsPerSec)} records/s)`
      : 'not measured',
    met: goal ? goal.ratio >= 15 : undefined,
  });
  verdicts.push({
    goal: `DynamoDB write units per fresh record, batch 100 × 4 partitions, ${rtt} ms RTT (on-demand billing)`,
    target: '≤ 0.05 WRU (Powertools: 2.0)',
    result: goal
      ? `${fmt(goal.bridge.ddbWriteUnitsPerRecord, 3)} WRU (Powertools ${fmt(goal.powertools.ddbWriteUnitsPerRecord, 3)})`
      : 'not measured',
    met: goal ? goal.bridge.ddbWriteUnitsPerRecord <= 0.05 : undefined,
  });
  const fresh = results.handlerThroughput.filter((s) => s.duplicateRate === 0);
  const worst = fresh.length > 0 ? Math.max(...fresh.map((s) => s.bridge.ddbRequestsPerRecord)) : undefined;
  const theirs = fresh.length > 0 ? Math.min(...fresh.map((s) => s.powertools.ddbRequestsPerRecord)) : undefined;
  verdicts.push({
    goal: 'DynamoDB requests per record, fresh records (every fresh-record scenario)',
    target: '≤ 1.1 (Powertools: 2.0)',
    result: worst === undefined ? 'not measured' : `${fmt(worst, 3)} at most (Powertools ${fmt(theirs, 3)})`,
    met: worst === undefined ? undefined : worst <= 1.1,
  });
  const ideal = goal?.twoRoundTripIdealMs;
  const wall = goal?.bridge.batchMsMedian;
  verdicts.push({
    goal: `Batch wall time vs the two-round-trip ideal, batch 100 × 4 partitions, ${rtt} ms RTT`,
    target: '≤ 1.5×',
    result:
      ideal && wall
        ? `${times(wall / ideal)} (${fmt(wall, 1)} ms vs 2 × ${fmt(ideal / 2, 1)} ms)` +
          (goal?.rawWavesMs
            ? `; ${times(wall / goal.rawWavesMs)} the same requests made bare (${fmt(goal.rawWavesMs, 1)} ms)`
            : '')
        : 'not measured',
    met: ideal && wall ? wall / ideal <= 1.5 : undefined,
  });
  const cs = results.coldStart;
  const vsFloor = cs.bridge.initMsMedian / cs.floor.initMsMedian;
  verdicts.push({
    goal: 'Init time vs the floor, and vs Powertools',
    target: '≤ 1.10× the floor and < Powertools',
    result:
      `${fmt(cs.bridge.initMsMedian, 1)} ms: ${times(vsFloor)} the floor (${fmt(cs.floor.initMsMedian, 1)} ms), ` +
      `${times(cs.bridge.initMsMedian / cs.powertools.initMsMedian)} Powertools (${fmt(cs.powertools.initMsMedian, 1)} ms)` +
      (cs.bridge.vsFloorPairedMedian !== undefined
        ? `; paired per round: ${times(cs.bridge.vsFloorPairedMedian)} the floor, Powertools ${times(cs.powertools.vsFloorPairedMedian)}`
        : ''),
    met: vsFloor <= 1.1 && cs.bridge.initMsMedian < cs.powertools.initMsMedian,
  });
  const e2e = results.endToEnd;
  verdicts.push({
    goal: `End to end on ${results.machine.cores} cores, saturated`,
    target: '≥ 12,000 records/s',
    result: `${fmt(e2e.recordsPerSec)} records/s`,
    met: e2e.recordsPerSec >= 12_000,
  });
  const kept = e2e.keepingUp;
  verdicts.push({
    goal: `End to end on ${results.machine.cores} cores, keeping up (produce to commit)`,
    target: '≥ 10,000 records/s offered with P99 ≤ 200 ms',
    result: kept
      ? `${fmt(kept.offeredRatePerSec)} records/s offered (${fmt(kept.recordsPerSec)} consumed), P99 ${fmt(kept.p99LatencyMs)} ms`
      : 'not measured',
    met: kept ? kept.offeredRatePerSec >= 10_000 && keepsUp(kept) : undefined,
  });
  return verdicts;
};

const verdictText = (met: boolean | undefined) => (met === undefined ? 'not measured' : met ? '**met**' : '**missed**');

const row = (cells: readonly (string | number)[]) => `| ${cells.join(' | ')} |`;

const width = (text: string) => [...text].length;

/**
 * Pads every markdown table so its columns line up, the way the project's formatter (Biome) writes them, so the
 * generated file passes `biome check` unchanged: cells padded to the column's width (right-aligned columns on the
 * left), separator dashes across the full width.
 */
export const alignTables = (markdown: string): string => {
  const lines = markdown.split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; ) {
    if (!(lines[i] as string).startsWith('|')) {
      out.push(lines[i] as string);
      i += 1;
      continue;
    }
    const block: string[][] = [];
    while (i < lines.length && (lines[i] as string).startsWith('|')) {
      block.push((lines[i] as string).slice(2, -2).split(' | '));
      i += 1;
    }
    const right = (block[1] ?? []).map((cell) => cell.endsWith(':'));
    const widths = (block[0] ?? []).map((_, c) =>
      Math.max(3, ...block.filter((_, r) => r !== 1).map((cells) => width(cells[c] ?? ''))),
    );
    block.forEach((cells, r) => {
      const padded = widths.map((w, c) => {
        if (r === 1) return right[c] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w);
        const cell = cells[c] ?? '';
        const pad = ' '.repeat(w - width(cell));
        return right[c] ? pad + cell : cell + pad;
      });
      out.push(`| ${padded.join(' | ')} |`);
    });
  }
  return out.join('\n');
};

const throughputTable = (results: BenchResults): string[] => {
  const lines = [
    row([
      'batch',
      'partitions',
      'duplicates',
      'RTT ms',
      'bridge rec/s',
      'bridge req/rec',
      'bridge WRU/rec',
      'bridge RRU/rec',
      'Powertools ordered rec/s',
      'Powertools req/rec',
      'Powertools WRU/rec',
      '**ratio**',
      'Powertools unordered rec/s',
      'bridge, warm cache rec/s',
      'bridge, key strategy rec/s (WRU, RRU/rec)',
      'bridge ms/batch',
      'ideal ms (2 RTT)',
      'bare requests ms',
    ]),
    row(Array.from({ length: 18 }, (_, i) => (i < 4 ? '---' : '---:'))),
  ];
  for (const s of results.handlerThroughput) {
    lines.push(
      row([
        s.batchSize,
        s.partitions,
        pct(s.duplicateRate),
        s.rttMs,
        fmt(s.bridge.recordsPerSec),
        fmt(s.bridge.ddbRequestsPerRecord, 3),
        fmt(s.bridge.ddbWriteUnitsPerRecord, 3),
        fmt(s.bridge.ddbReadUnitsPerRecord, 3),
        fmt(s.powertools.recordsPerSec),
        fmt(s.powertools.ddbRequestsPerRecord, 3),
        fmt(s.powertools.ddbWriteUnitsPerRecord, 3),
        `**${times(s.ratio)}**`,
        fmt(s.powertoolsUnordered?.recordsPerSec),
        s.bridgeWarmCache
          ? `${fmt(s.bridgeWarmCache.recordsPerSec)} (${fmt(s.bridgeWarmCache.ddbRequestsPerRecord, 3)} req/rec)`
          : '–',
        s.bridgeKeyStrategy
          ? `${fmt(s.bridgeKeyStrategy.recordsPerSec)} (${fmt(s.bridgeKeyStrategy.ddbWriteUnitsPerRecord, 3)}, ${fmt(s.bridgeKeyStrategy.ddbReadUnitsPerRecord, 3)})`
          : '–',
        fmt(s.bridge.batchMsMedian, 1),
        fmt(s.twoRoundTripIdealMs, 1),
        fmt(s.rawWavesMs, 1),
      ]),
    );
  }
  return lines;
};

/** The completes measured both ways (issue #4: measure BatchWriteItem against parallel UpdateItems and choose). */
const settleSection = (results: BenchResults): string[] => {
  const settles = results.settleStrategies;
  if (!settles || settles.length === 0) return [];
  const rtt = rttOf(results);
  const lines = [
    '### Writing completes: BatchWriteItem against parallel UpdateItems',
    '',
    `The same COMPLETED items for fresh keys, through the same proxy at ${rtt} ms, written the runtime's way ` +
      "(the idempotency store's `settle` and `flush`: BatchWriteItems of 25, in flight together) and as one " +
      'UpdateItem per record, at most 100 in flight (as many as the runtime allows claims). Median of the ' +
      "repetitions, the two alternating which goes first; CPU is the handler thread's.",
    '',
    row([
      'records',
      'BatchWriteItem ms',
      'requests',
      'CPU ms/record',
      'parallel UpdateItem ms',
      'requests',
      'CPU ms/record',
      '**UpdateItem / BatchWriteItem time**',
    ]),
    row(Array.from({ length: 8 }, (_, i) => (i < 1 ? '---' : '---:'))),
  ];
  for (const { records, batchWriteItem: b, parallelUpdateItem: u } of settles) {
    lines.push(
      row([
        fmt(records),
        fmt(b.ms, 1),
        fmt(b.requests),
        fmt(b.cpuMsPerRecord, 3),
        fmt(u.ms, 1),
        fmt(u.requests),
        fmt(u.cpuMsPerRecord, 3),
        `**${times(u.ms / Math.max(b.ms, 0.001))}**`,
      ]),
    );
  }
  return ['', ...lines];
};

export const renderResultsMarkdown = (results: BenchResults, notes: readonly string[] = analysis(results)): string => {
  const m = results.machine as BenchResults['machine'] & {
    cpu?: string;
    memoryGb?: number;
    loadAverageAtEnd?: number[];
    platform?: string;
  };
  const o = (results.options ?? {}) as {
    rttMs?: number;
    repetitions?: number;
    initSamples?: number;
    records?: number;
    baselineRecords?: number;
    e2eRate?: number;
    partitions?: number;
  };
  const e2e = results.endToEnd as BenchResults['endToEnd'] & {
    bareStoreRecordsPerSec?: number;
    bareSdkCpuMsPerRecord?: number;
    dynamodbLocalCpuMsPerRecord?: number;
    rttMs?: number;
    offeredRatePerSec?: number;
    maxLatencyMs?: number;
    partitions?: number;
  };
  const baseline = e2e.baseline as {
    recordsPerSec: number;
    p99LatencyMs: number;
    records?: number;
    p50LatencyMs?: number;
  };
  const cs = results.coldStart;
  const lines: string[] = [
    '# Benchmark results',
    '',
    `Generated by \`npm run bench${results.quick ? ' -- --quick' : ''}\` on ${results.generatedAt ?? 'an unknown date'}` +
      `${results.durationSec !== undefined ? ` in ${results.durationSec} s` : ''}. ` +
      'Every number below comes from that one run (scripts/bench/results.json); nothing is edited by hand.',
    '',
    '## Machine',
    '',
    `- ${m.cores} cores${m.cpu ? ` (${m.cpu})` : ''}, ${m.memoryGb ?? '?'} GB, ${m.platform ?? ''}`.trimEnd(),
    `- Node ${m.node}`,
    `- DynamoDB Local, Kafka and ElasticMQ run on the same machine, sharing its ${m.cores} cores` +
      (m.loadAverageAtEnd ? `; load average at the end: ${m.loadAverageAtEnd.join(', ')}` : ''),
    '',
    '## How to reproduce',
    '',
    '```sh',
    'npm install',
    'npm run bench -- --quick   # under 5 minutes: the goal scenarios, fewer repetitions and records',
    'npm run bench              # the full matrix, 100,000 records end to end',
    'npm run bench -- --help    # options: --rtt, --repetitions, --init-samples, --records, ...',
    '```',
    '',
    'Local services start if they are not running (Java 17+ needed). Results go to `scripts/bench/results.json` ' +
      '(DESIGN §9 shape, checked by `test/scripts/bench/results.test.ts`) and this file.',
    '',
    '## Goals',
    '',
    row(['goal', 'target', 'result', 'verdict']),
    row(['---', '---', '---', '---']),
    ...evaluateGoals(results).map((v) => row([v.goal, v.target, v.result, verdictText(v.met)])),
    '',
    '## Handler throughput',
    '',
    `Method: one Lambda-style invocation per measured batch, median of ${o.repetitions ?? '?'} repetitions per side ` +
      'and scenario (sides interleaved, order rotated). Every DynamoDB request of every side goes through the same ' +
      `latency proxy, which adds the RTT to each request and counts them (requests/record is the proxy's count). ` +
      'The per-record `process` is the same function on both sides, CPU-trivial and without I/O of its own (it folds ' +
      'the order version into a checksum), so the comparison isolates the cost of decoding and dedupe. Both sides ' +
      "validate values with the orders route's zod schema and key dedupe on `topic-partition@offset`.",
    '',
    '- **bridge**: our runtime (`kafkaHandler`, default settings) on a fresh instance per batch, so its in-memory ' +
      'completed-key cache is empty; SDK clients and connections are warm.',
    '- **Powertools ordered**: `kafkaConsumer` + `makeIdempotent` with `DynamoDBPersistenceLayer` (no local cache), ' +
      'records sequential within a partition, partitions in parallel: the correct way to consume Kafka. **ratio** = ' +
      'bridge / Powertools ordered.',
    '- **Powertools unordered** (transparency only): every record at once, ignoring partition order.',
    "- **duplicates**: records whose key an earlier invocation already completed; the measured instance's cache does " +
      'not know them, so both sides must ask DynamoDB (Powertools one request each; the bridge inside its insert ' +
      'batches, then one read per batch for the keys found taken). **warm cache**: the same duplicates met by the ' +
      'instance that completed them (a redelivery to a warm container).',
    '- **ideal ms**: two sequential round trips (a conditional write each) through the proxy with nothing else ' +
      'running, measured in this run. **bare requests ms**: the requests the per-key strategy makes for a batch of ' +
      "fresh records, made by the runtime's own per-key store with no processor around it (one wave of claims, at " +
      'most 100 at once, sent as PartiQL insert batches of 25, then the settlements, BatchWriteItems of 25): what ' +
      'DynamoDB Local on this machine needs for the batch on that strategy. **key strategy**: our route with ' +
      "`idempotency.strategy: 'key'` (an item per record, as business-keyed routes run); the bridge columns are the " +
      'default for this coordinate-keyed route, the watermark strategy. **WRU/RRU**: write and read capacity units ' +
      'per record as DynamoDB bills them on demand, counted from each request at the proxy.',
    '',
    ...throughputTable(results),
    ...settleSection(results),
    '',
    '## Cold start',
    '',
    `esbuild bundles with identical settings (ESM, minified, platform node, target node24, AWS SDK bundled); module ` +
      `init is \`await import(bundle)\` timed inside each of ${cs.bridge.samples ?? '≥ 21'} fresh Node processes per ` +
      'bundle (interleaved), median shown. Each bundle constructs its DynamoDB and SQS clients at init. The floor is a ' +
      'bare middy handler with zod and the two clients doing the same order update; the Powertools equivalent uses ' +
      'kafka, idempotency, metrics and logger. Powertools Kafka 2.35 needs its unused Avro/Protobuf codec libraries ' +
      'stubbed to bundle at all (powertools-lambda-typescript#5557, fixed upstream in a later release).',
    '',
    row(['bundle', 'bytes', 'init ms (median)', 'p10', 'p90', 'vs floor', 'vs floor, paired', 'init CPU ms (median)']),
    row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:']),
    ...(['bridge', 'powertools', 'floor'] as const).map((name) =>
      row([
        name,
        fmt(cs[name].bundleBytes),
        fmt(cs[name].initMsMedian, 1),
        fmt(cs[name].initMsP10, 1),
        fmt(cs[name].initMsP90, 1),
        times(cs[name].initMsMedian / cs.floor.initMsMedian),
        times(cs[name].vsFloorPairedMedian),
        fmt(cs[name].initCpuMsMedian, 1),
      ]),
    ),
    '',
    "**vs floor** divides the medians (the goal's measure); **paired** is the median over rounds of " +
      "this bundle's init divided by the floor's in the same round (the three run back to back), which is less " +
      "moved by other load on the machine; **init CPU** is the child process's CPU time over the import.",
    '',
    '## End to end',
    '',
    `${fmt(e2e.records)} records${results.quick ? ' (quick run; the full run uses 100,000)' : ''} produced at ` +
      `${fmt(e2e.offeredRatePerSec ?? o.e2eRate)} records/s into a ${e2e.partitions ?? o.partitions ?? '?'}-partition ` +
      'topic while the local bridge consumed it (a real consumer group, the `audit` route: dedupe plus a count per ' +
      `record, route defaults: batch 100, 500 ms window), DynamoDB Local behind the proxy at ${e2e.rttMs ?? o.rttMs ?? '?'} ms. ` +
      'records/s = records / (last commit − first produce); latency = completion − record timestamp, per record, ' +
      "from the handler's EndToEndLatency metric. The baseline is a naive consumer on the same Kafka client " +
      `(@platformatic/kafka) doing one conditional PutItem per record, sequentially, through the same proxy, on ` +
      `${fmt(baseline.records)} records offered at the same rate. The keeping-up rows run with the batching window ` +
      'at 0 s (chosen for latency: the ESM invokes as soon as records arrive), about 15 s each, stepping the offer ' +
      `down through ${KEEPING_UP_SHARES.map(pct).join(', ')} of the saturated throughput until one consumes at least ` +
      "95% of it with a P99 of at most 200 ms, the goal's measure of keeping up.",
    '',
    row(['consumer', 'records', 'records/s', 'P50 ms', 'P99 ms']),
    row(['---', '---:', '---:', '---:', '---:']),
    row([
      `bridge, offered ${fmt(e2e.offeredRatePerSec ?? o.e2eRate)} records/s`,
      fmt(e2e.records),
      fmt(e2e.recordsPerSec),
      fmt(e2e.p50LatencyMs),
      fmt(e2e.p99LatencyMs),
    ]),
    // Runs of results.json from before the steps were recorded hold only the step that stood.
    ...(e2e.keepingUp?.steps ?? (e2e.keepingUp ? [e2e.keepingUp] : [])).map((step) =>
      row([
        `bridge, offered ${fmt(step.offeredRatePerSec)} records/s (batching window 0 s` +
          `${step.shareOfCores === undefined ? '' : `, ${pct(step.shareOfCores)} of the cores busy`})` +
          (keepsUp(step) ? ': **keeping up**' : ''),
        fmt(step.records),
        fmt(step.recordsPerSec),
        fmt(step.p50LatencyMs),
        fmt(step.p99LatencyMs),
      ]),
    ),
    row([
      `naive baseline, offered ${fmt(e2e.offeredRatePerSec ?? o.e2eRate)} records/s`,
      fmt(baseline.records),
      fmt(baseline.recordsPerSec),
      fmt(baseline.p50LatencyMs),
      fmt(baseline.p99LatencyMs),
    ]),
    '',
    `Ratio: ${times(e2e.recordsPerSec / Math.max(1, baseline.recordsPerSec))} the baseline's records/s.`,
    ...(e2e.bareStoreRecordsPerSec === undefined
      ? []
      : [
          '',
          `For scale: the runtime's idempotency store alone, through the proxy to DynamoDB Local, claimed and ` +
            `settled ${fmt(e2e.bareStoreRecordsPerSec)} records/s (claims 100 at a time in insert batches of 25, ` +
            'then settlements in BatchWriteItems of 25, no processor, no Kafka), measured in this run. Per record ' +
            `the SDK client used ${fmt(e2e.bareSdkCpuMsPerRecord, 2)} ms of CPU` +
            (e2e.dynamodbLocalCpuMsPerRecord === undefined
              ? '.'
              : ` and DynamoDB Local ${fmt(e2e.dynamodbLocalCpuMsPerRecord, 2)} ms, on the same ${m.cores} cores.`),
        ]),
    '',
    ...(notes.length > 0 ? ['## Analysis', '', ...notes, ''] : []),
  ];
  return `${alignTables(lines.join('\n').trimEnd())}\n`;
};

type ColdStart = BenchResults['coldStart'];
/**
 * What the keeping-up steps measured: how P99 grew with the load on the cores, and the cores 10,000 records/s would
 * keep busy at the saturated run's CPU per record.
 */
const keepingUpBound = (steps: KeepingUpStep[], cpuMsPerRecord: number, cores: number, rttMs = 5): string => {
  const lightest = steps.reduce((a, b) => (b.offeredRatePerSec < a.offeredRatePerSec ? b : a));
  const kept = steps.find(keepsUp);
  const perInvocation = (s: KeepingUpStep) =>
    s.invocations ? `, ${fmt(s.records / s.invocations, 1)} records per invocation` : '';
  const described = steps
    .map(
      (s) =>
        `${fmt(s.offeredRatePerSec)} records/s: P50 ${fmt(s.p50LatencyMs)} ms, P99 ${fmt(s.p99LatencyMs)} ms` +
        (s.shareOfCores === undefined ? '' : `, ${pct(s.shareOfCores)} of the cores busy`) +
        (s.cpuMsPerRecord === undefined ? '' : `, ${fmt(s.cpuMsPerRecord, 3)} ms of CPU per record`) +
        perInvocation(s),
    )
    .join('; ');
  // Measured, not assumed: say it only when the lightest step did pay more CPU per record than the saturated run.
  const fixedCost =
    lightest.cpuMsPerRecord !== undefined && lightest.cpuMsPerRecord > 1.3 * cpuMsPerRecord
      ? ` With no window, invocations come as fast as the pipeline allows, so fewer records share each ` +
        `invocation's fixed cost (its lease and end requests, the event's trip to the handler's worker, its EMF): ` +
        `at ${fmt(lightest.offeredRatePerSec)} records/s${perInvocation(lightest)}, ${fmt(lightest.cpuMsPerRecord, 3)} ` +
        `ms of CPU per record against the saturated run's ${fmt(cpuMsPerRecord, 3)} ms.`
      : '';
  const p99Rose = steps.length > 1 && steps[0] !== undefined && steps[0].p99LatencyMs > lightest.p99LatencyMs;
  return (
    `**What bounds keeping up.** The steps of this run (${described}). ` +
    (kept
      ? `The bridge keeps up, by the goal's measure, at ${fmt(kept.offeredRatePerSec)} records/s. `
      : 'No step kept P99 within 200 ms. ') +
    `With the batching window at 0 s a record waits for its partition's invocation in flight, then runs in the next ` +
    `one: a lease and an end (two round trips of ${rttMs} ms through the proxy) around the batch's CPU; the P50 of ` +
    `the lightest step, ${fmt(lightest.p50LatencyMs)} ms, is that pipeline.` +
    (p99Rose
      ? " As the load rises, the broker, DynamoDB Local, the bridge's fetch loop and the handler's worker queue for " +
        'the same cores, and the tail grows faster than the median.'
      : '') +
    `${fixedCost} At the saturated run's ${fmt(cpuMsPerRecord, 3)} ms of CPU per record, 10,000 records/s alone ` +
    `would keep ${fmt((10_000 * cpuMsPerRecord) / 1000, 1)} cores busy, more than this machine's ${cores}, before ` +
    'any headroom for latency.'
  );
};

/** What the three readings of init (median, paired, CPU) say together about the 1.10× line. */
const coldStartReading = (cs: ColdStart, spread: (name: keyof ColdStart) => string): string => {
  const readings = [
    cs.bridge.initMsMedian / cs.floor.initMsMedian,
    ...(cs.bridge.vsFloorPairedMedian === undefined ? [] : [cs.bridge.vsFloorPairedMedian]),
    ...(cs.bridge.initCpuMsMedian !== undefined && cs.floor.initCpuMsMedian !== undefined
      ? [cs.bridge.initCpuMsMedian / cs.floor.initCpuMsMedian]
      : []),
  ];
  const shown =
    `medians ${times(readings[0])}` +
    (readings.length > 1 ? `, paired ${times(readings[1])}` : '') +
    (readings.length > 2 ? `, CPU time ${times(readings[2])}` : '');
  if (readings.every((r) => r > 1.1))
    return (
      `In this run every reading puts our init above 1.10× the floor (${shown}), by about ` +
      `${fmt(cs.bridge.initMsMedian - cs.floor.initMsMedian, 0)} ms at the median: the goal is missed.`
    );
  if (readings.every((r) => r <= 1.1))
    return `In this run every reading keeps our init within 1.10× the floor (${shown}).`;
  return (
    `The readings disagree in this run (${shown}): the p10–p90 spread between fresh processes (bridge ` +
    `${spread('bridge')}, floor ${spread('floor')}) is as wide as the differences, so a single run can land ` +
    'either side of the 1.10× line.'
  );
};

/**
 * The analysis: mechanisms found by profiling (`node --cpu-prof`, summarised with profileSummary.ts), with the
 * arithmetic done on this run's own numbers, so it always matches the tables above.
 */
export const analysis = (results: BenchResults): string[] => {
  const rtt = rttOf(results);
  const g = findScenario(results, { batchSize: 100, partitions: 4, duplicateRate: 0, rttMs: rtt });
  const out: string[] = [];
  out.push(
    '**Where the time goes.** Profiles of the throughput section, one side at a time ' +
      '(`node --cpu-prof --cpu-prof-dir prof scripts/bench/run.ts --only throughput --quick --sides bridge`, then ' +
      '`node scripts/bench/profileSummary.ts prof/<main thread>.cpuprofile`), show where each side spends its ' +
      'handler-thread CPU: in the AWS SDK v3 request path (`@smithy/core` serialisation and middleware, ' +
      '`@aws-sdk/core`, SigV4 signing with `node:crypto` HMACs, `node:http`), a cost paid per request, whatever the ' +
      'request carries. Powertools makes two requests per record. The bridge, on the watermark strategy this ' +
      'coordinate-keyed route uses, makes two per partition per batch (its lease and its end) and one per 25 records ' +
      'beyond, so what is left on its handler thread is decoding, validating and running the records, and EMF.',
  );
  if (g?.bridge.cpuMsPerRecord !== undefined && g.powertools.cpuMsPerRecord !== undefined) {
    out.push(
      '',
      `In this run (batch 100 × 4 partitions, ${rtt} ms): the bridge used ${fmt(g.bridge.cpuMsPerRecord, 3)} ms of ` +
        `handler-thread CPU per record for ${fmt(g.bridge.ddbRequestsPerRecord, 2)} requests/record, Powertools ` +
        `${fmt(g.powertools.cpuMsPerRecord, 2)} ms for ${fmt(g.powertools.ddbRequestsPerRecord, 2)} requests/record ` +
        `(${times(g.powertools.cpuMsPerRecord / g.bridge.cpuMsPerRecord)} ours).`,
    );
  }
  if (g?.twoRoundTripIdealMs && g.bridge.batchMsMedian && g.ratio < 15) {
    const oneTrip = g.twoRoundTripIdealMs / 2;
    const ptBound = (g.partitions * 1000) / (2 * oneTrip);
    out.push(
      '',
      `**Why the 15× goal is missed.** Powertools in partition order makes two sequential round trips per record, so ` +
        `with ${g.partitions} partitions it cannot beat ${g.partitions} × 1000 / (2 × ${fmt(oneTrip, 1)} ms) ≈ ` +
        `${fmt(ptBound)} records/s (one unloaded round trip through the proxy measured ${fmt(oneTrip, 1)} ms; it ` +
        `reached ${fmt(g.powertools.recordsPerSec)}). Fifteen times that needs a batch of ${g.batchSize} in ` +
        `${fmt((g.batchSize * 1000) / (15 * g.powertools.recordsPerSec), 1)} ms. Ours took ` +
        `${fmt(g.bridge.batchMsMedian, 1)} ms: its partitions each wait two round trips (the watermark's lease and ` +
        `its end, ${fmt(g.twoRoundTripIdealMs, 1)} ms), and its handler thread spent ` +
        `${fmt((g.bridge.cpuMsPerRecord ?? 0) * g.batchSize, 1)} ms of CPU on the batch ` +
        `(${fmt(g.bridge.cpuMsPerRecord, 3)} ms per record: decoding, validation, the route's work, EMF), sharing ` +
        `${results.machine.cores} cores with DynamoDB Local and the proxy.`,
    );
  }
  const best = [...results.handlerThroughput].sort((a, b) => b.ratio - a.ratio)[0];
  if (best) {
    out.push(
      '',
      `The ratio is highest where Powertools waits most: ${times(best.ratio)} at batch ${best.batchSize} × ` +
        `${best.partitions} partition${best.partitions > 1 ? 's' : ''}, ${pct(best.duplicateRate)} duplicates, ` +
        `${best.rttMs} ms, where its round trips are sequential over the whole batch. At 0 ms RTT the round trip ` +
        "is DynamoDB Local's own time, and both sides are bound by DynamoDB Local's work per item, which batching " +
        'does not reduce.',
    );
  }
  if (g && g.bridge.ddbWriteUnitsPerRecord > 0.05) {
    const perPartition = g.batchSize / g.partitions;
    const long = results.handlerThroughput.find(
      (s) => s.duplicateRate === 0 && s.rttMs === g.rttMs && s.batchSize / s.partitions >= 100,
    );
    out.push(
      '',
      `**What bounds the write units.** The watermark strategy writes two items per partition per batch: the lease ` +
        '(a conditional write as the batch starts) and the end (the watermark moved and the lease given back). In ' +
        'between it advances the watermark at most once per 25 records (advances coalesce while one is in flight), ' +
        `so a part of n records costs 2/n WRU per record plus at most 1/25. At batch ${g.batchSize} over ` +
        `${g.partitions} partitions a partition's part is ${fmt(perPartition)} records: ${fmt(2 / perPartition, 3)} ` +
        `WRU per record is the floor there, and ${fmt(g.bridge.ddbWriteUnitsPerRecord, 3)} was measured. ≤ 0.05 ` +
        'needs parts of about 100 records' +
        (long
          ? ` (batch ${long.batchSize} over ${long.partitions} partition${long.partitions === 1 ? '' : 's'}: ` +
            `${fmt(long.bridge.ddbWriteUnitsPerRecord, 3)} WRU in this run).`
          : '.') +
        ' Dropping either write gives up what it is for: without the lease, two invocations holding one partition ' +
        'across a rebalance run its records side by side; without the end, a batch that ran and is delivered again ' +
        'runs again.',
    );
  }
  if (g?.twoRoundTripIdealMs && g.bridge.batchMsMedian && g.bridge.batchMsMedian > 1.5 * g.twoRoundTripIdealMs) {
    out.push(
      '',
      `**Why the batch takes longer than two round trips.** The ideal (${fmt(g.twoRoundTripIdealMs, 1)} ms) counts ` +
        `the waiting only. A batch of ${g.batchSize} fresh records is ` +
        `${fmt(g.bridge.ddbRequestsPerRecord * g.batchSize)} requests carrying ` +
        `${fmt(g.bridge.ddbWriteUnitsPerRecord * g.batchSize)} write units (the watermark strategy: a lease and an ` +
        `end per partition), and ${fmt((g.bridge.cpuMsPerRecord ?? 0) * g.batchSize, 1)} ms of handler-thread CPU; ` +
        `the two together are ${fmt(g.twoRoundTripIdealMs + (g.bridge.cpuMsPerRecord ?? 0) * g.batchSize, 1)} ms ` +
        `against the ${fmt(g.bridge.batchMsMedian, 1)} ms measured. (The per-key strategy's requests for the same ` +
        `batch, sent bare by its store, took ${fmt(g.rawWavesMs, 1)} ms: the **bare requests** column.)`,
    );
  }
  const e2e = results.endToEnd as BenchResults['endToEnd'] & {
    bareStoreRecordsPerSec?: number;
    dynamodbLocalCpuMsPerRecord?: number;
    offeredRatePerSec?: number;
    cpuSplit?: import('./endToEnd.ts').CpuSplit;
    rttMs?: number;
  };
  const split = e2e.cpuSplit;
  if (split && e2e.recordsPerSec < 12_000) {
    const parts = [
      `this process (the producer, the bridge's consumers and the handler's worker) ${fmt(split.benchProcessMsPerRecord, 3)} ms`,
      ...(split.kafkaMsPerRecord === undefined ? [] : [`the Kafka broker ${fmt(split.kafkaMsPerRecord, 3)} ms`]),
      ...(split.dynamodbLocalMsPerRecord === undefined
        ? []
        : [`DynamoDB Local ${fmt(split.dynamodbLocalMsPerRecord, 3)} ms`]),
    ];
    const perRecord =
      split.benchProcessMsPerRecord + (split.kafkaMsPerRecord ?? 0) + (split.dynamodbLocalMsPerRecord ?? 0);
    out.push(
      '',
      `**What bounds end to end.** The CPU split of the saturated run, read from the OS: per record, ` +
        `${parts.join(', ')}: ${fmt(perRecord, 3)} ms of CPU per record in all, ${pct(split.shareOfCores)} of the ` +
        `machine's ${results.machine.cores} cores over the run. At that cost ${results.machine.cores} cores carry at ` +
        `most about ${fmt((results.machine.cores * 1000) / perRecord)} records/s, whatever the bridge does; 12,000 ` +
        `records/s would need ${fmt((12_000 * perRecord) / 1000, 1)} cores. On the watermark strategy DynamoDB Local ` +
        'does a few writes per batch, so the cost is the records themselves: producing, fetching and decoding them, ' +
        'and the handler and its worker, all sharing the cores with the broker.' +
        (e2e.bareStoreRecordsPerSec === undefined
          ? ''
          : ` (The per-key strategy's store alone, with no processor or Kafka, claimed and settled ` +
            `${fmt(e2e.bareStoreRecordsPerSec)} records/s through the proxy in this run: that strategy would be ` +
            'bound there, by DynamoDB Local.)') +
        ` The producer offered ${fmt(e2e.offeredRatePerSec)} records/s, more than the bridge could take, so the ` +
        'backlog grew for the whole run and its latency percentiles measure that backlog; the keeping-up run shows ' +
        'the latency of a bridge that is not behind. The naive baseline makes one request at a time, so it is bound ' +
        'by the round trip instead.',
    );
    const steps = e2e.keepingUp?.steps ?? [];
    if (steps.length > 0) out.push('', keepingUpBound(steps, perRecord, results.machine.cores, e2e.rttMs));
  }
  const cs = results.coldStart;
  const spread = (name: keyof ColdStart) =>
    cs[name].initMsP10 !== undefined && cs[name].initMsP90 !== undefined
      ? `${fmt(cs[name].initMsP10, 0)}–${fmt(cs[name].initMsP90, 0)} ms`
      : 'not recorded';
  out.push(
    '',
    `**Cold start.** The floor's bundle is already ${fmt(cs.floor.bundleBytes / 1024)} KiB, nearly all of it the ` +
      `two AWS SDK clients, and its init (${fmt(cs.floor.initMsMedian, 1)} ms median) is mostly theirs. Our runtime ` +
      `adds ${fmt((cs.bridge.bundleBytes - cs.floor.bundleBytes) / 1024)} KiB (middy, the runtime, Powertools ` +
      `Logger), Powertools ${fmt((cs.powertools.bundleBytes - cs.floor.bundleBytes) / 1024)} KiB. ` +
      coldStartReading(cs, spread),
    '',
    'Where our extra init goes (profiles of the same bundles built unminified, imported by fresh processes with ' +
      "`node --cpu-prof`, self time mapped back to source modules through the bundle's module comments): mostly " +
      'compiling the extra code and building zod schemas at module scope: the runtime builds the Kafka event ' +
      "schema, the route settings schemas (parsing their defaults) and the route's value schema when the handler " +
      'module loads. (The dead-letter envelope schema was moved out of the handler path, and Powertools Metrics ' +
      'replaced by a small EMF writer, after an earlier run found them in this profile.) Powertools Logger ' +
      'construction is a smaller part. The Powertools bundle is larger but builds fewer schemas at load, which is ' +
      'why it can init faster than ours.',
    '',
    '**Noise.** The machine was shared with other work while this ran (load average in the Machine section), and ' +
      'DynamoDB Local, Kafka and the benchmark share its cores. Sides are interleaved and rotated, and medians are ' +
      'reported, so both sides see the same conditions, but single numbers move between runs; the ratios and ' +
      'requests/record are the stable part.',
  );
  return out;
};
