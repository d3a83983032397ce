// One chaos run: a route in `process` or `transact` mode, driven by a model of the event source mapping, with SDK
// faults injected into every DynamoDB and SQS call the runtime makes, against DynamoDB Local and ElasticMQ. At the
// end the tables and the DLQ are read back and every record is checked: applied once XOR dead-lettered.
import { randomUUID } from 'node:crypto';
import {
  DeleteTableCommand,
  DynamoDBClient,
  type TransactWriteItem,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { DeadLetterEnvelope } from '../../functions/runtime/deadLetter/envelopeSchema.ts';
import { BusinessRuleError, formatCoordinates, TransientError } from '../../functions/runtime/errors.ts';
import type { KafkaBatchResponse, SqsBatchResponse, WireRecord } from '../../functions/runtime/event.ts';
import {
  WATERMARK_KIND,
  type WatermarkItem,
  watermarkFromItem,
} from '../../functions/runtime/idempotency/WatermarkStore.ts';
import { kafkaHandler } from '../../functions/runtime/kafkaHandler.ts';
import { messagesToKeep, sqsEvent } from '../bridge/retryQueuePoller.ts';
import { createTableIfMissing, drainMessages, queueMessages, scanTable } from '../lib/localResources.ts';
import { seededRandom } from '../lib/traffic.ts';
import { type FaultStats, injectFaults, quickRetries } from './faults.ts';

export const WorkModes = ['process', 'transact'] as const;
export const EsmModes = ['on-demand', 'provisioned'] as const;
export const Strategies = ['watermark', 'key'] as const;

export type ChaosOptions = {
  readonly seed: number;
  /** Share of SDK request attempts that fail, half before the service applied them, half after. */
  readonly faultRate: number;
  readonly work: (typeof WorkModes)[number];
  /** on-demand: a thrown error redelivers the whole batch; provisioned: partial batch responses. */
  readonly esm: (typeof EsmModes)[number];
  readonly partitions?: number;
  readonly records?: number;
  readonly batchSize?: number;
  /** The function timeout each invocation gets; it is also the lease of every claim it makes. */
  readonly timeoutMs?: number;
  /** The model gives up after this long, and reports the partitions that did not drain. */
  readonly deadlineMs?: number;
  /**
   * The route parks failing records in a retry queue (`retry.park`, ordering by Kafka key, delays of 0 s) that the
   * model drains beside the topic; the check adds that each key's applied records kept their offset order.
   */
  readonly park?: boolean;
  /**
   * The dedupe strategy (`idempotency.strategy`). `watermark` keys both work modes by the record's coordinates;
   * `key` keeps per-record items, and its transact route keys by business id (with copies of earlier records).
   */
  readonly strategy?: (typeof Strategies)[number];
};

export type ChaosResult = {
  readonly seed: number;
  readonly faultRate: number;
  readonly work: ChaosOptions['work'];
  readonly esm: ChaosOptions['esm'];
  readonly park: boolean;
  readonly strategy: (typeof Strategies)[number];
  readonly records: number;
  readonly invocations: number;
  /** Of `invocations`, those with retry queue messages (runs with `park`). */
  readonly retryQueueInvocations: number;
  readonly failedInvocations: number;
  readonly coldStarts: number;
  readonly overlaps: number;
  readonly applied: number;
  readonly deadLettered: number;
  /** Envelopes beyond the first for one key: the DLQ is at least once. */
  readonly repeatedLetters: number;
  readonly faults: FaultStats;
  readonly durationMs: number;
  /** Every broken promise, one line each; empty when the run held its invariant. */
  readonly violations: readonly string[];
};

/**
 * What a record does when the route runs it: `poison` cannot be decoded, `refused` fails permanently, `flaky` fails
 * transiently now and then, `doomed` always fails transiently and is old enough to be dead-lettered as exhausted,
 * `copy` repeats an earlier record's business key (transact mode only).
 */
const Kinds = ['normal', 'poison', 'refused', 'flaky', 'doomed', 'copy'] as const;
type Kind = (typeof Kinds)[number];

const ChaosValue = z.object({
  id: z.string(),
  kind: z.enum(Kinds),
  account: z.string(),
  /** Minor units; negative is a debit, which the balance may refuse. */
  amount: z.number().int(),
});
type ChaosValue = z.infer<typeof ChaosValue>;

type Planned = { readonly wire: WireRecord; readonly kind: Kind; readonly key: string; readonly value?: ChaosValue };

const TOPIC = 'chaos';
const ACCOUNTS = 5;
const HOUR_MS = 3_600_000;

/** A route keyed by business id: the transact route on the per-key strategy. */
const businessKeyed = (options: Pick<ChaosOptions, 'work' | 'strategy'>): boolean =>
  options.work === 'transact' && options.strategy === 'key';

const pickKind = (random: () => number, options: Required<ChaosOptions>): Kind => {
  const roll = random();
  if (roll < 0.04) return 'poison';
  if (roll < 0.08) return 'refused';
  if (roll < 0.18) return 'flaky';
  if (roll < 0.22) return 'doomed';
  if (roll < 0.3 && businessKeyed(options)) return 'copy';
  return 'normal';
};

/** The topic's contents: `records` spread over the partitions, each partition's offsets from 0. */
const planRecords = (options: Required<ChaosOptions>, random: () => number): Planned[][] => {
  const logs: Planned[][] = Array.from({ length: options.partitions }, () => []);
  const valid: ChaosValue[] = [];
  const now = Date.now();
  for (let i = 0; i < options.records; i++) {
    const partition = Math.floor(random() * options.partitions);
    const log = logs[partition] as Planned[];
    const offset = log.length;
    const coordinates = formatCoordinates({ topic: TOPIC, partition, offset });
    let kind = pickKind(random, options);
    if (kind === 'copy' && valid.length === 0) kind = 'normal';
    const value: ChaosValue | undefined =
      kind === 'poison'
        ? undefined
        : kind === 'copy'
          ? { ...(valid[Math.floor(random() * valid.length)] as ChaosValue), kind: 'copy' }
          : {
              id: `tx${i}`,
              kind,
              account: `acct${Math.floor(random() * ACCOUNTS)}`,
              amount: random() < 0.7 ? 1 + Math.floor(random() * 100) : -(1 + Math.floor(random() * 80)),
            };
    if (value && kind === 'normal') valid.push(value);
    const bytes = value ? JSON.stringify(value) : '{"id": not json';
    log.push({
      kind,
      // A business-keyed route sees a copy as a duplicate; the others key by coordinates.
      key: businessKeyed(options) && value ? value.id : coordinates,
      ...(value ? { value } : {}),
      wire: {
        topic: TOPIC,
        partition,
        offset,
        timestamp: kind === 'doomed' ? now - 2 * HOUR_MS : now,
        timestampType: 'CREATE_TIME',
        key: Buffer.from(value?.account ?? 'none').toString('base64'),
        value: Buffer.from(bytes).toString('base64'),
        // Signed bytes, as the real event source mapping sends them ("ë" is -61, -85).
        headers: [{ trace: [104, 105, -61, -85] }],
      },
    });
  }
  return logs;
};

type Resources = { table: string; side: string; queueUrl: string; retryQueueUrl?: string | undefined };

const createQueue = async (sqs: SQSClient, name: string): Promise<string> => {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  if (!QueueUrl) throw new Error('ElasticMQ returned no queue URL');
  return QueueUrl;
};

const createResources = async (
  dynamodb: DynamoDBClient,
  sqs: SQSClient,
  id: string,
  park: boolean,
): Promise<Resources> => {
  const table = `chaos-${id}-idempotency`;
  const side = `chaos-${id}-effects`;
  await Promise.all([
    createTableIfMissing(dynamodb, table, 'pk', true),
    createTableIfMissing(dynamodb, side, 'pk', false),
  ]);
  const queueUrl = await createQueue(sqs, `chaos-${id}-dlq`);
  return { table, side, queueUrl, retryQueueUrl: park ? await createQueue(sqs, `chaos-${id}-retry`) : undefined };
};

const deleteResources = async (dynamodb: DynamoDBClient, sqs: SQSClient, resources: Resources): Promise<void> => {
  await Promise.allSettled([
    dynamodb.send(new DeleteTableCommand({ TableName: resources.table })),
    dynamodb.send(new DeleteTableCommand({ TableName: resources.side })),
    sqs.send(new DeleteQueueCommand({ QueueUrl: resources.queueUrl })),
    ...(resources.retryQueueUrl ? [sqs.send(new DeleteQueueCommand({ QueueUrl: resources.retryQueueUrl }))] : []),
  ]);
};

/** The route under test, built afresh for each simulated container (cold caches, new clients). */
const routeFactory = (
  options: Required<ChaosOptions>,
  resources: Resources,
  random: () => number,
  stats: FaultStats,
) => {
  const plan = { rate: options.faultRate, random, stats };
  const effects = new DynamoDBClient({});
  const failFirst = (value: ChaosValue) => {
    if (value.kind === 'refused') throw new BusinessRuleError(`record ${value.id} is refused by the route`);
    if (value.kind === 'doomed') throw new TransientError(`the downstream keeps failing for ${value.id}`);
    if (value.kind === 'flaky' && random() < 0.5) throw new TransientError(`the downstream failed ${value.id} once`);
  };
  const common = {
    route: `chaos-${options.work}`,
    value: ChaosValue,
    settings: {
      retry: {
        maxAttempts: 3,
        baseDelayMs: 10,
        maxDelayMs: 100,
        maxRecordAgeSeconds: 3600,
        temporary: { coolDownMs: 20, probes: 2 },
        ...(options.park ? { park: { delaysSeconds: [0, 0], ordering: 'key' as const } } : {}),
      },
      idempotency: { clockSkewMs: 200, strategy: options.strategy },
      // Open times compressed like the timeouts: the run checks what the breaker does, within the model's deadline.
      breaker: { openMs: 200, maxOpenMs: 1_000 },
      partialBatchResponse: options.esm === 'provisioned',
    },
  };
  // The order each key's records were applied in, for the ordering check.
  let sequence = 0;
  return () => {
    // New clients per container: the faults are injected into exactly the calls the runtime makes.
    const clients = {
      dynamodb: injectFaults(new DynamoDBClient({ retryStrategy: quickRetries }), 'DynamoDB', plan),
      sqs: injectFaults(new SQSClient({ retryStrategy: quickRetries }), 'SQS', plan),
    };
    if (options.work === 'process') {
      return kafkaHandler({
        ...common,
        clients,
        // Counts every application, so a record that runs twice shows; it fails only before it applies.
        process: async (record) => {
          failFirst(record.value);
          await effects.send(
            new UpdateItemCommand({
              TableName: resources.side,
              Key: { pk: { S: `A#${formatCoordinates(record)}` } },
              UpdateExpression: 'ADD applications :one SET seq = :seq',
              ExpressionAttributeValues: { ':one': { N: '1' }, ':seq': { N: String(++sequence) } },
            }),
          );
        },
      });
    }
    const keyed = businessKeyed(options)
      ? {
          idempotencyKey: (record: { value: ChaosValue }) => record.value.id,
          // Copies carry the same content, so this never finds a conflict: it puts the fingerprint's conditions and
          // attributes on every write the faults hit.
          fingerprint: (record: { value: ChaosValue }) => ({
            account: record.value.account,
            amount: record.value.amount,
          }),
        }
      : {};
    return kafkaHandler({
      ...common,
      ...keyed,
      clients,
      transact: (record): TransactWriteItem[] => {
        const tx = record.value;
        failFirst(tx);
        const amount = { N: String(tx.amount) };
        const applied = businessKeyed(options) ? tx.id : formatCoordinates(record);
        return [
          {
            Put: {
              TableName: resources.side,
              Item: { pk: { S: `L#${applied}` }, account: { S: tx.account }, amount, seq: { N: String(++sequence) } },
              ConditionExpression: 'attribute_not_exists(pk)',
            },
          },
          {
            Update: {
              TableName: resources.side,
              Key: { pk: { S: `B#${tx.account}` } },
              UpdateExpression: 'SET balance = if_not_exists(balance, :zero) + :amount',
              // A debit needs the balance to hold it.
              ...(tx.amount < 0 ? { ConditionExpression: 'balance >= :needed' } : {}),
              ExpressionAttributeValues: {
                ':zero': { N: '0' },
                ':amount': amount,
                ...(tx.amount < 0 ? { ':needed': { N: String(-tx.amount) } } : {}),
              },
            },
          },
        ];
      },
    });
  };
};

type Handler = (event: unknown, context: Context) => Promise<KafkaBatchResponse | SqsBatchResponse | undefined>;

const contextFor = (timeoutMs: number): Context => {
  const deadline = Date.now() + timeoutMs;
  return {
    awsRequestId: randomUUID(),
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  } as Context;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The event source mapping, modelled: batches from each partition's committed offset, an error redelivers the
 * batch (on-demand) or commits up to each reported offset (provisioned, partial batch responses). Now and then the
 * container is replaced (cold caches), and now and then a zombie container runs the same batch beside it, as in a
 * rebalance overlap; the zombie's answer is ignored.
 */
const driveEventSourceMapping = async (
  options: Required<ChaosOptions>,
  logs: Planned[][],
  newHandler: () => Handler,
  random: () => number,
  onInvocation: () => void,
  retryQueue: ReturnType<typeof retryQueueModel> | undefined,
  /** Checked after each Kafka invocation while no zombie runs, so what it reads is a state at rest. */
  atRest: (committed: readonly number[]) => Promise<void>,
) => {
  const committed = logs.map(() => 0);
  const drained = () => committed.every((offset, p) => offset >= (logs[p] as Planned[]).length);
  const perPartition = Math.max(1, Math.ceil(options.batchSize / options.partitions));
  const zombies: Promise<unknown>[] = [];
  let zombiesRunning = 0;
  const counts = { invocations: 0, retryQueueInvocations: 0, failedInvocations: 0, coldStarts: 1, overlaps: 0 };
  const deadline = Date.now() + options.deadlineMs;
  let handler = newHandler();
  while (!drained() && Date.now() < deadline) {
    const records: Record<string, WireRecord[]> = {};
    logs.forEach((log, partition) => {
      const batch = log.slice(committed[partition], (committed[partition] as number) + perPartition);
      if (batch.length > 0) records[`${TOPIC}-${partition}`] = batch.map((p) => p.wire);
    });
    const event = {
      eventSource: 'aws:kafka',
      eventSourceArn: 'arn:aws:kafka:us-east-1:123456789012:cluster/chaos/00000000-0000-0000-0000-000000000000-1',
      records,
    };
    if (random() < 0.15) {
      handler = newHandler();
      counts.coldStarts += 1;
    }
    if (random() < 0.1) {
      counts.overlaps += 1;
      zombiesRunning += 1;
      zombies.push(
        newHandler()(event, contextFor(options.timeoutMs))
          .catch(() => undefined)
          .finally(() => {
            zombiesRunning -= 1;
          }),
      );
    }
    counts.invocations += 1;
    onInvocation();
    try {
      const response = (await handler(event, contextFor(options.timeoutMs))) as KafkaBatchResponse | undefined;
      const failed = new Map(
        (response?.batchItemFailures ?? []).map((f) => [f.itemIdentifier.partition, f.itemIdentifier.offset]),
      );
      if (failed.size > 0) counts.failedInvocations += 1;
      for (const [id, batch] of Object.entries(records)) {
        const partition = Number(id.slice(TOPIC.length + 1));
        const last = (batch[batch.length - 1] as WireRecord).offset;
        committed[partition] = failed.get(id) ?? last + 1;
      }
    } catch {
      counts.failedInvocations += 1;
      // The mapping backs off before it delivers the batch again.
      await sleep(20);
    }
    if (zombiesRunning === 0) await atRest(committed);
    if (retryQueue) await retryQueue.poll(handler, counts);
  }
  // The topic is drained; the retry queue goes on until it is empty too.
  while (retryQueue && Date.now() < deadline && !(await retryQueue.empty())) await retryQueue.poll(handler, counts);
  await Promise.all(zombies);
  return { committed, drained: drained(), retryQueueEmpty: retryQueue ? await retryQueue.empty() : true, ...counts };
};

/**
 * The SQS event source of the retry queue, modelled: up to 10 messages per invocation, those the response names (or
 * all, if it throws) come again after their visibility timeout. The model's own client takes no faults.
 */
const retryQueueModel = (queueUrl: string) => {
  const sqs = new SQSClient({});
  return {
    poll: async (
      handler: Handler,
      counts: { invocations: number; retryQueueInvocations: number; failedInvocations: number },
    ) => {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 1 }),
      );
      if (Messages.length === 0) return;
      counts.invocations += 1;
      counts.retryQueueInvocations += 1;
      let result: { ok: boolean; response?: unknown };
      try {
        result = { ok: true, response: await handler(sqsEvent(queueUrl, Messages), contextFor(5_000)) };
      } catch {
        result = { ok: false };
      }
      const failed = messagesToKeep(Messages, result);
      if (failed.size > 0) counts.failedInvocations += 1;
      const done = Messages.filter((m) => !failed.has(m.MessageId));
      if (done.length > 0)
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
          }),
        );
    },
    empty: async () => (await queueMessages(sqs, queueUrl)).total === 0,
  };
};

