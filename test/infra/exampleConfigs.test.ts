// The example configs under infra/examples/ (run with `npm start -- --config <file>`, deployed with
// `npm run synth -- -c bridgeConfig=<file>`): each loads through the config loader as a user's file would, and
// synthesizes with no unacknowledged cdk-nag finding.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Match } from 'aws-cdk-lib/assertions';
import { loadBridgeConfig } from '../../infra/config/load.ts';
import { synthBridge } from './helpers.ts';

const EXAMPLES_DIR = fileURLToPath(new URL('../../infra/examples/', import.meta.url));
const examples = readdirSync(EXAMPLES_DIR).filter((file) => /\.config\.(ts|json)$/.test(file));

type NagReport = { pluginReports: Array<{ pluginName: string; conclusion: string; violations: unknown[] }> };

test('there are examples to check', () => {
  expect(examples).toContain('registry.config.ts');
});

test.each(examples)('%s: loads, validates and synthesizes with cdk-nag clean', async (file) => {
  // No context and no BRIDGE_* variables: the placeholders a fresh clone synthesizes with.
  const config = await loadBridgeConfig(join(EXAMPLES_DIR, file), { env: {} });
  const { app, outdir } = synthBridge(config, { nag: true });
  app.synth();
  const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as NagReport;
  const nag = report.pluginReports.find((r) => r.pluginName === 'AwsSolutions');
  expect(nag).toMatchObject({ conclusion: 'success', violations: [] });
});

test('registry.config.ts: the Avro route reads its registry at the configured URL, with no secret', async () => {
  const config = await loadBridgeConfig(join(EXAMPLES_DIR, 'registry.config.ts'), {
    env: { BRIDGE_SCHEMA_REGISTRY_URL: 'https://registry.internal.example/apis/ccompat/v7' },
  });
  const { template } = synthBridge(config, { nag: false });
  template.hasResourceProperties('AWS::Lambda::Function', {
    Environment: {
      Variables: Match.objectLike({
        BRIDGE_ROUTE: 'orders-avro',
        SCHEMA_REGISTRY_URL: 'https://registry.internal.example/apis/ccompat/v7',
        SCHEMA_REGISTRY_SECRET_ARN: Match.absent(),
      }),
    },
  });
});
