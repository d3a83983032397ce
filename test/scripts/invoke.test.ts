// `npm run invoke`, run as a child process against DynamoDB Local and ElasticMQ.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KafkaEvent } from '../../functions/runtime/event.ts';
import { scanAll, uniqueName } from '../helpers/aws.ts';
import { runScript } from '../helpers/cli.ts';

const MSK_FIXTURE = fileURLToPath(new URL('../fixtures/msk-event.json', import.meta.url));
const SIGNED_HEADERS_FIXTURE = fileURLToPath(new URL('../fixtures/msk-event-signed-headers.json', import.meta.url));
const AUDIT_CONFIG = fileURLToPath(new URL('../fixtures/audit.config.json', import.meta.url));
const SUMMARY_KEYS = [
  'received',
  'processed',
  'duplicates',
  'failed',
  'deadLettered',
  'retried',
  'ddbRequests',
  'durationMs',
];

/** Child processes are slow on a busy 2-core machine. */
const TIMEOUT = 120_000;

const runCli = (args: string[], env: NodeJS.ProcessEnv = {}) => runScript('scripts/invoke.ts', args, env);

const dir = mkdtempSync(join(tmpdir(), 'invoke-test-'));
/** The fixture config under a name of its own, so this run gets fresh tables and queues. */
const freshAuditConfig = (): string => {
  const config = JSON.parse(readFileSync(AUDIT_CONFIG, 'utf8'));
  config.name = uniqueName('invoke-test');
  const file = join(dir, `${config.name}.json`);
  writeFileSync(file, JSON.stringify(config));
  return file;
};

