// `npm run bridge [-- --route R]`: the local bridge alone, with no demo traffic (DESIGN §9).
import { loadBridgeConfig } from '../../infra/config/index.ts';
import { cliProgram, failUsage, numberArg } from '../lib/cliArgs.ts';
import { brokersFromEnv } from '../lib/kafka.ts';
import { applyEndpointsToEnv, resolveEndpoints } from '../local/services.ts';
import { type HandlerOutput, startBridge } from './bridge.ts';
import { formatProgressLine } from './stats.ts';

const program = cliProgram('npm run bridge --')
  .description(
    'The local bridge: consumes the configured topics from KAFKA_BROKERS with one consumer group per route and\n' +
      "invokes the routes' handlers with Lambda-identical events, as the Kafka event source mapping does.\n" +
      'Prints a progress line per route every few seconds. Ctrl-C (or SIGTERM) stops cleanly.',
  )
  .option('-r, --route <name...>', 'only these routes (default: all)')
  .option('-c, --config <path>', 'bridge config (.ts or .json; default BRIDGE_CONFIG or infra/bridge.config.ts)')
  .option('--progress-interval <seconds>', 'seconds between progress lines', numberArg('--progress-interval'), 5)
  .option('--json', 'progress as one JSON object per line (for scripts)')
  .option('--window-ms <ms>', "override the routes' batching window", numberArg('--window-ms'))
  .option('--backoff-ms <ms>', 'first redelivery backoff after a failed batch', numberArg('--backoff-ms'), 500)
  .option('--max-backoff-ms <ms>', 'longest redelivery backoff', numberArg('--max-backoff-ms'), 10_000)
  .option(
    '--grace <seconds>',
    'at shutdown, how long batches in flight may finish (default: the route timeout)',
    numberArg('--grace'),
  )
  .option(
    '--handler-logs <where>',
    'handler logs and EMF: "file" (.local/logs/bridge-<config>-<route>.log), "inherit" or "none"',
    'file',
  )
  .option(
    '--pollers <n>',
    'ESM pollers per route (default: minPollers in provisioned mode, else 1)',
    numberArg('--pollers', { min: 1, integer: true }),
  )
  .option(
    '--allow-production-group',
    "join a route's explicit consumerGroupId on brokers that are not local (it is the deployed mapping's group)",
  )
  .option(
    '--no-create',
    "do not create missing topics (tables and queues are always ensured: their names make the routes' environment)",
  );

const main = async () => {
  program.parse();
  const opts = program.opts<{
    route?: string[];
    config?: string;
    progressInterval: number;
    json?: boolean;
    windowMs?: number;
    backoffMs: number;
    maxBackoffMs: number;
    grace?: number;
    handlerLogs: string;
    create: boolean;
    pollers?: number;
    allowProductionGroup?: boolean;
  }>();
  const handlerOutput: HandlerOutput =
    opts.handlerLogs === 'inherit'
      ? { kind: 'inherit' }
      : opts.handlerLogs === 'none'
        ? { kind: 'discard' }
        : opts.handlerLogs === 'file'
          ? { kind: 'file' }
          : program.error(`--handler-logs must be file, inherit or none (got "${opts.handlerLogs}")`);

  applyEndpointsToEnv(resolveEndpoints());
  const config = await loadBridgeConfig(opts.config);
  const brokers = brokersFromEnv();
  const emit = (line: string) => process.stdout.write(`${line}\n`);
  const log = (line: string) => (opts.json ? emit(JSON.stringify({ type: 'log', message: line })) : emit(line));
  const bridge = await startBridge({
    config,
    ...(opts.route && { routes: opts.route }),
    brokers,
    createTopics: opts.create,
    ...(opts.windowMs !== undefined && { windowMs: opts.windowMs }),
    backoffBaseMs: opts.backoffMs,
    backoffMaxMs: Math.max(opts.maxBackoffMs, opts.backoffMs),
    ...(opts.pollers !== undefined && { pollers: opts.pollers }),
    allowProductionGroup: opts.allowProductionGroup ?? false,
    handlerOutput,
    progressIntervalMs: opts.progressInterval * 1000,
    onProgress: (snapshots) => {
      for (const s of snapshots) emit(opts.json ? JSON.stringify({ type: 'progress', ...s }) : formatProgressLine(s));
    },
    log,
  });
  const routes = bridge.routes.map((r) => `${r.route.name} (topic ${r.topic}, group ${r.groupId})`).join(', ');
  log(`[bridge] running ${routes} on ${brokers.join(',')}; Ctrl-C to stop`);
  for (const file of bridge.handlerLogs) log(`[bridge] handler logs: ${file}`);
  if (opts.json) emit(JSON.stringify({ type: 'started', pid: process.pid }));

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      log(`[bridge] ${signal} again: exiting now`);
      process.exit(130);
    }
    log(`[bridge] ${signal}: finishing batches in flight, committing, leaving the groups…`);
    bridge
      .stop(opts.grace !== undefined ? opts.grace * 1000 : undefined)
      .then(() => {
        for (const s of bridge.snapshots())
          emit(opts.json ? JSON.stringify({ type: 'final', ...s }) : formatProgressLine(s));
        log('[bridge] stopped');
        process.exit(0);
      })
      .catch((error: unknown) => {
        log(`[bridge] stop failed: ${(error as Error).message}`);
        process.exit(1);
      });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
};

main().catch((error: unknown) => failUsage('bridge', error));
