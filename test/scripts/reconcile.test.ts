// `npm run reconcile` as a child process: a topic's records against the idempotency table, the DLQ and the route's
// consumer-group offsets, on the local Kafka, DynamoDB Local and ElasticMQ. Offsets are committed with the admin
// client, as the bridge's group would have committed them.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeleteTableCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueUrlCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { consumerGroupIdOf, findRoute, localResourceNames, parseBridgeConfig } from '../../infra/config/index.ts';
import { brokersFromEnv, createAdmin, createProducer, ensureTopics } from '../../scripts/lib/kafka.ts';
import { ensureLocalResources } from '../../scripts/lib/localResources.ts';
import { dynamodb, sqs, uniqueName } from '../helpers/aws.ts';
import { type CliResult, runScript, startScript } from '../helpers/cli.ts';
import { mskEvent } from '../helpers/events.ts';

const AUDIT_CONFIG = fileURLToPath(new URL('../fixtures/audit.config.json', import.meta.url));
const TIMEOUT = 60_000;
const dir = mkdtempSync(join(tmpdir(), 'reconcile-'));
const brokers = brokersFromEnv();

type Route = { configPath: string; topic: string; groupId: string };

/** A config of its own (the audit route on a fresh topic), and `values[p]` produced to partition p. */
const setupRoute = async (values: unknown[][]): Promise<Route> => {
  const topic = uniqueName('reconcile');
  const config = JSON.parse(readFileSync(AUDIT_CONFIG, 'utf8'));
  config.name = uniqueName('rc');
  config.routes[0].topic = topic;
  const configPath = join(dir, `${config.name}.json`);
  writeFileSync(configPath, JSON.stringify(config));
  const parsed = parseBridgeConfig(config);
  // The table and queue first, as the bridge makes them before it consumes: the records are younger than the table.
  await ensureLocalResources(parsed, { topics: false });
  await ensureTopics(brokers, [{ topic, partitions: values.length }]);
  const producer = createProducer(brokers);
  try {
    await producer.send({
      messages: values.flatMap((list, partition) =>
        list.map((v) => ({ topic, partition, value: Buffer.from(JSON.stringify(v)) })),
      ),
    });
  } finally {
    await producer.close();
  }
  return { configPath, topic, groupId: consumerGroupIdOf(parsed, findRoute(parsed, 'audit')) };
};

/** Commits the route's group's offsets, as the bridge does after an invocation (the group has no members). */
const commit = async (route: Route, offsets: Record<number, number>) => {
  const admin = createAdmin(brokers);
  try {
    await admin.alterConsumerGroupOffsets({
      groupId: route.groupId,
      topics: [
        {
          name: route.topic,
          partitionOffsets: Object.entries(offsets).map(([p, offset]) => ({
            partition: Number(p),
            offset: BigInt(offset),
          })),
        },
      ],
    });
  } finally {
    await admin.close();
  }
};

/** Runs the audit handler on the records, as the event source would deliver them. */
const invoke = async (route: Route, records: Array<{ partition: number; offset: number; value: unknown }>) => {
  const eventPath = join(dir, `${uniqueName('event')}.json`);
  writeFileSync(eventPath, JSON.stringify(mskEvent(records.map((r) => ({ ...r, topic: route.topic })))));
  const invoked = await runScript('scripts/invoke.ts', [
    '--route',
    'audit',
    '--config',
    route.configPath,
    '--event',
    eventPath,
    // The bridge's table and queue, which reconcile reads (invoke has state of its own by default).
    '--shared-state',
  ]);
  expect(invoked.code).toBe(0);
};

const args = (route: Route, extra: string[]) => ['--route', 'audit', '--config', route.configPath, ...extra];

const withReport = (result: CliResult) => ({
  ...result,
  report: result.stdout ? JSON.parse(result.stdout) : undefined,
});

const reconcile = async (route: Route, ...extra: string[]) =>
  withReport(await runScript('scripts/reconcile.ts', args(route, extra)));

