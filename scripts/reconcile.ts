// `npm run reconcile -- --route R [--wait S]`: is every record of the route's topic accounted for? (DESIGN §9)
// Prints a JSON report on stdout (see scripts/bridge/reconcileRoute.ts for what each count means) and a summary on
// stderr. Exits 1 if a record the route's consumer group already consumed is missing, 0 when the rest are only
// pending (not consumed yet), 2 on a usage or connection error (one line on stderr).
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { Command } from 'commander';
import {
  type BridgeConfig,
  consumerGroupIdOf,
  findRoute,
  loadBridgeConfig,
  type RouteConfig,
} from '../infra/config/index.ts';
import { readTopic } from './bridge/readTopic.ts';
import {
  type Coordinates,
  type GroupProgress,
  type ReconcileReport,
  readGroupProgress,
  reconcileRecords,
  waitForGroupToDrain,
} from './bridge/reconcileRoute.ts';
import { describeFailure, EXIT_USAGE, numberArg, oneLine } from './lib/cliArgs.ts';
import { CliInputError, note, RouteSetupError, runJsonCli } from './lib/invokeRoute.ts';
import { brokersFromEnv, createAdmin } from './lib/kafka.ts';
import { ensureLocalResources } from './lib/localResources.ts';
import { applyEndpointsToEnv, resolveEndpoints } from './local/services.ts';

const EXIT_MISSING = 1;
/** Usage errors, and services that cannot be reached: the check did not run. */
const EXIT_FAILED = EXIT_USAGE;
/** How many pending records the report lists: their partitions' offsets in `consumerGroup` say the rest. */
const PENDING_LISTED = 10;

const program = new Command()
  .name('npm run reconcile --')
  .description(
    "Reads the route's topic and looks up every record's idempotency key in the idempotency table and in the\n" +
      "route's dead-letter queue, and reads the route's consumer-group offsets. Prints a JSON report: completed,\n" +
      'deadLettered, parked (in the retry queue), inProgress, missing, pending (not consumed yet), tombstones\n' +
      'skipped, with the coordinates of\n' +
      'missing, in-progress and (a few) pending records. Exits 1 if a consumed record is missing, 2 on a usage or\n' +
      'connection error.',
  )
  .requiredOption('-r, --route <name>', 'the route to reconcile')
  .option('-c, --config <path>', 'bridge config (.ts or .json; default BRIDGE_CONFIG or infra/bridge.config.ts)')
  .option(
    '--wait <seconds>',
    "first wait up to this long for the consumer group's lag to reach 0 (progress on stderr); what is still not " +
      'consumed then is reported as pending',
    numberArg('--wait'),
  )
  .option(
    '--max-listed <n>',
    'list at most this many missing / in-progress records',
    numberArg('--max-listed', { integer: true }),
    1000,
  );

type Options = { route: string; config?: string; wait?: number; maxListed: number };

const loadRoute = async (options: Options): Promise<{ config: BridgeConfig; route: RouteConfig }> => {
  try {
    const config = await loadBridgeConfig(options.config);
    return { config, route: findRoute(config, options.route) };
  } catch (error) {
    // A config that cannot be read or fails its schema, or a route it does not have.
    throw new CliInputError((error as Error).message, { cause: error });
  }
};

const list = (records: readonly Coordinates[], total: number) => {
  const shown = records.slice(0, 3).map((r) => `${r.topic}-${r.partition}@${r.offset}`);
  return `${shown.join(', ')}${total > shown.length ? ` and ${total - shown.length} more` : ''}`;
};

const lagOf = (progress: GroupProgress) =>
  progress.partitions
    .filter((p) => p.lag > 0)
    .map((p) => `${p.partition}=${p.lag}`)
    .join(', ');

