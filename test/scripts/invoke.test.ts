// `npm run invoke`, run as a child process against DynamoDB Local and ElasticMQ.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KafkaEvent } from '../../functions/runtime/event.ts';
import { localResourceNames, parseBridgeConfig } from '../../infra/config/index.ts';
import { HandlerLoadError, INVOKE_NAMESPACE, loadRouteHandler } from '../../scripts/lib/invokeRoute.ts';
import { scanAll, uniqueName } from '../helpers/aws.ts';
import { ROOT, runScript, startProcess } from '../helpers/cli.ts';

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
      expect(isolated.stderr).toContain(`table ${name}-${INVOKE_NAMESPACE}-idempotency`);
      expect(await keys(`${name}-${INVOKE_NAMESPACE}-idempotency`)).toHaveLength(1);
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
      // Every example that pipes or redirects stdout runs npm silently: npm's banner would come first otherwise.
      const piped = result.stdout.split('\n').filter((line) => /npm run .*[|>]/.test(line));
      expect(piped.length).toBeGreaterThan(0);
      for (const line of piped) expect(line).not.toMatch(/npm run (?!-s )/);
    },
    TIMEOUT,
  );

  test(
    'the documented pipe works through npm: `npm run -s invoke -- --generate | npm run -s invoke -- --event -`',
    async () => {
      const config = freshAuditConfig();
      const run = (flags: string) => `npm run -s invoke -- --route audit --config '${config}' ${flags}`;
      const result = await startProcess('sh', ['-c', `${run('--generate')} | ${run('--event -')}`], {
        // This Node first on PATH: npm runs the scripts with the `node` it finds there.
        env: { PATH: `${dirname(process.execPath)}:${process.env.PATH}` },
      }).done;
      expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr }).toEqual({ code: 0, stderr: '' });
      expect(JSON.parse(result.stdout).summary).toMatchObject({ received: 1, processed: 1, deadLettered: 0 });
    },
    TIMEOUT,
  );

  test(
    'a config with several problems is one line on stderr',
    async () => {
      const bad = join(dir, 'several-problems.json');
      writeFileSync(bad, JSON.stringify({ name: 3 }));
      const result = await runCli(['--route', 'audit', '--event', MSK_FIXTURE, '--config', bad]);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr.trimEnd().split('\n')).toEqual([
        expect.stringMatching(
          /^invoke: invalid bridge config .*several-problems\.json: name: .*; source: .*; routes: /,
        ),
      ]);
    },
    TIMEOUT,
  );

  test(
    'a refused local connection names the service and says to run `npm run local:up`, in one line',
    async () => {
      const result = await runCli(['--route', 'audit', '--event', MSK_FIXTURE, '--config', freshAuditConfig()], {
        AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:1',
      });
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr.trimEnd().split('\n')).toEqual([
        'invoke: cannot prepare route audit: cannot connect to DynamoDB at 127.0.0.1:1 (connection refused): ' +
          'are the local services running? Start them with `npm run local:up`',
      ]);
    },
    TIMEOUT,
  );

  test('a handler module that throws as it loads is a HandlerLoadError naming the route and the file', async () => {
    const error = await loadRouteHandler({ name: 'broken', handler: '../../test/fixtures/throwingHandler.ts' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(HandlerLoadError);
    expect((error as Error).message).toBe(
      'route broken: its handler test/fixtures/throwingHandler.ts failed to load: a check at module level failed, on purpose',
    );
  });

  test(
    'a handler that fails on import: one line on stderr, exit 2; its stack only with --log-level DEBUG',
    async () => {
      // invoke's own error path (runJsonCli), with the fixture module: no config may name a module outside
      // functions/handlers/.
      const driver = `
        import { Command } from 'commander';
        import { loadRouteHandler, runJsonCli } from ${JSON.stringify(join(ROOT, 'scripts/lib/invokeRoute.ts'))};
        const program = new Command().option('--log-level <level>');
        await runJsonCli('invoke', program, 2, async () => {
          await loadRouteHandler({ name: 'broken', handler: '../../test/fixtures/throwingHandler.ts' });
          return 0;
        });`;
      const run = (args: string[]) =>
        new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
          const child = spawn(process.execPath, ['--input-type=module', '-e', driver, '--', ...args], { cwd: ROOT });
          let stderr = '';
          child.stderr.on('data', (chunk) => {
            stderr += chunk;
          });
          child.on('error', reject);
          child.on('close', (code) => resolve({ code, stderr }));
        });
      const plain = await run([]);
      expect(plain.code).toBe(2);
      expect(plain.stderr.trimEnd().split('\n')).toEqual([
        'invoke: route broken: its handler test/fixtures/throwingHandler.ts failed to load: a check at module level ' +
          'failed, on purpose (--log-level DEBUG shows its stack)',
      ]);
      const debug = await run(['--log-level', 'DEBUG']);
      expect(debug.code).toBe(2);
      expect(debug.stderr).toMatch(/failed, on purpose\nError: a check at module level failed, on purpose\n\s+at /);
    },
    TIMEOUT,
  );

  test("invoke's own names never meet the bridge's, even for a route named invoke-<route>", () => {
    const route = (name: string) => ({ name, topic: name, handler: 'audit.ts' });
    const config = parseBridgeConfig({
      ...JSON.parse(readFileSync(AUDIT_CONFIG, 'utf8')),
      routes: [route('widgets'), route('invoke-widgets')],
    });
    const all = (names: ReturnType<typeof localResourceNames>) => [
      names.idempotencyTable,
      ...Object.values(names.deadLetterQueues),
      ...Object.values(names.onFailureQueues),
      ...Object.values(names.retryQueues),
      ...Object.values(names.tables),
    ];
    const invokes = all(localResourceNames(config, INVOKE_NAMESPACE));
    const bridges = all(localResourceNames(config));
    expect(invokes.filter((name) => bridges.includes(name))).toEqual([]);
  });
});