const drainLetters = async (sqs: SQSClient, queueUrl: string): Promise<DeadLetterEnvelope[]> =>
  (await drainMessages(sqs, queueUrl)).map((message) => DeadLetterEnvelope.parse(JSON.parse(message.Body ?? '')));

/** The invariant, record by record: each key applied exactly once XOR dead-lettered, as its kind allows. */
const checkInvariant = async (
  options: Required<ChaosOptions>,
  logs: Planned[][],
  resources: Resources,
  letters: DeadLetterEnvelope[],
  client: DynamoDBClient,
) => {
  const violations: string[] = [];
  const items = await scanTable(client, resources.side);
  const applications = new Map<string, number>();
  const sequence = new Map<string, number>();
  const ledger = new Map<string, { account: string; amount: number }>();
  const balances = new Map<string, number>();
  for (const item of items) {
    const pk = item.pk?.S ?? '';
    if (pk.startsWith('A#')) applications.set(pk.slice(2), Number(item.applications?.N));
    if (pk.startsWith('A#') || pk.startsWith('L#')) sequence.set(pk.slice(2), Number(item.seq?.N));
    if (pk.startsWith('L#')) {
      ledger.set(pk.slice(2), { account: item.account?.S ?? '', amount: Number(item.amount?.N) });
      applications.set(pk.slice(2), 1);
    }
    if (pk.startsWith('B#')) balances.set(pk.slice(2), Number(item.balance?.N));
  }
  const lettered = new Map<string, number>();
  for (const letter of letters) lettered.set(letter.idempotencyKey, (lettered.get(letter.idempotencyKey) ?? 0) + 1);

  const planned = logs.flat();
  const byKey = new Map<string, Planned[]>();
  for (const record of planned) byKey.set(record.key, [...(byKey.get(record.key) ?? []), record]);
  for (const [key, copies] of byKey) {
    const where = copies.map((c) => formatCoordinates(c.wire)).join(', ');
    const applied = applications.get(key) ?? 0;
    const deadLettered = lettered.has(key);
    const kinds = new Set(copies.map((c) => c.kind));
    if (applied > 1) violations.push(`${key} (${where}) applied ${applied} times`);
    if (applied >= 1 && deadLettered) violations.push(`${key} (${where}) both applied and dead-lettered`);
    if (applied === 0 && !deadLettered) violations.push(`${key} (${where}) lost: neither applied nor dead-lettered`);
    const mustDeadLetter = kinds.has('poison') || kinds.has('refused') || kinds.has('doomed');
    // Only a debit may be refused by its balance, and only in transact mode; with a retry queue, a flaky record
    // may fail each of its stages' tries.
    const mayDeadLetter =
      mustDeadLetter ||
      (options.work === 'transact' && (copies[0]?.value?.amount ?? 0) < 0) ||
      (options.park && kinds.has('flaky'));
    if (mustDeadLetter && !deadLettered) violations.push(`${key} (${where}) should have been dead-lettered`);
    if (deadLettered && !mayDeadLetter) violations.push(`${key} (${where}) dead-lettered though it could succeed`);
  }
  for (const key of lettered.keys()) if (!byKey.has(key)) violations.push(`a dead letter for unknown key ${key}`);
  if (options.park) {
    // Ordering 'key': within a partition, each Kafka key's applied records applied in offset order.
    for (const log of logs) {
      const last = new Map<string, { at: string; seq: number }>();
      for (const record of log) {
        const seq = sequence.get(record.key);
        // A key with copies may have been applied from another partition's copy, outside this partition's order.
        const copied = (byKey.get(record.key)?.length ?? 0) > 1;
        if (seq === undefined || lettered.has(record.key) || copied) continue;
        const kafkaKey = record.wire.key ?? '';
        const before = last.get(kafkaKey);
        const at = formatCoordinates(record.wire);
        if (before && before.seq > seq)
          violations.push(`${at} was applied before ${before.at}, out of its key's order`);
        last.set(kafkaKey, { at, seq });
      }
    }
  }
  if (options.work === 'transact') {
    const sums = new Map<string, number>();
    for (const { account, amount } of ledger.values()) sums.set(account, (sums.get(account) ?? 0) + amount);
    for (const account of new Set([...sums.keys(), ...balances.keys()])) {
      if ((sums.get(account) ?? 0) !== (balances.get(account) ?? 0))
        violations.push(`balance of ${account} is ${balances.get(account)}, the ledger sums to ${sums.get(account)}`);
    }
  }
  const repeatedLetters = [...lettered.values()].reduce((sum, count) => sum + count - 1, 0);
  return { violations, applied: [...applications.values()].filter((n) => n > 0).length, repeatedLetters };
};

