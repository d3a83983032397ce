// `npm run watermarks -- --route R [--set P=OFFSET ...]`: the watermark strategy's per-partition items (DESIGN §6).
// Lists each partition's watermark (every record at or below it is settled), touched offset, owner, lease and epoch
// as JSON on stdout, with a line per partition on stderr. `--set` moves one for a deliberate re-run (after a
// consumer-group reset) or after a topic was deleted and recreated under the same name (its offsets restart at 0,
// so every record would be taken for a duplicate until the watermark is reset to -1).
import {
  BatchGetItemCommand,
  ConditionalCheckFailedException,
  DynamoDBClient,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { Command } from 'commander';
import {
  WATERMARK_KIND,
  type WatermarkItem,
  watermarkFromItem,
  watermarkPartitionKey,
} from '../functions/runtime/idempotency/WatermarkStore.ts';
import { findRoute, loadBridgeConfig, localResourceNames, type RouteConfig } from '../infra/config/index.ts';
import { describeFailure, EXIT_USAGE, oneLine } from './lib/cliArgs.ts';
import { CliInputError, note, RouteSetupError, runJsonCli } from './lib/invokeRoute.ts';
import { brokersFromEnv, createAdmin } from './lib/kafka.ts';
import { applyEndpointsToEnv, resolveEndpoints } from './local/services.ts';

const program = new Command()
  .name('npm run watermarks --')
  .description(
    "Lists the watermark of each partition of a route's topic (the watermark dedupe strategy: every record at or\n" +
      'below it counts as settled), with its touched offset, owner, lease and epoch, as JSON on stdout. --set\n' +
      'P=OFFSET moves partition P to OFFSET (-1: nothing settled), refused while an invocation holds its lease;\n' +
      'the epoch rises, so an owner that held it before can no longer write. Reads the partition count from Kafka\n' +
      '(KAFKA_BROKERS) unless --partitions is given.',
  )
  .requiredOption('-r, --route <name>', 'the route')
  .option('-c, --config <path>', 'bridge config (.ts or .json; default BRIDGE_CONFIG or infra/bridge.config.ts)')
  .option('-t, --table <name>', "the idempotency table (default: the config's local table name)")
  .option('-p, --partitions <n>', 'how many partitions the topic has (default: ask Kafka)', (value) => {
    const count = Number(value);
    if (!Number.isInteger(count) || count < 1) throw new CliInputError(`--partitions must be a positive integer`);
    return count;
  })
  .option(
    '--set <partition=offset>',
    "move a partition's watermark (repeatable), e.g. --set 0=-1 to run partition 0 again from its first record",
    (value: string, previous: Array<{ partition: number; offset: number }> = []) => {
      const match = /^(\d+)=(-1|\d+)$/.exec(value.trim());
      if (!match) throw new CliInputError(`--set ${value}: expected PARTITION=OFFSET, such as 3=1200 or 0=-1`);
      return [...previous, { partition: Number(match[1]), offset: Number(match[2]) }];
    },
  );

type Options = {
  route: string;
  config?: string;
  table?: string;
  partitions?: number;
  set?: Array<{ partition: number; offset: number }>;
};

type Row = WatermarkItem & { leaseLive: boolean; leaseUntilIso: string | null };

const partitionCount = async (route: RouteConfig): Promise<number> => {
  const admin = createAdmin(brokersFromEnv(), { clientId: 'kafka-lambda-bridge-watermarks' });
  try {
    const metadata = await admin.metadata({ topics: [route.topic], forceUpdate: true });
    const count = metadata.topics.get(route.topic)?.partitionsCount ?? 0;
    if (count === 0) throw new CliInputError(`topic ${route.topic} does not exist (or give --partitions)`);
    return count;
  } finally {
    await admin.close().catch(() => {});
  }
};

const readWatermarks = async (dynamodb: DynamoDBClient, table: string, route: RouteConfig, count: number) => {
  const found = new Map<number, WatermarkItem>();
  for (let start = 0; start < count; start += 100) {
    const keys = Array.from({ length: Math.min(100, count - start) }, (_, i) => ({
      pk: { S: watermarkPartitionKey(route.name, route.topic, start + i) },
    }));
    const result = await dynamodb.send(
      new BatchGetItemCommand({ RequestItems: { [table]: { Keys: keys, ConsistentRead: true } } }),
    );
    for (const item of result.Responses?.[table] ?? [])
      if (item.kind?.S === WATERMARK_KIND) {
        const mark = watermarkFromItem(item);
        found.set(mark.partition, mark);
      }
  }
  return found;
};

/** Moves a partition's watermark while nobody holds its lease; the epoch rises, fencing any earlier owner. */
const setWatermark = async (
  dynamodb: DynamoDBClient,
  table: string,
  route: RouteConfig,
  partition: number,
  offset: number,
): Promise<void> => {
  const now = Date.now();
  try {
    await dynamodb.send(
      new UpdateItemCommand({
        TableName: table,
        Key: { pk: { S: watermarkPartitionKey(route.name, route.topic, partition) } },
        UpdateExpression:
          'SET committedOffset = :offset, touchedOffset = if_not_exists(touchedOffset, :none), leaseUntil = :zero, ' +
          '#kind = :kind, #topic = :topic, #partition = :partition, #owner = :owner ' +
          'REMOVE headOffset, headAttempts, headFirstSeen ADD #epoch :one',
        ConditionExpression: 'attribute_not_exists(pk) OR leaseUntil < :now',
        ExpressionAttributeNames: {
          '#kind': 'kind',
          '#topic': 'topic',
          '#partition': 'partition',
          '#owner': 'owner',
          '#epoch': 'epoch',
        },
        ExpressionAttributeValues: {
          ':offset': { N: String(offset) },
          ':none': { N: '-1' },
          ':zero': { N: '0' },
          ':kind': { S: WATERMARK_KIND },
          ':topic': { S: route.topic },
          ':partition': { N: String(partition) },
          ':owner': { S: `watermarks --set by ${process.env.USER ?? 'someone'}` },
          ':one': { N: '1' },
          ':now': { N: String(now) },
        },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    const held = watermarkFromItem(error.Item ?? {});
    throw new RouteSetupError(
      `partition ${partition} is leased by ${held.owner} until ${new Date(held.leaseUntil).toISOString()}: ` +
        'stop the consumer (or wait for the lease to end) and try again',
    );
  }
};

const run = async (options: Options, print: (text: string) => Promise<void>): Promise<number> => {
  applyEndpointsToEnv(resolveEndpoints());
  let route: RouteConfig;
  let table: string;
  try {
    const config = await loadBridgeConfig(options.config);
    route = findRoute(config, options.route);
    table = options.table ?? localResourceNames(config).idempotencyTable;
  } catch (error) {
    throw new CliInputError((error as Error).message, { cause: error });
  }
  const dynamodb = new DynamoDBClient({});
  try {
    for (const { partition, offset } of options.set ?? []) {
      await setWatermark(dynamodb, table, route, partition, offset);
      note(`watermarks: ${route.topic}-${partition} set to ${offset}`);
    }
    const count = options.partitions ?? (await partitionCount(route));
    const marks = await readWatermarks(dynamodb, table, route, count);
    const now = Date.now();
    const rows: Array<Row | { partition: number; committedOffset: null }> = [];
    for (let partition = 0; partition < count; partition++) {
      const mark = marks.get(partition);
      if (!mark) {
        rows.push({ partition, committedOffset: null });
        note(`watermarks: ${route.topic}-${partition}: none (no batch ran on the watermark strategy)`);
        continue;
      }
      const leaseLive = mark.leaseUntil > now;
      rows.push({
        ...mark,
        leaseLive,
        leaseUntilIso: mark.leaseUntil > 0 ? new Date(mark.leaseUntil).toISOString() : null,
      });
      note(
        `watermarks: ${route.topic}-${partition}: committed ${mark.committedOffset}, touched ${mark.touchedOffset}, ` +
          `epoch ${mark.epoch}, ${leaseLive ? `leased by ${mark.owner} until ${new Date(mark.leaseUntil).toISOString()}` : `free (last owner ${mark.owner})`}` +
          `${mark.head ? `, record ${mark.head.offset} failed ${mark.head.attempts} time(s)` : ''}`,
      );
    }
    await print(`${JSON.stringify({ route: route.name, topic: route.topic, table, partitions: rows }, null, 2)}\n`);
    return 0;
  } catch (error) {
    if (error instanceof CliInputError || error instanceof RouteSetupError) throw error;
    throw new RouteSetupError(oneLine(describeFailure(error)), { cause: error });
  }
};

await runJsonCli<Options>('watermarks', program, EXIT_USAGE, run);
