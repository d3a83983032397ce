// `npm run reconcile` as a child process: a topic's records against the idempotency table and the DLQ.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brokersFromEnv, createProducer, ensureTopics } from '../../scripts/lib/kafka.ts';
import { uniqueName } from '../helpers/aws.ts';
import { runScript } from '../helpers/cli.ts';
import { mskEvent } from '../helpers/events.ts';

const AUDIT_CONFIG = fileURLToPath(new URL('../fixtures/audit.config.json', import.meta.url));
const TIMEOUT = 120_000;

describe('npm run reconcile', () => {
  test(
    'reports every unprocessed record as missing with its coordinates, and none once the handler ran',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'reconcile-'));
      const topic = uniqueName('reconcile');
      const config = JSON.parse(readFileSync(AUDIT_CONFIG, 'utf8'));
      config.name = uniqueName('rc');
      config.routes[0].topic = topic;
      const configPath = join(dir, 'config.json');
      writeFileSync(configPath, JSON.stringify(config));

      await ensureTopics(brokersFromEnv(), [{ topic, partitions: 1 }]);
      const producer = createProducer(brokersFromEnv());
      const values = [{ n: 1 }, { n: 2 }, { n: 3 }];
      try {
        await producer.send({
          messages: values.map((v) => ({ topic, partition: 0, value: Buffer.from(JSON.stringify(v)) })),
        });
      } finally {
        await producer.close();
      }

      const before = await runScript('scripts/reconcile.ts', ['--route', 'audit', '--config', configPath]);
      expect(before.stderr).toBe('');
      expect(before.code).toBe(1);
      const missing = JSON.parse(before.stdout);
      expect(missing.missing).toBe(3);
      expect(JSON.stringify(missing)).toContain(`"topic":"${topic}"`);

      // Process the same three records, as the event source would deliver them.
      const eventPath = join(dir, 'event.json');
      writeFileSync(eventPath, JSON.stringify(mskEvent(values.map((value, offset) => ({ topic, offset, value })))));
      const invoked = await runScript('scripts/invoke.ts', [
        '--route',
        'audit',
        '--config',
        configPath,
        '--event',
        eventPath,
      ]);
      expect(invoked.code).toBe(0);

      const after = await runScript('scripts/reconcile.ts', ['--route', 'audit', '--config', configPath]);
      expect(after.code).toBe(0);
      expect(JSON.parse(after.stdout)).toMatchObject({ missing: 0, completed: 3 });
    },
    TIMEOUT,
  );
});
