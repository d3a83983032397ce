// Pure parts of the local service manager: names, ports, paths, rendered config files, JVM command lines and
// endpoint resolution from the environment. Nothing here touches the file system, the network or processes.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SERVICE_NAMES = ['kafka', 'dynamodb', 'elasticmq'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export const BIND_HOST = '127.0.0.1';

export type LocalEndpoints = { kafkaBrokers: string[]; dynamodbEndpoint: string; sqsEndpoint: string };

export type LocalPorts = {
  kafka: number;
  kafkaController: number;
  dynamodb: number;
  elasticmq: number;
};

export const DEFAULT_PORTS: LocalPorts = { kafka: 9092, kafkaController: 9093, dynamodb: 8000, elasticmq: 9324 };

/** Env vars that move a locally started service to another port. */
export const PORT_ENV_VARS = {
  kafka: 'LOCAL_KAFKA_PORT',
  kafkaController: 'LOCAL_KAFKA_CONTROLLER_PORT',
  dynamodb: 'LOCAL_DYNAMODB_PORT',
  elasticmq: 'LOCAL_SQS_PORT',
} as const satisfies Record<keyof LocalPorts, string>;

/** Env vars that point a service at an endpoint someone else runs; when set, nothing is started for it. */
export const ENDPOINT_ENV_VARS = {
  kafka: 'KAFKA_BROKERS',
  dynamodb: 'AWS_ENDPOINT_URL_DYNAMODB',
  elasticmq: 'AWS_ENDPOINT_URL_SQS',
} as const satisfies Record<ServiceName, string>;

/** Pinned versions; they must match scripts/local/poms/<service>/pom.xml (a unit test checks it). */
export const SERVICE_VERSIONS = { kafka: '4.1.2', dynamodb: '3.1.0', elasticmq: '1.7.1' } as const satisfies Record<
  ServiceName,
  string
>;

export const SERVICE_LABELS: Record<ServiceName, string> = {
  kafka: 'kafka',
  dynamodb: 'dynamodb-local',
  elasticmq: 'elasticmq',
};

type Env = Record<string, string | undefined>;

export class ConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

export function parsePort(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined || value.trim() === '') return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigError(`${name}=${JSON.stringify(value)} is not a TCP port (an integer from 1 to 65535)`);
  }
  return port;
}

export function resolvePorts(env: Env = process.env): LocalPorts {
  const ports = {
    kafka: parsePort(env[PORT_ENV_VARS.kafka], PORT_ENV_VARS.kafka, DEFAULT_PORTS.kafka),
    kafkaController: parsePort(
      env[PORT_ENV_VARS.kafkaController],
      PORT_ENV_VARS.kafkaController,
      DEFAULT_PORTS.kafkaController,
    ),
    dynamodb: parsePort(env[PORT_ENV_VARS.dynamodb], PORT_ENV_VARS.dynamodb, DEFAULT_PORTS.dynamodb),
    elasticmq: parsePort(env[PORT_ENV_VARS.elasticmq], PORT_ENV_VARS.elasticmq, DEFAULT_PORTS.elasticmq),
  };
  const seen = new Map<number, string>();
  for (const [key, port] of Object.entries(ports) as [keyof LocalPorts, number][]) {
    const other = seen.get(port);
    if (other !== undefined) {
      throw new ConfigError(`${PORT_ENV_VARS[key]} and ${other} both resolve to port ${port}; give each its own port`);
    }
    seen.set(port, PORT_ENV_VARS[key]);
  }
  return ports;
}

/** Ports a service listens on; the first one is its client port. */
export function servicePorts(name: ServiceName, ports: LocalPorts): number[] {
  if (name === 'kafka') return [ports.kafka, ports.kafkaController];
  return [ports[name]];
}

