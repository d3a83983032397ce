import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, from this module's URL. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type CliResult = { code: number | null; stdout: string; stderr: string };

/**
 * Runs one of the project's scripts (`scripts/invoke.ts`, …) in a child Node process, as a user would; `input` is
 * written to its stdin (closed either way).
 */
export const runScript = (
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  input?: string,
): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, script), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
    });
    child.stdin.end(input ?? '');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
