import { DynamoDBClient, type TransactWriteItem } from '@aws-sdk/client-dynamodb';
import type { Message } from '@aws-sdk/client-sqs';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { z } from 'zod';
import { invocationSummaryOf, kafkaHandler } from '../../functions/runtime/kafkaHandler.ts';
import type { ProcessFn } from '../../functions/runtime/processor.ts';
import type { RouteSettingsInput } from '../../functions/runtime/settings.ts';
import { sqsEvent } from '../../scripts/bridge/retryQueuePoller.ts';
import { injectScriptedFaults, quickRetries, type ScriptedFault } from '../../scripts/chaos/faults.ts';
import {
  createQueue,
  createTable,
  drainQueue,
  dynamodb,
  getItem,
  routeEnvironment,
  scanAll,
  uniqueName,
} from './aws.ts';
import { lambdaContext, mskEvent, type RecordSpec } from './events.ts';

export const Tx = z.object({ id: z.string(), account: z.string().default('acct'), amount: z.number().int() });
export type Tx = z.infer<typeof Tx>;

/** No faults: every request goes through. */
const none = (): ScriptedFault => undefined;

/**
 * A route on fresh local resources whose DynamoDB and SQS clients take scripted faults (`faults.dynamodb`, `faults.sqs`
 * may be swapped between invocations). `transact` routes write a ledger entry and a balance that refuses overdrafts
 * in one transaction; `process` routes run the given function. Each invocation is a new container unless `warm`.
 */
export const faultyRoute = async (
  options: {
    settings?: RouteSettingsInput;
    transact?: (tx: Tx) => void;
    process?: ProcessFn<Tx, string | null>;
    /** Fingerprints `{ account, amount }`; a `process` route is then keyed by the record's `id`, as `transact` is. */
    fingerprint?: boolean;
    /** One container for every invocation, so its completed-key cache carries over. */
    warm?: boolean;
    /** A `transact` route keyed by the record's coordinates (the watermark strategy's default), not by `id`. */
    byCoordinates?: boolean;
  } = {},
) => {
  const route = uniqueName('faulty');
  const { table, dlqUrl } = await routeEnvironment(route);
  const side = await createTable(uniqueName(`${route}-side`));
  type Decide = (command: string, input: Record<string, unknown>) => ScriptedFault;
  const faults: { dynamodb: Decide; sqs: Decide } = { dynamodb: none, sqs: none };
  const clients = {
    dynamodb: injectScriptedFaults(new DynamoDBClient({ retryStrategy: quickRetries }), (c, i) =>
      faults.dynamodb(c, i),
    ),
    sqs: injectScriptedFaults(new SQSClient({ retryStrategy: quickRetries }), (c, i) => faults.sqs(c, i)),
  };
  const settings = {
    retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5, maxRecordAgeSeconds: 60, temporary: { coolDownMs: 5 } },
    ...options.settings,
  };
  const items = (tx: Tx): TransactWriteItem[] => {
    options.transact?.(tx);
    return [
      {
        Put: {
          TableName: side,
          Item: { pk: { S: `L#${tx.id}` }, amount: { N: String(tx.amount) } },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      {
        Update: {
          TableName: side,
          Key: { pk: { S: `B#${tx.account}` } },
          UpdateExpression: 'SET balance = if_not_exists(balance, :zero) + :amount',
          ...(tx.amount < 0 ? { ConditionExpression: 'balance >= :needed' } : {}),
          ExpressionAttributeValues: {
            ':zero': { N: '0' },
            ':amount': { N: String(tx.amount) },
            ...(tx.amount < 0 ? { ':needed': { N: String(-tx.amount) } } : {}),
          },
        },
      },
    ];
  };
  const fingerprinting = options.fingerprint
    ? {
        idempotencyKey: (r: { value: Tx }) => r.value.id,
        fingerprint: (r: { value: Tx }) => ({ account: r.value.account, amount: r.value.amount }),
      }
    : {};
  const coldHandler = () =>
    options.process
      ? kafkaHandler({ route, value: Tx, settings, clients, ...fingerprinting, process: options.process })
      : kafkaHandler({
          route,
          value: Tx,
          settings,
          clients,
          ...(options.byCoordinates ? {} : { idempotencyKey: (r: { value: Tx }) => r.value.id }),
          ...fingerprinting,
          transact: (r) => items(r.value),
        });
  const warm = options.warm ? coldHandler() : undefined;
  const newHandler = () => warm ?? coldHandler();
  // Each route reads the table and queue from the environment when it runs; keep ours for every invocation.
  // A route that parks records gets its retry queue.
  const retryQueueUrl = options.settings?.retry?.park ? await createQueue(uniqueName(`${route}-retry`)) : undefined;
  const env = {
    IDEMPOTENCY_TABLE_NAME: table,
    DLQ_URL: dlqUrl,
    ...(retryQueueUrl && { RETRY_QUEUE_URL: retryQueueUrl }),
  };
  const run = async (event: unknown, timeoutMs: number) => {
    Object.assign(process.env, env);
    const context = lambdaContext(timeoutMs) as unknown as Context;
    try {
      const response = await newHandler()(event, context);
      return { response, error: undefined, summary: invocationSummaryOf(context) };
    } catch (error) {
      return { response: undefined, error: error as Error, summary: invocationSummaryOf(context) };
    }
  };
  const invoke = (records: RecordSpec[], timeoutMs = 20_000) => run(mskEvent(records), timeoutMs);
  /** Everything in the retry queue now (drained), as the SQS event source would hand it over. */
  const parked = async (): Promise<Message[]> => (retryQueueUrl ? drainQueue(retryQueueUrl) : []);
  const invokeParked = (messages: readonly Message[], timeoutMs = 20_000) =>
    run(sqsEvent(retryQueueUrl ?? 'retry', messages), timeoutMs);
  return {
    route,
    faults,
    invoke,
    parked,
    invokeParked,
    item: (key: string) => getItem(table, { pk: { S: `${route}#${key}` } }),
    /** The watermark item of a partition (the watermark strategy), read consistently. */
    watermark: (partition = 0, topic = 'orders') => getItem(table, { pk: { S: `${route}#wm#${topic}-${partition}` } }),
    /** Every per-record item of the route's table (watermarks and key lines left out). */
    recordItems: async () =>
      (await scanAll(table)).filter((i) => i.status?.S !== undefined && !i.pk?.S?.includes('#parked#')),
    ledger: async () =>
      (await scanAll(side))
        .filter((i) => i.pk?.S?.startsWith('L#'))
        .map((i) => i.pk?.S?.slice(2))
        .sort(),
    balance: async (account = 'acct') => Number((await getItem(side, { pk: { S: `B#${account}` } }))?.balance?.N ?? 0),
    letters: async () => (await drainQueue(dlqUrl)).map((m) => JSON.parse(m.Body ?? '{}')),
    dynamodb,
  };
};

/** The partition key a DynamoDB request writes or conditions on, for aiming a fault at one record. */
export const requestKey = (input: Record<string, unknown>): string | undefined =>
  (input.Key as Record<string, { S?: string }> | undefined)?.pk?.S ?? undefined;

/** Whether a TransactWriteItems request carries the marker of `key`. */
export const transactionHolds = (input: Record<string, unknown>, pk: string): boolean =>
  ((input.TransactItems as TransactWriteItem[] | undefined) ?? []).some((item) => item.Put?.Item?.pk?.S === pk);
