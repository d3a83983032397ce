// `npm run replay` against Kafka, DynamoDB Local and ElasticMQ, with the payments route: an overdraft is
// dead-lettered, the account is credited, and the replay now applies the debit exactly once. The CLIs run as
// child processes; records are read back from Kafka with a consumer and handed to `invoke` as the ESM would.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { DeadLetterEnvelope } from '../../functions/runtime/deadLetter/envelopeSchema.ts';
import { loadBridgeConfig, localResourceNames } from '../../infra/config/index.ts';
import {
  brokersFromEnv,
  createAdmin,
  createConsumer,
  createProducer,
  type Message,
  type RawConsumer,
} from '../../scripts/lib/kafka.ts';
import { ensureLocalResources } from '../../scripts/lib/localResources.ts';
import { kafkaEvent, REPLAY_HEADER, wireRecordFromKafka } from '../../scripts/lib/replayEvents.ts';
import { drainQueue, getItem, queueDepth, sqs, uniqueName } from '../helpers/aws.ts';

/** Each test runs the CLIs as several child processes. */
import { runScript } from '../helpers/cli.ts';

const TIMEOUT = 180_000;
const CLUSTER_ARN = 'arn:aws:kafka:us-east-1:123456789012:cluster/replay-test/abcd1234-abcd-cafe-abab-9876543210ab-4';
const dir = mkdtempSync(join(tmpdir(), 'replay-test-'));
const brokers = brokersFromEnv();
const producer = createProducer(brokers);

afterAll(async () => {
  await producer.close();
});

type Route = {
  configFile: string;
  topic: string;
  dlqUrl: string;
  accounts: string;
  ledger: string;
  idempotency: string;
};

/** A config of its own per test: fresh topic, idempotency table, side tables and DLQ. */
const setupRoute = async (): Promise<Route> => {
  const name = uniqueName('replay-test');
  const topic = uniqueName('payments');
  const file = join(dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      name,
      source: { kind: 'msk', clusterArn: CLUSTER_ARN, auth: 'iam' },
      routes: [
        {
          name: 'payments',
          topic,
          handler: 'payments.ts',
          retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 100 },
          timeoutSeconds: 30,
          tables: [
            { name: 'accounts', partitionKey: 'accountId', env: 'ACCOUNTS_TABLE_NAME' },
            { name: 'ledger', partitionKey: 'txId', env: 'LEDGER_TABLE_NAME' },
          ],
        },
      ],
      observability: { logLevel: 'WARN' },
    }),
  );
  const config = await loadBridgeConfig(file);
  const [resources] = await ensureLocalResources(config, { partitions: 2 });
  const names = localResourceNames(config);
  return {
    configFile: file,
    topic,
    dlqUrl: resources?.deadLetterQueueUrl as string,
    accounts: names.tables.accounts as string,
    ledger: names.tables.ledger as string,
    idempotency: names.idempotencyTable,
  };
};

type Tx = { txId: string; accountId: string; amount: number; currency: string; ts: string };
const tx = (accountId: string, amount: number): Tx => ({
  txId: uniqueName('tx'),
  accountId,
  amount,
  currency: 'EUR',
  ts: '2026-11-01T00:00:00.000Z',
});

/** Headers with a repeated name and a non-UTF-8 value, to check they come back byte for byte. */
const HEADERS: Array<[string, Buffer]> = [
  ['trace', Buffer.from('abc')],
  ['bin', Buffer.from([0xff, 0x00, 0xfe])],
  ['trace', Buffer.from('def')],
];

const produce = async (topic: string, txs: Tx[]) => {
  await producer.send({
    messages: txs.map((t) => ({
      topic,
      partition: 0,
      key: Buffer.from(t.accountId),
      value: Buffer.from(JSON.stringify(t)),
      // Distinct Buffer objects as keys keep repeated names.
      headers: new Map(HEADERS.map(([name, value]) => [Buffer.from(name), value])),
    })),
  });
};

type RawMessage = Message<Buffer, Buffer, Buffer, Buffer>;

/** Reads a topic from the start with a consumer group, as the event source mapping does. */
class TopicReader {
  readonly #consumer: RawConsumer;
  readonly #buffer: RawMessage[] = [];
  #close: () => Promise<void> = async () => {};

