#!/usr/bin/env node
// `npm run bench [-- --quick]`: handler throughput and DynamoDB cost against Powertools, cold start against
// Powertools and the bare floor, and local end-to-end throughput. Writes scripts/bench/results.json (DESIGN §9) and
// scripts/bench/RESULTS.md. Progress goes to stderr; the handlers' own logs and EMF output are swallowed while they
// run (they are still produced, so their cost is measured).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, Option } from 'commander';
import { cliProgram, failUsage, isConnectionError, numberArg } from '../lib/cliArgs.ts';
import { brokersFromEnv } from '../lib/kafka.ts';
import { ConfigError } from '../local/config.ts';
import {
  applyEndpointsToEnv,
  checkExternalEndpoints,
  ensureLocalServices,
  LocalServicesError,
  localServicesStatus,
} from '../local/services.ts';
import { createQueue, deleteQueue, dynamoDbClient, sqsClient } from './aws.ts';
import { runColdStart } from './coldStart.ts';
import { runEndToEnd } from './endToEnd.ts';
import { ProxyWorker } from './proxyHost.ts';
import { renderResultsMarkdown } from './report.ts';
import {
  BenchResults,
  type ColdStartEntry,
  type EndToEnd,
  type SettleStrategies,
  type ThroughputScenario,
} from './schema.ts';
import { runSettleStrategies } from './settleStrategies.ts';
import { fullScenarios, quickScenarios, runHandlerThroughput, SIDES, type Side } from './throughput.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
export const RESULTS_JSON = path.join(here, 'results.json');
export const RESULTS_MD = path.join(here, 'RESULTS.md');

const SECTIONS = ['throughput', 'cold-start', 'end-to-end'] as const;
type Section = (typeof SECTIONS)[number];

const writeErr = process.stderr.write.bind(process.stderr);
const startedAt = Date.now();
const log = (line: string) => {
  const t = ((Date.now() - startedAt) / 1000).toFixed(1).padStart(6);
  writeErr(`[bench ${t}s] ${line}\n`);
};

/**
 * Swallows what the handlers print (structured logs, EMF, Powertools warnings) while a section runs: the work of
 * producing it stays in the measurement, the terminal I/O does not. The last lines are kept for error reports.
 */
const quietly = async <T>(work: () => Promise<T>): Promise<T> => {
  const out = process.stdout.write;
  const err = process.stderr.write;
  const tail: string[] = [];
  const swallow = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    tail.push(String(chunk));
    if (tail.length > 20) tail.shift();
    const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    callback?.();
    return true;
  }) as typeof process.stdout.write;
  process.stdout.write = swallow;
  process.stderr.write = swallow;
  try {
    return await work();
  } catch (error) {
    process.stdout.write = out;
    process.stderr.write = err;
    if (tail.length > 0) log(`last handler output before the failure:\n${tail.join('').trimEnd()}`);
    throw error;
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
};

type Options = {
  quick: boolean;
  rtt: number;
  repetitions?: number;
  initSamples?: number;
  records?: number;
  baselineRecords?: number;
  e2eRate: number;
  partitions: number;
  only?: Section[];
  sides?: Side[];
  render: boolean;
};

