import { App } from 'aws-cdk-lib';
import { addBridge } from './bridgeApp.ts';
import { BridgeConfigError, loadBridgeConfig } from './config/load.ts';

/**
 * The CDK app: `npm run synth` / `npm run deploy`.
 *   -c bridgeConfig=<file>   another config (.ts or .json); or BRIDGE_CONFIG=<file>
 *   -c stage=<name>          deployment stage; "prod" retains data (or BRIDGE_STAGE)
 *   -c mskClusterArn=<arn>   the default config's cluster (or BRIDGE_MSK_CLUSTER_ARN)
 */
const app = new App();
try {
  const config = await loadBridgeConfig(undefined, { context: (key) => app.node.tryGetContext(key) });
  addBridge(app, config);
} catch (error) {
  if (error instanceof BridgeConfigError) {
    console.error(error.message);
    process.exit(1);
  }
  throw error;
}