  private constructor(consumer: RawConsumer) {
    this.#consumer = consumer;
  }

  static async open(topic: string): Promise<TopicReader> {
    const reader = new TopicReader(createConsumer(brokers, { groupId: uniqueName('replay-test-reader') }));
    const stream = await reader.#consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    stream.on('data', (message: RawMessage) => reader.#buffer.push(message));
    reader.#close = async () => {
      await stream.close();
      await reader.#consumer.close();
    };
    return reader;
  }

  async next(count: number, timeoutMs = 30_000): Promise<RawMessage[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.#buffer.length < count) {
      if (Date.now() > deadline) throw new Error(`only ${this.#buffer.length} of ${count} records arrived`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return this.#buffer.splice(0, count);
  }

  close(): Promise<void> {
    return this.#close();
  }
}

const toWire = (m: RawMessage) =>
  wireRecordFromKafka({
    topic: m.topic,
    partition: m.partition,
    offset: Number(m.offset),
    timestamp: Number(m.timestamp),
    timestampType: 'CREATE_TIME',
    key: m.key ?? null,
    value: m.value ?? null,
    headers: m.headerEntries.map(([name, value]): [string, Buffer] => [name.toString('utf8'), value]),
  });

/** The local handler run: the records as one ESM event, through `npm run invoke`. */
const invoke = async (route: Route, messages: RawMessage[]) => {
  const file = join(dir, `${uniqueName('event')}.json`);
  writeFileSync(
    file,
    JSON.stringify(kafkaEvent({ eventSource: 'aws:kafka', eventSourceArn: CLUSTER_ARN }, messages.map(toWire))),
  );
  const result = await runScript('scripts/invoke.ts', [
    '--route',
    'payments',
    '--event',
    file,
    '--config',
    route.configFile,
    // The bridge's table and queue, which replay drains (invoke has state of its own by default).
    '--shared-state',
  ]);
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout).summary as Record<string, number>;
};

const replay = async (route: Route, ...args: string[]) => {
  const result = await runScript('scripts/replay.ts', ['--route', 'payments', '--config', route.configFile, ...args]);
  return { ...result, report: result.stdout ? JSON.parse(result.stdout) : undefined };
};

/** The DLQ's message bodies, left visible. */
const dlqBodies = async (route: Route) => {
  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: route.dlqUrl,
      MaxNumberOfMessages: 10,
      VisibilityTimeout: 0,
      WaitTimeSeconds: 1,
    }),
  );
  return Messages.map((m) => m.Body as string);
};

const dlqMessages = async (route: Route) =>
  (await dlqBodies(route)).map((body) => ({ body, envelope: DeadLetterEnvelope.parse(JSON.parse(body)) }));

const sendToDlq = (route: Route, body: string) =>
  sqs.send(new SendMessageCommand({ QueueUrl: route.dlqUrl, MessageBody: body }));

const balance = async (route: Route, accountId: string) =>
  Number((await getItem(route.accounts, { accountId: { S: accountId } }))?.balance?.N ?? Number.NaN);

const status = async (route: Route, txId: string) =>
  (await getItem(route.idempotency, { pk: { S: `payments#${txId}` } }))?.status?.S;

/** Dead-letters an overdraft on a new account. */
const deadLetterOverdraft = async (route: Route, reader: TopicReader, debit: number) => {
  const account = uniqueName('acct');
  const overdraft = tx(account, debit);
  await produce(route.topic, [overdraft]);
  const [original] = (await reader.next(1)) as [RawMessage];
  expect(await invoke(route, [original])).toMatchObject({ received: 1, processed: 0, deadLettered: 1 });
  expect(await status(route, overdraft.txId)).toBe('DEAD_LETTERED');
  const letters = await dlqMessages(route);
  expect(letters).toHaveLength(1);
  const letter = letters[0] as { body: string; envelope: DeadLetterEnvelope };
  expect(letter.envelope.source).toMatchObject({ topic: route.topic, partition: 0, offset: Number(original.offset) });
  expect(letter.envelope.error.kind).toBe('permanent');
  return { account, overdraft, original, letter };
};

