// Port checks: is a port free to bind, is something accepting connections on it, and (best effort) who holds it.
import { execFile } from 'node:child_process';
import net from 'node:net';

/** True when `host:port` can be bound right now (nothing else listens there). */
export function isPortFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE' || error.code === 'EACCES') resolve(false);
      else reject(error);
    });
    server.listen({ host, port, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/** True when a TCP connection to `host:port` is accepted within `timeoutMs`. */
export function isPortOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export async function waitForPortsFree(host: string, ports: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const busy: number[] = [];
    for (const port of ports) if (!(await isPortFree(host, port))) busy.push(port);
    if (busy.length === 0 || Date.now() >= deadline) return busy;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Parses `ss -ltnpH` output into the processes listening on `port`, e.g. `java (pid 123)`. Lines look like
 * `LISTEN 0 50 127.0.0.1:9092 0.0.0.0:* users:(("java",pid=123,fd=150))`.
 */
export function parseSsListeners(output: string, port: number): string[] {
  const holders: string[] = [];
  for (const line of output.split('\n')) {
    const cols = line.trim().split(/\s+/);
    const local = cols[3];
    if (!local?.endsWith(`:${port}`)) continue;
    const users = /users:\(\((.*)\)\)/.exec(line)?.[1];
    if (!users) {
      holders.push(`unknown process on ${local}`);
      continue;
    }
    for (const m of users.matchAll(/"([^"]+)",pid=(\d+)/g)) holders.push(`${m[1]} (pid ${m[2]}) on ${local}`);
  }
  return [...new Set(holders)];
}

/** Best effort: describes who listens on `port`, or undefined when `ss` is unavailable or says nothing. */
export function describePortHolder(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('ss', ['-ltnpH'], { timeout: 2000 }, (error, stdout) => {
      if (error) return resolve(undefined);
      const holders = parseSsListeners(stdout, port);
      resolve(holders.length > 0 ? holders.join(', ') : undefined);
    });
  });
}