describe('npm run invoke', () => {
  test(
    'the audit route takes the MSK fixture; stdout is exactly the documented JSON object',
    async () => {
      const config = freshAuditConfig();
      const first = await runCli(['--route', 'audit', '--event', MSK_FIXTURE, '--config', config]);
      expect(first.code).toBe(0);
      // The whole of stdout parses: the runtime's logs went to stderr.
      const output = JSON.parse(first.stdout);
      expect(Object.keys(output)).toEqual(['response', 'error', 'summary']);
      expect(Object.keys(output.summary)).toEqual(SUMMARY_KEYS);
      expect(output).toMatchObject({
        response: null,
        error: null,
        summary: { received: 1, processed: 1, duplicates: 0, failed: 0, deadLettered: 0, retried: 0 },
      });
      expect(output.summary.ddbRequests).toBeGreaterThanOrEqual(1);
      expect(output.summary.durationMs).toBeGreaterThanOrEqual(0);
      expect(first.stderr).toMatch(/invoke: route audit \(local\), request [0-9a-f-]{36}: returned/);
      expect(first.stderr).toMatch(/received 1, processed 1, duplicates 0/);
      expect(first.stderr).toContain('"message":"batch done"');

      // The table the first run created remembers the record.
      const second = await runCli(['--route', 'audit', '--event', MSK_FIXTURE, '--config', config]);
      expect(second.code).toBe(0);
      expect(JSON.parse(second.stdout).summary).toMatchObject({ received: 1, processed: 0, duplicates: 1 });
    },
    TIMEOUT,
  );

  test(
    "its own state by default: the bridge's table never sees the record, so the real one at the same coordinates is not a duplicate",
    async () => {
      const config = freshAuditConfig();
      const isolated = await runCli(['--route', 'audit', '--event', MSK_FIXTURE, '--config', config]);
      expect(isolated.code).toBe(0);
      expect(isolated.stderr).toContain("invoke: state of its own, not the bridge's");
      const name = JSON.parse(readFileSync(config, 'utf8')).name as string;
      const keys = async (table: string) => (await scanAll(table)).map((item) => item.pk?.S).filter(Boolean);
      expect(await keys(`${name}-invoke-idempotency`)).toHaveLength(1);
      // What the bridge will consume: nothing of invoke's there. --shared-state writes it (to try a replay, say).
      await expect(keys(`${name}-idempotency`)).rejects.toThrow(/non-existent table|not found/i);
      const shared = await runCli(['--route', 'audit', '--event', MSK_FIXTURE, '--config', config, '--shared-state']);
      expect(JSON.parse(shared.stdout).summary).toMatchObject({ processed: 1, duplicates: 0 });
      expect(shared.stderr).toContain("invoke: the bridge's state (--shared-state)");
      expect(await keys(`${name}-idempotency`)).toHaveLength(1);
    },
    TIMEOUT,
  );

  test(
    '--generate prints a valid event for the route, which invoke takes from stdin',
    async () => {
      const config = freshAuditConfig();
      const generated = await runCli(['--route', 'audit', '--generate', '--config', config]);
      expect(generated.code).toBe(0);
      const event = JSON.parse(generated.stdout);
      expect(KafkaEvent.safeParse(event).success).toBe(true);
      const topic = JSON.parse(readFileSync(config, 'utf8')).routes[0].topic as string;
      expect(Object.keys(event.records)).toEqual([`${topic}-0`]);
      const invoked = await runScript(
        'scripts/invoke.ts',
        ['--route', 'audit', '--event', '-', '--config', config],
        {},
        generated.stdout,
      );
      expect(invoked.code).toBe(0);
      expect(JSON.parse(invoked.stdout).summary).toMatchObject({ received: 1, processed: 1, deadLettered: 0 });
    },
    TIMEOUT,
  );

  test(
    'header bytes as Java signed bytes (the ESM sends "ë" as [-61, -85]) are accepted',
    async () => {
      const result = await runCli([
        '--route',
        'audit',
        '--event',
        SIGNED_HEADERS_FIXTURE,
        '--config',
        freshAuditConfig(),
      ]);
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({
        response: null,
        error: null,
        summary: { received: 2, processed: 2, duplicates: 0, failed: 0, deadLettered: 0 },
      });
    },
    TIMEOUT,
  );

  test(
    'the checked-in fixture config is valid and usable as it is',
    async () => {
      const result = await runCli(['--route', 'audit', '--event', MSK_FIXTURE, '--config', AUDIT_CONFIG]);
      expect(result.code).toBe(0);
      const { summary } = JSON.parse(result.stdout);
      expect(summary.received).toBe(1);
      expect(summary.processed + summary.duplicates).toBe(1);
    },
    TIMEOUT,
  );

  test(
    'a handler that throws: exit 1, and the JSON still carries the error and the summary',
    async () => {
      const config = freshAuditConfig();
      // --aws takes the resource names from the environment; a table that does not exist fails the batch.
      const result = await runCli(['--route', 'audit', '--event', MSK_FIXTURE, '--config', config, '--aws'], {
        IDEMPOTENCY_TABLE_NAME: uniqueName('missing-table'),
        DLQ_URL: `${process.env.AWS_ENDPOINT_URL_SQS}/000000000000/${uniqueName('missing-queue')}`,
        LOG_LEVEL: 'SILENT',
      });
      expect(result.code).toBe(1);
      const output = JSON.parse(result.stdout);
      expect(output.response).toBeNull();
      expect(output.error).toMatch(/batch failed, it will be re-delivered/);
      expect(output.summary).toMatchObject({ received: 1, processed: 0, failed: 1 });
      expect(result.stderr).toMatch(/threw: batch failed/);
    },
    TIMEOUT,
  );

  test(
    'clear errors with exit code 2 and nothing on stdout',
    async () => {
      const config = freshAuditConfig();
      const badJson = join(dir, 'bad.json');
      writeFileSync(badJson, '{"eventSource": ');
      const notKafka = join(dir, 'not-kafka.json');
      writeFileSync(notKafka, JSON.stringify({ Records: [{ eventSource: 'aws:sqs' }] }));
      const cases: Array<[string[], RegExp]> = [
        [
          ['--route', 'nope', '--event', MSK_FIXTURE, '--config', config],
          /no route "nope" in config .*; routes: audit/,
        ],
        [
          ['--route', 'audit', '--event', join(dir, 'missing.json'), '--config', config],
          /event file not found: .*missing\.json/,
        ],
        [['--route', 'audit', '--event', badJson, '--config', config], /is not valid JSON/],
        [['--route', 'audit', '--event', notKafka, '--config', config], /is not a Kafka event .*eventSource/],
        [['--route', 'audit', '--config', config], /give an event \(--event FILE, or - for stdin\), or --generate one/],
        [['--route', 'audit', '--event', MSK_FIXTURE, '--config', join(dir, 'nope.json')], /invalid bridge config/],
      ];
      const results = await Promise.all(cases.map(([args]) => runCli(args)));
      results.forEach((result, i) => {
        expect(result.code).toBe(2);
        expect(result.stdout).toBe('');
        expect(result.stderr).toMatch((cases[i] as [string[], RegExp])[1]);
      });
    },
    TIMEOUT,
  );

  test(
    '--help documents the output and exit codes',
    async () => {
      const result = await runCli(['--help']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/--route <name>/);
      expect(result.stdout).toMatch(/"response".*"error"/);
      expect(result.stdout).toMatch(/Exit codes/);
    },
    TIMEOUT,
  );
});
