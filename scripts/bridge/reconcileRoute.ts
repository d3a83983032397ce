// `npm run reconcile`'s core: every record of a route's topic, looked up by its idempotency key in the table and in
// the route's dead-letter queue.
//
// Each record counts once, as:
// - completed: its key's item is COMPLETED, or (the watermark strategy) it is at or below its partition's watermark.
//   Several records may share one item: a duplicate of a payment (same txId) is found under the first copy's item,
//   and counts as completed with it;
// - deadLettered: its key's item is DEAD_LETTERED, or the DLQ holds an envelope with its key (the send happens
//   before the marker is written, so a DLQ envelope wins over an IN_PROGRESS item). A record dead-lettered as a
//   `conflict` (its key held by other content) counts so by its envelope's coordinates, though its key's item is
//   the holder's;
// - parked: the item is PARKED, or IN_PROGRESS while the retry queue runs it (it has a `parkStage`): the route's retry
//   queue (`retry.park`) holds it, and brings it to completed or dead-lettered;
// - inProgress: the item is IN_PROGRESS and no envelope exists (a batch is running, or failed and will be
//   redelivered);
// - skipped: a tombstone without an item (on the watermark strategy, one at or below the watermark too). Routes skip tombstones by default (`tombstones: 'skip'`) and write no
//   marker for them, so their absence is expected; a route that processes tombstones has items for them, and they
//   count like any other record;
// - pending: none of the above, and not consumed yet: at or above its partition's committed offset in the route's
//   consumer group, or in a partition where the group committed nothing. The bridge (or the event source mapping)
//   delivers it from there; an IN_PROGRESS item of such a record is a batch that will be delivered again;
// - missing: none of the above: consumed (below the committed offset) with no item and no dead letter. That is a lost
//   record, and the report lists its coordinates;
// - unverifiable: what would be missing, but the idempotency table was created after the record was written: the
//   table cannot tell (local services restarted in memory forget their tables while Kafka keeps its offsets).
//
// Without the group's offsets (`consumerGroup` not given), every record counts as consumed: callers that waited for
// the lag to reach 0 get the same answer either way. Read the offsets (`readGroupProgress`) before calling
// `reconcileRecords`, which reads the table and the queue: a record consumed after its item was looked up would
// otherwise look lost.
import { BatchGetItemCommand, DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { idempotencyPartitionKey } from '../../functions/runtime/idempotency/DynamoDbIdempotencyStore.ts';
import { watermarkPartitionKey } from '../../functions/runtime/idempotency/WatermarkStore.ts';
import type { BridgeConfig, RouteConfig } from '../../infra/config/index.ts';
import { localResourceNames } from '../../infra/config/index.ts';
import type { Admin } from '../lib/kafka.ts';
import type { LambdaKafkaRecord } from '../lib/kafkaEvents.ts';
import { peekDeadLetters } from './deadLetters.ts';
import { idempotencyKeyFor } from './recordKeys.ts';

export type Coordinates = { topic: string; partition: number; offset: number; idempotencyKey: string };

/** Where a consumer group is on one partition. */
export type PartitionProgress = {
  partition: number;
  /** The next offset the group will consume; null when it committed nothing there (it starts from `earliest`). */
  committed: number | null;
  earliest: number;
  /** The high watermark: the offset the next record will get. */
  end: number;
  /** Records not consumed yet: `end - committed` (or `end - earliest`). */
  lag: number;
};

/** Where the route's consumer group is on the route's topic. */
export type GroupProgress = { groupId: string; topic: string; lag: number; partitions: PartitionProgress[] };

export type ReconcileReport = {
  route: string;
  topic: string;
  table: string;
  records: number;
  completed: number;
  deadLettered: number;
  inProgress: number;
  /** In the route's retry queue (`retry.park`): settled for its partition, on its way to completed or dead-lettered. */
  parked: number;
  missing: number;
  /** Not consumed yet by the route's consumer group (see the top of this file); never counted as missing. */
  pending: number;
  /** Consumed, with no trace, but written before the idempotency table was created: the table cannot tell. */
  unverifiable: number;
  /** When the idempotency table was created (ISO), if it could be read. */
  tableCreatedAt: string | null;
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
  pendingRecords: Coordinates[];
  /** The group's offsets the records were judged by; null when none were given (every record counts as consumed). */
  consumerGroup: GroupProgress | null;
};

type Item = { status: string; parked: boolean; committedOffset?: number | undefined };

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
              ProjectionExpression: 'pk, #status, parkStage, committedOffset',
              ExpressionAttributeNames: { '#status': 'status' },
            },
          },
        }),
      );
      for (const item of result.Responses?.[table] ?? []) {
        if (item.pk?.S)
          items.set(item.pk.S, {
            status: item.status?.S ?? '',
            parked: item.parkStage !== undefined,
            committedOffset: item.committedOffset?.N === undefined ? undefined : Number(item.committedOffset.N),
          });
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
  /** The route's consumer group's offsets, read before this call: records it has not consumed are `pending`. */
  consumerGroup?: GroupProgress | undefined;
}): Promise<ReconcileReport> => {
  const { config, route, records } = options;
  const group = options.consumerGroup;
  const committed = new Map((group?.partitions ?? []).map((p) => [p.partition, p.committed]));
  const consumed = (record: LambdaKafkaRecord): boolean => {
    if (!group) return true;
    const next = committed.get(record.partition);
    return next !== undefined && next !== null && record.offset < next;
  };
  const table = localResourceNames(config).idempotencyTable;
  const keyOf = await idempotencyKeyFor(route);
  const keyed = records.map((record) => ({ record, key: keyOf(record) }));
  const watermarkOf = (record: LambdaKafkaRecord) => watermarkPartitionKey(route.name, record.topic, record.partition);
  const pks = [
    ...new Set([
      ...keyed.map((k) => idempotencyPartitionKey(route.name, k.key)),
      ...records.map((record) => watermarkOf(record)),
    ]),
  ];
  const [items, dlq, description] = await Promise.all([
    getItems(options.dynamodb, table, pks),
    peekDeadLetters(options.sqs, options.queueUrl),
    options.dynamodb.send(new DescribeTableCommand({ TableName: table })).catch(() => undefined),
  ]);
  const tableCreatedAt = description?.Table?.CreationDateTime;
  const letters = dlq.letters.filter((l) => l.route === route.name);
  const lettersByKey = new Map<string, number>();
  for (const letter of letters)
    lettersByKey.set(letter.idempotencyKey, (lettersByKey.get(letter.idempotencyKey) ?? 0) + 1);
  const recordKeys = new Set(keyed.map((k) => k.key));
  const conflicts = new Set(
    letters.filter((l) => l.errorKind === 'conflict').map((l) => `${l.topic}-${l.partition}@${l.offset}`),
  );

  const report: ReconcileReport = {
    route: route.name,
    topic: route.topic,
    table,
    records: records.length,
    completed: 0,
    deadLettered: 0,
    inProgress: 0,
    parked: 0,
    missing: 0,
    pending: 0,
    unverifiable: 0,
    tableCreatedAt: tableCreatedAt?.toISOString() ?? null,
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
    pendingRecords: [],
    consumerGroup: group ?? null,
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
    const item = items.get(idempotencyPartitionKey(route.name, key));
    const status = item?.status;
    if (conflicts.has(`${record.topic}-${record.partition}@${record.offset}`)) report.deadLettered += 1;
    else if (status === 'COMPLETED') report.completed += 1;
    else if (status === 'DEAD_LETTERED' || lettersByKey.has(key)) report.deadLettered += 1;
    else if (status === 'PARKED' || (status === 'IN_PROGRESS' && item?.parked)) report.parked += 1;
    // A tombstone below the watermark is told as one (skipped, as routes do by default), like one without an item.
    else if (record.value !== null && record.offset <= (items.get(watermarkOf(record))?.committedOffset ?? -1))
      report.completed += 1;
    else if (!consumed(record) && (status === 'IN_PROGRESS' || record.value !== null)) {
      report.pending += 1;
      report.pendingRecords.push(coordinates);
    } else if (status === 'IN_PROGRESS') {
      report.inProgress += 1;
      report.inProgressRecords.push(coordinates);
    } else if (record.value === null) report.skipped.tombstones += 1;
    else if (tableCreatedAt && record.timestamp < tableCreatedAt.getTime()) report.unverifiable += 1;
    else {
      report.missing += 1;
      report.missingRecords.push(coordinates);
    }
  }
  return report;
};

