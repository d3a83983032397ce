import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, from this module's URL. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type CliResult = { code: number | null; stdout: string; stderr: string };

/** Runs one of the project's scripts (`scripts/invoke.ts`, …) in a child Node process, as a user would. */
export const runScript = (script: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, script), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
    });
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
