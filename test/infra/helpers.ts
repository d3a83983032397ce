import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { addBridge } from '../../infra/bridgeApp.ts';
import { BridgeConfigError, parseBridgeConfig } from '../../infra/config/load.ts';
import type { BridgeConfig, BridgeConfigInput } from '../../infra/config/schema.ts';
import type { BridgeStack } from '../../infra/stacks/BridgeStack.ts';

export const CLUSTER_ARN = 'arn:aws:kafka:eu-west-1:111122223333:cluster/events/abcd1234-abcd-cafe-abab-9876543210ab-4';
export const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:AmazonMSK_bridge-AbCdEf';
export const SECRET_KEY_ARN = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

/** A valid config to vary in tests: two routes on MSK with IAM auth. */
export const baseConfig = (): BridgeConfigInput => ({
  name: 'bridge-test',
  source: { kind: 'msk', clusterArn: CLUSTER_ARN, auth: 'iam' },
  routes: [
    {
      name: 'orders',
      topic: 'orders',
      handler: 'orders.ts',
      tables: [{ name: 'orders', partitionKey: 'orderId', env: 'ORDERS_TABLE_NAME' }],
    },
    {
      name: 'payments',
      topic: 'payments',
      handler: 'payments.ts',
      tables: [
        { name: 'accounts', partitionKey: 'accountId', env: 'ACCOUNTS_TABLE_NAME' },
        { name: 'ledger', partitionKey: 'txId', env: 'LEDGER_TABLE_NAME' },
      ],
    },
  ],
});

type RouteInput = NonNullable<BridgeConfigInput['routes']>[number];

/** `config` (default `baseConfig()`) with its first route (orders) changed. */
export const withOrders = (
  change: Partial<RouteInput>,
  config: BridgeConfigInput = baseConfig(),
): BridgeConfigInput => {
  const [orders, ...rest] = config.routes as RouteInput[];
  return { ...config, routes: [{ ...(orders as RouteInput), ...change }, ...rest] };
};

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The cdk CLI as `npm run synth` runs it. */
export const CDK_CLI = join(ROOT, 'node_modules/aws-cdk/bin/cdk');

/** The environment of a machine with no AWS credentials, and no config, stage or context chosen from outside. */
export const offlineEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_EC2_METADATA_DISABLED: 'true',
    CDK_DISABLE_CLI_TELEMETRY: 'true',
  };
  for (const key of Object.keys(env)) {
    const credentials = /^AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|PROFILE|DEFAULT_PROFILE)$/.test(key);
    const choices = /^(BRIDGE_.*|CDK_DEFAULT_.*|CDK_CONTEXT_JSON)$/.test(key);
    if (credentials || choices) delete env[key];
  }
  return { ...env, AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent' };
};

export type Synthesized = {
  readonly app: App;
  readonly stack: BridgeStack;
  readonly config: BridgeConfig;
  readonly template: Template;
  readonly outdir: string;
};

export type SynthOptions = {
  readonly stage?: string;
  /** Bundle the handlers with esbuild (slower); otherwise the asset is left unbundled. @default false */
  readonly bundle?: boolean;
  /** Add the cdk-nag plugin (then `app.synth()` throws on unacknowledged findings). @default true */
  readonly nag?: boolean;
};

/** Builds the bridge app for a config as `cdk synth` would, into a fresh temporary directory. */
export const synthBridge = (input: BridgeConfigInput | BridgeConfig, options: SynthOptions = {}): Synthesized => {
  const config = parseBridgeConfig(input);
  const outdir = mkdtempSync(join(tmpdir(), 'bridge-cdk-'));
  const app = new App({
    outdir,
    context: options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] },
  });
  const stack = addBridge(app, config, { stage: options.stage ?? 'test', nag: options.nag ?? true, env: {} });
  const template = Template.fromStack(stack);
  return { app, stack, config, template, outdir };
};

/** Every `AWS::IAM::Policy` statement in a template. */
export const policyStatements = (
  template: Template,
): Array<{ Action: string | string[]; Resource: unknown; Effect: string }> =>
  Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
    (policy) => (policy as { Properties: { PolicyDocument: { Statement: [] } } }).Properties.PolicyDocument.Statement,
  );

export const actionsOf = (statement: { Action: string | string[] }): string[] =>
  Array.isArray(statement.Action) ? statement.Action : [statement.Action];

/** The issues of a config that must not parse. */
export const issuesOf = (input: unknown) => {
  try {
    parseBridgeConfig(input);
  } catch (error) {
    expect(error).toBeInstanceOf(BridgeConfigError);
    return (error as BridgeConfigError).issues;
  }
  throw new Error('the config parsed, but it should not have');
};
