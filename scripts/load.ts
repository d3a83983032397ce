// `npm run load -- --route R --rate N --duration S [--values FILE.jsonl] [--duplicates P] [--poison P]
// [--format avro|protobuf|json-schema]`: traffic for any route at a target rate; reports the rate achieved (DESIGN §9).
// With --format the values are registry-framed (scripts/lib/registryTraffic.ts). The last line on stdout is a JSON
// summary.
import { randomUUID } from 'node:crypto';
import { Option } from 'commander';
import { findRoute, loadBridgeConfig } from '../infra/config/index.ts';
import { cliProgram, failUsage, numberArg } from './lib/cliArgs.ts';
import { brokersFromEnv, createProducer, ensureTopics } from './lib/kafka.ts';
import { REGISTRY_FORMATS, type RegistryFormat } from './lib/registryTraffic.ts';
import { produceTraffic, routeTraffic } from './lib/traffic.ts';
import { applyEndpointsToEnv, resolveEndpoints } from './local/services.ts';

const program = cliProgram('npm run load --')
  .description(
    "Produces events for a route's topic at a target rate: for the example routes their models (orders: order\n" +
      'lifecycles; payments: credits and debits), for any other route values made from its own zod schema, or the\n' +
      'lines of --values. With duplicates (an earlier record sent again, byte for byte) and poison records (not JSON;\n' +
      'for the example routes also failing the schema or a business rule). Reports the rate achieved.',
  )
  .requiredOption('-r, --route <name>', 'the route whose topic gets the traffic')
  .requiredOption(
    '--rate <records/s>',
    'target records per second (0: as fast as possible)',
    numberArg('--rate', { min: 0 }),
  )
  .requiredOption('--duration <seconds>', 'how long to produce', numberArg('--duration', { min: 0 }))
  .option(
    '--duplicates <percent>',
    'share of duplicate records, in percent',
    numberArg('--duplicates', { min: 0, max: 100 }),
    5,
  )
  .option('--poison <percent>', 'share of poison records, in percent', numberArg('--poison', { min: 0, max: 100 }), 1)
  .option(
    '--tombstones <percent>',
    'share of tombstones (null values), in percent',
    numberArg('--tombstones', { min: 0, max: 100 }),
    0,
  )
  .option(
    '--values <file.jsonl>',
    'send these records, in order and round again: one JSON object per line, {"key"?, "value", "headers"?: {name: text}}',
  )
  .addOption(
    new Option(
      '--format <format>',
      "registry-framed values (the route's schema registered under <topic>-value in the local registry, or SCHEMA_REGISTRY_URL); default: the route decoder's own format, else JSON",
    ).choices([...REGISTRY_FORMATS]),
  )
  .option('--seed <n>', 'generator seed (default: random)', numberArg('--seed', { min: 0 }))
  .option('-c, --config <path>', 'bridge config (.ts or .json; default BRIDGE_CONFIG or infra/bridge.config.ts)')
  .option('--partitions <n>', 'partitions if the topic must be created', numberArg('--partitions', { min: 1 }), 3);

const main = async () => {
  program.parse();
  const opts = program.opts<{
    route: string;
    rate: number;
    duration: number;
    duplicates: number;
    poison: number;
    tombstones: number;
    seed?: number;
    config?: string;
    partitions: number;
    values?: string;
    format?: RegistryFormat;
  }>();
  if (opts.duplicates + opts.poison + opts.tombstones > 100)
    program.error('--duplicates, --poison and --tombstones add up to more than 100%');
  applyEndpointsToEnv(resolveEndpoints());
  const config = await loadBridgeConfig(opts.config);
  const route = findRoute(config, opts.route);
  const brokers = brokersFromEnv();
  await ensureTopics(brokers, [{ topic: route.topic, partitions: opts.partitions }]);
  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  const generator = await routeTraffic(route, {
    ...(opts.values && { valuesFile: opts.values }),
    ...(opts.format && { format: opts.format }),
    seed,
    duplicates: opts.duplicates / 100,
    poison: opts.poison / 100,
    tombstones: opts.tombstones / 100,
    idPrefix: `${randomUUID().slice(0, 6)}-`,
  });
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  process.once('SIGTERM', () => abort.abort());
  const producer = createProducer(brokers, { clientId: `load-${route.name}` });
  process.stderr.write(
    `load: ${route.name} → ${route.topic} at ${opts.rate || 'max'} records/s for ${opts.duration}s ` +
      `(duplicates ${opts.duplicates}%, poison ${opts.poison}%, seed ${seed})\n`,
  );
  let lastReport = Date.now();
  let sentSoFar = 0;
  try {
    const stats = await produceTraffic(producer, route.topic, generator, {
      rate: opts.rate,
      durationMs: opts.duration * 1000,
      signal: abort.signal,
      onSent: (records) => {
        sentSoFar += records.length;
        if (Date.now() - lastReport >= 5_000) {
          lastReport = Date.now();
          process.stderr.write(`load: ${sentSoFar} sent\n`);
        }
      },
    });
    const summary = {
      route: route.name,
      topic: route.topic,
      targetRate: opts.rate,
      durationSeconds: stats.elapsedMs / 1000,
      sent: stats.sent,
      achievedRate: Math.round(stats.recordsPerSec * 10) / 10,
      byKind: stats.byKind,
      seed,
    };
    process.stderr.write(
      `load: sent ${stats.sent} records in ${(stats.elapsedMs / 1000).toFixed(1)}s: ${summary.achievedRate} records/s` +
        (opts.rate > 0 ? ` (${((stats.recordsPerSec / opts.rate) * 100).toFixed(0)}% of target)` : '') +
        `; ${stats.byKind.duplicate} duplicates, ${stats.byKind.poison} poison\n`,
    );
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    await producer.close();
  }
};

main().catch((error: unknown) => failUsage('load', error));
