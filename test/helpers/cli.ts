import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, from this module's URL. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type CliResult = { code: number | null; stdout: string; stderr: string };

/** A project script running as a child Node process: its output so far, and its result once it ends. */
export type RunningScript = {
  readonly done: Promise<CliResult>;
  /** What it printed so far. */
  output(): { stdout: string; stderr: string };
};

/**
 * A child process in the repository root with its output captured; `input` is written to its stdin (closed either
 * way), and it is killed after `timeoutMs` if given (a regression must not leave a benchmark running).
 */
export const startProcess = (
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string | undefined; timeoutMs?: number } = {},
): RunningScript => {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...options.env } });
  child.stdin.end(options.input ?? '');
  const timer =
    options.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
  child.on('close', () => clearTimeout(timer));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { done, output: () => ({ stdout, stderr }) };
};

/** Starts one of the project's scripts (`scripts/invoke.ts`, …) in a child Node process, as a user would. */
export const startScript = (
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  input?: string,
): RunningScript => startProcess(process.execPath, [join(ROOT, script), ...args], { env, input });

/** Runs a project script to its end (see `startScript`). */
export const runScript = (
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  input?: string,
): Promise<CliResult> => startScript(script, args, env, input).done;
