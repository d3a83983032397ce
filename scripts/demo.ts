// `npm start`: the local demo (DESIGN §9). Starts Kafka, DynamoDB Local and ElasticMQ if they are not up, creates the
// topics (3 partitions), tables and queues from the config, runs the bridge for every route, produces traffic for
// every route (the example routes' models, or values made from a route's own schema) with ~5% duplicates and ~1%
// poison records, and shows a live summary until Ctrl-C or --duration.
// On the way out it stops the local services it started itself and leaves those that were already running.
import { randomUUID } from 'node:crypto';
import { type BridgeConfig, consumerGroupIdOf, loadBridgeConfig } from '../infra/config/index.ts';
import { startBridge } from './bridge/bridge.ts';
import { readGroupProgress } from './bridge/reconcileRoute.ts';
import type { RouteSnapshot } from './bridge/stats.ts';
import { formatSummaryTable } from './bridge/summary.ts';
import { cliProgram, EXIT_USAGE, errorLine, numberArg } from './lib/cliArgs.ts';
import { brokersFromEnv, createAdmin, createProducer } from './lib/kafka.ts';
import { produceTraffic, routeTraffic } from './lib/traffic.ts';
import { applyEndpointsToEnv, ensureLocalServices, releaseLocalServices, type ServiceName } from './local/services.ts';

const program = cliProgram('npm start --')
  .description(
    'The local demo: Kafka, DynamoDB Local and ElasticMQ (started if needed), the bridge for every route of the\n' +
      'config, and traffic for every route (values made from its schema) with duplicates and poison records. A live\n' +
      'summary shows, per route,\n' +
      'what was processed, skipped as a duplicate, dead-lettered, the lag, the throughput and the P99 end-to-end\n' +
      'latency. Ctrl-C stops everything cleanly.',
  )
  .option(
    '-d, --duration <seconds>',
    'stop after this long (default: run until Ctrl-C)',
    numberArg('--duration', { min: 1 }),
  )
  .option('--rate <records/s>', 'demo traffic per route', numberArg('--rate', { min: 0 }), 100)
  .option('--duplicates <percent>', 'share of duplicate records', numberArg('--duplicates', { min: 0, max: 100 }), 5)
  .option('--poison <percent>', 'share of poison records', numberArg('--poison', { min: 0, max: 100 }), 1)
  .option('-c, --config <path>', 'bridge config (.ts or .json; default BRIDGE_CONFIG or infra/bridge.config.ts)')
  .option('--refresh <seconds>', 'summary refresh interval', numberArg('--refresh', { min: 0.2 }), 1);

/**
 * The lines under the summary table: how its columns relate. `backlog` is, per route, what its consumer group had not
 * yet consumed when this run started (records an earlier run produced): the bridge processes those too, so with a
 * backlog `produced` alone does not add up.
 */
export const demoFooter = (backlog: ReadonlyMap<string, number>): string[] => {
  const earlier = [...backlog].filter(([, n]) => n > 0);
  const balance =
    earlier.length === 0
      ? ['once lag is 0: produced = processed + duplicates + dead-lettered']
      : [
          'once lag is 0: produced + earlier = processed + duplicates + dead-lettered, where earlier are the records',
          `of earlier runs not yet consumed when this one started, which processed includes: ${earlier.map(([route, n]) => `${route} ${n}`).join(', ')}`,
        ];
  return [
    ...balance,
    'duplicates: skipped as done before (copies under a business idempotency key, redeliveries); a route keyed',
    'by offset (the default) processes the copies, which are new records at new offsets · stale: orders events',
    'older than the stored version (among processed) · p99 e2e: produce to commit',
  ];
};

/**
 * Per route, the records its consumer group has not consumed yet (its lag before the bridge starts): an earlier run's.
 * A topic that does not exist yet has none.
 */
const backlogOf = async (config: BridgeConfig, brokers: string[]): Promise<Map<string, number>> => {
  const admin = createAdmin(brokers, { clientId: 'demo-backlog' });
  try {
    const lags = await Promise.all(
      config.routes.map((route) =>
        readGroupProgress(admin, consumerGroupIdOf(config, route), route.topic).then(
          (progress) => progress.lag,
          () => 0,
        ),
      ),
    );
    return new Map(config.routes.map((route, i) => [route.name, lags[i] ?? 0]));
  } finally {
    await admin.close().catch(() => {});
  }
};

/** The local services this run started, once they are up: the ones to stop on the way out. */
let servicesStarted: readonly ServiceName[] | undefined;
const STILL_RUNNING = 'the local services this run started still run (`npm run local:down` stops them)';

