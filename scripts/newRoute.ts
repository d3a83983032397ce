// `npm run new-route -- <name> [--topic T] [--mode process|transact] [--config PATH]`: scaffolds a route the way
// `sam init` scaffolds a function: its handler module with a zod schema and an example value, its entry in the
// config, a sample event under events/, and a test that runs the sample through the handler. Then: edit, `npm start`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Option } from 'commander';
import {
  BridgeConfigError,
  HANDLERS_DIR,
  loadBridgeConfig,
  parseBridgeConfig,
  RouteConfig,
  resolveConfigPath,
} from '../infra/config/index.ts';
import { cliProgram, failUsage } from './lib/cliArgs.ts';
import { buildKafkaEvent, eventSourceOf, toLambdaRecord } from './lib/kafkaEvents.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const BIOME = join(ROOT, 'node_modules/@biomejs/biome/bin/biome');
/** Where `npm run new-route` inserts a route in a .ts config: the line above this marker. */
export const ROUTES_MARKER = '// `npm run new-route` adds routes above this line.';

const pascal = (name: string) =>
  name
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
const constant = (name: string) => name.toUpperCase().replaceAll('-', '_');

export type Scaffold = {
  readonly name: string;
  readonly topic: string;
  readonly mode: 'process' | 'transact';
};

/** The route's entry in the config; transact mode gets a table of its own to write. */
export const routeEntry = ({ name, topic, mode }: Scaffold) => ({
  name,
  topic,
  handler: `${name}.ts`,
  ...(mode === 'transact' && {
    tables: [{ name: `${name}-items`, partitionKey: 'id', env: `${constant(name)}_TABLE_NAME` }],
  }),
});

/** The example value: what the schema accepts, and what the sample event carries. */
export const exampleValue = { id: 'example-1', name: 'An example', quantity: 3, updatedAt: '2026-01-01T00:00:00.000Z' };

export const handlerSource = ({ name, mode }: Scaffold): string => {
  const type = `${pascal(name)}Event`;
  const work =
    mode === 'process'
      ? `  process: async (record, context) => {
    // Your side effect goes here. Make it safe to run twice for the same record: a crash can repeat the last few
    // records (README: the crash window), or use transact mode, which commits effects and dedupe marker together.
    context.count('${type}sReceived');
    void record.value;
  },`
      : `  // One DynamoDB transaction commits these items and the dedupe marker: exactly once, even across crashes.
  transact: (record) => [
    {
      Put: {
        TableName: requiredEnv('${constant(name)}_TABLE_NAME', '${name}'),
        Item: {
          id: { S: record.value.id },
          name: { S: record.value.name },
          quantity: { N: String(record.value.quantity) },
          updatedAt: { S: record.value.updatedAt },
        },
      },
    },
  ],`;
  return `import { z } from 'zod';
import { kafkaHandler${mode === 'transact' ? ', requiredEnv' : ''} } from '../runtime/kafkaHandler.ts';

/**
 * Route \`${name}\` (scaffolded by \`npm run new-route\`, ${mode} mode). Its name comes from the config, through
 * BRIDGE_ROUTE, so a copy of this module never speaks for another route. Edit the schema and the work, then
 * \`npm start\`: the demo makes values from the schema and sends them to the route's topic.
 */
export const ${type} = z.object({
  id: z.string().min(1).max(128),
  name: z.string().min(1),
  quantity: z.number().int().min(0),
  updatedAt: z.iso.datetime(),
});
export type ${type} = z.infer<typeof ${type}>;

/** A value the schema accepts; events/${name}.json carries it. */
export const ${constant(name)}_EXAMPLE: ${type} = ${JSON.stringify(exampleValue, null, 2)
    .replaceAll('"', "'")
    .replace(/'(\w+)':/g, '$1:')};

export const handler = kafkaHandler({
  value: ${type},
${work}
});
`;
};

