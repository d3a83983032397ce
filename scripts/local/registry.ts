// A real schema registry for local runs: Apicurio Registry 3 from Maven Central, serving the Confluent-compatible
// API at /apis/ccompat/v7. Unlike Kafka, DynamoDB Local and ElasticMQ it is not one of the default services: it
// starts only when a route or a test needs it (`ensureRegistry()`, or `node scripts/local/registry.ts up`).
//
//   ensureRegistry(opts?)  SCHEMA_REGISTRY_URL if set; else reuse ours if it answers; else resolve, start, wait
//   stopRegistry(opts?)    stop the one these scripts started
//
// Apicurio 3.x is a Quarkus 3 application and needs Java 21+; `findJdk` looks in JAVA_HOME, then the usual JDK
// directories, then `java` on PATH. It binds to 127.0.0.1 (LOCAL_REGISTRY_PORT, default 8081), with its management
// interface (health, metrics) moved from 0.0.0.0:9000 to 127.0.0.1 (LOCAL_REGISTRY_MANAGEMENT_PORT, default 9081).
// Storage is Apicurio's default, in memory: a restart forgets every schema. LOCAL_REGISTRY_DATA_DIR keeps them in an H2
// database file in that directory instead, so a registry stopped and started again answers for the same ids (the
// e2e test that stops the registry mid-run needs this, as a production registry would behave).
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cliProgram, EXIT_USAGE, errorLine } from '../lib/cliArgs.ts';
import { BIND_HOST, localPaths, parseJavaMajor, parsePort } from './config.ts';
import { describePortHolder, isPortFree } from './ports.ts';
import {
  isRecordAlive,
  readPidFile,
  removePidFile,
  spawnDetached,
  stopProcess,
  tailFile,
  writePidFile,
} from './processes.ts';
import { isResolved, LocalServicesError, MissingToolError, pomDigest } from './tools.ts';

export const REGISTRY_VERSION = '3.3.3';
export const REGISTRY_MIN_JAVA = 21;
export const REGISTRY_URL_ENV = 'SCHEMA_REGISTRY_URL';
/** A directory for Apicurio's H2 database file: schemas survive a restart. Unset: in memory. */
export const REGISTRY_DATA_DIR_ENV = 'LOCAL_REGISTRY_DATA_DIR';
export const REGISTRY_PORT_ENVS = {
  http: 'LOCAL_REGISTRY_PORT',
  management: 'LOCAL_REGISTRY_MANAGEMENT_PORT',
} as const;
export const REGISTRY_DEFAULT_PORTS = { http: 8081, management: 9081 } as const;
/** The Confluent-compatible API under Apicurio's root. */
export const CCOMPAT_PATH = '/apis/ccompat/v7';
const MAIN_JAR = 'quarkus-run.jar';
const NAME = 'registry';

type Env = Record<string, string | undefined>;

export type RegistryPorts = { http: number; management: number };

export function registryPorts(env: Env = process.env): RegistryPorts {
  const ports = {
    http: parsePort(env[REGISTRY_PORT_ENVS.http], REGISTRY_PORT_ENVS.http, REGISTRY_DEFAULT_PORTS.http),
    management: parsePort(
      env[REGISTRY_PORT_ENVS.management],
      REGISTRY_PORT_ENVS.management,
      REGISTRY_DEFAULT_PORTS.management,
    ),
  };
  if (ports.http === ports.management) {
    throw new LocalServicesError(
      `${REGISTRY_PORT_ENVS.http} and ${REGISTRY_PORT_ENVS.management} both resolve to port ${ports.http}`,
    );
  }
  return ports;
}

export const localRegistryUrl = (ports: RegistryPorts): string => `http://${BIND_HOST}:${ports.http}${CCOMPAT_PATH}`;