const main = async () => {
  program.parse();
  const opts = program.opts<{
    duration?: number;
    rate: number;
    duplicates: number;
    poison: number;
    config?: string;
    refresh: number;
  }>();
  const tty = Boolean(process.stdout.isTTY);
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const t0 = Date.now();
  say('kafka-lambda-bridge demo: starting the local services (the first run downloads them; later runs take seconds)…');
  // Before they all answer, no one knows which this run started: say so rather than leave them running unannounced.
  const interruptedStartup = () => {
    say(
      '\nstopped while the local services were starting: any this run started still run (`npm run local:down` stops them)',
    );
    process.exit(130);
  };
  process.once('SIGINT', interruptedStartup);
  process.once('SIGTERM', interruptedStartup);
  const { endpoints, started } = await ensureLocalServices({ log: (line) => say(`  ${line}`) });
  servicesStarted = started;
  process.off('SIGINT', interruptedStartup);
  process.off('SIGTERM', interruptedStartup);
  applyEndpointsToEnv(endpoints);
  const config = await loadBridgeConfig(opts.config);
  const brokers = brokersFromEnv();
  // Before the bridge consumes any of it: what earlier runs left for the groups, which `processed` will include.
  const backlog = await backlogOf(config, brokers);
  const bridgeLog: string[] = [];
  const bridge = await startBridge({
    config,
    brokers,
    partitions: 3,
    handlerOutput: { kind: 'file' },
    progressIntervalMs: opts.refresh * 1000,
    log: (line) => {
      bridgeLog.push(line);
      if (bridgeLog.length > 4) bridgeLog.shift();
      if (!tty) say(line);
    },
  });
  say(
    `ready in ${((Date.now() - t0) / 1000).toFixed(1)}s. Handler logs and EMF metrics: ${bridge.handlerLogs.join(', ')}`,
  );
  const earlier = [...backlog.values()].reduce((a, b) => a + b, 0);
  if (earlier > 0) {
    say(`the consumer groups start with ${earlier} records of earlier runs not yet consumed: processed includes them`);
  }

  const abort = new AbortController();
  const producer = createProducer(brokers, { clientId: 'demo-traffic' });
  const produced = new Map<string, number>();
  const runId = randomUUID().slice(0, 6);
  const generators = await Promise.all(
    config.routes.map((route, i) =>
      routeTraffic(route, {
        seed: (Date.now() % 100_000) + i,
        duplicates: opts.duplicates / 100,
        poison: opts.poison / 100,
        idPrefix: `demo${runId}-`,
      }),
    ),
  );
  // The elapsed time on the summary is the traffic's.
  const trafficStarted = Date.now();
  const producing = Promise.all(
    config.routes.map((route, i) =>
      produceTraffic(producer, route.topic, generators[i] as (typeof generators)[number], {
        rate: opts.rate,
        signal: abort.signal,
        maxBatch: 200,
        onSent: (records) => produced.set(route.name, (produced.get(route.name) ?? 0) + records.length),
      }),
    ),
  );

  let drawn = 0;
  let lastPlain = 0;
  const render = (snapshots: RouteSnapshot[], final = false) => {
    const rows = snapshots.map((s) => ({ ...s, ...(produced.has(s.route) && { produced: produced.get(s.route) }) }));
    const elapsed = ((Date.now() - trafficStarted) / 1000).toFixed(0);
    const lines = [
      `kafka-lambda-bridge · ${config.name} · ${elapsed}s · ${opts.rate} records/s per route, ${opts.duplicates}% duplicates, ${opts.poison}% poison${final ? ' · stopped' : ' · Ctrl-C to stop'}`,
      ...formatSummaryTable(rows),
      ...demoFooter(backlog),
    ];
    if (tty) {
      const recent = bridgeLog.map((l) => `  ${l.slice(0, (process.stdout.columns ?? 120) - 2)}`);
      const all = [...lines, ...recent];
      let out = drawn > 0 ? `\x1b[${drawn}A` : '';
      for (const line of all) out += `\x1b[2K${line}\n`;
      process.stdout.write(out);
      drawn = all.length;
    } else if (final || Date.now() - lastPlain >= 5_000) {
      lastPlain = Date.now();
      for (const line of lines) say(line);
    }
  };
  // The bridge refreshes the lag itself every `progressIntervalMs`; this only draws.
  const tick = setInterval(() => render(bridge.snapshots()), opts.refresh * 1000);

  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) {
      say(started.length > 0 ? `stopping now: ${STILL_RUNNING}` : 'stopping now');
      process.exit(130);
    }
    stopping = true;
    clearInterval(tick);
    if (tty) drawn = 0;
    const services = started.length > 0 ? ', stopping the local services this run started' : '';
    say(`\n${why}: stopping the traffic, finishing batches in flight, committing, leaving the groups${services}…`);
    abort.abort();
    await producing.catch(() => {});
    await producer.close().catch(() => {});
    await bridge.refreshLag();
    await bridge.stop();
    render(bridge.snapshots(), true);
    say(await releaseLocalServices(started));
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('Ctrl-C'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  if (opts.duration !== undefined) setTimeout(() => void stop(`${opts.duration}s elapsed`), opts.duration * 1000);
};

// Run as a script (`npm start`); imported (a test of demoFooter), it only defines.
if (import.meta.main) {
  main().catch(async (error: unknown) => {
    process.stderr.write(`${errorLine('demo', error)}\n`);
    if (servicesStarted) process.stderr.write(`${await releaseLocalServices(servicesStarted)}\n`);
    process.exit(EXIT_USAGE);
  });
}
