#!/usr/bin/env node
// `npm run local:up` / `npm run local:down`: the local Kafka, DynamoDB Local and ElasticMQ.
// Progress goes to stderr; stdout carries only `export ...` lines, so `eval "$(node scripts/local/cli.ts up)"` works.
import { Option } from 'commander';
import { cliProgram, EXIT_USAGE, errorLine } from '../lib/cliArgs.ts';
import { stopRegistry } from './registry.ts';
import {
  ENDPOINT_ENV_VARS,
  ensureLocalServices,
  formatExports,
  localServicesStatus,
  PORT_ENV_VARS,
  resolveEndpoints,
  SERVICE_NAMES,
  type ServiceName,
  STATE_DIR_ENV,
  stopLocalServices,
  wipeLocalData,
} from './services.ts';

const progress = (line: string) => process.stderr.write(`local: ${line}\n`);

function servicesOption() {
  return new Option('-s, --services <names...>', 'only these services').choices([...SERVICE_NAMES]);
}

const program = cliProgram('local')
  .description('Local Kafka 4.1 (KRaft), DynamoDB Local and ElasticMQ for kafka-lambda-bridge, run from .local/')
  .addHelpText(
    'after',
    `
Ports (127.0.0.1): ${PORT_ENV_VARS.kafka} (9092), ${PORT_ENV_VARS.kafkaController} (9093),
  ${PORT_ENV_VARS.dynamodb} (8000), ${PORT_ENV_VARS.elasticmq} (9324).
Bring your own services: set ${Object.values(ENDPOINT_ENV_VARS).join(', ')}; nothing is started for them.
Data (Kafka's topics and offsets, DynamoDB Local's tables, ElasticMQ's queues) is kept across restarts under
  .local/<service>/data (${STATE_DIR_ENV} moves all state but the jars); \`down --clean\` removes it.
Needs Java 17+ and, on the first run, Maven (jars are cached in .local/lib).`,
  );

program
  .command('up')
  .description('start the services that are not running and wait until they answer; print the endpoints')
  .addOption(servicesOption())
  .option('--timeout <seconds>', 'readiness timeout per service', '120')
  .action(async (opts: { services?: ServiceName[]; timeout: string }) => {
    const started = Date.now();
    const { endpoints, started: startedNow } = await ensureLocalServices({
      ...(opts.services && { services: opts.services }),
      readyTimeoutMs: Number(opts.timeout) * 1000,
      log: progress,
    });
    progress(
      startedNow.length > 0
        ? `started ${startedNow.join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)}s`
        : 'nothing needed starting',
    );
    process.stdout.write(`${formatExports(endpoints)}\n`);
  });

program
  .command('down')
  .description('stop the services these scripts started (the schema registry too) and free their ports')
  .addOption(servicesOption())
  .option(
    '--clean',
    "also remove their data: Kafka's topics and committed offsets, DynamoDB Local's tables, ElasticMQ's queues",
  )
  .action(async (opts: { services?: ServiceName[]; clean?: boolean }) => {
    const stopped: string[] = await stopLocalServices(opts.services ?? SERVICE_NAMES, { log: progress });
    // The registry starts on demand (a route that needs one), so it is not one of --services.
    if (!opts.services && (await stopRegistry({ log: progress }))) stopped.push('registry');
    progress(stopped.length > 0 ? `stopped ${stopped.join(', ')}` : 'nothing of ours was running');
    if (opts.clean) await wipeLocalData(opts.services ?? SERVICE_NAMES, { log: progress });
  });

program
  .command('status')
  .description('show what runs where; exits 1 when a service does not answer')
  .addOption(servicesOption())
  .action(async (opts: { services?: ServiceName[] }) => {
    const statuses = await localServicesStatus({ ...(opts.services && { services: opts.services }) });
    for (const s of statuses) {
      const who = s.source === 'env' ? `from ${ENDPOINT_ENV_VARS[s.name]}` : s.pid ? `pid ${s.pid}` : 'managed';
      process.stderr.write(
        `${s.ready ? 'up  ' : 'DOWN'} ${s.name.padEnd(9)} ${s.endpoint.padEnd(24)} ${who}: ${s.detail}\n`,
      );
    }
    process.stdout.write(`${formatExports(resolveEndpoints())}\n`);
    if (statuses.some((s) => !s.ready)) process.exitCode = 1;
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.stderr.write(`${errorLine('local', error)}\n`);
  process.exitCode = EXIT_USAGE;
}
