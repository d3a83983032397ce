// The local bridge: every selected route of a config, each with its own consumer group and its own worker (like
// its own Lambda function), plus a progress tick. Used by `npm run bridge` (cli.ts) and `npm start` (demo.ts).
import fs from 'node:fs';
import path from 'node:path';
import type { BridgeConfig } from '../../infra/config/index.ts';
import { findRoute } from '../../infra/config/index.ts';
import { eventSourceOf } from '../lib/kafkaEvents.ts';
import { ensureLocalResources } from '../lib/localResources.ts';
import { localPaths } from '../local/config.ts';
import { RouteBridge } from './routeBridge.ts';
import type { RouteSnapshot } from './stats.ts';

export type HandlerOutput =
  /** One file per route under .local/logs (the default). */
  { readonly kind: 'file'; readonly dir?: string } | { readonly kind: 'inherit' } | { readonly kind: 'discard' };

export type BridgeOptions = {
  readonly config: BridgeConfig;
  /** Route names (default: all). */
  readonly routes?: readonly string[];
  readonly brokers: readonly string[];
  /** Create missing topics first (default true). Tables and queues are always ensured: the DLQ URLs come from there. */
  readonly createTopics?: boolean;
  readonly partitions?: number;
  readonly windowMs?: number;
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** ESM pollers per route (default: the route's minPollers in provisioned mode, else 1). */
  readonly pollers?: number;
  /**
   * Join a route's explicit `consumerGroupId` (the group its deployed mapping uses) on brokers that are not local.
   * Off by default: the bridge would take partitions, and commit offsets, away from production.
   */
  readonly allowProductionGroup?: boolean;
  readonly handlerOutput?: HandlerOutput;
  /** Progress tick (default every 5 s); lag is refreshed before each. */
  readonly progressIntervalMs?: number;
  readonly onProgress?: (snapshots: RouteSnapshot[]) => void;
  readonly log?: (line: string) => void;
};

export type BridgeHandle = {
  readonly routes: readonly RouteBridge[];
  readonly handlerLogs: readonly string[];
  snapshots(): RouteSnapshot[];
  /** Refreshes every route's lag now. */
  refreshLag(): Promise<void>;
  /** Graceful stop; `graceMs` bounds the wait for batches in flight (default: the longest route timeout). */
  stop(graceMs?: number): Promise<void>;
};

export const handlerLogPath = (config: BridgeConfig, route: string, dir = localPaths().logs): string =>
  path.join(dir, `bridge-${config.name}-${route}.log`);

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[?::1\]?)$/;
/** A broker address ("host:port", "[::1]:9092") on this machine. */
export const isLocalBroker = (broker: string): boolean => LOOPBACK.test(broker.replace(/:\d+$/, ''));

/**
 * A route with an explicit `consumerGroupId` uses that group in every stage, so a bridge joining it on a shared
 * cluster would split the partitions with the deployed mapping and commit offsets in its name. The default group of
 * the local tools (`<config>-<route>`) carries no stage and is never a deployed one.
 */
const refuseProductionGroups = (
  config: BridgeConfig,
  routes: readonly string[],
  brokers: readonly string[],
  allowed: boolean,
): void => {
  const remote = brokers.filter((b) => !isLocalBroker(b));
  if (allowed || remote.length === 0) return;
  const shared = config.routes.filter((r) => routes.includes(r.name) && r.consumerGroupId !== undefined);
  if (shared.length === 0) return;
  throw new Error(
    `refusing to join ${shared.map((r) => `route "${r.name}"'s consumer group "${r.consumerGroupId}"`).join(', ')} on ` +
      `${remote.join(',')}: that is the group its deployed event source mapping consumes in, and the bridge would take ` +
      'partitions and commit offsets away from it. Use a config without consumerGroupId for local runs, or pass ' +
      '--allow-production-group if that is really what you want.',
  );
};

export const startBridge = async (options: BridgeOptions): Promise<BridgeHandle> => {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { config } = options;
  const names = options.routes && options.routes.length > 0 ? [...options.routes] : config.routes.map((r) => r.name);
  for (const name of names) findRoute(config, name);
  refuseProductionGroups(config, names, options.brokers, options.allowProductionGroup ?? false);
  const resources = await ensureLocalResources(config, {
    routes: names,
    topics: options.createTopics ?? true,
    ...(options.partitions !== undefined && { partitions: options.partitions }),
  });
  const source = eventSourceOf(config, options.brokers);
  const output = options.handlerOutput ?? { kind: 'file' };
  const files: fs.WriteStream[] = [];
  const handlerLogs: string[] = [];
  const bridges = resources.map((resource) => {
    let onHandlerOutput: ((line: string) => void) | undefined;
    if (output.kind === 'file') {
      const file = handlerLogPath(config, resource.route.name, output.dir);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const stream = fs.createWriteStream(file, { flags: 'a' });
      files.push(stream);
      handlerLogs.push(file);
      onHandlerOutput = (line) => stream.write(`${line}\n`);
    } else if (output.kind === 'inherit') {
      onHandlerOutput = (line) => process.stdout.write(`${line}\n`);
    }
    return new RouteBridge({
      config,
      route: resource.route,
      environment: resource.environment,
      brokers: options.brokers,
      source,
      ...(resource.onFailureQueueUrl && { onFailureQueueUrl: resource.onFailureQueueUrl }),
      ...(resource.retryQueueUrl && { retryQueueUrl: resource.retryQueueUrl }),
      ...(options.pollers !== undefined && { pollers: options.pollers }),
      ...(options.windowMs !== undefined && { windowMs: options.windowMs }),
      ...(options.backoffBaseMs !== undefined && { backoffBaseMs: options.backoffBaseMs }),
      ...(options.backoffMaxMs !== undefined && { backoffMaxMs: options.backoffMaxMs }),
      ...(onHandlerOutput && { onHandlerOutput }),
      log,
    });
  });
  try {
    await Promise.all(bridges.map((b) => b.start()));
  } catch (error) {
    await Promise.allSettled(bridges.map((b) => b.stop(0)));
    throw error;
  }

  const refreshLag = async () => {
    await Promise.all(bridges.map((b) => b.refreshLag()));
  };
  const snapshots = () => bridges.map((b) => b.stats.snapshot(Date.now()));
  let ticking = false;
  const tick = setInterval(async () => {
    if (ticking) return;
    ticking = true;
    try {
      await refreshLag();
      options.onProgress?.(snapshots());
    } finally {
      ticking = false;
    }
  }, options.progressIntervalMs ?? 5_000);

  let stopping: Promise<void> | undefined;
  return {
    routes: bridges,
    handlerLogs,
    snapshots,
    refreshLag,
    stop: (graceMs) => {
      stopping ??= (async () => {
        clearInterval(tick);
        const grace = graceMs ?? Math.max(...bridges.map((b) => b.route.timeoutSeconds)) * 1000;
        await Promise.all(bridges.map((b) => b.stop(grace)));
        await Promise.all(files.map((f) => new Promise<void>((resolve) => f.end(resolve))));
      })();
      return stopping;
    },
  };
};
