import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isLocalBroker } from '../../../scripts/bridge/bridge.ts';
import { runScript } from '../../helpers/cli.ts';
import { baseConfig } from '../../infra/helpers.ts';

test('a broker on this machine is local; any other host is not', () => {
  for (const broker of ['127.0.0.1:9092', 'localhost:9092', '[::1]:9092', '127.0.1.1:19092']) {
    expect({ broker, local: isLocalBroker(broker) }).toEqual({ broker, local: true });
  }
  for (const broker of ['b-1.events.kafka.eu-west-1.amazonaws.com:9098', '10.0.0.5:9092', 'kafka:9092']) {
    expect({ broker, local: isLocalBroker(broker) }).toEqual({ broker, local: false });
  }
});

test("the bridge refuses to join a route's deployed consumer group on brokers that are not local", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bridge-cli-'));
  const config = baseConfig();
  config.routes = (config.routes ?? []).map((r, i) => (i === 0 ? { ...r, consumerGroupId: 'orders-prod' } : r));
  const file = path.join(dir, 'bridge.config.json');
  fs.writeFileSync(file, JSON.stringify(config));
  try {
    // The refusal comes before any connection, so an unreachable address is enough.
    const result = await runScript('scripts/bridge/cli.ts', ['--config', file], {
      KAFKA_BROKERS: 'b-1.events.kafka.example.com:9098',
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`refusing to join route "orders"'s consumer group "orders-prod"`);
    expect(result.stderr).toContain('--allow-production-group');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