/** `reconcile` as a child whose stderr can be watched while it runs. */
const startReconcile = (route: Route, extra: string[]) => {
  const running = startScript('scripts/reconcile.ts', args(route, extra));
  const stderrMatches = async (pattern: RegExp, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(running.output().stderr)) {
      if (Date.now() > deadline) {
        throw new Error(`stderr did not match ${pattern} in ${timeoutMs} ms: ${running.output().stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  return { done: running.done, stderrMatches };
};

const at = (route: Route, partition: number, offset: number) =>
  expect.objectContaining({ topic: route.topic, partition, offset });

describe('npm run reconcile', () => {
  test.concurrent(
    'records the retry queue holds are parked, not missing; a record dead-lettered as a conflict counts as dead-lettered, not under its key holder',
    async () => {
      const route = await setupRoute([[{ n: 1 }, { n: 2 }, { n: 3 }]]);
      await commit(route, { 0: 3 });
      const config = parseBridgeConfig(JSON.parse(readFileSync(route.configPath, 'utf8')));
      const names = localResourceNames(config);
      const pk = (offset: number) => ({ S: `audit#${route.topic}-0@${offset}` });
      // 0@0 waits in the retry queue, 0@1 is being run from it (a lapsed or live lease with a stage).
      await dynamodb.send(
        new PutItemCommand({
          TableName: names.idempotencyTable,
          Item: { pk: pk(0), status: { S: 'PARKED' }, parkStage: { N: '0' } },
        }),
      );
      await dynamodb.send(
        new PutItemCommand({
          TableName: names.idempotencyTable,
          Item: { pk: pk(1), status: { S: 'IN_PROGRESS' }, parkStage: { N: '1' }, leaseUntil: { N: '0' } },
        }),
      );
      // 0@2's key is held (COMPLETED) by another record, and 0@2 itself was dead-lettered as a conflict.
      await dynamodb.send(
        new PutItemCommand({ TableName: names.idempotencyTable, Item: { pk: pk(2), status: { S: 'COMPLETED' } } }),
      );
      const now = new Date().toISOString();
      const { QueueUrl } = await sqs.send(
        new GetQueueUrlCommand({ QueueName: names.deadLetterQueues.audit as string }),
      );
      await sqs.send(
        new SendMessageCommand({
          QueueUrl,
          MessageBody: JSON.stringify({
            version: 1,
            route: 'audit',
            idempotencyKey: `${route.topic}-0@2`,
            source: {
              eventSource: 'aws:kafka',
              topic: route.topic,
              partition: 0,
              offset: 2,
              timestamp: Date.now(),
              timestampType: 'CREATE_TIME',
            },
            record: { key: null, value: null, headers: [], truncated: true },
            error: { kind: 'conflict', name: 'IdempotencyConflictError', message: 'held by other content' },
            attempts: 1,
            firstFailedAt: now,
            deadLetteredAt: now,
          }),
        }),
      );
      const result = await reconcile(route);
      expect(result.code).toBe(0);
      expect(result.report).toMatchObject({ records: 3, parked: 2, deadLettered: 1, completed: 0, missing: 0 });
      expect(result.stderr).toMatch(/2 parked/);
    },
    TIMEOUT,
  );
  test.concurrent(
    'consumed records older than the idempotency table are unverifiable, not missing (exit 0): local services restarted in memory',
    async () => {
      const route = await setupRoute([[{ n: 1 }, { n: 2 }]]);
      await commit(route, { 0: 2 });
      // The services restarted in memory: the table is new, Kafka still has its records and the group's offsets.
      const table = localResourceNames(
        parseBridgeConfig(JSON.parse(readFileSync(route.configPath, 'utf8'))),
      ).idempotencyTable;
      await dynamodb.send(new DeleteTableCommand({ TableName: table }));
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const result = await reconcile(route);
      expect(result.code).toBe(0);
      expect(result.report).toMatchObject({
        records: 2,
        missing: 0,
        unverifiable: 2,
        tableCreatedAt: expect.any(String),
      });
      expect(result.stderr).toMatch(/2 unverifiable: consumed with no trace, but written before the idempotency table/);
    },
    TIMEOUT,
  );

  test.concurrent(
    'records the group has not consumed are pending (exit 0); consumed ones with no item and no dead letter are missing (exit 1)',
    async () => {
      const route = await setupRoute([
        [{ n: 1 }, { n: 2 }, { n: 3 }],
        [{ n: 4 }, { n: 5 }],
      ]);

      // Nothing consumed yet, as right after Ctrl-C: every record is pending, none missing.
      const fresh = await reconcile(route);
      expect(fresh.code).toBe(0);
      expect(fresh.report).toMatchObject({ records: 5, pending: 5, missing: 0, completed: 0 });
      expect(fresh.report.pendingRecords).toEqual([
        at(route, 0, 0),
        at(route, 0, 1),
        at(route, 0, 2),
        at(route, 1, 0),
        at(route, 1, 1),
      ]);
      expect(fresh.report.consumerGroup).toMatchObject({
        groupId: route.groupId,
        topic: route.topic,
        lag: 5,
        partitions: [
          { partition: 0, committed: null, earliest: 0, end: 3, lag: 3 },
          { partition: 1, committed: null, earliest: 0, end: 2, lag: 2 },
        ],
      });
      expect(fresh.stderr).toMatch(/5 pending, 0 missing/);
      expect(fresh.stderr).toMatch(
        /5 pending: not consumed yet by the group \(lag per partition: 0=3, 1=2\), e\.g\. .*-0@0, .*; not missing/,
      );

      // The group committed partition 0 up to offset 2 without processing anything: 0@0 and 0@1 are lost.
      await commit(route, { 0: 2 });
      const lost = await reconcile(route);
      expect(lost.code).toBe(1);
      expect(lost.report).toMatchObject({ records: 5, pending: 3, missing: 2 });
      expect(lost.report.missingRecords).toEqual([at(route, 0, 0), at(route, 0, 1)]);
      expect(lost.report.pendingRecords).toEqual([at(route, 0, 2), at(route, 1, 0), at(route, 1, 1)]);
      expect(lost.report.consumerGroup.partitions[0]).toMatchObject({ committed: 2, lag: 1 });
      expect(lost.stderr).toMatch(/2 missing: consumed by the group but neither completed nor dead-lettered/);

      // Once they are processed, only pending records remain: exit 0. A pending record that completed counts as such.
      await invoke(route, [
        { partition: 0, offset: 0, value: { n: 1 } },
        { partition: 0, offset: 1, value: { n: 2 } },
        { partition: 1, offset: 0, value: { n: 4 } },
      ]);
      const after = await reconcile(route);
      expect(after.code).toBe(0);
      expect(after.report).toMatchObject({ completed: 3, pending: 2, missing: 0, inProgress: 0 });
      expect(after.stderr).toMatch(/OK: every consumed record was completed, dead-lettered or parked/);
    },
    TIMEOUT,
  );

  test.concurrent(
    '--wait returns once the lag drains, and reports what is still unconsumed as pending when it does not',
    async () => {
      const route = await setupRoute([[{ n: 1 }, { n: 2 }]]);

      const timedOut = await reconcile(route, '--wait', '1');
      expect(timedOut.code).toBe(0);
      expect(timedOut.report).toMatchObject({ pending: 2, missing: 0 });
      expect(timedOut.stderr).toMatch(/waiting for consumer group .*: lag 2 \(0=2\)/);
      expect(timedOut.stderr).toMatch(/lag still 2 after 1 s; those records are reported as pending/);

      await invoke(route, [{ partition: 0, offset: 0, value: { n: 1 } }]);
      const started = Date.now();
      const waiting = startReconcile(route, ['--wait', '30']);
      await waiting.stderrMatches(/waiting for consumer group .*: lag 2/, 20_000);
      // The bridge catches up: it commits past both records, though only the first was processed.
      await commit(route, { 0: 2 });
      const drained = withReport(await waiting.done);
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(drained.stderr).toMatch(/has consumed every record/);
      expect(drained.code).toBe(1);
      expect(drained.report).toMatchObject({ completed: 1, pending: 0, missing: 1 });
      expect(drained.report.missingRecords).toEqual([at(route, 0, 1)]);
    },
    TIMEOUT,
  );

  test.concurrent(
    'usage and connection errors exit 2 with one line on stderr',
    async () => {
      const route = await setupRoute([[{ n: 1 }]]);
      const oneLine = (result: CliResult, pattern: RegExp) => {
        expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 2, stdout: '' });
        expect(result.stderr.trimEnd().split('\n')).toEqual([expect.stringMatching(pattern)]);
      };
      const [noRoute, badWait, unknown, badConfig, noDynamo, noKafka] = await Promise.all([
        runScript('scripts/reconcile.ts', []),
        runScript('scripts/reconcile.ts', args(route, ['--wait', 'soon'])),
        runScript('scripts/reconcile.ts', ['--route', 'nope', '--config', route.configPath]),
        runScript('scripts/reconcile.ts', ['--route', 'audit', '--config', join(dir, 'absent.json')]),
        runScript('scripts/reconcile.ts', args(route, []), { AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:1' }),
        runScript('scripts/reconcile.ts', args(route, []), { KAFKA_BROKERS: '127.0.0.1:1' }),
      ]);
      oneLine(noRoute, /required option '-r, --route <name>' not specified/);
      oneLine(badWait, /--wait must be a number >= 0 \(got "soon"\)/);
      oneLine(unknown, /^reconcile: no route "nope" in config/);
      oneLine(badConfig, /^reconcile: invalid bridge config .*absent\.json: .*ENOENT/);
      oneLine(
        noDynamo,
        /^reconcile: cannot connect to DynamoDB at 127\.0\.0\.1:1 \(connection refused\).*`npm run local:up`$/,
      );
      oneLine(
        noKafka,
        /^reconcile: cannot connect to Kafka at 127\.0\.0\.1:1 \(connection refused\).*`npm run local:up`$/,
      );
    },
    TIMEOUT,
  );
});