/** The JVM arguments (pure): Quarkus system properties before `-jar`. */
export function registryJavaArgs(ports: RegistryPorts, dataDir?: string): string[] {
  return [
    '-Xms64m',
    '-Xmx512m',
    `-Dquarkus.http.host=${BIND_HOST}`,
    `-Dquarkus.http.port=${ports.http}`,
    // A build-time property keeps the management interface on; move it off 0.0.0.0:9000 instead.
    `-Dquarkus.management.host=${BIND_HOST}`,
    `-Dquarkus.management.port=${ports.management}`,
    // Apicurio's default SQL storage is H2 in memory (jdbc:h2:mem:); a file URL keeps the schemas across restarts.
    ...(dataDir
      ? [`-Dapicurio.datasource.url=jdbc:h2:file:${path.resolve(dataDir, 'registry')};DB_CLOSE_ON_EXIT=FALSE`]
      : []),
    '-jar',
    MAIN_JAR,
  ];
}

/** Candidate JDK homes, most preferred first: JAVA_HOME, then the usual install locations (newest first). */
export function jdkCandidates(env: Env = process.env, dirs = defaultJdkDirs()): string[] {
  const homes: string[] = [];
  if (env.JAVA_HOME) homes.push(env.JAVA_HOME);
  for (const dir of dirs) {
    let entries: string[];
    try {
      entries = fs.readdirSync(dir);
    } catch {
      continue;
    }
    const versionOf = (name: string) => Number(/(\d+)/.exec(name)?.[1] ?? 0);
    for (const entry of entries.sort((a, b) => versionOf(b) - versionOf(a))) {
      const home = path.join(dir, entry);
      const macHome = path.join(home, 'Contents', 'Home');
      homes.push(fs.existsSync(macHome) ? macHome : home);
    }
  }
  return homes;
}

const defaultJdkDirs = () => [
  '/usr/lib/jvm',
  '/usr/java',
  '/opt/java',
  '/Library/Java/JavaVirtualMachines',
  path.join(process.env.HOME ?? '/nonexistent', '.sdkman', 'candidates', 'java'),
];

const javaVersion = (java: string): Promise<number | undefined> =>
  new Promise((resolve) => {
    execFile(java, ['-version'], { timeout: 15_000 }, (error, stdout, stderr) => {
      resolve(error ? undefined : parseJavaMajor(`${stderr}${stdout}`));
    });
  });

/** The first `java` of version `min` or newer: JAVA_HOME, the usual JDK directories, then PATH. */
export async function findJdk(min = REGISTRY_MIN_JAVA, env: Env = process.env): Promise<string> {
  const seen: string[] = [];
  const candidates = [...jdkCandidates(env).map((home) => path.join(home, 'bin', 'java')), 'java'];
  for (const java of [...new Set(candidates)]) {
    if (java !== 'java' && !fs.existsSync(java)) continue;
    const major = await javaVersion(java);
    if (major === undefined) continue;
    if (major >= min) return java;
    seen.push(`${java} (${major})`);
  }
  throw new MissingToolError(
    'java',
    `Apicurio Registry ${REGISTRY_VERSION} needs Java ${min} or newer; found ${seen.length ? seen.join(', ') : 'no java'}. ` +
      'Install a JDK 21+ (Debian/Ubuntu: `apt-get install openjdk-21-jre-headless` or Temurin 21/25; macOS: ' +
      '`brew install openjdk@21`) and set JAVA_HOME to it. Or use a registry you already run: set SCHEMA_REGISTRY_URL.',
  );
}

const run = (command: string, args: string[], cwd: string, logFile: string): Promise<number | null> =>
  new Promise((resolve, reject) => {
    const out = fs.openSync(logFile, 'a');
    const child = spawn(command, args, { cwd, stdio: ['ignore', out, out] });
    child.once('error', reject);
    child.once('exit', (code) => {
      fs.closeSync(out);
      resolve(code);
    });
  });

