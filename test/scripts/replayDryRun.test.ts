// `npm run replay -- --dry-run` on a DLQ filled by the audit handler itself (records that are not JSON, and one that
// fails the schema), plus a message that is no dead letter: the letters are grouped by reason with their times, on
// stderr and in the JSON report. Also the CLI's exits on errors. Local Kafka, DynamoDB Local and ElasticMQ.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { DeadLetterEnvelope } from '../../functions/runtime/deadLetter/envelopeSchema.ts';
import { parseBridgeConfig } from '../../infra/config/index.ts';
import { ensureLocalResources } from '../../scripts/lib/localResources.ts';
import { sqs, uniqueName } from '../helpers/aws.ts';
import { type CliResult, runScript } from '../helpers/cli.ts';
import { mskEvent } from '../helpers/events.ts';

const AUDIT_CONFIG = fileURLToPath(new URL('../fixtures/audit.config.json', import.meta.url));
const TIMEOUT = 60_000;
const dir = mkdtempSync(join(tmpdir(), 'replay-dry-run-'));
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

const setupRoute = async () => {
  const topic = uniqueName('replay-dry');
  const config = JSON.parse(readFileSync(AUDIT_CONFIG, 'utf8'));
  config.name = uniqueName('rd');
  config.routes[0].topic = topic;
  const configPath = join(dir, `${config.name}.json`);
  writeFileSync(configPath, JSON.stringify(config));
  const [resources] = await ensureLocalResources(parseBridgeConfig(config), { partitions: 1 });
  return { configPath, topic, dlqUrl: resources?.deadLetterQueueUrl as string };
};

const withReport = (result: CliResult) => ({
  ...result,
  report: result.stdout ? JSON.parse(result.stdout) : undefined,
});