/**
 * The watermark strategy's own promises, checked between invocations (once a run drained, every watermark is past
 * every record and the checks could not fail):
 * - a per-record item above a partition's watermark lies at or below its `touchedOffset`, so the partition's next
 *   owner reads it instead of running its record as fresh;
 * - what the mapping committed is under the watermark: a batch that succeeded left no record it ran uncovered, to be
 *   committed past with nothing saying it is done.
 */
const checkWatermarks = async (
  client: DynamoDBClient,
  table: string,
  committed: readonly number[],
): Promise<string[]> => {
  const items = await scanTable(client, table);
  const marks = new Map<string, WatermarkItem>();
  for (const item of items)
    if (item.kind?.S === WATERMARK_KIND) {
      const mark = watermarkFromItem(item);
      marks.set(`${mark.topic}-${mark.partition}`, mark);
    }
  const violations: string[] = [];
  for (const item of items) {
    const at = item.pk?.S?.split('#')[1] ?? '';
    const offset = Number(item.offset?.N);
    const mark = marks.get(`${item.topic?.S}-${item.partition?.N}`);
    // Per-record items of the records themselves (not replays, lines or conflict decisions).
    if (!item.status?.S || !mark || at !== `${item.topic?.S}-${item.partition?.N}@${offset}`) continue;
    if (offset > mark.committedOffset && offset > mark.touchedOffset)
      violations.push(
        `${at} has a ${item.status.S} item above its partition's watermark (${mark.committedOffset}) and touched offset (${mark.touchedOffset})`,
      );
  }
  committed.forEach((next, partition) => {
    const mark = marks.get(`${TOPIC}-${partition}`);
    if (next > 0 && (mark?.committedOffset ?? -1) < next - 1)
      violations.push(
        `${TOPIC}-${partition} is committed up to ${next}, its watermark only to ${mark?.committedOffset ?? 'nothing'}`,
      );
  });
  return violations;
};