/** The summary on stderr: the counts, then what pending and missing records mean. */
const summarize = (report: ReconcileReport): string[] => {
  const group = report.consumerGroup;
  const lines = [
    `reconcile: route ${report.route} (topic ${report.topic}${group ? `, consumer group ${group.groupId}` : ''}): ` +
      `${report.records} record(s): ${report.completed} completed, ${report.deadLettered} dead-lettered, ` +
      `${report.parked} parked, ${report.inProgress} in progress, ${report.skipped.tombstones} tombstone(s) skipped, ` +
      `${report.pending} pending, ${report.missing} missing`,
  ];
  if (report.pending > 0) {
    lines.push(
      `reconcile: ${report.pending} pending: not consumed yet by the group (lag per partition: ` +
        `${group ? lagOf(group) : '?'}), e.g. ${list(report.pendingRecords, report.pending)}; not missing: ` +
        'run the bridge, or wait for it with --wait S',
    );
  }
  if (report.unverifiable > 0) {
    lines.push(
      `reconcile: ${report.unverifiable} unverifiable: consumed with no trace, but written before the idempotency ` +
        `table was created (${report.tableCreatedAt}); local services restarted in memory forget their tables while ` +
        'Kafka keeps its offsets (LOCAL_PERSIST=1 keeps them), so the table cannot tell: not counted as missing',
    );
  }
  if (report.missing > 0) {
    lines.push(
      `reconcile: ${report.missing} missing: consumed by the group but neither completed nor dead-lettered, e.g. ` +
        `${list(report.missingRecords, report.missing)}`,
    );
  } else {
    lines.push(
      `reconcile: OK: every consumed record was completed, dead-lettered or parked${report.pending > 0 ? ' (pending ones are still to come)' : ''}`,
    );
  }
  return lines;
};

const reconcile = async (options: Options, print: (text: string) => Promise<void>): Promise<number> => {
  applyEndpointsToEnv(resolveEndpoints());
  const { config, route } = await loadRoute(options);
  const groupId = consumerGroupIdOf(config, route);
  const brokers = brokersFromEnv();
  const sqs = new SQSClient({});
  const dynamodb = new DynamoDBClient({});
  // A route that never ran has no table or queue yet: create them (empty), so every record reports as missing.
  const [resources] = await ensureLocalResources(config, { routes: [route.name], topics: false, dynamodb, sqs });
  const admin = createAdmin(brokers, { clientId: 'kafka-lambda-bridge-reconcile' });
  try {
    if (options.wait !== undefined && options.wait > 0) {
      let shown = '';
      let shownAt = 0;
      const progress = await waitForGroupToDrain({
        admin,
        groupId,
        topic: route.topic,
        seconds: options.wait,
        onProgress: (p, elapsed) => {
          // A line when the lag moves, and every 5 s while it does not.
          const line = `lag ${p.lag}${p.lag > 0 ? ` (${lagOf(p)})` : ''}`;
          if (line === shown && elapsed - shownAt < 5_000) return;
          shown = line;
          shownAt = elapsed;
          note(
            `reconcile: waiting for consumer group ${groupId} on ${route.topic}: ${line}, ${Math.round(elapsed / 1000)} s of ${options.wait} s`,
          );
        },
      });
      note(
        progress.lag === 0
          ? `reconcile: consumer group ${groupId} has consumed every record of ${route.topic}`
          : `reconcile: lag still ${progress.lag} after ${options.wait} s; those records are reported as pending`,
      );
    }
    const records = await readTopic(brokers, route.topic);
    // Before the table and the queue are read (see reconcileRoute.ts).
    const consumerGroup = await readGroupProgress(admin, groupId, route.topic);
    const report = await reconcileRecords({
      config,
      route,
      records,
      dynamodb,
      sqs,
      queueUrl: resources?.deadLetterQueueUrl as string,
      consumerGroup,
    });
    const listed: ReconcileReport = {
      ...report,
      missingRecords: report.missingRecords.slice(0, options.maxListed),
      inProgressRecords: report.inProgressRecords.slice(0, options.maxListed),
      pendingRecords: report.pendingRecords.slice(0, Math.min(options.maxListed, PENDING_LISTED)),
    };
    await print(`${JSON.stringify(listed, null, 2)}\n`);
    for (const line of summarize(report)) note(line);
    return report.missing > 0 ? EXIT_MISSING : 0;
  } finally {
    await admin.close().catch(() => {});
  }
};

/** Programming errors keep their stack; anything else stopping the check is told in one line. */
const isBug = (error: unknown) =>
  error instanceof TypeError || error instanceof ReferenceError || error instanceof RangeError;

const main = async (options: Options, print: (text: string) => Promise<void>): Promise<number> => {
  try {
    return await reconcile(options, print);
  } catch (error) {
    if (isBug(error)) throw error;
    if (error instanceof CliInputError) throw new CliInputError(oneLine(error.message), { cause: error });
    throw new RouteSetupError(describeFailure(error), { cause: error });
  }
};

await runJsonCli<Options>('reconcile', program, EXIT_FAILED, main);