const program = cliProgram('npm run bench --')
  .description(
    'Benchmarks: handler throughput and DynamoDB requests against Powertools, cold start against Powertools and the ' +
      'bare floor, local end to end. Writes scripts/bench/results.json and scripts/bench/RESULTS.md.',
  )
  .option('--quick', 'a subset that still covers every goal scenario (under 5 minutes)', false)
  .option(
    '--rtt <ms>',
    'the injected DynamoDB round trip of the "RTT" scenarios and the end-to-end run',
    numberArg('--rtt', { min: 0 }),
    5,
  )
  .option(
    '--repetitions <n>',
    'measured batches per side and scenario (default: quick 3, full 5)',
    numberArg('--repetitions', { min: 1 }),
  )
  .option(
    '--init-samples <n>',
    'fresh processes per bundle (default: quick 21, full 51)',
    numberArg('--init-samples', { min: 21 }),
  )
  .option(
    '--records <n>',
    'end-to-end records through the bridge (default: quick 20000, full 100000)',
    numberArg('--records', { min: 1 }),
  )
  .option(
    '--baseline-records <n>',
    'end-to-end records through the naive consumer (default: quick 2000, full 10000; it does one request at a time)',
    numberArg('--baseline-records', { min: 1 }),
  )
  .option('--e2e-rate <n>', 'records/s the end-to-end producer offers', numberArg('--e2e-rate', { min: 1 }), 12_000)
  .option('--partitions <n>', 'partitions of the end-to-end topics', numberArg('--partitions', { min: 1 }), 4)
  .addOption(
    new Option(
      '--only <sections...>',
      'run only these sections and print their results (files are not written)',
    ).choices([...SECTIONS]),
  )
  .addOption(
    new Option('--sides <sides...>', 'with --only throughput: measure only these sides (for profiling)').choices([
      ...SIDES,
    ]),
  )
  .option('--render', 'only re-render RESULTS.md from the existing results.json (no measurement)', false)
  .addHelpText(
    'after',
    `
Starts Kafka, DynamoDB Local and ElasticMQ if they are not running (npm run local:up) and leaves them running.
Every DynamoDB request of both sides goes through one latency proxy (default 5 ms per request, --rtt).`,
  );

const render = (): void => {
  const results = BenchResults.parse(JSON.parse(fs.readFileSync(RESULTS_JSON, 'utf8')));
  fs.writeFileSync(RESULTS_MD, renderResultsMarkdown(results));
  log(`rendered ${path.relative(process.cwd(), RESULTS_MD)} from ${path.relative(process.cwd(), RESULTS_JSON)}`);
};