const credit = async (route: Route, reader: TopicReader, account: string, amount: number) => {
  await produce(route.topic, [tx(account, amount)]);
  expect(await invoke(route, await reader.next(1))).toMatchObject({ processed: 1 });
};

/** Dead-letters an overdraft, then credits the account so that the debit fits. */
const overdraftThenCredit = async (route: Route, reader: TopicReader, debit: number, amount: number) => {
  const dead = await deadLetterOverdraft(route, reader, debit);
  await credit(route, reader, dead.account, amount);
  expect(await balance(route, dead.account)).toBe(amount);
  return dead;
};

describe('npm run replay', () => {
  test.concurrent(
    'to the source topic: the republished record is processed once more, a second replay is a duplicate',
    async () => {
      const route = await setupRoute();
      const reader = await TopicReader.open(route.topic);
      try {
        const { account, overdraft, original, letter } = await overdraftThenCredit(route, reader, -800, 900);
        const origin = `${route.topic}-0@${original.offset}`;

        const first = await replay(route);
        expect(first.code).toBe(0);
        expect(first.report).toMatchObject({ mode: 'to-topic', dryRun: false, received: 1, replayed: 1, left: 0 });
        expect(first.report.items).toEqual([
          expect.objectContaining({
            source: origin,
            origin,
            target: route.topic,
            truncated: false,
            outcome: 'replayed',
          }),
        ]);
        expect(first.stderr).toMatch(/1 replayed and deleted, 0 left in the DLQ/);
        expect(await dlqMessages(route)).toHaveLength(0);
        expect(await queueDepth(route.dlqUrl)).toBe(0);

        // The exact bytes, on the same partition, plus the header naming the first delivery.
        const [copy] = (await reader.next(1)) as [RawMessage];
        expect(copy.partition).toBe(0);
        expect(copy.offset).toBeGreaterThan(original.offset);
        expect(copy.key).toEqual(original.key);
        expect(copy.value).toEqual(original.value);
        const headers = (m: RawMessage) => m.headerEntries.map(([n, v]) => [n.toString(), v.toString('hex')]);
        expect(headers(copy)).toEqual([...headers(original), [REPLAY_HEADER, Buffer.from(origin).toString('hex')]]);

        expect(await invoke(route, [copy])).toMatchObject({
          received: 1,
          processed: 1,
          duplicates: 0,
          deadLettered: 0,
        });
        expect(await balance(route, account)).toBe(100);
        expect(await status(route, overdraft.txId)).toBe('COMPLETED');

        // The same dead letter again. A target topic that does not exist leaves it in the DLQ.
        await sendToDlq(route, letter.body);
        const nowhere = await replay(route, '--to-topic', `${route.topic}-missing`);
        expect(nowhere.code).toBe(1);
        expect(nowhere.report.items[0]).toMatchObject({
          outcome: 'left',
          reason: `topic ${route.topic}-missing does not exist`,
        });
        // To the source topic: republished (still with one replay header), and skipped as a duplicate.
        const second = await replay(route, '--to-topic', route.topic);
        expect(second.code).toBe(0);
        expect(second.report).toMatchObject({ received: 1, replayed: 1, left: 0 });
        const [again] = (await reader.next(1)) as [RawMessage];
        expect(again.headerEntries.filter(([n]) => n.toString() === REPLAY_HEADER)).toHaveLength(1);
        expect(await invoke(route, [again])).toMatchObject({ received: 1, processed: 0, duplicates: 1 });
        expect(await balance(route, account)).toBe(100);
        expect(await dlqMessages(route)).toHaveLength(0);
        expect(await queueDepth(route.dlqUrl)).toBe(0);
      } finally {
        await reader.close();
      }
    },
    TIMEOUT,
  );

  test.concurrent(
    '--invoke: a dry run changes nothing; the replay applies the record once, --limit caps, repeats are duplicates',
    async () => {
      const route = await setupRoute();
      const reader = await TopicReader.open(route.topic);
      try {
        const { account, overdraft, letter } = await overdraftThenCredit(route, reader, -300, 1000);

        const dry = await replay(route, '--invoke', '--dry-run');
        expect(dry.code).toBe(0);
        expect(dry.report).toMatchObject({
          mode: 'invoke',
          dryRun: true,
          received: 1,
          wouldReplay: 1,
          replayed: 0,
          left: 1,
        });
        expect(dry.report.items[0].reason).toMatch(
          /would invoke route payments with key \d+ B, value \d+ B, 3 header\(s\)/,
        );
        const dryTopic = await replay(route, '--dry-run');
        expect(dryTopic.report.items[0].reason).toMatch(
          new RegExp(`would produce to ${route.topic} \\(partition 0\\)`),
        );
        // Still there and visible at once; nothing applied.
        expect(await dlqMessages(route)).toHaveLength(1);
        expect(await balance(route, account)).toBe(1000);
        expect(await status(route, overdraft.txId)).toBe('DEAD_LETTERED');

        const first = await replay(route, '--invoke');
        expect(first.code).toBe(0);
        expect(first.report).toMatchObject({ mode: 'invoke', received: 1, replayed: 1, left: 0 });
        expect(first.report.invocations).toEqual([
          expect.objectContaining({ received: 1, processed: 1, duplicates: 0, deadLettered: 0, error: null }),
        ]);
        expect(await balance(route, account)).toBe(700);
        expect(await status(route, overdraft.txId)).toBe('COMPLETED');
        expect(await dlqMessages(route)).toHaveLength(0);
        expect(await queueDepth(route.dlqUrl)).toBe(0);

        // The same dead letter twice more: --limit 1 takes one, the next run the other; neither applies again.
        await sendToDlq(route, letter.body);
        await sendToDlq(route, letter.body);
        const limited = await replay(route, '--invoke', '--limit', '1');
        expect(limited.code).toBe(0);
        expect(limited.report).toMatchObject({ received: 1, replayed: 1 });
        expect(limited.report.invocations[0]).toMatchObject({ processed: 0, duplicates: 1 });
        expect(await dlqMessages(route)).toHaveLength(1);
        const rest = await replay(route, '--invoke');
        expect(rest.report).toMatchObject({ received: 1, replayed: 1 });
        expect(rest.report.invocations[0]).toMatchObject({ processed: 0, duplicates: 1 });
        expect(await dlqMessages(route)).toHaveLength(0);
        expect(await queueDepth(route.dlqUrl)).toBe(0);
        expect(await balance(route, account)).toBe(700);
        expect(await getItem(route.ledger, { txId: { S: overdraft.txId } })).toBeDefined();
      } finally {
        await reader.close();
      }
    },
    TIMEOUT,
  );

  test.concurrent(
    'a truncated dead letter is read again from Kafka; one whose record is gone stays in the DLQ',
    async () => {
      const route = await setupRoute();
      const reader = await TopicReader.open(route.topic);
      const truncate = (body: string) => {
        const envelope = DeadLetterEnvelope.parse(JSON.parse(body));
        return JSON.stringify({ ...envelope, record: { ...envelope.record, value: null, truncated: true } });
      };
      try {
        const { account, overdraft, letter } = await overdraftThenCredit(route, reader, -250, 300);
        await drainQueue(route.dlqUrl);
        await sendToDlq(route, truncate(letter.body));

        const replayed = await replay(route, '--invoke');
        expect(replayed.code).toBe(0);
        expect(replayed.report.items).toEqual([expect.objectContaining({ truncated: true, outcome: 'replayed' })]);
        expect(replayed.stderr).toMatch(/re-read .* from Kafka/);
        expect(replayed.report.invocations[0]).toMatchObject({ processed: 1 });
        expect(await balance(route, account)).toBe(50);
        expect(await status(route, overdraft.txId)).toBe('COMPLETED');
        expect(await dlqMessages(route)).toHaveLength(0);
        expect(await queueDepth(route.dlqUrl)).toBe(0);

        // Another overdraft, and then retention removes everything the partition held.
        const second = await overdraftThenCredit(route, reader, -5000, 10);
        await drainQueue(route.dlqUrl);
        await sendToDlq(route, truncate(second.letter.body));
        const admin = createAdmin(brokers);
        try {
          const end = BigInt(second.original.offset) + 2n; // past the overdraft and the credit
          await admin.deleteRecords({ topics: [{ name: route.topic, partitions: [{ partition: 0, offset: end }] }] });
        } finally {
          await admin.close();
        }
        const gone = await replay(route);
        expect(gone.code).toBe(1);
        expect(gone.report).toMatchObject({ received: 1, replayed: 0, left: 1 });
        expect(gone.report.items[0]).toMatchObject({ outcome: 'left', truncated: true });
        expect(gone.report.items[0].reason).toMatch(
          /gone from Kafka \(retention\): the partition now starts at offset/,
        );
        const left = await dlqMessages(route);
        expect(left).toHaveLength(1);
        expect(left[0]?.envelope.source.offset).toBe(Number(second.original.offset));
        expect(await status(route, second.overdraft.txId)).toBe('DEAD_LETTERED');
      } finally {
        await reader.close();
      }
    },
    TIMEOUT,
  );

  test.concurrent(
    'a replay that fails again is dead-lettered once more and waits for the next run',
    async () => {
      const route = await setupRoute();
      const reader = await TopicReader.open(route.topic);
      try {
        const { account, overdraft, original } = await deadLetterOverdraft(route, reader, -400);
        const origin = `${route.topic}-0@${original.offset}`;

        // Replayed before the account has the money: processed once more, refused again.
        const early = await replay(route, '--invoke');
        expect(early.code).toBe(1);
        expect(early.report).toMatchObject({ received: 2, replayed: 1, left: 1 });
        expect(early.report.invocations).toEqual([expect.objectContaining({ processed: 0, deadLettered: 1 })]);
        expect(early.report.items[1]).toMatchObject({
          outcome: 'left',
          reason: 'dead-lettered again during this run; replay it in a later run',
        });
        const [again] = await dlqMessages(route);
        expect(again?.envelope.source).toMatchObject({ offset: Number(original.offset) });
        const replayHeaders = again?.envelope.record.headers.filter((h) => REPLAY_HEADER in h);
        expect(replayHeaders?.map((h) => Buffer.from(h[REPLAY_HEADER] as number[]).toString())).toEqual([origin]);
        expect(await status(route, overdraft.txId)).toBe('DEAD_LETTERED');

        await credit(route, reader, account, 1000);
        const late = await replay(route, '--invoke');
        expect(late.code).toBe(0);
        expect(late.report).toMatchObject({ received: 1, replayed: 1, left: 0 });
        expect(late.report.items[0]).toMatchObject({ origin });
        expect(late.report.invocations).toEqual([expect.objectContaining({ processed: 1, deadLettered: 0 })]);
        expect(await balance(route, account)).toBe(600);
        expect(await dlqMessages(route)).toHaveLength(0);
        expect(await queueDepth(route.dlqUrl)).toBe(0);
      } finally {
        await reader.close();
      }
    },
    TIMEOUT,
  );

  test(
    'bad input: arguments, and DLQ messages that are not dead letters',
    async () => {
      const route = await setupRoute();
      const cases: Array<[string[], RegExp]> = [
        [['--route', 'nope', '--config', route.configFile], /no route "nope" in config .*; routes: payments/],
        [['--route', 'payments', '--config', route.configFile, '--invoke', '--to-topic', 'x'], /cannot be used with/],
        [['--route', 'payments', '--config', route.configFile, '--limit', '0'], /--limit must be a positive integer/],
      ];
      const results = await Promise.all(cases.map(([args]) => runScript('scripts/replay.ts', args)));
      results.forEach((result, i) => {
        expect(result.code).toBe(2);
        expect(result.stdout).toBe('');
        expect(result.stderr).toMatch((cases[i] as [string[], RegExp])[1]);
      });
      await sendToDlq(route, 'not json');
      await sendToDlq(route, JSON.stringify({ version: 1, route: 'payments' }));
      const strangers = await replay(route);
      expect(strangers.code).toBe(1);
      expect(strangers.report).toMatchObject({ received: 2, replayed: 0, left: 2 });
      expect(strangers.report.items.map((i: { reason: string }) => i.reason).sort()).toEqual([
        expect.stringMatching(/^not a dead-letter envelope: /),
        'the message body is not JSON',
      ]);
      expect(await dlqBodies(route)).toHaveLength(2);

      const help = await runScript('scripts/replay.ts', ['--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/--to-topic \[topic\]/);
      expect(help.stdout).toMatch(/--dry-run/);
    },
    TIMEOUT,
  );
});
