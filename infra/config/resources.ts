import { join } from 'node:path';
import { ROUTE_SETTINGS_ENV, type RouteSettings } from '../../functions/runtime/settings.ts';
import { type BridgeConfig, consumerGroupIdOf, HANDLERS_DIR, type RouteConfig } from './schema.ts';

/** The route named `name`, or an error listing the routes there are. */
export const findRoute = (config: BridgeConfig, name: string): RouteConfig => {
  const route = config.routes.find((r) => r.name === name);
  if (!route) {
    throw new Error(
      `no route "${name}" in config "${config.name}"; routes: ${config.routes.map((r) => r.name).join(', ')}`,
    );
  }
  return route;
};

export const isProvisioned = (route: RouteConfig): boolean => route.mode !== 'on-demand';

/** Absolute path of the route's handler module (it exports `handler`). */
export const resolveHandlerEntry = (route: Pick<RouteConfig, 'handler'>): string => join(HANDLERS_DIR, route.handler);

/**
 * What the runtime needs of a route, serialised into `BRIDGE_ROUTE_SETTINGS`.
 * A partial batch response is honoured only where the ESM reports it: provisioned mode
 * with `eventSource.reportBatchItemFailures`.
 */
export const routeSettingsFor = (_config: BridgeConfig, route: RouteConfig): RouteSettings => ({
  retry: route.retry,
  idempotency: route.idempotency,
  deadLetter: route.deadLetter,
  breaker: route.breaker,
  partialBatchResponse: isProvisioned(route) && route.eventSource.reportBatchItemFailures,
  partitionConcurrency: route.partitionConcurrency ?? 16,
  logPayloads: route.logPayloads ?? false,
});

/** The names the local tools give the resources CloudFormation names in AWS. */
export type LocalResourceNames = {
  readonly idempotencyTable: string;
  /** Route name → dead-letter queue name. */
  readonly deadLetterQueues: Readonly<Record<string, string>>;
  /** Route name → the queue standing in for the ESM's on-failure destination, for routes that have one. */
  readonly onFailureQueues: Readonly<Record<string, string>>;
  /** Route name → the route's retry queue, for routes that park records (`retry.park`). */
  readonly retryQueues: Readonly<Record<string, string>>;
  /** Side table name → table name. */
  readonly tables: Readonly<Record<string, string>>;
  /** Route name → consumer group id (the same one the ESM uses). */
  readonly consumerGroups: Readonly<Record<string, string>>;
};

/**
 * `namespace` gives a tool resources of its own beside the bridge's (`invoke` uses "invoke"), so what it writes never
 * meets the records the bridge consumes. Consumer groups are the bridge's either way.
 */
export const localResourceNames = (config: BridgeConfig, namespace?: string): LocalResourceNames => {
  // Route and table names are [a-z0-9-]: a namespace made of those could name another route's resources
  // (`invoke` + route `widgets` is route `invoke-widgets`), so it must hold a character they cannot.
  if (namespace !== undefined && /^[a-z0-9-]*$/.test(namespace))
    throw new Error(`local resource namespace "${namespace}" could collide with a route's names; use one with "_"`);
  const prefix = namespace ? `${config.name}-${namespace}` : config.name;
  return {
    idempotencyTable: `${prefix}-idempotency`,
    deadLetterQueues: Object.fromEntries(config.routes.map((r) => [r.name, `${prefix}-${r.name}-dlq`])),
    onFailureQueues: Object.fromEntries(
      config.routes
        .filter((r) => r.eventSource.onFailure !== 'none')
        .map((r) => [r.name, `${prefix}-${r.name}-on-failure`]),
    ),
    retryQueues: Object.fromEntries(
      config.routes.filter((r) => r.retry.park).map((r) => [r.name, `${prefix}-${r.name}-retry`]),
    ),
    tables: Object.fromEntries(config.routes.flatMap((r) => r.tables.map((t) => [t.name, `${prefix}-${t.name}`]))),
    consumerGroups: Object.fromEntries(config.routes.map((r) => [r.name, consumerGroupIdOf(config, r)])),
  };
};

export type RouteResources = {
  readonly idempotencyTableName: string;
  readonly deadLetterQueueUrl: string;
  /** The route's retry queue, when it parks records (`retry.park`). */
  readonly retryQueueUrl?: string | undefined;
  /** Side table name → physical table name (a CDK token in the stack). */
  readonly tableNames: Readonly<Record<string, string>>;
  /** Where a Confluent-compatible registry really is, when not at the config's URL (the local one). */
  readonly schemaRegistryUrl?: string;
};

/**
 * The environment contract of a route's function (DESIGN §5), shared by the CDK and the local
 * tools so both set exactly the same variables.
 */
export const routeEnvironment = (
  config: BridgeConfig,
  route: RouteConfig,
  resources: RouteResources,
): Record<string, string> => {
  const env: Record<string, string> = {
    BRIDGE_ROUTE: route.name,
    IDEMPOTENCY_TABLE_NAME: resources.idempotencyTableName,
    DLQ_URL: resources.deadLetterQueueUrl,
    METRICS_NAMESPACE: config.observability.namespace,
    LOG_LEVEL: config.observability.logLevel,
    [ROUTE_SETTINGS_ENV]: JSON.stringify(routeSettingsFor(config, route)),
    POWERTOOLS_SERVICE_NAME: route.name,
    POWERTOOLS_METRICS_NAMESPACE: config.observability.namespace,
  };
  if (route.retry.park) {
    if (!resources.retryQueueUrl) throw new Error(`route "${route.name}" parks records, but has no retry queue`);
    env.RETRY_QUEUE_URL = resources.retryQueueUrl;
  }
  const registry = route.registry;
  if (registry?.kind === 'confluent') {
    env.SCHEMA_REGISTRY_URL = resources.schemaRegistryUrl ?? registry.url;
    if (registry.secretArn) env.SCHEMA_REGISTRY_SECRET_ARN = registry.secretArn;
  } else if (registry?.kind === 'glue') {
    env.GLUE_REGISTRY_ARN = registry.registryArn;
  }
  for (const table of route.tables) {
    const name = resources.tableNames[table.name];
    if (name === undefined) throw new Error(`route "${route.name}": no table name given for table "${table.name}"`);
    env[table.env] = name;
  }
  return env;
};

/**
 * `routeEnvironment` with the local resource names (queue URL supplied by the caller): a tool's own `namespace`, and
 * the local schema registry in place of the configured one.
 */
export const localRouteEnvironment = (
  config: BridgeConfig,
  route: RouteConfig,
  deadLetterQueueUrl: string,
  options: {
    namespace?: string | undefined;
    schemaRegistryUrl?: string | undefined;
    retryQueueUrl?: string | undefined;
  } = {},
): Record<string, string> => {
  const names = localResourceNames(config, options.namespace);
  return routeEnvironment(config, route, {
    idempotencyTableName: names.idempotencyTable,
    deadLetterQueueUrl,
    ...(options.retryQueueUrl && { retryQueueUrl: options.retryQueueUrl }),
    tableNames: names.tables,
    ...(options.schemaRegistryUrl && { schemaRegistryUrl: options.schemaRegistryUrl }),
  });
};
