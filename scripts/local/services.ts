// The local service manager: Kafka (KRaft), DynamoDB Local and ElasticMQ as detached JVMs fetched from Maven
// Central into .local/, with PID files, logs and readiness checks through the real clients. All three keep their data
// on disk under .local/<service>/data, so after a restart they still agree on what was consumed and completed.
//
// Public API (everything else in scripts/local is an implementation detail):
//   ensureLocalServices(opts?)      start what is not running, wait until every service answers
//   stopLocalServices(names?, opts?) stop what we started (SIGTERM, then SIGKILL), free the ports
//   releaseLocalServices(started, opts?)  stop what one run started, keep what was up before; one line saying which
//   localServicesStatus(opts?)      what runs where
//   wipeLocalData(names?, opts?)    remove stopped services' data (Kafka's logs, DynamoDB Local's tables, ElasticMQ's H2)
//   checkExternalEndpoints(opts?)   fail at once when an endpoint from the environment refuses connections
//   applyEndpointsToEnv(endpoints, env?)  KAFKA_BROKERS, AWS_ENDPOINT_URL_* and (when unset) region + dummy keys
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describeFailure, isConnectionRefused } from '../lib/cliArgs.ts';
import {
  BIND_HOST,
  type EndpointPlan,
  endpointsFromPlans,
  kafkaFiles,
  kafkaStorageFormatCommand,
  type LocalEndpoints,
  type LocalPaths,
  type LocalPorts,
  localPaths,
  MAIN_CLASSES,
  newKafkaClusterId,
  PERSIST_ENV,
  PORT_ENV_VARS,
  planEndpoint,
  REPO_ROOT,
  renderElasticMqConf,
  renderKafkaLog4j2,
  renderKafkaServerProperties,
  resolvePorts,
  SERVICE_LABELS,
  SERVICE_NAMES,
  SERVICE_VERSIONS,
  type ServiceName,
  STATE_DIR_ENV,
  serviceCommand,
  servicePorts,
} from './config.ts';
import { describePortHolder, isPortFree, waitForPortsFree } from './ports.ts';
import { probe, waitUntilReady } from './probes.ts';
import {
  isRecordAlive,
  type PidRecord,
  readPidFile,
  removePidFile,
  spawnDetached,
  stopProcess,
  tailFile,
  writePidFile,
} from './processes.ts';
import { checkJava, LocalServicesError, resolveServiceLib } from './tools.ts';

export {
  applyEndpointsToEnv,
  ENDPOINT_ENV_VARS,
  formatExports,
  type LocalEndpoints,
  PERSIST_ENV,
  PORT_ENV_VARS,
  resolveEndpoints,
  SERVICE_NAMES,
  type ServiceName,
  STATE_DIR_ENV,
} from './config.ts';
export { LocalServicesError, MissingToolError } from './tools.ts';

export class PortInUseError extends LocalServicesError {
  readonly port: number;
  constructor(message: string, port: number, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PortInUseError';
    this.port = port;
  }
}

export class ServiceStartError extends LocalServicesError {
  readonly service: ServiceName;
  constructor(service: ServiceName, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ServiceStartError';
    this.service = service;
  }
}

export type LocalServicesOptions = {
  /** Which services; default all three. */
  services?: readonly ServiceName[];
  /** Where endpoint overrides and LOCAL_*_PORT are read; default process.env. */
  env?: Record<string, string | undefined>;
  /** Progress lines (no trailing newline); default silent. */
  log?: (line: string) => void;
  /** How long a started service may take to answer; default 120 s (three JVMs on two cores). */
  readyTimeoutMs?: number;
};

type Ctx = {
  paths: LocalPaths;
  ports: LocalPorts;
  env: Record<string, string | undefined>;
  log: (line: string) => void;
  readyTimeoutMs: number;
};