export function parseBrokers(value: string): string[] {
  const brokers = value
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '');
  if (brokers.length === 0) throw new ConfigError(`KAFKA_BROKERS=${JSON.stringify(value)} names no broker`);
  for (const broker of brokers) {
    if (!/^[^\s:]+:\d{1,5}$/.test(broker) && !/^\[[0-9a-fA-F:.]+\]:\d{1,5}$/.test(broker)) {
      throw new ConfigError(`KAFKA_BROKERS entry ${JSON.stringify(broker)} is not host:port`);
    }
  }
  return brokers;
}

function parseUrl(value: string, name: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch (error) {
    throw new ConfigError(`${name}=${JSON.stringify(value)} is not a URL`, { cause: error });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`${name}=${JSON.stringify(value)} must be an http(s) URL`);
  }
  return value.replace(/\/+$/, '');
}

/** Where a service is reached: an external endpoint from the env, or the one we run locally. */
export type EndpointPlan =
  | { name: ServiceName; external: true; envVar: string; endpoint: string }
  | { name: ServiceName; external: false; endpoint: string; port: number };

export function localEndpoint(name: ServiceName, ports: LocalPorts): string {
  if (name === 'kafka') return `${BIND_HOST}:${ports.kafka}`;
  return `http://${BIND_HOST}:${ports[name]}`;
}

export function planEndpoint(name: ServiceName, env: Env, ports: LocalPorts): EndpointPlan {
  const envVar = ENDPOINT_ENV_VARS[name];
  const raw = env[envVar]?.trim();
  if (raw) {
    const endpoint = name === 'kafka' ? parseBrokers(raw).join(',') : parseUrl(raw, envVar);
    return { name, external: true, envVar, endpoint };
  }
  return { name, external: false, endpoint: localEndpoint(name, ports), port: ports[name] };
}

export function endpointsFromPlans(plans: Record<ServiceName, EndpointPlan>): LocalEndpoints {
  return {
    kafkaBrokers: parseBrokers(plans.kafka.endpoint),
    dynamodbEndpoint: plans.dynamodb.endpoint,
    sqsEndpoint: plans.elasticmq.endpoint,
  };
}

/** Endpoints from env overrides, else the local defaults (or LOCAL_*_PORT). */
export function resolveEndpoints(env: Env = process.env): LocalEndpoints {
  const ports = resolvePorts(env);
  return endpointsFromPlans({
    kafka: planEndpoint('kafka', env, ports),
    dynamodb: planEndpoint('dynamodb', env, ports),
    elasticmq: planEndpoint('elasticmq', env, ports),
  });
}

export const DUMMY_AWS_ENV = {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'local',
  AWS_SECRET_ACCESS_KEY: 'local',
} as const;

/**
 * Points the SDKs and the local tools at the endpoints (DESIGN §5). Region and credentials are only filled in when
 * unset, so a developer's own profile or keys win. Credentials are not filled in when AWS_PROFILE is set.
 */
export function applyEndpointsToEnv(endpoints: LocalEndpoints, env: Env = process.env): void {
  env.KAFKA_BROKERS = endpoints.kafkaBrokers.join(',');
  env.AWS_ENDPOINT_URL_DYNAMODB = endpoints.dynamodbEndpoint;
  env.AWS_ENDPOINT_URL_SQS = endpoints.sqsEndpoint;
  if (!env.AWS_REGION && !env.AWS_DEFAULT_REGION) env.AWS_REGION = DUMMY_AWS_ENV.AWS_REGION;
  if (!env.AWS_ACCESS_KEY_ID && !env.AWS_PROFILE) {
    env.AWS_ACCESS_KEY_ID = DUMMY_AWS_ENV.AWS_ACCESS_KEY_ID;
    env.AWS_SECRET_ACCESS_KEY = DUMMY_AWS_ENV.AWS_SECRET_ACCESS_KEY;
  }
}

