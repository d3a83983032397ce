#!/usr/bin/env node
// `npm run replay -- --route R [--to-topic T | --invoke] [--limit N] [--dry-run] [--config PATH]`:
// drain a route's dead-letter queue back into Kafka, or straight into the route's handler.
// Progress goes to stderr; stdout carries one JSON report.
import { Command, Option } from 'commander';
import { describeFailure, EXIT_USAGE, numberArg, oneLine } from './lib/cliArgs.ts';
import {
  CliInputError,
  loadRouteHandler,
  note,
  prepareRoute,
  type RouteHandler,
  RouteSetupError,
  runJsonCli,
} from './lib/invokeRoute.ts';
import { brokersFromEnv } from './lib/kafka.ts';
import { REPLAY_HEADER } from './lib/replayEvents.ts';
import { formatGroups, type ReplayMode, replayDeadLetters } from './lib/replayRun.ts';

const EXIT_LEFT_IN_DLQ = 1;
/** Bad arguments or config, and services that cannot be reached, exit like a usage error: the check did not run. */
const EXIT_FAILED = EXIT_USAGE;

const program = new Command()
  .name('replay')
  .description(
    "Drain a route's dead-letter queue: republish each record to Kafka (default: to its source topic), or " +
      "invoke the route's handler with it. A DLQ message is deleted only after its record was re-delivered.",
  )
  .requiredOption('-r, --route <name>', 'the route whose DLQ to drain, as named in the config')
  .addOption(
    new Option('--to-topic [topic]', 'republish to Kafka, to this topic (default: the source topic)').conflicts(
      'invoke',
    ),
  )
  .addOption(new Option('--invoke', "run the route's handler on the records directly").conflicts('toTopic'))
  .option('-n, --limit <count>', 'take at most this many DLQ messages', numberArg('--limit', { min: 1, integer: true }))
  .option('--dry-run', 'list what would be replayed; change nothing (every message stays in the DLQ)')
  .option(
    '-c, --config <path>',
    'the bridge config (.ts or .json); default: $BRIDGE_CONFIG, else infra/bridge.config.ts',
  )
  .option(
    '--aws',
    "use the AWS endpoints and credentials of the SDK, and the deployed resources named by IDEMPOTENCY_TABLE_NAME, DLQ_URL and the side tables' variables",
  )
  .option(
    '--visibility-timeout <seconds>',
    'how long a taken message stays hidden (default: route timeout + 60 s with --invoke, else 120 s)',
    numberArg('--visibility-timeout', { min: 1, integer: true }),
  )
  .addOption(
    new Option('--log-level <level>', "the runtime's log level with --invoke (its logs go to stderr)").choices([
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
Every replayed record carries the header ${REPLAY_HEADER} = <topic>-<partition>@<offset> of its first
delivery (a record that already has one keeps it), with its key, value and headers byte for byte. The
runtime then uses the first delivery's idempotency item and lets a DEAD_LETTERED record be processed
exactly once more; replaying the same dead letter again is skipped as a duplicate.

A record the event source mapping delivered with eventRecordFormat SOURCE (the registry framing removed,
the schema named in record.keySchemaMetadata / valueSchemaMetadata) is re-framed before it is produced:
Confluent ids get the magic byte 0 and the 4-byte id back, Glue schema versions the 18-byte Glue header,
so consumers of the topic decode it as the producer's record (the report's items[].reframed says which
sides). With --invoke it goes to the handler unframed, with its schema metadata, as the first time. A
value the mapping converted to JSON (eventRecordFormat JSON) cannot be re-framed: it stays in the DLQ
when replayed to a topic.

A truncated dead letter (record.truncated: true) is read again from Kafka at its coordinates; if the
record is gone (retention), the message is reported and stays in the DLQ.

A dry run lists the dead letters grouped by reason (error kind, name and message), with a count per group
and the time each record was dead-lettered.

stdout: one JSON report { route, mode, dryRun, queueUrl, received, replayed, wouldReplay, left, items, groups,
invocations }.
Exit codes: 0 done, ${EXIT_LEFT_IN_DLQ} some messages could not be replayed and stay in the DLQ, ${EXIT_FAILED} bad arguments or
config, or stopped by an error (Kafka, SQS or DynamoDB unreachable; one line on stderr).

Examples:
  npm run replay -- --route payments --dry-run
  npm run replay -- --route payments                       # back to the source topic
  npm run replay -- --route orders --invoke --limit 10     # straight into the handler`,
  );

type Options = {
  route: string;
  toTopic?: string | true;
  invoke?: boolean;
  limit?: number;
  dryRun?: boolean;
  config?: string;
  aws?: boolean;
  visibilityTimeout?: number;
  logLevel?: string;
};

/** Programming errors keep their stack; anything else stopping the run is told in one line. */
const isBug = (error: unknown) =>
  error instanceof TypeError || error instanceof ReferenceError || error instanceof RangeError;

const replay = async (options: Options, print: (text: string) => Promise<void>): Promise<number> => {
  const mode: ReplayMode = options.invoke
    ? { kind: 'invoke' }
    : { kind: 'topic', topic: typeof options.toTopic === 'string' ? options.toTopic : undefined };
  const prepared = await prepareRoute({
    route: options.route,
    configPath: options.config,
    aws: options.aws,
    logLevel: options.logLevel,
  });
  let handler: RouteHandler | undefined;
  if (mode.kind === 'invoke') handler = await loadRouteHandler(prepared.route);
  const target =
    mode.kind === 'invoke' ? `the ${prepared.route.name} handler` : `topic ${mode.topic ?? '<source topic>'}`;
  note(
    `replay: route ${prepared.route.name}: draining ${prepared.deadLetterQueueUrl} into ${target}${options.dryRun ? ' (dry run)' : ''}${options.limit ? `, at most ${options.limit}` : ''}`,
  );
  const report = await replayDeadLetters({
    prepared,
    mode,
    ...(handler ? { handler } : {}),
    limit: options.limit,
    dryRun: options.dryRun,
    brokers: brokersFromEnv(),
    visibilityTimeoutSeconds: options.visibilityTimeout,
    progress: (line) => note(`replay: ${line}`),
  });
  await print(`${JSON.stringify(report, null, 2)}\n`);
  const stuck = report.items.filter((item) => item.outcome === 'left').length;
  if (report.received > 0 || !report.error) {
    const groups = `${report.groups.length} reason(s)`;
    note(
      report.dryRun
        ? `replay: dry run: ${report.received} dead letter(s) in ${groups}, ${report.wouldReplay} would be replayed, ${stuck} could not be`
        : `replay: ${report.received} dead letter(s) in ${groups}: ${report.replayed} replayed and deleted, ${report.left} left in the DLQ`,
    );
    if (report.dryRun) for (const line of formatGroups(report.groups)) note(line);
  }
  const parked = report.parked;
  if (parked && parked.total > 0)
    note(
      `replay: ${parked.total} parked record(s) in the retry queue (${parked.delayed} ` +
        `waiting out a delay, ${parked.inFlight} being run): not dead letters, so not replayed; they come back on their own`,
    );
  if (report.error) {
    note(`replay: stopped: ${report.error}`);
    return EXIT_FAILED;
  }
  return stuck > 0 ? EXIT_LEFT_IN_DLQ : 0;
};

const main = async (options: Options, print: (text: string) => Promise<void>): Promise<number> => {
  try {
    return await replay(options, print);
  } catch (error) {
    if (isBug(error)) throw error;
    if (error instanceof CliInputError) throw new CliInputError(oneLine(error.message), { cause: error });
    throw new RouteSetupError(describeFailure(error), { cause: error });
  }
};

await runJsonCli<Options>('replay', program, EXIT_FAILED, main);
