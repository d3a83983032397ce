// The CLIs agree: exit 2 with one line on stderr (never the help text) for a usage error and for a service that cannot
// be reached, and a refused local connection says how to start the local services. Each CLI runs as a user runs it.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, startProcess } from '../helpers/cli.ts';

const AUDIT_CONFIG = fileURLToPath(new URL('../fixtures/audit.config.json', import.meta.url));

/** Runs a script to its end, or kills it after `timeoutMs`; `ms` is how long it took. */
const run = async (script: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000) => {
  const started = Date.now();
  const result = await startProcess(process.execPath, [join(ROOT, script), ...args], { env, timeoutMs }).done;
  return { ...result, ms: Date.now() - started };
};

const lines = (text: string) => text.trimEnd().split('\n');

/** Nothing listens on port 1: a refused connection, at once. */
const REFUSED_KAFKA = { KAFKA_BROKERS: '127.0.0.1:1' };

describe('a usage error: exit 2 and one line on stderr', () => {
  test.each([
    ['load', 'scripts/load.ts', ['--route', 'audit', '--rate', '1', '--duration', '1', '--bogus']],
    ['bridge', 'scripts/bridge/cli.ts', ['--bogus']],
    ['new-route', 'scripts/newRoute.ts', ['widgets', '--bogus']],
    ['chaos', 'scripts/chaos/cli.ts', ['--bogus']],
    ['local', 'scripts/local/cli.ts', ['--bogus']],
    ['demo', 'scripts/demo.ts', ['--bogus']],
    ['bench', 'scripts/bench/run.ts', ['--bogus']],
    ['invoke', 'scripts/invoke.ts', ['--route', 'audit', '--bogus']],
    ['reconcile', 'scripts/reconcile.ts', ['--route', 'audit', '--bogus']],
    ['replay', 'scripts/replay.ts', ['--route', 'audit', '--bogus']],
    ['watermarks', 'scripts/watermarks.ts', ['--route', 'audit', '--bogus']],
  ])(
    '%s --bogus',
    async (_name, script, args) => {
      const result = await run(script, args);
      expect({ code: result.code, stderr: lines(result.stderr) }).toEqual({
        code: 2,
        stderr: [expect.stringMatching(/unknown option '--bogus'/)],
      });
      expect(result.stdout).toBe('');
    },
    60_000,
  );

  test('bench: --sides without --only is a usage error too', async () => {
    const result = await run('scripts/bench/run.ts', ['--sides', 'bridge']);
    expect({ code: result.code, stderr: lines(result.stderr) }).toEqual({
      code: 2,
      stderr: ['bench: --sides needs --only (a partial run writes no files)'],
    });
  }, 60_000);

  test('new-route: its refusals say new-route, in one line, and write nothing', async () => {
    const badName = await run('scripts/newRoute.ts', ['Bad_Name']);
    expect({ code: badName.code, stderr: lines(badName.stderr) }).toEqual({
      code: 2,
      stderr: ['new-route: route "Bad_Name": must be lower-case kebab-case, at most 32 characters'],
    });
    const taken = await run('scripts/newRoute.ts', ['audit', '--config', AUDIT_CONFIG]);
    expect({ code: taken.code, stderr: lines(taken.stderr) }).toEqual({
      code: 2,
      stderr: ['new-route: the config already has a route "audit"'],
    });
  }, 60_000);
});

describe('a refused connection: exit 2, one line, and `npm run local:up`', () => {
  test('load', async () => {
    const result = await run(
      'scripts/load.ts',
      ['--route', 'audit', '--rate', '1', '--duration', '1', '--config', AUDIT_CONFIG],
      REFUSED_KAFKA,
    );
    expect({ code: result.code, stderr: lines(result.stderr) }).toEqual({
      code: 2,
      stderr: [
        'load: cannot connect to Kafka at 127.0.0.1:1 (connection refused): are the local services running? ' +
          'Start them with `npm run local:up`',
      ],
    });
  }, 60_000);

  test('bridge', async () => {
    const result = await run('scripts/bridge/cli.ts', ['--config', AUDIT_CONFIG], {
      ...REFUSED_KAFKA,
      AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:1',
      AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:1',
    });
    expect({ code: result.code, stderr: lines(result.stderr) }).toEqual({
      code: 2,
      stderr: [
        expect.stringMatching(/^bridge: cannot connect to .*127\.0\.0\.1:1 \(connection refused\).*`npm run local:up`/),
      ],
    });
    expect(result.ms).toBeLessThan(20_000);
  }, 60_000);

  test('bench fails before its minutes of cold-start measurements', async () => {
    const result = await run('scripts/bench/run.ts', ['--quick'], REFUSED_KAFKA, 45_000);
    expect({ code: result.code, stderr: lines(result.stderr) }).toEqual({
      code: 2,
      stderr: [expect.stringMatching(/^bench: cannot connect to kafka at 127\.0\.0\.1:1, .*`npm run local:up`/)],
    });
    expect(result.ms).toBeLessThan(30_000);
  }, 60_000);

  test('chaos: a refused DynamoDB endpoint from the environment fails at once', async () => {
    const result = await run('scripts/chaos/cli.ts', ['--seeds', '1'], {
      AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:1',
    });
    expect(result.code).toBe(2);
    expect(lines(result.stderr).filter((line) => !line.startsWith('[local services]'))).toEqual([
      expect.stringMatching(
        /^chaos: cannot connect to dynamodb-local at http:\/\/127\.0\.0\.1:1, .*`npm run local:up`/,
      ),
    ]);
    expect(result.ms).toBeLessThan(20_000);
  }, 60_000);

  test('demo: an endpoint from the environment that refuses fails at once, not after the 120 s startup wait', async () => {
    const result = await run('scripts/demo.ts', ['--duration', '5', '--config', AUDIT_CONFIG], REFUSED_KAFKA, 45_000);
    expect({ code: result.code, stderr: lines(result.stderr) }).toEqual({
      code: 2,
      stderr: [
        expect.stringMatching(
          /^demo: cannot connect to kafka at 127\.0\.0\.1:1, the endpoint in KAFKA_BROKERS \(connection refused\): .*`npm run local:up`.*unset KAFKA_BROKERS/,
        ),
      ],
    });
    expect(result.ms).toBeLessThan(20_000);
  }, 60_000);
});