/** Sets environment variables; the returned function puts back what was there (unset ones unset again). */
const setEnv = (values: Record<string, string>): (() => void) => {
  const before = Object.fromEntries(Object.keys(values).map((name) => [name, process.env[name]]));
  Object.assign(process.env, values);
  return () => {
    for (const [name, value] of Object.entries(before)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
};

export const runChaos = async (input: ChaosOptions, onInvocation: () => void = () => {}): Promise<ChaosResult> => {
  const options: Required<ChaosOptions> = {
    partitions: 4,
    records: 200,
    batchSize: 40,
    timeoutMs: 5_000,
    deadlineMs: 120_000,
    park: false,
    strategy: 'watermark',
    ...input,
  };
  const started = Date.now();
  const random = seededRandom(options.seed);
  const dynamodb = new DynamoDBClient({});
  const sqs = new SQSClient({});
  const resources = await createResources(dynamodb, sqs, `${options.seed}-${randomUUID().slice(0, 8)}`, options.park);
  // The runtime reads its table and queue from the environment, as in Lambda; the caller's values come back after.
  const restore = setEnv({
    IDEMPOTENCY_TABLE_NAME: resources.table,
    DLQ_URL: resources.queueUrl,
    ...(resources.retryQueueUrl ? { RETRY_QUEUE_URL: resources.retryQueueUrl } : {}),
    // CHAOS_LOG_LEVEL=INFO shows every invocation's log lines, to follow a broken run.
    LOG_LEVEL: process.env.CHAOS_LOG_LEVEL ?? 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
  });
  try {
    const logs = planRecords(options, random);
    const faults: FaultStats = { before: 0, after: 0, requests: 0 };
    const newHandler = routeFactory(options, resources, random, faults) as () => Handler;
    const retryQueue = resources.retryQueueUrl ? retryQueueModel(resources.retryQueueUrl) : undefined;
    // Each broken promise once, however many times it is seen.
    const watermarkViolations = new Set<string>();
    const atRest = async (committed: readonly number[]) => {
      if (options.strategy !== 'watermark') return;
      for (const violation of await checkWatermarks(dynamodb, resources.table, committed))
        watermarkViolations.add(violation);
    };
    const run = await driveEventSourceMapping(options, logs, newHandler, random, onInvocation, retryQueue, atRest);
    const letters = await drainLetters(sqs, resources.queueUrl);
    const checked = await checkInvariant(options, logs, resources, letters, dynamodb);
    const violations = [...checked.violations, ...watermarkViolations];
    logs.forEach((log, partition) => {
      if ((run.committed[partition] as number) < log.length)
        violations.push(`${TOPIC}-${partition} did not drain: committed ${run.committed[partition]} of ${log.length}`);
    });
    if (!run.retryQueueEmpty) violations.push('the retry queue did not drain');
    return {
      seed: options.seed,
      faultRate: options.faultRate,
      work: options.work,
      esm: options.esm,
      park: options.park,
      strategy: options.strategy,
      records: options.records,
      invocations: run.invocations,
      retryQueueInvocations: run.retryQueueInvocations,
      failedInvocations: run.failedInvocations,
      coldStarts: run.coldStarts,
      overlaps: run.overlaps,
      applied: checked.applied,
      deadLettered: new Set(letters.map((l) => l.idempotencyKey)).size,
      repeatedLetters: checked.repeatedLetters,
      faults,
      durationMs: Date.now() - started,
      violations,
    };
  } finally {
    restore();
    await deleteResources(dynamodb, sqs, resources);
  }
};
