import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { addBridge } from '../../infra/bridgeApp.ts';
import { parseBridgeConfig } from '../../infra/config/load.ts';
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
