import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { App, Token } from 'aws-cdk-lib';
import { addBridge } from './bridgeApp.ts';
import { checkRouteHandlers } from './config/handlerRules.ts';
import { BridgeConfigError, loadBridgeConfig } from './config/load.ts';
import type { BridgeConfig } from './config/schema.ts';
import {
  ACCEPT_CONTEXT_KEY,
  COMPARE_WITH_CONTEXT_KEY,
  DETACH_CONTEXT_KEY,
  findMappingReplacements,
  formatReplacements,
  mappingRoutes,
  parseCompareWith,
  parseRouteList,
  unaccepted,
} from './replacements.ts';
import type { BridgeStack } from './stacks/BridgeStack.ts';

/**
 * The CDK app: `npm run synth` / `npm run deploy`.
 *   -c bridgeConfig=<file>   another config (.ts or .json); or BRIDGE_CONFIG=<file>
 *   -c stage=<name>          deployment stage; "prod" retains data (or BRIDGE_STAGE)
 *   -c mskClusterArn=<arn>   the default config's cluster (or BRIDGE_MSK_CLUSTER_ARN)
 * Event source mapping changes that one deploy cannot make (source, topic, consumer group, starting position;
 * see replacements.ts) fail the synth, checked against:
 *   -c compareWith=synth     the stack's template from the previous synth in the output directory (the default)
 *   -c compareWith=aws       the deployed stack's template (CloudFormation GetTemplate; needs credentials)
 *   -c compareWith=none      nothing: no check
 * The cdk CLI takes no flags of its own, hence context. The two-step procedure the failure prints uses
 *   -c detachEventSource=<route>[,<route>]   deploy those routes without their event source mappings
 *   -c acceptReplacement=<route>[,<route>]   the old mappings are already gone: let the change through
 */
function fail(message: string): never {
  console.error(message);
  process.exit(1);
}

const app = new App();
const context = (key: string): unknown => app.node.tryGetContext(key);

let config: BridgeConfig;
try {
  config = await loadBridgeConfig(undefined, { context });
  await checkRouteHandlers(config);
} catch (error) {
  if (error instanceof BridgeConfigError) fail(error.message);
  throw error;
}

const routeNames = config.routes.map((route) => route.name);
const routeList = (key: string): readonly string[] => {
  let list: readonly string[] | 'all';
  try {
    list = parseRouteList(context(key));
  } catch (error) {
    fail(`-c ${key}: ${(error as Error).message}`);
  }
  if (list === 'all') return routeNames;
  const unknown = list.filter((name) => !routeNames.includes(name));
  if (unknown.length > 0) fail(`-c ${key}: no route named ${unknown.join(', ')} (routes: ${routeNames.join(', ')})`);
  return list;
};

const stack: BridgeStack = addBridge(app, config, { detachedRoutes: routeList(DETACH_CONTEXT_KEY) });
const accepted = routeList(ACCEPT_CONTEXT_KEY);
let compareWith: ReturnType<typeof parseCompareWith>;
try {
  compareWith = parseCompareWith(context(COMPARE_WITH_CONTEXT_KEY));
} catch (error) {
  fail((error as Error).message);
}

// The cdk CLI leaves its output directory in place, so the previous synth's template is still there to read.
const templatePath = join(app.outdir, stack.templateFile);
const lastSynth = existsSync(templatePath) ? readFileSync(templatePath, 'utf8') : undefined;
let previous: unknown;
const shownPath = relative(process.cwd(), templatePath);
let comparedWith = shownPath.startsWith('..') ? templatePath : shownPath;
if (compareWith === 'synth' && lastSynth !== undefined) {
  try {
    previous = JSON.parse(lastSynth);
  } catch (error) {
    fail(
      `cannot read the previous template ${comparedWith}: ${(error as Error).message}; ` +
        `delete it, or skip the check with -c ${COMPARE_WITH_CONTEXT_KEY}=none`,
    );
  }
} else if (compareWith === 'aws') {
  const { DeployedTemplateError, fetchDeployedTemplate } = await import('./deployedTemplate.ts');
  const region = Token.isUnresolved(stack.region) ? undefined : stack.region;
  comparedWith = `the deployed stack ${stack.stackName}`;
  try {
    previous = await fetchDeployedTemplate({ stackName: stack.stackName, region });
  } catch (error) {
    if (error instanceof DeployedTemplateError) fail(error.message);
    throw error;
  }
}

app.synth();

if (previous !== undefined) {
  const next: unknown = JSON.parse(readFileSync(templatePath, 'utf8'));
  const replacements = findMappingReplacements(previous, next, { routes: mappingRoutes(stack) });
  const blocking = unaccepted(replacements, accepted);
  if (blocking.length > 0) {
    // Put the previous template back, so the next synth compares with it again instead of passing.
    if (lastSynth === undefined) rmSync(templatePath, { force: true });
    else writeFileSync(templatePath, lastSynth);
    fail(formatReplacements(blocking, { stackName: stack.stackName, comparedWith }));
  }
  if (replacements.length > 0) {
    const routes = [...new Set(replacements.map((r) => r.route))].join(', ');
    console.error(`${stack.stackName}: replacing the event source mappings of ${routes} (-c ${ACCEPT_CONTEXT_KEY})`);
  }
}