function context(opts: LocalServicesOptions = {}): Ctx {
  const env = opts.env ?? process.env;
  return {
    paths: localPaths(
      REPO_ROOT,
      env[STATE_DIR_ENV]?.trim() || undefined,
      ['1', 'true'].includes(env[PERSIST_ENV] ?? ''),
    ),
    ports: resolvePorts(env),
    env,
    log: opts.log ?? (() => {}),
    readyTimeoutMs: opts.readyTimeoutMs ?? 120_000,
  };
}

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)}s`;

const STOP_GRACE_MS: Record<ServiceName, number> = { kafka: 30_000, dynamodb: 10_000, elasticmq: 10_000 };

// ---------------------------------------------------------------------------------------------------------------
// A lock file so two `up`s (a developer's CLI and a test run) never start the same service twice.

async function withLock<T>(ctx: Ctx, fn: () => Promise<T>): Promise<T> {
  const file = ctx.paths.lockFile;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const deadline = Date.now() + 15 * 60_000;
  let announced = false;
  for (;;) {
    try {
      const fd = fs.openSync(file, 'wx');
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(fs.readFileSync(file, 'utf8').trim());
      let alive = false;
      try {
        if (holder > 0) {
          process.kill(holder, 0);
          alive = true;
        }
      } catch {}
      if (!alive || holder === process.pid) {
        fs.rmSync(file, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new LocalServicesError(`another process (pid ${holder}) holds ${file}; remove it if that is stale`);
      }
      if (!announced) ctx.log(`waiting for another local-services command (pid ${holder})…`);
      announced = true;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(file, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Managed processes

function liveRecord(ctx: Ctx, name: ServiceName): PidRecord | undefined {
  const record = readPidFile(ctx.paths.pidFile(name));
  if (!record) return undefined;
  if (isRecordAlive(record)) return record;
  removePidFile(ctx.paths.pidFile(name));
  return undefined;
}

function mainClassOf(name: ServiceName): string {
  return MAIN_CLASSES[name];
}

async function assertPortsFree(ctx: Ctx, name: ServiceName): Promise<void> {
  for (const [i, port] of servicePorts(name, ctx.ports).entries()) {
    if (await isPortFree(BIND_HOST, port)) continue;
    const holder = await describePortHolder(port);
    const envVar = name === 'kafka' && i === 1 ? PORT_ENV_VARS.kafkaController : PORT_ENV_VARS[name];
    throw new PortInUseError(
      `cannot start ${SERVICE_LABELS[name]}: port ${port} is already in use${holder ? ` by ${holder}` : ''}, ` +
        `and not by a process these scripts started (no live ${path.relative(ctx.paths.root, ctx.paths.pidFile(name))}). ` +
        `Stop it, move ours with ${envVar}=<port>, or use it as is by setting ` +
        `${name === 'kafka' ? 'KAFKA_BROKERS' : name === 'dynamodb' ? 'AWS_ENDPOINT_URL_DYNAMODB' : 'AWS_ENDPOINT_URL_SQS'}.`,
      port,
    );
  }
}

async function runToCompletion(java: string, cwd: string, args: string[], logFile: string): Promise<number | null> {
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const out = fs.openSync(logFile, 'a');
  try {
    return await new Promise((resolve, reject) => {
      const child = spawn(java, args, { cwd, stdio: ['ignore', out, out] });
      child.once('error', reject);
      child.once('exit', (code) => resolve(code));
    });
  } finally {
    fs.closeSync(out);
  }
}

/** Writes the service's config files; for Kafka also formats the storage the first time. */
async function prepare(ctx: Ctx, name: ServiceName, java: string): Promise<void> {
  const home = ctx.paths.home(name);
  fs.mkdirSync(home, { recursive: true });
  fs.mkdirSync(ctx.paths.logs, { recursive: true });
  // With PERSIST_ENV, DynamoDB Local's tables and ElasticMQ's queues live on disk, as Kafka's topics and offsets do:
  // after a restart the three agree on what was consumed, completed and dead-lettered (`local:down --clean` wipes
  // all three).
  const persistent = ctx.paths.persist && (name === 'dynamodb' || name === 'elasticmq');
  if (persistent) fs.mkdirSync(ctx.paths.dataDir(name), { recursive: true });
  if (name === 'elasticmq') {
    const dataDir = persistent ? ctx.paths.dataDir('elasticmq') : undefined;
    fs.writeFileSync(
      path.join(home, 'elasticmq.conf'),
      renderElasticMqConf({ port: ctx.ports.elasticmq, ...(dataDir && { dataDir }) }),
    );
  }
  if (name === 'kafka') {
    const files = kafkaFiles(ctx.paths);
    fs.writeFileSync(
      files.serverProperties,
      renderKafkaServerProperties({ ports: ctx.ports, dataDir: ctx.paths.kafkaDataDir }),
    );
    fs.writeFileSync(files.log4j2, renderKafkaLog4j2(ctx.paths.kafkaServerLog));
    if (!fs.existsSync(path.join(ctx.paths.kafkaDataDir, 'meta.properties'))) {
      const clusterId = newKafkaClusterId(randomBytes(16));
      ctx.log(`kafka: formatting storage (cluster id ${clusterId})…`);
      const cmd = kafkaStorageFormatCommand(ctx.paths, clusterId);
      const code = await runToCompletion(java, cmd.cwd, cmd.args, ctx.paths.logFile('kafka'));
      if (code !== 0) {
        throw new ServiceStartError(
          'kafka',
          `kafka storage format failed (exit ${code}):\n${tailFile(ctx.paths.logFile('kafka'))}`,
        );
      }
    }
  }
}

async function startManaged(ctx: Ctx, name: ServiceName): Promise<void> {
  const label = SERVICE_LABELS[name];
  const java = await checkJava();
  await resolveServiceLib(name, ctx.paths.pom(name), ctx.paths.lib(name), ctx.log);
  await assertPortsFree(ctx, name);
  await prepare(ctx, name, java);
  const started = Date.now();
  const endpoint = planEndpoint(name, {}, ctx.ports).endpoint;
  ctx.log(`${label} ${SERVICE_VERSIONS[name]}: starting on ${endpoint}…`);
  const cmd = serviceCommand(name, ctx.paths, ctx.ports);
  const logFile = ctx.paths.logFile(name);
  const child = spawnDetached(java, cmd.args, { cwd: cmd.cwd, logFile });
  const record: PidRecord = {
    pid: child.pid,
    mainClass: mainClassOf(name),
    ports: servicePorts(name, ctx.ports),
    startedAt: new Date().toISOString(),
    log: logFile,
  };
  writePidFile(ctx.paths.pidFile(name), record);
  const logs = () => {
    const main = tailFile(logFile, 15);
    const server = name === 'kafka' ? tailFile(ctx.paths.kafkaServerLog, 15) : '';
    return [main && `--- ${logFile}\n${main}`, server && `--- ${ctx.paths.kafkaServerLog}\n${server}`]
      .filter(Boolean)
      .join('\n');
  };
  try {
    await waitUntilReady(name, endpoint, {
      deadline: Date.now() + ctx.readyTimeoutMs,
      failFast: () => {
        const exit = child.exited();
        if (!exit) return undefined;
        return new ServiceStartError(
          name,
          `${label} exited during startup (code ${exit.code}, signal ${exit.signal}):\n${logs()}`,
        );
      },
    });
  } catch (error) {
    await stopProcess(child.pid, 5_000);
    removePidFile(ctx.paths.pidFile(name));
    if (error instanceof ServiceStartError) throw error;
    throw new ServiceStartError(name, `${(error as Error).message}\n${logs()}`, { cause: error });
  }
  ctx.log(`${label} ready on ${endpoint} (${seconds(started)}, pid ${child.pid})`);
}

async function stopManaged(ctx: Ctx, name: ServiceName): Promise<boolean> {
  const record = liveRecord(ctx, name);
  if (!record) return false;
  const label = SERVICE_LABELS[name];
  const started = Date.now();
  ctx.log(`${label}: stopping (pid ${record.pid})…`);
  const how = await stopProcess(record.pid, STOP_GRACE_MS[name]);
  removePidFile(ctx.paths.pidFile(name));
  const busy = await waitForPortsFree(BIND_HOST, record.ports, 10_000);
  if (busy.length > 0) {
    throw new LocalServicesError(`${label} stopped, but port(s) ${busy.join(', ')} are still in use`);
  }
  ctx.log(`${label} stopped (${how === 'killed' ? 'SIGKILL after timeout, ' : ''}${seconds(started)})`);
  return true;
}

/** Makes sure one managed service is up; resolves true when this call started it. */
async function ensureManaged(ctx: Ctx, name: ServiceName): Promise<boolean> {
  const label = SERVICE_LABELS[name];
  const wanted = servicePorts(name, ctx.ports);
  const record = liveRecord(ctx, name);
  if (record) {
    if (record.ports.join(',') !== wanted.join(',')) {
      ctx.log(`${label} runs on port(s) ${record.ports.join(', ')}, ${wanted.join(', ')} wanted: restarting`);
      await stopManaged(ctx, name);
    } else {
      const endpoint = planEndpoint(name, {}, ctx.ports).endpoint;
      try {
        await probe(name, endpoint, 1_500);
      } catch {
        ctx.log(`${label} (pid ${record.pid}) is running but not answering yet; waiting…`);
        await waitUntilReady(name, endpoint, { deadline: Date.now() + ctx.readyTimeoutMs });
      }
      ctx.log(`${label} already running on ${endpoint} (pid ${record.pid})`);
      return false;
    }
  }
  await startManaged(ctx, name);
  return true;
}

/** How long a refused connection to an endpoint from the environment is retried: a service may be binding its port. */
const REFUSED_GRACE_MS = 2_000;
/** How often a wait for an endpoint from the environment says it is still waiting. */
const WAITING_NOTE_MS = 10_000;

/** The error for an endpoint from the environment that refuses connections: one line, with what to do. */
function refusedError(plan: Extract<EndpointPlan, { external: true }>): LocalServicesError {
  const label = SERVICE_LABELS[plan.name];
  return new LocalServicesError(
    `cannot connect to ${label} at ${plan.endpoint}, the endpoint in ${plan.envVar} (connection refused): ` +
      `start it there (\`npm run local:up\` in a shell without ${plan.envVar} starts the local services), ` +
      `or unset ${plan.envVar} to have these scripts start ${label}`,
  );
}

