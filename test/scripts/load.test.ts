// `npm run load` as a child process: what it reports is what reached the topic.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTopic } from '../../scripts/bridge/readTopic.ts';
import { brokersFromEnv } from '../../scripts/lib/kafka.ts';
import type { LambdaKafkaRecord } from '../../scripts/lib/kafkaEvents.ts';
import { uniqueName } from '../helpers/aws.ts';
import { runScript } from '../helpers/cli.ts';

const AUDIT_CONFIG = fileURLToPath(new URL('../fixtures/audit.config.json', import.meta.url));

/** A config of this test's own: the audit route (values from its zod schema) on a fresh topic. */
const auditConfig = (dir: string): { configPath: string; topic: string } => {
  const config = JSON.parse(readFileSync(AUDIT_CONFIG, 'utf8'));
  const topic = uniqueName('load-audit');
  config.name = uniqueName('load');
  config.routes[0] = { ...config.routes[0], topic };
  const configPath = join(dir, 'config.json');
  writeFileSync(configPath, JSON.stringify(config));
  return { configPath, topic };
};

/** A record as it reached Kafka: key and value as text (null when absent), headers as [name, text]. */
const plain = (record: LambdaKafkaRecord) => ({
  key: record.key === null ? null : Buffer.from(record.key, 'base64').toString(),
  value: record.value === null ? null : Buffer.from(record.value, 'base64').toString(),
  headers: record.headers.flatMap((header) =>
    Object.entries(header).map(([name, bytes]) => [name, Buffer.from(bytes.map((b) => b & 0xff)).toString()]),
  ),
});

const lastJsonLine = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1) ?? '');

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

  test('--values FILE.jsonl: the lines in order and round again, with and without key and headers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'load-values-'));
    const { configPath, topic } = auditConfig(dir);
    const lines = [
      { key: 'k-1', value: { n: 1 }, headers: { source: 'file', trace: 't-1' } },
      { value: 'plain text: no key, no headers' },
      { key: { id: 7 }, value: null },
    ];
    const values = join(dir, 'values.jsonl');
    writeFileSync(values, `${lines.map((line) => JSON.stringify(line)).join('\n')}\n\n`);
    const result = await runScript('scripts/load.ts', [
      ...['--route', 'audit', '--rate', '20', '--duration', '1', '--values', values],
      ...['--duplicates', '0', '--poison', '0', '--partitions', '1', '--config', configPath],
    ]);
    expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr }).toEqual({ code: 0, stderr: '' });
    const report = lastJsonLine(result.stdout);
    expect(report.sent).toBeGreaterThanOrEqual(lines.length);
    expect(report.byKind).toEqual({ event: report.sent, duplicate: 0, poison: 0, tombstone: 0 });

    // One partition: the topic holds the lines in file order, round and round.
    const records = (await readTopic(brokersFromEnv(), topic)).map(plain);
    expect(records).toHaveLength(report.sent);
    records.forEach((record, i) => {
      const line = i % lines.length;
      if (line === 0) {
        expect(record).toEqual({
          key: 'k-1',
          value: '{"n":1}',
          headers: [
            ['source', 'file'],
            ['trace', 't-1'],
          ],
        });
      } else if (line === 1) {
        // A line without headers gets the generator's own (trace-id, content type, produce time).
        expect(record).toMatchObject({ key: null, value: 'plain text: no key, no headers' });
        expect(record.headers.map(([name]) => name)).toEqual(['trace-id', 'content-type', 'produced-at']);
      } else {
        // A JSON key is sent as JSON; a null value is a tombstone.
        expect(record).toMatchObject({ key: '{"id":7}', value: null });
      }
    });
  }, 60_000);

  test('--duplicates and --poison on a route with values from its schema: what reaches Kafka is what it reports', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'load-schema-'));
    const { configPath, topic } = auditConfig(dir);
    const result = await runScript('scripts/load.ts', [
      ...['--route', 'audit', '--rate', '150', '--duration', '2', '--duplicates', '20', '--poison', '10'],
      ...['--partitions', '1', '--seed', '7', '--config', configPath],
    ]);
    expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr }).toEqual({ code: 0, stderr: '' });
    const report = lastJsonLine(result.stdout);
    const records = (await readTopic(brokersFromEnv(), topic)).map(plain);
    expect(records).toHaveLength(report.sent);

    const seen = new Set<string>();
    const counted = { event: 0, duplicate: 0, poison: 0, tombstone: 0 };
    for (const record of records) {
      const bytes = JSON.stringify(record);
      if (record.value === '{"not json') {
        counted.poison += 1;
      } else if (seen.has(bytes)) {
        // An earlier record sent again byte for byte: key, value and headers.
        counted.duplicate += 1;
      } else {
        counted.event += 1;
        // A value the route's schema (any JSON object) accepts, keyed.
        const value = JSON.parse(record.value as string);
        expect(typeof value === 'object' && value !== null && !Array.isArray(value)).toBe(true);
        expect(record.key).toEqual(expect.any(String));
      }
      seen.add(bytes);
    }
    expect(counted).toEqual(report.byKind);
    expect(counted.duplicate).toBeGreaterThan(0);
    expect(counted.poison).toBeGreaterThan(0);
  }, 60_000);

  test('refuses a route the config does not have', async () => {
    const result = await runScript('scripts/load.ts', ['--route', 'nope', '--rate', '1', '--duration', '1']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/nope/);
  }, 30_000);
});