const main = async (opts: Options): Promise<void> => {
  if (opts.render) return render();
  if (opts.sides && !opts.only) throw new InvalidArgumentError('--sides needs --only (a partial run writes no files)');
  const sections = new Set<Section>(opts.only ?? SECTIONS);
  const repetitions = opts.repetitions ?? (opts.quick ? 3 : 5);
  const initSamples = opts.initSamples ?? (opts.quick ? 21 : 51);
  const records = opts.records ?? (opts.quick ? 20_000 : 100_000);
  const baselineRecords = opts.baselineRecords ?? (opts.quick ? 2_000 : 10_000);
  const needsServices = sections.has('throughput') || sections.has('end-to-end');
  // Before the cold-start section, which takes minutes: an endpoint from the environment that refuses fails now.
  if (needsServices) await checkExternalEndpoints();
  const cores = os.availableParallelism();
  log(
    `${opts.quick ? 'quick' : 'full'} run on ${cores} cores, Node ${process.version}, load average ` +
      `${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  );
  const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;
  let throughput: ThroughputScenario[] | undefined;
  let coldStart: Record<'bridge' | 'powertools' | 'floor', ColdStartEntry> | undefined;
  let endToEnd: EndToEnd | undefined;
  let settleStrategies: SettleStrategies | undefined;

  if (sections.has('cold-start')) {
    log(`cold start: building 3 bundles, ${initSamples} fresh processes each`);
    coldStart = await runColdStart({ samples: initSamples, log });
  }

  if (needsServices) {
    const { endpoints, started } = await ensureLocalServices({ log: (line) => log(`local services: ${line}`) });
    // Before the endpoints go into the environment: from then on the services count as brought by the user.
    const dynamodbPid = (await localServicesStatus({ services: ['dynamodb'] }))[0]?.pid;
    const kafkaPid = (await localServicesStatus({ services: ['kafka'] }))[0]?.pid;
    applyEndpointsToEnv(endpoints);
    if (started.length > 0) log(`started ${started.join(', ')} (left running)`);
    const proxy = await ProxyWorker.start({ target: endpoints.dynamodbEndpoint, delayMs: opts.rtt });
    log(
      `latency proxy ${proxy.url} → ${endpoints.dynamodbEndpoint}` +
        (dynamodbPid === undefined ? '' : ` (DynamoDB Local pid ${dynamodbPid}, its CPU time is read from /proc)`),
    );
    try {
      if (sections.has('throughput')) {
        const scenarios = opts.quick ? quickScenarios(opts.rtt) : fullScenarios(opts.rtt);
        log(`handler throughput: ${scenarios.length} scenarios × ${repetitions} repetitions`);
        const sqs = sqsClient(endpoints.sqsEndpoint);
        const dlqUrl = await createQueue(sqs, `bench-${runId}-dlq`);
        try {
          throughput = await quietly(() =>
            runHandlerThroughput(
              {
                proxy,
                measured: dynamoDbClient(proxy.url),
                direct: dynamoDbClient(endpoints.dynamodbEndpoint),
                sqs,
                dlqUrl,
                runId,
                repetitions,
                ...(opts.sides ? { sides: opts.sides } : {}),
                ...(dynamodbPid !== undefined ? { dynamodbPid } : {}),
                log,
              },
              scenarios,
            ),
          );
        } finally {
          await deleteQueue(sqs, dlqUrl);
        }
        settleStrategies = await runSettleStrategies({
          proxy,
          measured: dynamoDbClient(proxy.url),
          direct: dynamoDbClient(endpoints.dynamodbEndpoint),
          rttMs: opts.rtt,
          repetitions,
          runId,
          log,
        });
      }
      if (sections.has('end-to-end')) {
        log(
          `end to end: ${records} records${opts.quick ? ' (quick; the full run uses 100,000)' : ''}, ` +
            `baseline ${baselineRecords} records, ${opts.partitions} partitions, ${opts.rtt} ms RTT`,
        );
        endToEnd = await quietly(() =>
          runEndToEnd({
            runId,
            proxy,
            rttMs: opts.rtt,
            brokers: brokersFromEnv(),
            dynamodbEndpoint: endpoints.dynamodbEndpoint,
            sqsEndpoint: endpoints.sqsEndpoint,
            records,
            baselineRecords,
            partitions: opts.partitions,
            offeredRate: opts.e2eRate,
            ...(dynamodbPid !== undefined ? { dynamodbPid } : {}),
            ...(kafkaPid !== undefined ? { kafkaPid } : {}),
            log,
          }),
        );
      }
    } finally {
      await proxy.close();
    }
  }

  const durationSec = Math.round((Date.now() - startedAt) / 1000);
  const machine = {
    cores,
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.arch()}`,
    loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
  if (opts.only) {
    process.stdout.write(
      `${JSON.stringify({ machine, handlerThroughput: throughput, settleStrategies, coldStart, endToEnd, durationSec }, null, 2)}\n`,
    );
    return;
  }
  const results = BenchResults.parse({
    machine,
    handlerThroughput: throughput,
    coldStart,
    endToEnd,
    settleStrategies,
    generatedAt: new Date().toISOString(),
    quick: opts.quick,
    options: {
      rttMs: opts.rtt,
      repetitions,
      initSamples,
      records,
      baselineRecords,
      e2eRate: opts.e2eRate,
      partitions: opts.partitions,
    },
    durationSec,
  });
  fs.writeFileSync(RESULTS_JSON, `${JSON.stringify(results, null, 2)}\n`);
  fs.writeFileSync(RESULTS_MD, renderResultsMarkdown(results));
  log(
    `wrote ${path.relative(process.cwd(), RESULTS_JSON)} and ${path.relative(process.cwd(), RESULTS_MD)} in ${durationSec} s`,
  );
};

/**
 * Bad flags, a bad environment (ports, endpoints) and services that cannot be reached are the user's to fix: one line,
 * exit 2, like the other CLIs. Anything else failed inside a measurement: its stack, exit 1.
 */
const isUsageOrConnection = (error: unknown): boolean =>
  error instanceof InvalidArgumentError ||
  error instanceof ConfigError ||
  error instanceof LocalServicesError ||
  isConnectionError(error);

program.action(async (opts: Options) => {
  try {
    await main(opts);
    process.exit(0);
  } catch (error) {
    if (isUsageOrConnection(error)) failUsage('bench', error);
    log(`failed: ${(error as Error).stack ?? error}`);
    process.exit(1);
  }
});

await program.parseAsync();
