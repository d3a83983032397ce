import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { isLocalBroker } from '../../../scripts/bridge/bridge.ts';
import { brokersFromEnv } from '../../../scripts/lib/kafka.ts';
import { ROOT, runScript } from '../../helpers/cli.ts';
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

/** This machine's first address that is not loopback (the broker then counts as remote), else 0.0.0.0. */
const nonLoopbackAddress = (): string =>
  Object.values(os.networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address ?? '0.0.0.0';

/** A TCP relay to the local broker on an address that is not loopback: to the bridge, a remote cluster. */
const startRelay = async (target: string) => {
  const [host, port] = [target.replace(/:\d+$/, ''), Number(target.split(':').at(-1))];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  const address = nonLoopbackAddress();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, address, resolve));
  return {
    broker: `${address}:${(server.address() as net.AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
};

test("with --allow-production-group the bridge joins a route's deployed consumer group on brokers that are not local", async () => {
  const relay = await startRelay(brokersFromEnv()[0] as string);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bridge-cli-'));
  const name = `cli${randomUUID().slice(0, 8)}`;
  const group = `${name}-prod-orders`;
  const [orders] = baseConfig().routes ?? [];
  const file = path.join(dir, 'bridge.config.json');
  fs.writeFileSync(
    file,
    JSON.stringify({ ...baseConfig(), name, routes: [{ ...orders, topic: `${name}-orders`, consumerGroupId: group }] }),
  );
  expect(isLocalBroker(relay.broker)).toBe(false);
  const child = spawn(
    process.execPath,
    [
      path.join(ROOT, 'scripts/bridge/cli.ts'),
      ...['--config', file, '--allow-production-group', '--json', '--handler-logs', 'none'],
    ],
    { cwd: ROOT, env: { ...process.env, KAFKA_BROKERS: relay.broker }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines: string[] = [];
  for (const stream of [child.stdout, child.stderr])
    createInterface({ input: stream }).on('line', (l) => lines.push(l));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const joined = `joined group ${group}: partitions [0,1,2]`;
    const deadline = Date.now() + 60_000;
    while (!lines.some((l) => l.includes(joined))) {
      const ended = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(r, 200, false))]);
      if (ended || Date.now() > deadline) throw new Error(`the bridge did not join ${group}:\n${lines.join('\n')}`);
    }
    expect(lines.join('\n')).not.toContain('refusing to join');
    expect(lines.some((l) => l.includes(`group ${group})`) && l.includes(relay.broker))).toBe(true);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  } finally {
    child.kill('SIGKILL');
    await relay.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 90_000);
