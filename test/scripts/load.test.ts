// `npm run load` as a child process: what it reports is what reached the topic.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTopic } from '../../scripts/bridge/readTopic.ts';
import { brokersFromEnv } from '../../scripts/lib/kafka.ts';
import { uniqueName } from '../helpers/aws.ts';
import { runScript } from '../helpers/cli.ts';

const AUDIT_CONFIG = fileURLToPath(new URL('../fixtures/audit.config.json', import.meta.url));

describe('npm run load', () => {
  test('produces orders traffic with duplicates and poison, and reports exactly what it sent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'load-'));
    const config = JSON.parse(readFileSync(AUDIT_CONFIG, 'utf8'));
    const topic = uniqueName('load-orders');
    config.name = uniqueName('load');
    config.routes[0] = {
      ...config.routes[0],
      name: 'orders',
      topic,
      handler: 'orders.ts',
      tables: [{ name: 'orders', partitionKey: 'orderId', env: 'ORDERS_TABLE_NAME' }],
    };
    const configPath = join(dir, 'config.json');
    writeFileSync(configPath, JSON.stringify(config));

    const result = await runScript('scripts/load.ts', [
      '--route',
      'orders',
      '--rate',
      '200',
      '--duration',
      '2',
      '--duplicates',
      '10',
      '--poison',
      '5',
      '--config',
      configPath,
    ]);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '');
    expect(report).toMatchObject({ route: 'orders', topic, targetRate: 200 });
    const kinds = report.byKind as Record<string, number>;
    expect(Object.values(kinds).reduce((a, b) => a + b, 0)).toBe(report.sent);
    expect(kinds.duplicate).toBeGreaterThan(0);
    expect(kinds.poison).toBeGreaterThan(0);
    expect(report.achievedRate).toBeCloseTo(report.sent / report.durationSeconds, 0);
    const records = await readTopic(brokersFromEnv(), topic);
    expect(records).toHaveLength(report.sent);
  }, 60_000);

  test('refuses a route the config does not have', async () => {
    const result = await runScript('scripts/load.ts', ['--route', 'nope', '--rate', '1', '--duration', '1']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/nope/);
  }, 30_000);
});