/**
 * Waits for a service someone else runs. A refused connection (nothing listens there) fails within a couple of
 * seconds, not after the readiness timeout; a service that is slow to answer gets a progress line every few seconds.
 */
async function waitForExternal(ctx: Ctx, plan: Extract<EndpointPlan, { external: true }>): Promise<void> {
  const label = SERVICE_LABELS[plan.name];
  const started = Date.now();
  const deadline = started + ctx.readyTimeoutMs;
  let refusedSince: number | undefined;
  let noted = 0;
  for (;;) {
    try {
      await probe(plan.name, plan.endpoint, Math.max(500, Math.min(3_000, deadline - Date.now())));
      return;
    } catch (error) {
      if (isConnectionRefused(error)) {
        refusedSince ??= Date.now();
        if (Date.now() - refusedSince >= REFUSED_GRACE_MS) throw refusedError(plan);
      } else {
        refusedSince = undefined;
        if (Date.now() - noted >= WAITING_NOTE_MS) {
          noted = Date.now();
          ctx.log(
            `${label}: ${plan.endpoint} from ${plan.envVar} is not answering yet (${describeFailure(error)}); ` +
              `waiting up to ${Math.round(ctx.readyTimeoutMs / 1000)}s…`,
          );
        }
        if (Date.now() >= deadline) {
          throw new LocalServicesError(
            `${label} at ${plan.endpoint} (from ${plan.envVar}) is not ready after ${seconds(started)}: ` +
              `${describeFailure(error)} (unset ${plan.envVar} to have these scripts start ${label})`,
            { cause: error },
          );
        }
      }
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function ensureOne(ctx: Ctx, plan: EndpointPlan): Promise<boolean> {
  if (!plan.external) return ensureManaged(ctx, plan.name);
  const started = Date.now();
  await waitForExternal(ctx, plan);
  ctx.log(`${SERVICE_LABELS[plan.name]}: using ${plan.endpoint} from ${plan.envVar} (ready, ${seconds(started)})`);
  return false;
}

/** Rejects with the first failure, after every task has settled (so nothing is left half-started unseen). */
async function allSettled<T>(tasks: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(tasks);
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length === 1) throw failed[0]?.reason;
  if (failed.length > 1) {
    throw new AggregateError(
      failed.map((f) => f.reason),
      failed.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason))).join('\n\n'),
    );
  }
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

