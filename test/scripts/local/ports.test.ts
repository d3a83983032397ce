import net from 'node:net';
import { isPortFree, isPortOpen, parseSsListeners, waitForPortsFree } from '../../../scripts/local/ports.ts';

function listen(host: string): Promise<{ server: net.Server; port: number }> {
  return new Promise((resolve) => {
    const server = net.createServer((socket) => socket.destroy());
    server.listen({ host, port: 0 }, () => resolve({ server, port: (server.address() as net.AddressInfo).port }));
  });
}
const close = (server: net.Server) => new Promise((r) => server.close(r));

test('a port someone listens on is not free, and is open; after close it is free again', async () => {
  const { server, port } = await listen('127.0.0.1');
  expect(await isPortFree('127.0.0.1', port)).toBe(false);
  expect(await isPortOpen('127.0.0.1', port)).toBe(true);
  await close(server);
  expect(await isPortFree('127.0.0.1', port)).toBe(true);
  expect(await isPortOpen('127.0.0.1', port, 300)).toBe(false);
});

test('waitForPortsFree reports ports still held at the deadline, and none once released', async () => {
  const { server, port } = await listen('127.0.0.1');
  expect(await waitForPortsFree('127.0.0.1', [port], 200)).toEqual([port]);
  setTimeout(() => server.close(), 100);
  expect(await waitForPortsFree('127.0.0.1', [port], 5_000)).toEqual([]);
});

test('parseSsListeners names the processes holding a port', () => {
  const output = [
    'LISTEN 0      50     [::ffff:127.0.0.1]:9092            *:*    users:(("java",pid=7726,fd=91))',
    'LISTEN 0      50                      *:8000            *:*    users:(("java",pid=8292,fd=82),("java",pid=8293,fd=82))',
    'LISTEN 0      128               0.0.0.0:18000      0.0.0.0:*',
    'LISTEN 0      128               0.0.0.0:8000       0.0.0.0:*',
  ].join('\n');
  expect(parseSsListeners(output, 9092)).toEqual(['java (pid 7726) on [::ffff:127.0.0.1]:9092']);
  expect(parseSsListeners(output, 8000)).toEqual([
    'java (pid 8292) on *:8000',
    'java (pid 8293) on *:8000',
    'unknown process on 0.0.0.0:8000',
  ]);
  expect(parseSsListeners(output, 9324)).toEqual([]);
});