export const testSource = ({ name, mode }: Scaffold): string => `import { readFileSync } from 'node:fs';
import { handler } from '../../../functions/handlers/${name}.ts';
import { invocationSummaryOf } from '../../../functions/runtime/kafkaHandler.ts';
import { ${mode === 'transact' ? 'createTable, getItem, ' : ''}routeEnvironment${mode === 'transact' ? ', uniqueName' : ''} } from '../../helpers/aws.ts';
import { lambdaContext } from '../../helpers/events.ts';

// The sample event \`npm run new-route\` wrote, as the event source mapping would send it.
const sample = JSON.parse(readFileSync(new URL('../../../events/${name}.json', import.meta.url), 'utf8'));
${mode === 'transact' ? 'let table: string;\n' : ''}
beforeAll(async () => {
  await routeEnvironment('${name}');
  process.env.BRIDGE_ROUTE = '${name}';${
    mode === 'transact'
      ? `
  table = await createTable(uniqueName('${name}-items'), 'id');
  process.env.${constant(name)}_TABLE_NAME = table;`
      : ''
  }
});

test('the sample event is processed once; delivered again, it is a duplicate', async () => {
  const first = lambdaContext();
  await handler(sample, first);
  expect(invocationSummaryOf(first)).toMatchObject({ received: 1, processed: 1, deadLettered: 0 });${
    mode === 'transact'
      ? `
  expect((await getItem(table, { id: { S: '${exampleValue.id}' } }))?.quantity?.N).toBe('${exampleValue.quantity}');`
      : ''
  }
  const again = lambdaContext();
  await handler(sample, again);
  expect(invocationSummaryOf(again)).toMatchObject({ received: 1, processed: 0, duplicates: 1 });
});
`;

/** The sample event: the example value on partition 0 of the route's topic, keyed by its id. */
export const sampleEvent = (config: Parameters<typeof eventSourceOf>[0], { topic }: Scaffold) =>
  buildKafkaEvent(eventSourceOf(config, ['localhost:9092']), [
    toLambdaRecord({
      topic,
      partition: 0,
      offset: 0,
      timestamp: Date.parse(exampleValue.updatedAt),
      key: Buffer.from(exampleValue.id),
      value: Buffer.from(JSON.stringify(exampleValue)),
      headerEntries: [['content-type', Buffer.from('application/json')]],
    }),
  ]);

/** The config with the route added: a JSON config is rewritten, a .ts config gets it above the marker. */
export const addToConfig = (path: string, text: string, entry: ReturnType<typeof routeEntry>): string => {
  if (path.endsWith('.json')) {
    const config = JSON.parse(text) as { routes?: unknown[] };
    config.routes = [...(config.routes ?? []), entry];
    return `${JSON.stringify(config, null, 2)}\n`;
  }
  const lines = text.split('\n');
  const at = lines.findIndex((line) => line.trim() === ROUTES_MARKER);
  if (at < 0) {
    throw new Error(
      `${path} has no line "${ROUTES_MARKER}" in its routes: add the route by hand: ${JSON.stringify(entry)}`,
    );
  }
  const indent = (lines[at] as string).match(/^\s*/)?.[0] ?? '';
  const body = JSON.stringify(entry, null, 2)
    .replace(/"(\w+)":/g, '$1:')
    .replaceAll('"', "'")
    .split('\n')
    .map((line) => `${indent}${line}`);
  body[body.length - 1] += ',';
  lines.splice(at, 0, ...body);
  return lines.join('\n');
};

const program = cliProgram('npm run new-route --')
  .description(
    'Scaffolds a route: functions/handlers/<name>.ts (a zod schema with an example value, and the work), its entry\n' +
      'in the config, a sample event events/<name>.json and a test test/functions/handlers/<name>.test.ts that runs\n' +
      'the sample through the handler. Then edit the handler, and `npm start` sends it values made from its schema.',
  )
  .argument('<name>', 'the route name: lower-case kebab-case, at most 32 characters')
  .option('-t, --topic <topic>', 'the Kafka topic (default: the route name)')
  .addOption(
    new Option('-m, --mode <mode>', 'process (effects at least once) or transact (exactly once, in DynamoDB)')
      .choices(['process', 'transact'])
      .default('process'),
  )
  .option('-c, --config <path>', 'bridge config (.ts or .json; default BRIDGE_CONFIG or infra/bridge.config.ts)');