// ---------------------------------------------------------------------------------------------------------------
// Public API

/**
 * Starts, in parallel, every service that is neither running (our PID file, live, answering) nor provided through
 * KAFKA_BROKERS / AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_SQS, then waits until all of them answer.
 * `started` lists the services this call started, so a caller can stop exactly those.
 */
export async function ensureLocalServices(
  opts: LocalServicesOptions = {},
): Promise<{ endpoints: LocalEndpoints; started: ServiceName[] }> {
  const ctx = context(opts);
  const plans = {
    kafka: planEndpoint('kafka', ctx.env, ctx.ports),
    dynamodb: planEndpoint('dynamodb', ctx.env, ctx.ports),
    elasticmq: planEndpoint('elasticmq', ctx.env, ctx.ports),
  };
  const names = opts.services ?? SERVICE_NAMES;
  const started = await withLock(ctx, async () => {
    // Fail before starting anything when java is missing or a port is taken by someone else.
    const toStart = names.filter((name) => !plans[name].external && !liveRecord(ctx, name));
    if (toStart.length > 0) await checkJava();
    for (const name of toStart) await assertPortsFree(ctx, name);
    const startedNow: ServiceName[] = [];
    try {
      await allSettled(
        names.map(async (name) => {
          if (await ensureOne(ctx, plans[name])) startedNow.push(name);
        }),
      );
    } catch (error) {
      // All or nothing: do not leave behind what this call started (nobody would know to stop it).
      if (startedNow.length > 0) {
        ctx.log(`stopping ${startedNow.join(', ')} again after the failure`);
        await Promise.allSettled(startedNow.map((name) => stopManaged(ctx, name)));
      }
      throw error;
    }
    return names.filter((name) => startedNow.includes(name));
  });
  return { endpoints: endpointsFromPlans(plans), started };
}