/** Where the group is on every partition of the topic: its committed offsets, and the topic's earliest and end. */
export const readGroupProgress = async (admin: Admin, groupId: string, topic: string): Promise<GroupProgress> => {
  const metadata = await admin.metadata({ topics: [topic], forceUpdate: true });
  const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
  if (count === 0) throw new Error(`topic ${topic} does not exist`);
  const indexes = Array.from({ length: count }, (_, p) => p);
  const offsetsAt = async (timestamp: bigint) => {
    const [listed] = await admin.listOffsets({
      topics: [{ name: topic, partitions: indexes.map((partitionIndex) => ({ partitionIndex, timestamp })) }],
    });
    return new Map((listed?.partitions ?? []).map((p) => [p.partitionIndex, Number(p.offset)]));
  };
  const [earliest, end, groups] = await Promise.all([
    offsetsAt(-2n),
    offsetsAt(-1n),
    admin.listConsumerGroupOffsets({ groups: [{ groupId, topics: [{ name: topic, partitionIndexes: indexes }] }] }),
  ]);
  const commits = new Map(
    (groups[0]?.topics.find((t) => t.name === topic)?.partitions ?? []).map((p) => [
      p.partitionIndex,
      Number(p.committedOffset),
    ]),
  );
  const partitions = indexes.map((partition): PartitionProgress => {
    const first = earliest.get(partition) ?? 0;
    const last = end.get(partition) ?? 0;
    const offset = commits.get(partition);
    // Kafka answers -1 for a partition the group has no offset for.
    const next = offset === undefined || offset < 0 ? null : offset;
    return { partition, committed: next, earliest: first, end: last, lag: Math.max(0, last - (next ?? first)) };
  });
  return { groupId, topic, lag: partitions.reduce((sum, p) => sum + p.lag, 0), partitions };
};

/**
 * Polls the group until its lag is 0 on every partition (committed == end) or `seconds` have passed, calling
 * `onProgress` after each look. Resolves with the last progress read; its `lag` says whether it drained.
 */
export const waitForGroupToDrain = async (options: {
  admin: Admin;
  groupId: string;
  topic: string;
  seconds: number;
  intervalMs?: number;
  onProgress?: (progress: GroupProgress, elapsedMs: number) => void;
}): Promise<GroupProgress> => {
  const started = Date.now();
  const deadline = started + options.seconds * 1000;
  for (;;) {
    const progress = await readGroupProgress(options.admin, options.groupId, options.topic);
    options.onProgress?.(progress, Date.now() - started);
    const left = deadline - Date.now();
    if (progress.lag === 0 || left <= 0) return progress;
    await new Promise((resolve) => setTimeout(resolve, Math.min(options.intervalMs ?? 500, left)));
  }
};