/** A refusal: `new-route: <why>` on one line, exit 2, like every CLI here. */
const refuse = (why: string): never => failUsage('new-route', new Error(why));

const main = async () => {
  program.parse();
  const [name] = program.args as [string];
  const opts = program.opts<{ topic?: string; mode: 'process' | 'transact'; config?: string }>();
  const scaffold: Scaffold = { name, topic: opts.topic ?? name, mode: opts.mode };
  const checked = RouteConfig.pick({ name: true, topic: true }).safeParse({ name, topic: scaffold.topic });
  if (!checked.success) refuse(`route "${name}": ${checked.error.issues[0]?.message}`);

  const configPath = resolveConfigPath(opts.config);
  const config = await loadBridgeConfig(configPath);
  if (config.routes.some((r) => r.name === name)) refuse(`the config already has a route "${name}"`);
  const files = {
    handler: join(HANDLERS_DIR, `${name}.ts`),
    event: join(ROOT, 'events', `${name}.json`),
    test: join(ROOT, 'test/functions/handlers', `${name}.test.ts`),
  };
  const taken = Object.values(files).filter((file) => existsSync(file));
  if (taken.length > 0) refuse(`would overwrite ${taken.map((f) => relative(ROOT, f)).join(', ')}`);

  const configText = readFileSync(configPath, 'utf8');
  const written: string[] = [];
  const write = (file: string, text: string) => {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    written.push(file);
  };
  try {
    write(files.handler, handlerSource(scaffold));
    // The config with the route, checked by the same schema the CDK and the bridge use (the handler now exists).
    parseBridgeConfig({ ...config, routes: [...config.routes, routeEntry(scaffold)] }, configPath);
    write(files.event, `${JSON.stringify(sampleEvent(config, scaffold), null, 2)}\n`);
    write(files.test, testSource(scaffold));
    writeFileSync(configPath, addToConfig(configPath, configText, routeEntry(scaffold)));
  } catch (error) {
    writeFileSync(configPath, configText);
    for (const file of written) rmSync(file, { force: true });
    throw error instanceof BridgeConfigError ? new Error(`the route does not fit the config: ${error.message}`) : error;
  }
  // In the project's own style, so `npm test` (which lints) passes as scaffolded.
  const inProject = [...written, configPath].filter((file) => !relative(ROOT, file).startsWith('..'));
  const biome = spawnSync(process.execPath, [BIOME, 'check', '--write', ...inProject], { cwd: ROOT, encoding: 'utf8' });
  if (biome.status !== 0) {
    process.stderr.write(`new-route: biome could not format the new files:\n${biome.stdout}${biome.stderr}`);
  }
  // Relative to the repository, or absolute for a config outside it.
  const shown = (file: string) => (relative(ROOT, file).startsWith('..') ? file : relative(ROOT, file));
  process.stdout.write(
    [
      `new-route: route "${name}" (topic ${scaffold.topic}, ${scaffold.mode} mode)`,
      `  ${shown(files.handler)}   the schema, an example value and the work: edit these`,
      `  ${shown(configPath)}   the route's entry`,
      `  ${shown(files.event)}   a sample event (npm run invoke -- --route ${name} --event ${shown(files.event)})`,
      `  ${shown(files.test)}   runs the sample through the handler (npm test)`,
      'next: edit the handler, then `npm start` (it sends the route values made from its schema)',
      '',
    ].join('\n'),
  );
};

main().catch((error: unknown) => failUsage('new-route', error));
