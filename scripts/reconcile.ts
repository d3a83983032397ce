// `npm run reconcile -- --route R`: is every record of the route's topic accounted for? (DESIGN §9)
// Prints a JSON report (see scripts/bridge/reconcileRoute.ts for what each count means) and exits 1 if any record
// is missing, 2 on a usage or connection error.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { Command } from 'commander';
import { findRoute, loadBridgeConfig } from '../infra/config/index.ts';
import { readTopic } from './bridge/readTopic.ts';
import { reconcileRecords } from './bridge/reconcileRoute.ts';
import { numberArg } from './lib/cliArgs.ts';
import { brokersFromEnv } from './lib/kafka.ts';
import { ensureLocalResources } from './lib/localResources.ts';
import { applyEndpointsToEnv, resolveEndpoints } from './local/services.ts';

const program = new Command()
  .name('npm run reconcile --')
  .description(
    "Reads the route's topic and looks up every record's idempotency key in the idempotency table and in the\n" +
      "route's dead-letter queue. Prints a JSON report: completed, deadLettered, inProgress, missing (with the\n" +
      'coordinates of each missing record), tombstones skipped. Exits 1 if any record is missing.',
  )
  .requiredOption('-r, --route <name>', 'the route to reconcile')
  .option('-c, --config <path>', 'bridge config (.ts or .json; default BRIDGE_CONFIG or infra/bridge.config.ts)')
  .option(
    '--max-listed <n>',
    'list at most this many missing / in-progress records',
    numberArg('--max-listed', { integer: true }),
    1000,
  )
  .showHelpAfterError();

const main = async (): Promise<number> => {
  program.parse();
  const opts = program.opts<{ route: string; config?: string; maxListed: number }>();
  applyEndpointsToEnv(resolveEndpoints());
  const config = await loadBridgeConfig(opts.config);
  const route = findRoute(config, opts.route);
  const sqs = new SQSClient({});
  const dynamodb = new DynamoDBClient({});
  // A route that never ran has no table or queue yet: create them (empty), so every record reports as missing.
  const [resources] = await ensureLocalResources(config, { routes: [route.name], topics: false, dynamodb, sqs });
  const QueueUrl = resources?.deadLetterQueueUrl as string;
  const records = await readTopic(brokersFromEnv(), route.topic);
  const report = await reconcileRecords({
    config,
    route,
    records,
    dynamodb,
    sqs,
    queueUrl: QueueUrl,
  });
  const listed = {
    ...report,
    missingRecords: report.missingRecords.slice(0, opts.maxListed),
    inProgressRecords: report.inProgressRecords.slice(0, opts.maxListed),
  };
  process.stdout.write(`${JSON.stringify(listed, null, 2)}\n`);
  return report.missing > 0 ? 1 : 0;
};

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`reconcile: ${(error as Error).message}\n`);
    process.exit(2);
  },
);
