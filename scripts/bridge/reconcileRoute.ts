// `npm run reconcile`'s core: every record of a route's topic, looked up by its idempotency key in the table and in
// the route's dead-letter queue.
//
// Each record counts once, as:
// - completed: its key's item is COMPLETED. Several records may share one item: a duplicate of a payment (same txId)
//   is found under the first copy's item, and counts as completed with it;
// - deadLettered: its key's item is DEAD_LETTERED, or the DLQ holds an envelope with its key (the send happens
//   before the marker is written, so a DLQ envelope wins over an IN_PROGRESS item);
// - inProgress: the item is IN_PROGRESS and no envelope exists (a batch is running, or failed and will be
//   redelivered);
// - skipped: a tombstone without an item. Routes skip tombstones by default (`tombstones: 'skip'`) and write no
//   marker for them, so their absence is expected; a route that processes tombstones has items for them, and they
//   count like any other record;
// - missing: none of the above. That is a lost record, and the report lists its coordinates.
import { BatchGetItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { idempotencyPartitionKey } from '../../functions/runtime/idempotency/DynamoDbIdempotencyStore.ts';
import type { BridgeConfig, RouteConfig } from '../../infra/config/index.ts';
import { localResourceNames } from '../../infra/config/index.ts';
import type { LambdaKafkaRecord } from '../lib/kafkaEvents.ts';
import { peekDeadLetters } from './deadLetters.ts';
import { idempotencyKeyFor } from './recordKeys.ts';

export type Coordinates = { topic: string; partition: number; offset: number; idempotencyKey: string };

export type ReconcileReport = {
  route: string;
  topic: string;
  table: string;
  records: number;
  completed: number;
  deadLettered: number;
  inProgress: number;
  missing: number;
  skipped: { tombstones: number };
  /** Records whose key an earlier record already had (business duplicates), included in the counts above. */
  sharedKeys: number;
  deadLetterQueue: {
    messages: number;
    /** Keys with more than one envelope. */
    duplicateKeys: number;
    /** Envelopes whose key no record of the topic has (say, from another run of the route). */
    unmatched: number;
    unreadable: number;
  };
  missingRecords: Coordinates[];
  inProgressRecords: Coordinates[];
};

type Item = { status: string };

const getItems = async (dynamodb: DynamoDBClient, table: string, pks: string[]): Promise<Map<string, Item>> => {
  const items = new Map<string, Item>();
  for (let i = 0; i < pks.length; i += 100) {
    let keys: Array<Record<string, { S: string }>> = pks.slice(i, i + 100).map((pk) => ({ pk: { S: pk } }));
    for (let attempt = 0; keys.length > 0; attempt++) {
      const result = await dynamodb.send(
        new BatchGetItemCommand({
          RequestItems: {
            [table]: {
              Keys: keys,
              ProjectionExpression: 'pk, #status',
              ExpressionAttributeNames: { '#status': 'status' },
            },
          },
        }),
      );
      for (const item of result.Responses?.[table] ?? []) {
        if (item.pk?.S) items.set(item.pk.S, { status: item.status?.S ?? '' });
      }
      keys = (result.UnprocessedKeys?.[table]?.Keys ?? []) as typeof keys;
      if (keys.length > 0) {
        if (attempt > 20) throw new Error(`DynamoDB left ${keys.length} keys unprocessed`);
        await new Promise((resolve) => setTimeout(resolve, 50 * (attempt + 1)));
      }
    }
  }
  return items;
};

export const reconcileRecords = async (options: {
  config: BridgeConfig;
  route: RouteConfig;
  records: readonly LambdaKafkaRecord[];
  dynamodb: DynamoDBClient;
  sqs: SQSClient;
  queueUrl: string;
}): Promise<ReconcileReport> => {
  const { config, route, records } = options;
  const table = localResourceNames(config).idempotencyTable;
  const keyOf = await idempotencyKeyFor(route);
  const keyed = records.map((record) => ({ record, key: keyOf(record) }));
  const pks = [...new Set(keyed.map((k) => idempotencyPartitionKey(route.name, k.key)))];
  const [items, dlq] = await Promise.all([
    getItems(options.dynamodb, table, pks),
    peekDeadLetters(options.sqs, options.queueUrl),
  ]);
  const letters = dlq.letters.filter((l) => l.route === route.name);
  const lettersByKey = new Map<string, number>();
  for (const letter of letters)
    lettersByKey.set(letter.idempotencyKey, (lettersByKey.get(letter.idempotencyKey) ?? 0) + 1);
  const recordKeys = new Set(keyed.map((k) => k.key));

  const report: ReconcileReport = {
    route: route.name,
    topic: route.topic,
    table,
    records: records.length,
    completed: 0,
    deadLettered: 0,
    inProgress: 0,
    missing: 0,
    skipped: { tombstones: 0 },
    sharedKeys: 0,
    deadLetterQueue: {
      messages: letters.length,
      duplicateKeys: [...lettersByKey.values()].filter((n) => n > 1).length,
      unmatched: letters.filter((l) => !recordKeys.has(l.idempotencyKey)).length,
      unreadable: dlq.unreadable,
    },
    missingRecords: [],
    inProgressRecords: [],
  };
  const seen = new Set<string>();
  for (const { record, key } of keyed) {
    if (seen.has(key)) report.sharedKeys += 1;
    seen.add(key);
    const coordinates = {
      topic: record.topic,
      partition: record.partition,
      offset: record.offset,
      idempotencyKey: key,
    };
    const status = items.get(idempotencyPartitionKey(route.name, key))?.status;
    if (status === 'COMPLETED') report.completed += 1;
    else if (status === 'DEAD_LETTERED' || lettersByKey.has(key)) report.deadLettered += 1;
    else if (status === 'IN_PROGRESS') {
      report.inProgress += 1;
      report.inProgressRecords.push(coordinates);
    } else if (record.value === null) report.skipped.tombstones += 1;
    else {
      report.missing += 1;
      report.missingRecords.push(coordinates);
    }
  }
  return report;
};