/** Shell lines a user can `eval "$(npm run -s local:up)"`. */
export function formatExports(endpoints: LocalEndpoints): string {
  const quote = (v: string) => (/^[\w.:/,@%+=-]+$/.test(v) ? v : `'${v.replaceAll("'", "'\\''")}'`);
  return [
    `export KAFKA_BROKERS=${quote(endpoints.kafkaBrokers.join(','))}`,
    `export AWS_ENDPOINT_URL_DYNAMODB=${quote(endpoints.dynamodbEndpoint)}`,
    `export AWS_ENDPOINT_URL_SQS=${quote(endpoints.sqsEndpoint)}`,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// Paths (resolved from this module's URL, never from the working directory)

/** The default services, plus the schema registry, which starts only on demand (scripts/local/registry.ts). */
export type ManagedName = ServiceName | 'registry';

export type LocalPaths = {
  root: string;
  state: string;
  run: string;
  logs: string;
  lockFile: string;
  poms: string;
  lib: (name: ManagedName) => string;
  home: (name: ManagedName) => string;
  pidFile: (name: ManagedName) => string;
  logFile: (name: ManagedName) => string;
  pom: (name: ManagedName) => string;
  /** Where a service keeps its data across restarts: Kafka's logs, DynamoDB Local's tables, ElasticMQ's queues. */
  dataDir: (name: ServiceName) => string;
  /** Whether DynamoDB Local and ElasticMQ keep their data on disk (PERSIST_ENV); Kafka always does. */
  persist: boolean;
  kafkaDataDir: string;
  kafkaServerLog: string;
};

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Moves the services' state (PID files, logs, config files and data) out of `.local/`, for a second set of services
 * beside the usual one (with LOCAL_*_PORT); the downloaded jars stay in `.local/lib`.
 */
export const STATE_DIR_ENV = 'LOCAL_STATE_DIR';

/**
 * `LOCAL_PERSIST=1`: DynamoDB Local and ElasticMQ keep their data on disk across a restart, as Kafka keeps its topics
 * and offsets. Off by default: on disk both are about 2.5 times slower (2,000 writes took 9.5 s against 3.5-4 s on a
 * 2-core machine), which the tests, the demo and the benchmarks feel; `reconcile` instead says when the table is
 * younger than the records it cannot account for.
 */
export const PERSIST_ENV = 'LOCAL_PERSIST';

/** The paths under `root` (default: this repository); `stateDir` replaces `<root>/.local` for everything but jars. */
export function localPaths(root: string = REPO_ROOT, stateDir?: string, persist = false): LocalPaths {
  const state = stateDir ? path.resolve(stateDir) : path.join(root, '.local');
  const dataDir = (name: ServiceName) => path.join(state, name, 'data');
  return {
    root,
    state,
    run: path.join(state, 'run'),
    logs: path.join(state, 'logs'),
    lockFile: path.join(state, 'run', 'services.lock'),
    poms: path.join(root, 'scripts', 'local', 'poms'),
    lib: (name) => path.join(root, '.local', 'lib', name),
    home: (name) => path.join(state, name),
    pidFile: (name) => path.join(state, 'run', `${name}.pid`),
    logFile: (name) => path.join(state, 'logs', `${name}.out.log`),
    pom: (name) => path.join(root, 'scripts', 'local', 'poms', name, 'pom.xml'),
    dataDir,
    persist,
    kafkaDataDir: dataDir('kafka'),
    kafkaServerLog: path.join(state, 'logs', 'kafka-server.log'),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Rendered config files

function renderProperties(props: Record<string, string | number | boolean>): string {
  const escapeValue = (v: string) => v.replaceAll('\\', '\\\\').replaceAll('\n', '\\n');
  return `${Object.entries(props)
    .map(([k, v]) => `${k}=${escapeValue(String(v))}`)
    .join('\n')}\n`;
}

/**
 * A single-node KRaft broker+controller, tuned to start fast on a small machine. Topics are not auto-created: the
 * bridge, the tools and the tests create theirs explicitly with the partition count they need, so a typo in a topic
 * name fails loudly instead of silently creating an empty topic.
 */
export function renderKafkaServerProperties(opts: { ports: LocalPorts; dataDir: string; nodeId?: number }): string {
  const nodeId = opts.nodeId ?? 1;
  const { kafka, kafkaController } = opts.ports;
  return `# Rendered by scripts/local/services.ts; edits are overwritten on the next start.\n${renderProperties({
    'process.roles': 'broker,controller',
    'node.id': nodeId,
    // A static voter set: `StorageTool format` then needs no --standalone, and restarts need nothing special.
    'controller.quorum.voters': `${nodeId}@${BIND_HOST}:${kafkaController}`,
    listeners: `PLAINTEXT://${BIND_HOST}:${kafka},CONTROLLER://${BIND_HOST}:${kafkaController}`,
    'advertised.listeners': `PLAINTEXT://${BIND_HOST}:${kafka}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'log.dirs': opts.dataDir,
    'num.partitions': 3,
    'default.replication.factor': 1,
    'min.insync.replicas': 1,
    'auto.create.topics.enable': false,
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 10,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 5,
    'share.coordinator.state.topic.replication.factor': 1,
    'share.coordinator.state.topic.min.isr': 1,
    'group.initial.rebalance.delay.ms': 0,
    'num.network.threads': 2,
    'num.io.threads': 4,
    'num.recovery.threads.per.data.dir': 1,
    'log.retention.hours': 24,
    'log.segment.bytes': 64 * 1024 * 1024,
  })}`;
}

export function renderKafkaLog4j2(logFile: string): string {
  return `# Rendered by scripts/local/services.ts. Kafka's own log; the JVM's stdout/stderr go to kafka.out.log.
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = ${logFile}
appender.file.filePattern = ${logFile}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 2
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
`;
}

/**
 * HOCON for ElasticMQ: bind and advertise 127.0.0.1 so queue URLs point where the SDK can reach them. With `dataDir`,
 * queues and their messages persist there (ElasticMQ's SQL message storage, an H2 file, keeps both), so after a
 * restart the dead-letter queues still hold what they held, as Kafka still holds its records and DynamoDB Local its
 * tables.
 */
export function renderElasticMqConf(opts: {
  port: number;
  region?: string;
  accountId?: string;
  dataDir?: string;
}): string {
  const storage = opts.dataDir
    ? `
messages-storage {
  enabled = true
  uri = ${JSON.stringify(`jdbc:h2:${path.join(opts.dataDir, 'messages')}`)}
}
`
    : '';
  return `# Rendered by scripts/local/services.ts; edits are overwritten on the next start.
include classpath("application.conf")

node-address {
  protocol = http
  host = "${BIND_HOST}"
  port = ${opts.port}
  context-path = ""
}

rest-sqs {
  enabled = true
  bind-port = ${opts.port}
  bind-hostname = "${BIND_HOST}"
  sqs-limits = strict
}

rest-stats {
  enabled = false
}

generate-node-address = false

aws {
  region = "${opts.region ?? DUMMY_AWS_ENV.AWS_REGION}"
  accountId = "${opts.accountId ?? '000000000000'}"
}
${storage}`;
}

/** A Kafka cluster id: 16 random bytes, base64url without padding (the form Kafka's Uuid prints). */
export function newKafkaClusterId(random: Uint8Array): string {
  if (random.length !== 16) throw new ConfigError('a Kafka cluster id needs exactly 16 random bytes');
  return Buffer.from(random).toString('base64url');
}

// ---------------------------------------------------------------------------------------------------------------
// JVM command lines

export const MAIN_CLASSES = {
  kafka: 'kafka.Kafka',
  kafkaStorageTool: 'kafka.tools.StorageTool',
  // DynamoDB Local's own main (ServerRunner), wrapped to bind one address; the JDK runs it from source.
  dynamodb: fileURLToPath(new URL('./DynamoDbLocalLoopback.java', import.meta.url)),
  elasticmq: 'org.elasticmq.server.Main',
} as const;

export type JavaCommand = { args: string[]; cwd: string };

function classpath(lib: string): string {
  return `${lib}${path.sep}*`;
}

const COMMON_JVM_FLAGS = ['-Djava.awt.headless=true', '-XX:+UseSerialGC', '-XX:+ExitOnOutOfMemoryError'];

export function kafkaFiles(paths: LocalPaths): { serverProperties: string; log4j2: string } {
  return {
    serverProperties: path.join(paths.home('kafka'), 'server.properties'),
    log4j2: path.join(paths.home('kafka'), 'log4j2.properties'),
  };
}

export function kafkaStorageFormatCommand(paths: LocalPaths, clusterId: string): JavaCommand {
  const files = kafkaFiles(paths);
  return {
    cwd: paths.home('kafka'),
    args: [
      '-Xmx256m',
      ...COMMON_JVM_FLAGS,
      `-Dlog4j2.configurationFile=${files.log4j2}`,
      '-cp',
      classpath(paths.lib('kafka')),
      MAIN_CLASSES.kafkaStorageTool,
      'format',
      '--cluster-id',
      clusterId,
      '--config',
      files.serverProperties,
      '--ignore-formatted',
    ],
  };
}

export function serviceCommand(name: ServiceName, paths: LocalPaths, ports: LocalPorts): JavaCommand {
  const lib = paths.lib(name);
  switch (name) {
    case 'kafka': {
      const files = kafkaFiles(paths);
      return {
        cwd: paths.home('kafka'),
        args: [
          '-Xms256m',
          '-Xmx512m',
          '-Djava.awt.headless=true',
          '-XX:+ExitOnOutOfMemoryError',
          `-Dlog4j2.configurationFile=${files.log4j2}`,
          `-Dkafka.logs.dir=${paths.logs}`,
          '-cp',
          classpath(lib),
          MAIN_CLASSES.kafka,
          files.serverProperties,
        ],
      };
    }
    case 'dynamodb':
      // DynamoDB Local has no bind-address option: its launcher (run from source by the JDK) binds it to BIND_HOST.
      // With PERSIST_ENV its tables live on disk (-dbPath, one shared file) and survive a restart, as Kafka's topics and
      // offsets do; in memory (the default, and far faster) a restart forgets what was completed.
      return {
        cwd: paths.home('dynamodb'),
        args: [
          '-Xmx256m',
          ...COMMON_JVM_FLAGS,
          `-Djava.library.path=${lib}`,
          `-Dbind.host=${BIND_HOST}`,
          '-cp',
          classpath(lib),
          MAIN_CLASSES.dynamodb,
          ...(paths.persist ? ['-dbPath', paths.dataDir('dynamodb')] : ['-inMemory']),
          '-sharedDb',
          '-disableTelemetry',
          '-port',
          String(ports.dynamodb),
        ],
      };
    case 'elasticmq':
      return {
        cwd: paths.home('elasticmq'),
        args: [
          '-Xmx256m',
          ...COMMON_JVM_FLAGS,
          `-Dconfig.file=${path.join(paths.home('elasticmq'), 'elasticmq.conf')}`,
          '-cp',
          classpath(lib),
          MAIN_CLASSES.elasticmq,
        ],
      };
  }
}

/** Extra args for `mvn dependency:copy-dependencies` (DynamoDB Local's native lib must keep its plain name). */
export function mavenCopyArgs(name: ServiceName, pom: string, outputDirectory: string): string[] {
  return [
    '-q',
    '-B',
    '-f',
    pom,
    'dependency:copy-dependencies',
    `-DoutputDirectory=${outputDirectory}`,
    '-DincludeScope=runtime',
    ...(name === 'dynamodb' ? ['-Dmdep.stripVersion=true'] : []),
  ];
}

/** Parses the major version out of `java -version` output ("17.0.15", "1.8.0_412", "21"). */
export function parseJavaMajor(versionOutput: string): number | undefined {
  const m = /version "(\d+)(?:\.(\d+))?/.exec(versionOutput);
  if (!m) return undefined;
  const first = Number(m[1]);
  return first === 1 && m[2] !== undefined ? Number(m[2]) : first;
}
