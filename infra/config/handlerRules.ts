// Rules that need what a route's handler module sets, which the config alone cannot show: whether it dedupes by a
// business key, and whether it fingerprints records. The CDK app checks them at synth, so a deploy never carries a
// route whose first invocation would refuse to run.
import { relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BridgeError } from '../../functions/runtime/errors.ts';
import type { HandlerDedupe } from '../../functions/runtime/kafkaHandler.ts';
import { BridgeConfigError, type ConfigIssue } from './load.ts';
import { resolveHandlerEntry } from './resources.ts';
import type { BridgeConfig, RouteConfig } from './schema.ts';

export const DEDUPE_RULE = 'dedupe-fits-handler';

/** A handler module's export: a kafkaHandler handler carries `dedupe`; anything else is not checked. */
type HandlerModule = { readonly handler?: { readonly dedupe?: HandlerDedupe } };
export type ImportHandler = (route: RouteConfig) => Promise<HandlerModule>;

const importEntry: ImportHandler = async (route) =>
  (await import(pathToFileURL(resolveHandlerEntry(route)).href)) as HandlerModule;

/** The problem of one route's dedupe settings against its handler, if any. */
export const dedupeProblem = (route: RouteConfig, dedupe: HandlerDedupe): string | undefined => {
  const strategy = route.idempotency.strategy ?? (dedupe.businessKey ? 'key' : 'watermark');
  if (strategy !== 'watermark') return undefined;
  if (dedupe.fingerprint)
    return (
      "the handler sets a fingerprint, but the watermark strategy dedupes by the record's coordinates, which never " +
      "come back with other content: give the handler a business idempotencyKey (and leave idempotency.strategy unset or 'key')"
    );
  if (dedupe.businessKey)
    return (
      "idempotency.strategy 'watermark' dedupes by the record's coordinates, but the handler sets an idempotencyKey: " +
      "leave the strategy unset (or 'key') for a business key"
    );
  return undefined;
};

/**
 * Loads every route's handler module and checks its dedupe against the route's config. A module the runtime refuses
 * to load (a fingerprint without a business key is refused right there) is a problem of its route too.
 */
export const checkRouteHandlers = async (
  config: BridgeConfig,
  importHandler: ImportHandler = importEntry,
): Promise<void> => {
  const issues: ConfigIssue[] = [];
  for (const [index, route] of config.routes.entries()) {
    const at = (message: string, field = 'handler') => {
      issues.push({ path: `routes[${index}].${field}`, message: `route "${route.name}": ${message} [${DEDUPE_RULE}]` });
    };
    let module: HandlerModule;
    try {
      module = await importHandler(route);
    } catch (error) {
      // The runtime's own refusals are the route's problem. Anything else (a handler that reads its environment
      // when it loads, which synth does not set) is not for this rule to judge: the bundling and the first
      // invocation report it.
      if (error instanceof BridgeError)
        at(`its handler ${relative(process.cwd(), resolveHandlerEntry(route))} refused to load: ${error.message}`);
      continue;
    }
    const dedupe = module.handler?.dedupe;
    const problem = dedupe && dedupeProblem(route, dedupe);
    if (problem) at(problem, route.idempotency.strategy ? 'idempotency.strategy' : 'handler');
  }
  if (issues.length > 0) throw new BridgeConfigError(config.name, issues);
};
