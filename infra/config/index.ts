/** The bridge config: one schema and loader for the CDK app, the local bridge and the scripts. */

export { DESTINATION_RETRY_CAP, type EsmRetryLimits, esmRetryLimits } from './esmRetries.ts';
export {
  BridgeConfigError,
  CONFIG_CONTEXT_KEY,
  CONFIG_ENV,
  type ConfigIssue,
  DEFAULT_CONFIG_PATH,
  formatIssuePath,
  type LoadOptions,
  loadBridgeConfig,
  parseBridgeConfig,
  resolveConfigPath,
} from './load.ts';
export {
  findRoute,
  isProvisioned,
  type LocalResourceNames,
  localResourceNames,
  localRouteEnvironment,
  type RouteResources,
  resolveHandlerEntry,
  routeEnvironment,
  routeSettingsFor,
} from './resources.ts';
export {
  BridgeConfig,
  type BridgeConfigInput,
  type BridgeConfigModule,
  type ConfigContext,
  consumerGroupIdOf,
  consumerGroupIdProblem,
  defineBridgeConfig,
  HANDLERS_DIR,
  KafkaSource,
  kafkaTopicProblem,
  RouteConfig,
  type RouteConfigInput,
  Rule,
  SideTable,
} from './schema.ts';