describe('npm run watermarks', () => {
  const watermarks = async (route: Route, ...extra: string[]) =>
    withReport(await runScript('scripts/watermarks.ts', args(route, extra)));

  test.concurrent(
    "lists each partition's watermark; --set moves one, so its records run again; reconcile counts records below it as completed",
    async () => {
      const route = await setupRoute([[{ n: 1 }, { n: 2 }, { n: 3 }], [{ n: 4 }]]);
      await invoke(
        route,
        [0, 1, 2].map((offset) => ({ partition: 0, offset, value: { n: offset + 1 } })),
      );
      await commit(route, { 0: 3 });

      const listed = await watermarks(route);
      expect(listed.code).toBe(0);
      expect(listed.report.partitions).toEqual([
        expect.objectContaining({ partition: 0, committedOffset: 2, touchedOffset: -1, epoch: 1, leaseLive: false }),
        { partition: 1, committedOffset: null },
      ]);
      expect(listed.stderr).toMatch(new RegExp(`${route.topic}-0: committed 2, touched -1, epoch 1, free`));
      // No per-record item: the watermark alone accounts for them.
      expect((await reconcile(route)).report).toMatchObject({ completed: 3, pending: 1, missing: 0 });

      // Reset for a deliberate re-run: the records are no longer settled, and the next delivery runs them.
      const reset = await watermarks(route, '--set', '0=-1');
      expect(reset.code).toBe(0);
      expect(reset.report.partitions[0]).toMatchObject({ committedOffset: -1, epoch: 2 });
      expect((await reconcile(route)).report).toMatchObject({ completed: 0, missing: 3 });
      await invoke(
        route,
        [0, 1, 2].map((offset) => ({ partition: 0, offset, value: { n: offset + 1 } })),
      );
      expect((await reconcile(route)).report).toMatchObject({ completed: 3, missing: 0 });

      const bad = await watermarks(route, '--set', 'zero=1');
      expect({ code: bad.code, stderr: bad.stderr.trim() }).toEqual({
        code: 2,
        stderr: 'watermarks: --set zero=1: expected PARTITION=OFFSET, such as 3=1200 or 0=-1',
      });
    },
    TIMEOUT,
  );
});