/** Fetches the Apicurio tar.gz with mvn (once per pom) and unpacks it; a torn download never looks complete. */
export async function resolveRegistry(log: (line: string) => void = () => {}): Promise<string> {
  const paths = localPaths();
  const pom = paths.pom(NAME);
  const libDir = paths.lib(NAME);
  if (isResolved(libDir, pom)) return libDir;
  const tmp = `${libDir}.tmp-${process.pid}`;
  const mvnLog = `${tmp}.log`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  log(`resolving Apicurio Registry ${REGISTRY_VERSION} from Maven Central (first run only; ~160 MB)…`);
  const started = Date.now();
  const args = ['-q', '-B', '-f', pom, 'dependency:copy-dependencies', `-DoutputDirectory=${tmp}`];
  let code: number | null;
  try {
    code = await run('mvn', args, tmp, mvnLog);
  } catch (error) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new MissingToolError('mvn', 'Maven (`mvn`) is needed once to fetch Apicurio Registry', { cause: error });
  }
  const archive = fs.readdirSync(tmp).find((f) => f.endsWith('.tar.gz'));
  if (code !== 0 || !archive) {
    const tail = tailFile(mvnLog, 15);
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new LocalServicesError(`mvn could not resolve Apicurio Registry from ${pom} (exit ${code}).\n${tail}`);
  }
  const untar = await run('tar', ['-xzf', archive], tmp, mvnLog);
  fs.rmSync(path.join(tmp, archive), { force: true });
  if (untar !== 0 || !fs.existsSync(path.join(tmp, MAIN_JAR))) {
    const tail = tailFile(mvnLog, 15);
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new LocalServicesError(`could not unpack ${archive} (no ${MAIN_JAR}).\n${tail}`);
  }
  fs.rmSync(mvnLog, { force: true });
  fs.writeFileSync(path.join(tmp, '.resolved'), `${pomDigest(fs.readFileSync(pom, 'utf8'))}\n`);
  fs.rmSync(libDir, { recursive: true, force: true });
  fs.renameSync(tmp, libDir);
  log(`Apicurio Registry resolved (${((Date.now() - started) / 1000).toFixed(1)}s)`);
  return libDir;
}

