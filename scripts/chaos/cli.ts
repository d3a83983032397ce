// `npm run chaos -- --seeds N --fault-rate P`: the fault-injection soak (DESIGN §9). For each seed it runs both work
// modes under both event-source-mapping modes and both dedupe strategies against DynamoDB Local and ElasticMQ (started if they are not up),
// with SDK faults before and after the service applied a request. Prints a progress line per run on stderr and a
// JSON summary on stdout; exits 1 if any record was lost, applied twice, or both applied and dead-lettered.
import { Option } from 'commander';
import { cliProgram, EXIT_USAGE, errorLine, numberArg } from '../lib/cliArgs.ts';
import { applyEndpointsToEnv, ensureLocalServices, releaseLocalServices } from '../local/services.ts';
import { type ChaosResult, EsmModes, runChaos, Strategies, WorkModes } from './scenario.ts';

const program = cliProgram('npm run chaos --')
  .description(
    'Fault-injection soak of the handler runtime: SDK throttles before a request reaches DynamoDB or SQS, and after ' +
      'the service applied it (its answer lost), in every call the runtime makes; a model of the event source ' +
      'mapping that redelivers failed batches; poison, refused, flaky and exhausted records. Checks that every ' +
      'record ends applied exactly once or dead-lettered, never both, never neither, and that every partition ' +
      'drains. Prints a progress line per run (stderr) and a JSON summary (stdout); exits 1 if any run broke that.',
  )
  .option('-s, --seeds <n>', 'how many seeds to run', numberArg('--seeds', { min: 1, integer: true }), 5)
  .option('--first-seed <n>', 'the first seed', numberArg('--first-seed', { integer: true }), 1)
  .option('-f, --fault-rate <p>', 'share of SDK calls that fail, 0 to 1 (or a percentage)', parseRate, 0.06)
  .addOption(new Option('--work <mode>', 'work mode').choices([...WorkModes, 'both']).default('both'))
  .addOption(new Option('--esm <mode>', 'event source mapping mode').choices([...EsmModes, 'both']).default('both'))
  .addOption(
    new Option('--park <mode>', 'runs with a retry queue (retry.park, ordering by key), without, or both')
      .choices(['on', 'off', 'both'])
      .default('both'),
  )
  .addOption(
    new Option('--strategy <strategy>', 'dedupe strategy (idempotency.strategy)')
      .choices([...Strategies, 'both'])
      .default('both'),
  )
  .option('--records <n>', 'records per run', numberArg('--records', { min: 1, integer: true }), 200)
  .option('--partitions <n>', 'partitions per run', numberArg('--partitions', { min: 1, integer: true }), 4);

function parseRate(value: string): number {
  const rate = numberArg('--fault-rate', { min: 0, max: 100 })(value);
  return value.trim().endsWith('%') || rate > 1 ? rate / 100 : rate;
}

type SoakOptions = {
  seeds: number;
  firstSeed: number;
  faultRate: number;
  work: string;
  esm: string;
  park: string;
  strategy: string;
  records: number;
  partitions: number;
};

const main = async (): Promise<number> => {
  program.parse();
  const opts = program.opts<SoakOptions>();
  const { endpoints, started } = await ensureLocalServices({
    services: ['dynamodb', 'elasticmq'],
    log: (line) => process.stderr.write(`[local services] ${line}\n`),
  });
  applyEndpointsToEnv(endpoints);
  try {
    return await soak(opts);
  } finally {
    process.stderr.write(`${await releaseLocalServices(started)}\n`);
  }
};

const soak = async (opts: SoakOptions): Promise<number> => {
  const works = opts.work === 'both' ? WorkModes : [opts.work as (typeof WorkModes)[number]];
  const esms = opts.esm === 'both' ? EsmModes : [opts.esm as (typeof EsmModes)[number]];
  const results: ChaosResult[] = [];
  const parks = opts.park === 'both' ? [false, true] : [opts.park === 'on'];
  const strategies = opts.strategy === 'both' ? Strategies : [opts.strategy as (typeof Strategies)[number]];
  const variants = strategies.flatMap((strategy) =>
    esms.flatMap((esm) => parks.map((park) => ({ strategy, esm, park }))),
  );
  const total = opts.seeds * works.length * variants.length;
  for (let seed = opts.firstSeed; seed < opts.firstSeed + opts.seeds; seed++) {
    for (const work of works) {
      for (const { strategy, esm, park } of variants) {
        const label = `[${results.length + 1}/${total}] seed ${seed} ${work} ${strategy} ${esm}${park ? ' parking' : ''} at ${(opts.faultRate * 100).toFixed(0)}%`;
        let invocations = 0;
        const progress = () => {
          invocations += 1;
          if (process.stderr.isTTY) process.stderr.write(`\r${label}: ${invocations} invocations…`);
        };
        const result = await runChaos(
          {
            seed,
            faultRate: opts.faultRate,
            work,
            esm,
            park,
            strategy,
            records: opts.records,
            partitions: opts.partitions,
          },
          progress,
        );
        results.push(result);
        const verdict = result.violations.length === 0 ? 'held' : `BROKEN (${result.violations.length})`;
        process.stderr.write(
          `${process.stderr.isTTY ? '\r' : ''}${label}: ${verdict}; ${result.invocations} invocations ` +
            `(${result.failedInvocations} failed), ${result.faults.before + result.faults.after} faults injected ` +
            `of ${result.faults.requests} requests, ${result.applied} applied, ${result.deadLettered} dead-lettered, ` +
            `${(result.durationMs / 1000).toFixed(1)}s\n`,
        );
        for (const violation of result.violations.slice(0, 10)) process.stderr.write(`    ${violation}\n`);
      }
    }
  }
  const broken = results.filter((r) => r.violations.length > 0);
  process.stdout.write(
    `${JSON.stringify({ runs: results.length, broken: broken.length, faultRate: opts.faultRate, results }, null, 2)}\n`,
  );
  return broken.length === 0 ? 0 : 1;
};

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${errorLine('chaos', error)}\n`);
    process.exit(EXIT_USAGE);
  },
);
