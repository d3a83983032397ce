import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  isRecordAlive,
  type PidRecord,
  parsePidRecord,
  readPidFile,
  spawnDetached,
  stopProcess,
  tailFile,
  writePidFile,
} from '../../../scripts/local/processes.ts';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-processes-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const record = (over: Partial<PidRecord> = {}): PidRecord => ({
  pid: process.pid,
  mainClass: 'kafka.Kafka',
  ports: [9092, 9093],
  startedAt: '2026-01-01T00:00:00.000Z',
  log: '/x.log',
  ...over,
});

test('pid files round-trip, and torn or foreign ones read as absent', () => {
  const file = path.join(dir, 'run', 'kafka.pid');
  writePidFile(file, record());
  expect(readPidFile(file)).toEqual(record());
  expect(parsePidRecord('{"pid": 12')).toBeUndefined();
  expect(parsePidRecord('12345')).toBeUndefined();
  expect(parsePidRecord('{"pid": 1, "mainClass": "x", "ports": []}')).toBeUndefined();
  expect(readPidFile(path.join(dir, 'missing.pid'))).toBeUndefined();
});

test('a live PID running something else is not ours (PID reuse)', () => {
  // This jest process is alive, but its command line does not contain kafka.Kafka.
  expect(isRecordAlive(record())).toBe(false);
  const ownArg = fs.readFileSync('/proc/self/cmdline', 'utf8').split('\0')[0] ?? '';
  expect(isRecordAlive(record({ mainClass: ownArg }))).toBe(true);
  expect(isRecordAlive(record({ pid: 2 ** 22 + 7 }))).toBe(false);
});

test('spawnDetached starts a process group with output in the log; stopProcess ends it', async () => {
  const log = path.join(dir, 'logs', 'child.log');
  const child = spawnDetached(
    process.execPath,
    ['-e', 'console.log("hello from " + "child"); setInterval(() => {}, 1000)'],
    { cwd: dir, logFile: log },
  );
  expect(isRecordAlive(record({ pid: child.pid, mainClass: '-e' }))).toBe(true);
  for (let i = 0; i < 50 && !tailFile(log).includes('hello from child'); i++)
    await new Promise((r) => setTimeout(r, 100));
  expect(tailFile(log)).toContain('hello from child');
  expect(await stopProcess(child.pid, 5_000)).toBe('terminated');
  expect(isRecordAlive(record({ pid: child.pid, mainClass: '-e' }))).toBe(false);
  expect(await stopProcess(child.pid, 1_000)).toBe('not-running');
});

test('stopProcess falls back to SIGKILL when SIGTERM is ignored', async () => {
  const log = path.join(dir, 'stubborn.log');
  const child = spawnDetached(
    process.execPath,
    ['-e', 'process.on("SIGTERM", () => {}); console.log("rea" + "dy"); setInterval(() => {}, 1000)'],
    { cwd: dir, logFile: log },
  );
  for (let i = 0; i < 50 && !tailFile(log).includes('ready'); i++) await new Promise((r) => setTimeout(r, 100));
  expect(await stopProcess(child.pid, 300)).toBe('killed');
});

test('tailFile returns the last lines, or nothing for a missing file', () => {
  const file = path.join(dir, 'a.log');
  fs.writeFileSync(file, Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n'));
  expect(tailFile(file, 2)).toBe('line 28\nline 29');
  expect(tailFile(path.join(dir, 'none.log'))).toBe('');
});
