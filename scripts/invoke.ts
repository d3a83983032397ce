#!/usr/bin/env node
// `npm run invoke -- --route R --event FILE [--config PATH]`: run a route's handler once, like
// `sam local invoke`. stdout carries exactly one JSON document (DESIGN §9); everything else,
// the runtime's own logs included, goes to stderr.
import { Command, Option } from 'commander';
import {
  EXIT_INPUT_ERROR,
  formatSummary,
  invokeRoute,
  loadRouteHandler,
  note,
  prepareRoute,
  readKafkaEventFile,
  runJsonCli,
} from './lib/invokeRoute.ts';

const EXIT_HANDLER_THREW = 1;
const EXIT_SETUP_FAILED = 3;

const program = new Command()
  .name('invoke')
  .description(
    "Invoke a route's handler once with a Kafka event file, against the local services (default) or AWS. " +
      "The route's idempotency table, side tables and dead-letter queue are created locally if missing.",
  )
  .requiredOption('-r, --route <name>', 'the route to invoke, as named in the config')
  .requiredOption('-e, --event <file>', 'a JSON Kafka event (aws:kafka or SelfManagedKafka), as the ESM sends it')
  .option(
    '-c, --config <path>',
    'the bridge config (.ts or .json); default: $BRIDGE_CONFIG, else infra/bridge.config.ts',
  )
  .option(
    '--aws',
    "use the AWS endpoints and credentials of the SDK, and the deployed resources named by IDEMPOTENCY_TABLE_NAME, DLQ_URL and the side tables' variables; nothing is created",
  )
  .addOption(
    new Option('--log-level <level>', "the runtime's log level (its logs go to stderr)").choices([
      'DEBUG',
      'INFO',
      'WARN',
      'ERROR',
      'SILENT',
    ]),
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

Exit codes: 0 the handler returned, ${EXIT_HANDLER_THREW} the handler threw (the JSON is still printed),
${EXIT_INPUT_ERROR} bad arguments, config or event file, ${EXIT_SETUP_FAILED} the route's resources could not be prepared.

Example:
  npm run invoke -- --route audit --event test/fixtures/msk-event.json --config test/fixtures/audit.config.json`,
  );

type Options = { route: string; event: string; config?: string; aws?: boolean; logLevel?: string };

const main = async (options: Options, print: (text: string) => Promise<void>): Promise<number> => {
  const event = await readKafkaEventFile(options.event);
  const prepared = await prepareRoute({
    route: options.route,
    configPath: options.config,
    aws: options.aws,
    logLevel: options.logLevel,
  });
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
