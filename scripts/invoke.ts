#!/usr/bin/env node
// `npm run invoke -- --route R --event FILE [--config PATH]`: run a route's handler once, like
// `sam local invoke`. stdout carries exactly one JSON document (DESIGN §9); everything else,
// the runtime's own logs included, goes to stderr. `--generate` prints a sample event instead,
// like `sam local generate-event kafka`.
import { Command, Option } from 'commander';
import { findRoute, loadBridgeConfig, localResourceNames } from '../infra/config/index.ts';
import { EXIT_USAGE } from './lib/cliArgs.ts';
import {
  CliInputError,
  formatSummary,
  INVOKE_NAMESPACE,
  invokeRoute,
  loadRouteHandler,
  note,
  prepareRoute,
  readKafkaEventFile,
  runJsonCli,
} from './lib/invokeRoute.ts';
import { brokersFromEnv } from './lib/kafka.ts';
import { buildKafkaEvent, eventSourceOf, toLambdaRecord } from './lib/kafkaEvents.ts';
import { loadRouteSchemas, valueMaker } from './lib/schemaValues.ts';

const EXIT_HANDLER_THREW = 1;
/** The route's resources could not be prepared: a service is unreachable, like any other connection error. */
const EXIT_SETUP_FAILED = EXIT_USAGE;

const program = new Command()
  .name('invoke')
  .description(
    "Invoke a route's handler once with a Kafka event file, against the local services (default) or AWS. " +
      "The route's idempotency table, side tables and dead-letter queue are created locally if missing.",
  )
  .requiredOption('-r, --route <name>', 'the route to invoke, as named in the config')
  .option('-e, --event <file>', 'a JSON Kafka event (aws:kafka or SelfManagedKafka) as the ESM sends it; - for stdin')
  .option(
    '-g, --generate',
    "print a sample event for the route (its topic, a value made from its schema), don't invoke",
  )
  .option(
    '--shared-state',
    "use the bridge's local table and queues; by default invoke has its own, so a record it runs is never a duplicate to the bridge",
  )
  .option(
    '-c, --config <path>',
    'the bridge config (.ts or .json); default: $BRIDGE_CONFIG, else infra/bridge.config.ts',
  )
  .option(
    '--aws',
    "use the AWS endpoints and credentials of the SDK, and the deployed resources named by IDEMPOTENCY_TABLE_NAME, DLQ_URL and the side tables' variables; nothing is created",
  )
  .addOption(
    new Option(
      '--log-level <level>',
      "the runtime's log level (its logs go to stderr); DEBUG also prints an error's stack",
    ).choices(['DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT']),
  )
  .addHelpText(
    'after',
    `
stdout: one JSON object
  { "response": <the handler's return value or null>, "error": <message or null>,
    "summary": { "received", "processed", "duplicates", "failed", "deadLettered", "retried",
                 "ddbRequests", "durationMs" } }
  ddbRequests counts the requests made to the idempotency table. A readable summary goes to stderr.

Endpoints: KAFKA_BROKERS, AWS_ENDPOINT_URL_DYNAMODB and AWS_ENDPOINT_URL_SQS when set, else the local
services of \`npm run local:up\`. EMF metric lines are off unless POWERTOOLS_METRICS_DISABLED=false.

State: locally, invoke writes to tables and queues of its own (<config>-${INVOKE_NAMESPACE}-*), never to the bridge's, so
running a sample does not make the real record at the same coordinates a duplicate. --shared-state uses the
bridge's (to try a replay, say).

Exit codes: 0 the handler returned (or --generate printed), ${EXIT_HANDLER_THREW} the handler threw (the JSON is still
printed), ${EXIT_USAGE} bad arguments, config or event file, or the route's resources could not be prepared.

Examples (npm run -s: without it npm prints its own banner on stdout, ahead of the JSON):
  npm run -s invoke -- --route orders --generate > my-event.json
  npm run -s invoke -- --route orders --generate | npm run -s invoke -- --route orders --event -
  npm run invoke -- --route audit --event events/msk-event.json --config test/fixtures/audit.config.json`,
  );

type Options = {
  route: string;
  event?: string;
  generate?: boolean;
  sharedState?: boolean;
  config?: string;
  aws?: boolean;
  logLevel?: string;
};

/** A valid event for the route: one record on partition 0 of its topic, with a key and value made from its schemas. */
const generateEvent = async (options: Options): Promise<unknown> => {
  let config: Awaited<ReturnType<typeof loadBridgeConfig>>;
  let route: ReturnType<typeof findRoute>;
  try {
    config = await loadBridgeConfig(options.config);
    route = findRoute(config, options.route);
  } catch (error) {
    throw new CliInputError((error as Error).message, { cause: error });
  }
  const maker = valueMaker(route, await loadRouteSchemas(route), Date.now() % 100_000);
  const key = maker.key();
  const value = maker.value();
  const bytes = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
  const record = toLambdaRecord({
    topic: route.topic,
    partition: 0,
    offset: 0,
    timestamp: Date.now(),
    key: bytes(key),
    value: bytes(value),
    headerEntries: [['content-type', Buffer.from('application/json')]],
  });
  return buildKafkaEvent(eventSourceOf(config, brokersFromEnv()), [record]);
};

const main = async (options: Options, print: (text: string) => Promise<void>): Promise<number> => {
  if (options.generate) {
    if (options.event) throw new CliInputError('--generate prints an event; it takes no --event');
    await print(`${JSON.stringify(await generateEvent(options), null, 2)}\n`);
    return 0;
  }
  if (!options.event) throw new CliInputError('give an event (--event FILE, or - for stdin), or --generate one');
  const event = await readKafkaEventFile(options.event);
  const isolated = !options.aws && !options.sharedState;
  const prepared = await prepareRoute({
    route: options.route,
    configPath: options.config,
    aws: options.aws,
    logLevel: options.logLevel,
    ...(isolated && { namespace: INVOKE_NAMESPACE }),
  });
  if (!options.aws) {
    const names = localResourceNames(prepared.config, isolated ? INVOKE_NAMESPACE : undefined);
    note(
      isolated
        ? `invoke: state of its own, not the bridge's: table ${names.idempotencyTable}, queue ${names.deadLetterQueues[prepared.route.name]} (--shared-state uses the bridge's)`
        : `invoke: the bridge's state (--shared-state): table ${names.idempotencyTable}, queue ${names.deadLetterQueues[prepared.route.name]}`,
    );
  }
  const handler = await loadRouteHandler(prepared.route);
  const outcome = await invokeRoute(prepared, handler, event);
  await print(
    `${JSON.stringify({ response: outcome.response, error: outcome.error, summary: outcome.summary }, null, 2)}\n`,
  );
  const how = outcome.error === null ? 'returned' : `threw: ${outcome.error}`;
  note(`invoke: route ${prepared.route.name} (${prepared.target}), request ${outcome.requestId}: ${how}`);
  note(`  ${formatSummary(outcome.summary)}`);
  if (outcome.error === null) note(`  response: ${JSON.stringify(outcome.response)}`);
  return outcome.error === null ? 0 : EXIT_HANDLER_THREW;
};

await runJsonCli<Options>('invoke', program, EXIT_SETUP_FAILED, main);
