// Services someone else runs (KAFKA_BROKERS, AWS_ENDPOINT_URL_*): a refused connection fails at once, in one line; a
// service that accepts connections but does not answer yet gets progress lines instead of minutes of silence.
import net from 'node:net';
import { ensureLocalServices, LocalServicesError } from '../../../scripts/local/services.ts';

/** A TCP server that accepts connections and never answers, like a service still starting behind its port. */
const silentServer = (): Promise<{ port: number; close: () => Promise<void> }> =>
  new Promise((resolve, reject) => {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      resolve({
        port,
        close: () =>
          new Promise((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });

test('a refused endpoint from the environment fails within seconds, naming it and what to do', async () => {
  const started = Date.now();
  const error = await ensureLocalServices({
    services: ['dynamodb'],
    env: { AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:1' },
    readyTimeoutMs: 120_000,
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(Date.now() - started).toBeLessThan(15_000);
  expect(error).toBeInstanceOf(LocalServicesError);
  expect((error as Error).message).toBe(
    'cannot connect to dynamodb-local at http://127.0.0.1:1, the endpoint in AWS_ENDPOINT_URL_DYNAMODB (connection ' +
      'refused): start it there (`npm run local:up` in a shell without AWS_ENDPOINT_URL_DYNAMODB starts the local ' +
      'services), or unset AWS_ENDPOINT_URL_DYNAMODB to have these scripts start dynamodb-local',
  );
}, 30_000);

test('an endpoint that does not answer yet: a progress line, then the error at the readiness timeout', async () => {
  const server = await silentServer();
  const logged: string[] = [];
  try {
    const error = await ensureLocalServices({
      services: ['dynamodb'],
      env: { AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${server.port}` },
      readyTimeoutMs: 3_000,
      log: (line) => logged.push(line),
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(LocalServicesError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^dynamodb-local at http://127\\.0\\.0\\.1:${server.port} \\(from AWS_ENDPOINT_URL_DYNAMODB\\) is not ready after`,
      ),
    );
    expect(logged[0]).toMatch(
      /^dynamodb-local: .* from AWS_ENDPOINT_URL_DYNAMODB is not answering yet .*; waiting up to 3s…$/,
    );
  } finally {
    await server.close();
  }
}, 30_000);
