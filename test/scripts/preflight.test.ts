// `npm start` and `npm test` on a Node too old to load the TypeScript entry points: one line, no stack trace.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/cli.ts';

/** Runs scripts/preflight.cjs as a Node of `version` would (the check reads only process.version/versions). */
const preflightOn = (version: string) => {
  const pretend = `Object.defineProperty(process, 'version', { value: 'v${version}' });
    Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '${version}' } });
    require(${JSON.stringify(join(ROOT, 'scripts/preflight.cjs'))});`;
  return spawnSync(process.execPath, ['-e', pretend], { cwd: ROOT, encoding: 'utf8' });
};

test('an older Node gets one line naming the version needed and how to get it, and exit 1', () => {
  for (const version of ['20.20.2', '22.18.0', '22.21.9', '18.0.0']) {
    const result = preflightOn(version);
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `kafka-lambda-bridge needs Node.js >= 22.22 (found v${version}); install Node 24 (nvm install 24, or see .nvmrc)\n`,
    );
  }
});

test('a recent enough Node passes silently', () => {
  for (const version of ['22.22.0', '23.11.1', '24.0.0', process.versions.node]) {
    expect(preflightOn(version)).toMatchObject({ status: 0, stdout: '', stderr: '' });
  }
});

test('it runs before the TypeScript entry points, and reads the floor from package.json engines', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  expect(pkg.engines.node).toBe('>=22.22');
  expect(pkg.scripts.prestart).toBe('node scripts/preflight.cjs');
  expect(pkg.scripts.pretest).toBe('node scripts/preflight.cjs');
});

test('every npm script that runs a TypeScript entry point checks the Node version first', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const scripts = pkg.scripts as Record<string, string>;
  const typescript = Object.keys(scripts).filter((name) => /^node scripts\/\S+\.ts\b/.test(scripts[name] as string));
  for (const name of ['new-route', 'invoke', 'load', 'reconcile', 'replay', 'bridge', 'chaos', 'bench', 'start']) {
    expect(typescript).toContain(name);
  }
  expect(typescript.filter((name) => scripts[`pre${name}`] !== 'node scripts/preflight.cjs')).toEqual([]);
});
