import { Annotations, type App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { BridgeConfig } from './config/schema.ts';
import { MSK_CLUSTER_ARN } from './config/schema.ts';
import { acknowledgeNagFindings } from './nag.ts';
import { BridgeStack } from './stacks/BridgeStack.ts';

/** The stage names a deployment; `prod` is production (data retained, deletion protection on). */
export const STAGE_CONTEXT_KEY = 'stage';
export const STAGE_ENV = 'BRIDGE_STAGE';
export const PRODUCTION_STAGES: readonly string[] = ['prod', 'production'];

export type BridgeAppOptions = {
  /** @default context `stage`, else env BRIDGE_STAGE, else "dev" */
  readonly stage?: string;
  /** Run cdk-nag AwsSolutions checks at synth. @default true */
  readonly nag?: boolean;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Routes to deploy without their event source mapping (`-c detachEventSource`, see replacements.ts). */
  readonly detachedRoutes?: readonly string[];
};

export const resolveStage = (app: App, options: BridgeAppOptions = {}): string => {
  const env = options.env ?? process.env;
  const stage = options.stage ?? app.node.tryGetContext(STAGE_CONTEXT_KEY) ?? env[STAGE_ENV] ?? 'dev';
  if (typeof stage !== 'string' || !/^[a-z][a-z0-9-]{0,15}$/.test(stage)) {
    throw new Error(`stage must be lower-case kebab-case, at most 16 characters (got ${JSON.stringify(stage)})`);
  }
  return stage;
};

/**
 * Adds the bridge stack for `config` to `app`, with cdk-nag's AwsSolutions checks as a validation
 * plugin (synth fails on unacknowledged errors) and the acknowledged findings, each with its reason.
 */
export const addBridge = (app: App, config: BridgeConfig, options: BridgeAppOptions = {}): BridgeStack => {
  const env = options.env ?? process.env;
  const stage = resolveStage(app, options);
  const production = PRODUCTION_STAGES.includes(stage);
  const mskRegion = config.source.kind === 'msk' ? MSK_CLUSTER_ARN.exec(config.source.clusterArn)?.[2] : undefined;
  const stack = new BridgeStack(app, `${config.name}-${stage}`, {
    config,
    stage,
    ...(options.detachedRoutes && { detachedRoutes: options.detachedRoutes }),
    retainData: config.retainData ?? production,
    // An MSK event source mapping must live in the cluster's region.
    env: { account: env.CDK_DEFAULT_ACCOUNT, region: mskRegion ?? env.CDK_DEFAULT_REGION },
    description: `kafka-lambda-bridge ${config.name} (${stage}): Kafka topics into Lambda with dedupe, dead-lettering and alarms`,
    tags: { 'kafka-lambda-bridge:config': config.name, 'kafka-lambda-bridge:stage': stage },
  });
  if (config.source.kind === 'msk' && config.source.clusterArn.includes('/replace-me/')) {
    Annotations.of(stack).addWarningV2(
      'kafka-lambda-bridge:placeholder-cluster',
      'source.clusterArn is the placeholder; pass -c mskClusterArn=<arn> or BRIDGE_MSK_CLUSTER_ARN before deploying',
    );
  }
  if (options.nag ?? true) {
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    acknowledgeNagFindings(stack);
  }
  return stack;
};