/** Stops the named managed services (default all) that are running; resolves to those it stopped. */
export async function stopLocalServices(
  names: readonly ServiceName[] = SERVICE_NAMES,
  opts: Omit<LocalServicesOptions, 'services'> = {},
): Promise<ServiceName[]> {
  const ctx = context(opts);
  const stopped = await withLock(ctx, () => allSettled(names.map((name) => stopManaged(ctx, name))));
  return names.filter((_, i) => stopped[i]);
}

/** One line on what {@link releaseLocalServices} did; `kept` were running before the run and still are. */
export function releaseSummary(outcome: {
  stopped: readonly ServiceName[];
  failed: readonly ServiceName[];
  kept: readonly ServiceName[];
  error?: string;
}): string {
  const list = (names: readonly ServiceName[]) => names.map((name) => SERVICE_LABELS[name]).join(', ');
  const parts: string[] = [];
  if (outcome.stopped.length > 0) parts.push(`stopped ${list(outcome.stopped)}, which this run started`);
  if (outcome.failed.length > 0) {
    parts.push(`could not stop ${list(outcome.failed)}${outcome.error ? ` (${outcome.error})` : ''}`);
  }
  if (outcome.kept.length > 0) parts.push(`left ${list(outcome.kept)} running, as before this run`);
  if (parts.length === 0) return 'local services: this run started none of them, so it stopped none';
  const hint =
    outcome.failed.length + outcome.kept.length > 0
      ? '`npm run local:down` stops them'
      : 'start them with `npm run local:up` to keep them between runs';
  return `local services: ${parts.join('; ')} (${hint})`;
}

/**
 * For a command that brings the services up for its own run (`npm start`): on the way out, stops those it started
 * (`started`, from {@link ensureLocalServices}) and leaves those that were running before it, as a user expects.
 * Resolves to one line saying which; never rejects.
 */
