// Detached JVM processes with PID files: spawn, liveness (guarded against PID reuse), and stop (TERM, then KILL).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export type PidRecord = {
  pid: number;
  /** The main class; a live PID whose command line lacks it is someone else's process (PID reuse). */
  mainClass: string;
  ports: number[];
  startedAt: string;
  log: string;
};

export function parsePidRecord(text: string): PidRecord | undefined {
  try {
    const value = JSON.parse(text) as Partial<PidRecord>;
    if (
      typeof value.pid === 'number' &&
      Number.isInteger(value.pid) &&
      value.pid > 1 &&
      typeof value.mainClass === 'string' &&
      Array.isArray(value.ports)
    ) {
      return {
        pid: value.pid,
        mainClass: value.mainClass,
        ports: value.ports.filter((p): p is number => typeof p === 'number'),
        startedAt: String(value.startedAt ?? ''),
        log: String(value.log ?? ''),
      };
    }
  } catch {
    // fall through: a torn or foreign file is treated as absent
  }
  return undefined;
}

export function readPidFile(file: string): PidRecord | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  return parsePidRecord(text);
}

export function writePidFile(file: string, record: PidRecord): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

export function removePidFile(file: string): void {
  fs.rmSync(file, { force: true });
}

function signalZero(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Zombies count as dead: a detached child whose parent is still around lingers as one after it exits. */
function isZombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** True when `record.pid` is alive and (where /proc exists) still runs `record.mainClass`. */
export function isRecordAlive(record: PidRecord): boolean {
  if (!signalZero(record.pid) || isZombie(record.pid)) return false;
  let cmdline: string;
  try {
    cmdline = fs.readFileSync(`/proc/${record.pid}/cmdline`, 'utf8');
  } catch {
    return !fs.existsSync('/proc/self'); // no procfs: trust the signal
  }
  return cmdline.split('\0').includes(record.mainClass);
}

export type SpawnedProcess = { pid: number; exited: () => { code: number | null; signal: string | null } | undefined };

/** Starts `command args` in its own process group, output appended to `logFile`, not tied to this process. */
export function spawnDetached(command: string, args: string[], opts: { cwd: string; logFile: string }): SpawnedProcess {
  fs.mkdirSync(opts.cwd, { recursive: true });
  fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
  const fd = fs.openSync(opts.logFile, 'a');
  try {
    fs.writeSync(fd, `\n--- ${new Date().toISOString()} starting: ${command} ${args.join(' ')}\n`);
    const child = spawn(command, args, { cwd: opts.cwd, detached: true, stdio: ['ignore', fd, fd] });
    let exit: { code: number | null; signal: string | null } | undefined;
    child.once('exit', (code, signal) => {
      exit = { code, signal };
    });
    child.once('error', () => {
      exit ??= { code: null, signal: null };
    });
    child.unref();
    if (child.pid === undefined) throw new Error(`could not start ${command}`);
    return { pid: child.pid, exited: () => exit };
  } finally {
    fs.closeSync(fd);
  }
}

export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!signalZero(pid) || isZombie(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !signalZero(pid) || isZombie(pid);
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal); // the whole group: the JVM is its leader
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** SIGTERM, then SIGKILL after `graceMs`. Resolves to how it ended. */
export async function stopProcess(pid: number, graceMs: number): Promise<'terminated' | 'killed' | 'not-running'> {
  if (!signalZero(pid) || isZombie(pid)) return 'not-running';
  kill(pid, 'SIGTERM');
  if (await waitForExit(pid, graceMs)) return 'terminated';
  kill(pid, 'SIGKILL');
  await waitForExit(pid, 5000);
  return 'killed';
}

/** Last `lines` lines of a log file, for error messages. */
export function tailFile(file: string, lines = 20): string {
  try {
    const stat = fs.statSync(file);
    const size = Math.min(stat.size, 64 * 1024);
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(size);
      fs.readSync(fd, buf, 0, size, stat.size - size);
      return buf.toString('utf8').split('\n').slice(-lines).join('\n').trimEnd();
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}