describe('npm run replay -- --dry-run', () => {
  test(
    'a route with a retry queue: its parked records are counted apart, as not in the DLQ and not replayed',
    async () => {
      const config = JSON.parse(readFileSync(AUDIT_CONFIG, 'utf8'));
      config.name = uniqueName('rdp');
      config.routes[0].topic = uniqueName('replay-park');
      config.routes[0].retry = { park: { delaysSeconds: [60] } };
      const configPath = join(dir, `${config.name}.json`);
      writeFileSync(configPath, JSON.stringify(config));
      const [resources] = await ensureLocalResources(parseBridgeConfig(config), { partitions: 1 });
      const retryQueueUrl = resources?.retryQueueUrl as string;
      expect(retryQueueUrl).toMatch(/-audit-retry$/);
      await sqs.send(new SendMessageCommand({ QueueUrl: retryQueueUrl, MessageBody: '{}' }));
      await sqs.send(new SendMessageCommand({ QueueUrl: retryQueueUrl, MessageBody: '{}', DelaySeconds: 60 }));

      const dry = withReport(
        await runScript('scripts/replay.ts', ['--route', 'audit', '--config', configPath, '--dry-run']),
      );
      expect(dry.code).toBe(0);
      expect(dry.report).toMatchObject({ received: 0, parked: { queueUrl: retryQueueUrl, waiting: 1, delayed: 1 } });
      expect(dry.stderr).toMatch(/2 parked record\(s\) in the retry queue \(1 waiting out a delay, 0 being run\)/);
    },
    TIMEOUT,
  );

  test(
    'groups the dead letters by reason, with a count per group and the time each was dead-lettered',
    async () => {
      const route = await setupRoute();
      // Three poison records through the real handler: two that are not JSON (the same bytes), one that is JSON but
      // not an object.
      const eventPath = join(dir, `${uniqueName('event')}.json`);
      writeFileSync(
        eventPath,
        JSON.stringify(
          mskEvent([
            { topic: route.topic, offset: 0, value: Buffer.from('not json') },
            { topic: route.topic, offset: 1, value: [1, 2] },
            { topic: route.topic, offset: 2, value: Buffer.from('not json') },
          ]),
        ),
      );
      const invoked = await runScript('scripts/invoke.ts', [
        '--route',
        'audit',
        '--config',
        route.configPath,
        '--event',
        eventPath,
        // The bridge's table and queue, which replay drains (invoke has state of its own by default).
        '--shared-state',
      ]);
      expect(JSON.parse(invoked.stdout).summary).toMatchObject({ deadLettered: 3 });

      // A copy of one letter whose envelope has no usable time (the SQS SentTimestamp stands in), and a stranger.
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: route.dlqUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 0 }),
      );
      const letter = Messages.map((m) => DeadLetterEnvelope.parse(JSON.parse(m.Body as string))).find(
        (e) => e.source.offset === 2,
      ) as DeadLetterEnvelope;
      const beforeSend = new Date().toISOString();
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: route.dlqUrl,
          MessageBody: JSON.stringify({ ...letter, deadLetteredAt: 'unknown' }),
        }),
      );
      await sqs.send(new SendMessageCommand({ QueueUrl: route.dlqUrl, MessageBody: 'not a dead letter' }));

      const dry = withReport(
        await runScript('scripts/replay.ts', ['--route', 'audit', '--config', route.configPath, '--dry-run']),
      );
      // The stranger cannot be replayed.
      expect(dry.code).toBe(1);
      expect(dry.report).toMatchObject({ dryRun: true, received: 5, wouldReplay: 4, left: 5 });
      const [notJson, schema, stranger] = dry.report.groups;
      expect(dry.report.groups).toHaveLength(3);
      expect(notJson).toMatchObject({ kind: 'permanent', count: 3, letters: expect.any(Array) });
      expect(notJson.message).toMatch(/not valid JSON/);
      expect(notJson.message).not.toContain(`${route.topic}-0@`);
      expect(notJson.letters.map((l: { source: string }) => l.source)).toEqual([
        `${route.topic}-0@0`,
        `${route.topic}-0@2`,
        `${route.topic}-0@2`,
      ]);
      for (const l of notJson.letters) {
        expect(l).toMatchObject({ deadLetteredAt: expect.stringMatching(ISO), outcome: 'would-replay' });
      }
      // The copy's time is when SQS received it.
      expect(notJson.letters[2].deadLetteredAt >= beforeSend.slice(0, 19)).toBe(true);
      expect(notJson.firstDeadLetteredAt).toBe(notJson.letters[0].deadLetteredAt);
      expect(notJson.lastDeadLetteredAt).toBe(notJson.letters[2].deadLetteredAt);
      expect(schema).toMatchObject({ kind: 'permanent', count: 1, letters: [{ source: `${route.topic}-0@1` }] });
      expect(schema.message).toMatch(/schema/);
      expect(stranger).toMatchObject({
        kind: 'unreadable',
        count: 1,
        message: 'the message body is not JSON',
        letters: [{ outcome: 'left', deadLetteredAt: expect.stringMatching(ISO) }],
      });
      // Every item says why and when.
      const item = dry.report.items.find((i: { source?: string }) => i.source === `${route.topic}-0@1`);
      expect(item).toMatchObject({
        error: { kind: 'permanent', name: schema.name, message: schema.message },
        deadLetteredAt: expect.stringMatching(ISO),
      });

      // stderr: the summary, then per group its count and reason, and a line per letter with its time.
      const lines = dry.stderr.split('\n');
      expect(lines).toContainEqual(expect.stringMatching(/dry run: 5 dead letter\(s\) in 3 reason\(s\), 4 would be/));
      expect(lines).toContainEqual(`  3 × permanent ${notJson.name}: ${notJson.message}`);
      expect(lines).toContainEqual(`  1 × permanent ${schema.name}: ${schema.message}`);
      expect(lines).toContainEqual('  1 × unreadable: the message body is not JSON');
      expect(lines).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^ {6}${route.topic}-0@1 {2}dead-lettered ${schema.letters[0].deadLetteredAt} {2}would produce to`,
          ),
        ),
      );
      // Nothing was taken away.
      const again = withReport(
        await runScript('scripts/replay.ts', ['--route', 'audit', '--config', route.configPath, '--dry-run']),
      );
      expect(again.report).toMatchObject({ received: 5 });
    },
    TIMEOUT,
  );

  test(
    'usage and connection errors exit 2 with one line on stderr',
    async () => {
      const route = await setupRoute();
      const run = (args: string[], env: NodeJS.ProcessEnv = {}) => runScript('scripts/replay.ts', args, env);
      const base = ['--route', 'audit', '--config', route.configPath];
      const results = await Promise.all([
        run([]),
        run([...base, '--limit', 'many']),
        run([...base.slice(0, 2), '--config', join(dir, 'absent.json')]),
        run([...base, '--dry-run'], { AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:1' }),
      ]);
      const patterns = [
        /required option '-r, --route <name>' not specified/,
        /--limit must be a positive integer/,
        /^replay: invalid bridge config .*absent\.json: .*ENOENT/,
        /^replay: cannot connect to SQS at 127\.0\.0\.1:1 \(connection refused\).*`npm run local:up`$/,
      ];
      results.forEach((result, i) => {
        expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 2, stdout: '' });
        expect(result.stderr.trimEnd().split('\n')).toEqual([expect.stringMatching(patterns[i] as RegExp)]);
      });
    },
    TIMEOUT,
  );
});