export async function releaseLocalServices(
  started: readonly ServiceName[],
  opts: Omit<LocalServicesOptions, 'services'> = {},
): Promise<string> {
  const ctx = context(opts);
  // Ours (a live PID file) even when the caller has since put their endpoints into the environment.
  const kept = SERVICE_NAMES.filter((name) => !started.includes(name) && liveRecord(ctx, name));
  let stopped: ServiceName[] = [];
  let failed: ServiceName[] = [];
  let error: string | undefined;
  if (started.length > 0) {
    try {
      stopped = await stopLocalServices(started, opts);
    } catch (e) {
      error = (e instanceof Error ? e.message : String(e)).split('\n')[0];
      failed = started.filter((name) => liveRecord(ctx, name));
      stopped = started.filter((name) => !failed.includes(name));
    }
  }
  return releaseSummary({ stopped, failed, kept, ...(error && { error }) });
}

export type ServiceStatus = {
  name: ServiceName;
  endpoint: string;
  /** Where the endpoint came from: our own process, or an env var. */
  source: 'managed' | 'env';
  pid?: number;
  ready: boolean;
  detail: string;
};

export async function localServicesStatus(opts: LocalServicesOptions = {}): Promise<ServiceStatus[]> {
  const ctx = context(opts);
  const names = opts.services ?? SERVICE_NAMES;
  return Promise.all(
    names.map(async (name): Promise<ServiceStatus> => {
      const plan = planEndpoint(name, ctx.env, ctx.ports);
      const record = plan.external ? undefined : liveRecord(ctx, name);
      const base = {
        name,
        endpoint: plan.endpoint,
        source: plan.external ? ('env' as const) : ('managed' as const),
        ...(record && { pid: record.pid }),
      };
      if (!plan.external && !record) return { ...base, ready: false, detail: 'stopped' };
      try {
        return { ...base, ready: true, detail: await probe(name, plan.endpoint, 1_500) };
      } catch (error) {
        return { ...base, ready: false, detail: `not answering: ${(error as Error).message}` };
      }
    }),
  );
}

/**
 * Removes the named services' data (default all): Kafka's topics and committed offsets, DynamoDB Local's tables,
 * ElasticMQ's queues and messages. Only of services that are stopped, so the three are wiped together or not at all.
 * Resolves to the services whose data was removed.
 */
export async function wipeLocalData(
  names: readonly ServiceName[] = SERVICE_NAMES,
  opts: Omit<LocalServicesOptions, 'services'> = {},
): Promise<ServiceName[]> {
  const ctx = context(opts);
  return withLock(ctx, async () => {
    const running = names.filter((name) => liveRecord(ctx, name));
    if (running.length > 0) {
      throw new LocalServicesError(`stop ${running.map((n) => SERVICE_LABELS[n]).join(', ')} before wiping its data`);
    }
    const wiped: ServiceName[] = [];
    for (const name of names) {
      const dir = ctx.paths.dataDir(name);
      if (!fs.existsSync(dir)) continue;
      fs.rmSync(dir, { recursive: true, force: true });
      ctx.log(`${SERVICE_LABELS[name]} data removed (${dir})`);
      wiped.push(name);
    }
    return wiped;
  });
}

/** Removes Kafka's data dir (topics, offsets); only when Kafka is stopped. */
export async function wipeKafkaData(opts: Omit<LocalServicesOptions, 'services'> = {}): Promise<void> {
  await wipeLocalData(['kafka'], opts);
}

/**
 * Probes, once each, the services whose endpoints come from the environment, and rejects at once if one refuses
 * connections: for a command that would otherwise work for minutes before it needs them (`npm run bench`).
 */
export async function checkExternalEndpoints(opts: LocalServicesOptions = {}): Promise<void> {
  const ctx = context(opts);
  const names = opts.services ?? SERVICE_NAMES;
  await allSettled(
    names.map(async (name) => {
      const plan = planEndpoint(name, ctx.env, ctx.ports);
      if (!plan.external) return;
      try {
        await probe(name, plan.endpoint, 3_000);
      } catch (error) {
        if (isConnectionRefused(error)) throw refusedError(plan);
      }
    }),
  );
}
