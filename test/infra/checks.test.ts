import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { addBridge } from '../../infra/bridgeApp.ts';
import { loadBridgeConfig, parseBridgeConfig } from '../../infra/config/load.ts';
import { baseConfig, CDK_CLI, offlineEnv, synthBridge } from './helpers.ts';
import { VARIANTS } from './variants.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * W3005 ("dependency already enforced by a GetAtt"): the CDK adds an explicit DependsOn on a
 * function's role next to the Role GetAtt, so the role's inline policy exists before the function.
 * It is harmless and not ours to change; every other warning or error fails the test.
 */
const CFN_LINT_IGNORED = ['W3005'];

type ValidationReport = {
  pluginReports: Array<{
    pluginName: string;
    conclusion: string;
    violations: unknown[];
    suppressedViolations?: Array<{ ruleName: string; reason: string }>;
  }>;
};
const readReport = (outdir: string): ValidationReport =>
  JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as ValidationReport;
const templatesIn = (outdir: string) =>
  readdirSync(outdir)
    .filter((f) => f.endsWith('.template.json'))
    .map((f) => join(outdir, f));

/** Synthesized output directories, filled by the tests below and linted at the end. */
const outdirs: string[] = [];

type CliResult = { status: number | null; stderr: string; outdir: string };
/** `npm run synth` as the user runs it: the cdk CLI, here into a temporary directory. */
const cdkSynth = (): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    const outdir = mkdtempSync(join(tmpdir(), 'bridge-cli-'));
    const child = spawn(process.execPath, [CDK_CLI, 'synth', '--quiet', '--no-notices', '-o', outdir], {
      cwd: ROOT,
      env: offlineEnv(),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stderr, outdir }));
  });

// The CLI runs in its own process while the variants synthesize here.
let cli: Promise<CliResult>;
beforeAll(() => {
  cli = cdkSynth();
});

describe('cdk-nag AwsSolutions', () => {
  test.each(Object.entries(VARIANTS))(
    '%s: no unacknowledged finding, every acknowledgment has a reason',
    (_name, config) => {
      const { app, outdir } = synthBridge(config, { nag: true });
      app.synth();
      const report = readReport(outdir);
      const nag = report.pluginReports.find((r) => r.pluginName === 'AwsSolutions');
      expect(nag?.conclusion).toBe('success');
      expect(nag?.violations).toEqual([]);
      for (const suppressed of nag?.suppressedViolations ?? []) expect(suppressed.reason.length).toBeGreaterThan(40);
      outdirs.push(outdir);
    },
  );

  test('an unacknowledged finding fails the synth', async () => {
    const app = new App({
      outdir: mkdtempSync(join(tmpdir(), 'bridge-nag-')),
      context: { 'aws:cdk:bundling-stacks': [] },
    });
    const stack = addBridge(app, parseBridgeConfig(baseConfig()), { stage: 'test', env: {} });
    new sqs.Queue(stack, 'PlainQueue', { encryption: sqs.QueueEncryption.UNENCRYPTED });
    expect(() => app.synth()).toThrow(/AwsSolutions-SQS4[\s\S]*PlainQueue|PlainQueue[\s\S]*AwsSolutions-SQS4/);
    // The default config loads and is the one `npm run synth` checks above.
    await expect(loadBridgeConfig()).resolves.toMatchObject({ name: 'kafka-lambda-bridge' });
  });
});

describe('npm run synth', () => {
  test('cdk synth --quiet works offline, without AWS credentials, and passes cdk-nag', async () => {
    const { status, stderr, outdir } = await cli;
    expect({ status, stderr: status === 0 ? '' : stderr }).toEqual({ status: 0, stderr: '' });
    const report = readReport(outdir);
    expect(report.pluginReports.map((r) => [r.pluginName, r.conclusion, r.violations.length])).toEqual([
      ['AwsSolutions', 'success', 0],
    ]);
    expect(templatesIn(outdir)).toHaveLength(1);
    outdirs.push(outdir);
  }, 180_000);
});

describe('cfn-lint', () => {
  test('every synthesized template is clean', () => {
    const version = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' });
    if (version.error || version.status !== 0) {
      throw new Error(
        'cfn-lint is not installed, so the templates cannot be checked. Install it with `pip install cfn-lint` ' +
          '(or `python3 -m pip install cfn-lint`; .ci/run does this) and run the tests again.',
      );
    }
    const templates = outdirs.flatMap(templatesIn);
    // The CLI synth plus the variants: the test order above fills `outdirs`.
    expect(templates.length).toBe(1 + Object.keys(VARIANTS).length);
    const lint = spawnSync(
      'cfn-lint',
      ['--format', 'parseable', '--ignore-checks', ...CFN_LINT_IGNORED, '--', ...templates],
      { encoding: 'utf8' },
    );
    // Findings go to stdout; a crash or a bad argument only to stderr, with a non-zero status that must fail too.
    expect({
      status: lint.status,
      findings: lint.stdout.trim().split('\n').filter(Boolean),
      stderr: lint.status === 0 ? '' : lint.stderr,
    }).toEqual({ status: 0, findings: [], stderr: '' });
  });
});