/** True when the ccompat API answers `GET /subjects`. */
export async function registryAnswers(url: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const response = await fetch(`${url}/subjects`, { signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

export type RegistryOptions = {
  env?: Env;
  log?: (line: string) => void;
  /** Default 120 s. */
  readyTimeoutMs?: number;
};

export type RegistryHandle = { url: string; source: 'env' | 'running' | 'started'; pid?: number };

/**
 * A registry URL to use: SCHEMA_REGISTRY_URL when set (nothing is started), else the local Apicurio, reused if it
 * already answers, started otherwise. The caller that got `source: 'started'` stops it with `stopRegistry()`.
 */
export async function ensureRegistry(opts: RegistryOptions = {}): Promise<RegistryHandle> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => {});
  const external = env[REGISTRY_URL_ENV]?.trim();
  if (external) return { url: external.replace(/\/+$/, ''), source: 'env' };
  const ports = registryPorts(env);
  const url = localRegistryUrl(ports);
  const paths = localPaths();
  const pidFile = paths.pidFile(NAME);
  const record = readPidFile(pidFile);
  if (record && isRecordAlive(record)) {
    if (await waitReady(url, 60_000, () => isRecordAlive(record))) return { url, source: 'running', pid: record.pid };
    throw new LocalServicesError(
      `our registry (pid ${record.pid}) runs but does not answer at ${url}; see ${record.log}`,
    );
  }
  if (record) removePidFile(pidFile);
  for (const port of [ports.http, ports.management]) {
    if (!(await isPortFree(BIND_HOST, port))) {
      const holder = await describePortHolder(port);
      throw new LocalServicesError(
        `port ${port} is taken${holder ? ` by ${holder}` : ''}: set ${REGISTRY_PORT_ENVS.http}/${REGISTRY_PORT_ENVS.management} ` +
          `to free ports, or ${REGISTRY_URL_ENV} to a registry you run`,
      );
    }
  }
  const java = await findJdk(REGISTRY_MIN_JAVA, env);
  const libDir = await resolveRegistry(log);
  const logFile = paths.logFile(NAME);
  const started = Date.now();
  const dataDir = env[REGISTRY_DATA_DIR_ENV]?.trim() || undefined;
  if (dataDir) fs.mkdirSync(dataDir, { recursive: true });
  const child = spawnDetached(java, registryJavaArgs(ports, dataDir), { cwd: libDir, logFile });
  writePidFile(pidFile, {
    pid: child.pid,
    mainClass: MAIN_JAR,
    ports: [ports.http, ports.management],
    startedAt: new Date().toISOString(),
    log: logFile,
  });
  log(
    `starting Apicurio Registry ${REGISTRY_VERSION} on ${url} (pid ${child.pid}, ${java}; ` +
      `${dataDir ? `schemas kept in ${dataDir}` : 'schemas in memory'})`,
  );
  const ready = await waitReady(url, opts.readyTimeoutMs ?? 120_000, () => child.exited() === undefined);
  if (!ready) {
    await stopProcess(child.pid, 5000);
    removePidFile(pidFile);
    throw new LocalServicesError(
      `Apicurio Registry did not answer at ${url}; last lines of ${logFile}:\n${tailFile(logFile, 20)}`,
    );
  }
  log(`registry ready (${((Date.now() - started) / 1000).toFixed(1)}s)`);
  return { url, source: 'started', pid: child.pid };
}

async function waitReady(url: string, timeoutMs: number, alive: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && alive()) {
    if (await registryAnswers(url)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/** Stops the registry these scripts started (by its PID file); true when one was running. */
export async function stopRegistry(opts: { log?: (line: string) => void } = {}): Promise<boolean> {
  const pidFile = localPaths().pidFile(NAME);
  const record = readPidFile(pidFile);
  if (!record) return false;
  const alive = isRecordAlive(record);
  if (alive) await stopProcess(record.pid, 10_000);
  removePidFile(pidFile);
  if (alive) opts.log?.(`stopped the registry (pid ${record.pid})`);
  return alive;
}

// `node scripts/local/registry.ts up|down`: prints `export SCHEMA_REGISTRY_URL=...` on stdout for `eval`.
if (import.meta.url === `file://${process.argv[1]}`) {
  const log = (line: string) => process.stderr.write(`registry: ${line}\n`);
  const program = cliProgram('node scripts/local/registry.ts').description(
    `Apicurio Registry ${REGISTRY_VERSION} for routes that decode registry-framed records: 127.0.0.1, ` +
      `${REGISTRY_PORT_ENVS.http} (default ${REGISTRY_DEFAULT_PORTS.http}), in memory (or in ${REGISTRY_DATA_DIR_ENV}, ` +
      `kept across restarts). Needs Java ${REGISTRY_MIN_JAVA}+. ` +
      `${REGISTRY_URL_ENV} points the tools at another registry instead.`,
  );
  program
    .command('up')
    .description(`start it unless it answers already; print export ${REGISTRY_URL_ENV}=...`)
    .action(async () => {
      const { url } = await ensureRegistry({ log, env: { ...process.env } });
      process.stdout.write(`export ${REGISTRY_URL_ENV}='${url}'\n`);
    });
  program
    .command('down')
    .description('stop the registry these scripts started')
    .action(async () => {
      if (!(await stopRegistry({ log }))) log('no registry of ours was running');
    });
  // No top-level await: jest's globalSetup require()s this module, and Node refuses require() of a module graph with one.
  program.parseAsync(process.argv).catch((error: unknown) => {
    process.stderr.write(`${errorLine('registry', error)}\n`);
    process.exitCode = EXIT_USAGE;
  });
}
