import fs from 'node:fs';
import path from 'node:path';
import {
  applyEndpointsToEnv,
  ConfigError,
  DEFAULT_PORTS,
  formatExports,
  kafkaStorageFormatCommand,
  localPaths,
  mavenCopyArgs,
  newKafkaClusterId,
  parseBrokers,
  parseJavaMajor,
  planEndpoint,
  REPO_ROOT,
  renderElasticMqConf,
  renderKafkaLog4j2,
  renderKafkaServerProperties,
  resolveEndpoints,
  resolvePorts,
  SERVICE_NAMES,
  SERVICE_VERSIONS,
  serviceCommand,
  servicePorts,
} from '../../../scripts/local/config.ts';

const parseProperties = (text: string) =>
  Object.fromEntries(
    text
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );

describe('ports', () => {
  test('defaults', () => {
    expect(resolvePorts({})).toEqual({ kafka: 9092, kafkaController: 9093, dynamodb: 8000, elasticmq: 9324 });
  });

  test('LOCAL_*_PORT overrides', () => {
    expect(
      resolvePorts({
        LOCAL_KAFKA_PORT: '19092',
        LOCAL_KAFKA_CONTROLLER_PORT: '19093',
        LOCAL_DYNAMODB_PORT: '18000',
        LOCAL_SQS_PORT: ' 19324 ',
      }),
    ).toEqual({ kafka: 19092, kafkaController: 19093, dynamodb: 18000, elasticmq: 19324 });
    expect(resolvePorts({ LOCAL_KAFKA_PORT: '' })).toEqual(DEFAULT_PORTS);
  });

  test.each(['0', '65536', 'abc', '80.5', '-1'])('rejects %j, naming the variable', (value) => {
    expect(() => resolvePorts({ LOCAL_DYNAMODB_PORT: value })).toThrow(/LOCAL_DYNAMODB_PORT=.*not a TCP port/);
  });

  test('rejects two services on one port', () => {
    expect(() => resolvePorts({ LOCAL_SQS_PORT: '9092' })).toThrow(/LOCAL_SQS_PORT and LOCAL_KAFKA_PORT.*9092/);
    expect(() => resolvePorts({ LOCAL_KAFKA_CONTROLLER_PORT: '9092' })).toThrow(ConfigError);
  });

  test('kafka listens on its client and controller ports', () => {
    expect(servicePorts('kafka', DEFAULT_PORTS)).toEqual([9092, 9093]);
    expect(servicePorts('dynamodb', DEFAULT_PORTS)).toEqual([8000]);
    expect(servicePorts('elasticmq', DEFAULT_PORTS)).toEqual([9324]);
  });
});

describe('endpoints from the environment', () => {
  test('local defaults on 127.0.0.1', () => {
    expect(resolveEndpoints({})).toEqual({
      kafkaBrokers: ['127.0.0.1:9092'],
      dynamodbEndpoint: 'http://127.0.0.1:8000',
      sqsEndpoint: 'http://127.0.0.1:9324',
    });
  });

  test('local ports follow LOCAL_*_PORT', () => {
    expect(resolveEndpoints({ LOCAL_KAFKA_PORT: '29092', LOCAL_SQS_PORT: '29324' })).toMatchObject({
      kafkaBrokers: ['127.0.0.1:29092'],
      sqsEndpoint: 'http://127.0.0.1:29324',
    });
  });

  test('KAFKA_BROKERS and AWS_ENDPOINT_URL_* are used as given, and mark the service external', () => {
    const env = {
      KAFKA_BROKERS: 'b1:9092, b2:9093',
      AWS_ENDPOINT_URL_DYNAMODB: 'http://ddb.test:4566/',
      AWS_ENDPOINT_URL_SQS: 'https://sqs.test',
    };
    expect(resolveEndpoints(env)).toEqual({
      kafkaBrokers: ['b1:9092', 'b2:9093'],
      dynamodbEndpoint: 'http://ddb.test:4566',
      sqsEndpoint: 'https://sqs.test',
    });
    expect(planEndpoint('kafka', env, DEFAULT_PORTS)).toEqual({
      name: 'kafka',
      external: true,
      envVar: 'KAFKA_BROKERS',
      endpoint: 'b1:9092,b2:9093',
    });
    expect(planEndpoint('elasticmq', {}, DEFAULT_PORTS)).toEqual({
      name: 'elasticmq',
      external: false,
      endpoint: 'http://127.0.0.1:9324',
      port: 9324,
    });
  });

  test('blank overrides count as unset', () => {
    expect(planEndpoint('dynamodb', { AWS_ENDPOINT_URL_DYNAMODB: '  ' }, DEFAULT_PORTS).external).toBe(false);
  });

  test('bad overrides fail with the variable name', () => {
    expect(() => resolveEndpoints({ AWS_ENDPOINT_URL_SQS: 'not a url' })).toThrow(/AWS_ENDPOINT_URL_SQS/);
    expect(() => resolveEndpoints({ AWS_ENDPOINT_URL_SQS: 'ftp://x' })).toThrow(/http\(s\)/);
    expect(() => parseBrokers('localhost')).toThrow(/host:port/);
    expect(() => parseBrokers(' , ')).toThrow(/names no broker/);
    expect(parseBrokers('[::1]:9092')).toEqual(['[::1]:9092']);
  });
});

describe('applyEndpointsToEnv', () => {
  const endpoints = {
    kafkaBrokers: ['127.0.0.1:9092', '127.0.0.1:9094'],
    dynamodbEndpoint: 'http://127.0.0.1:8000',
    sqsEndpoint: 'http://127.0.0.1:9324',
  };

  test('sets the endpoints, and region and dummy credentials when unset', () => {
    const env: Record<string, string | undefined> = {};
    applyEndpointsToEnv(endpoints, env);
    expect(env).toEqual({
      KAFKA_BROKERS: '127.0.0.1:9092,127.0.0.1:9094',
      AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:8000',
      AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:9324',
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
    });
  });

  test("keeps a developer's region, keys and profile", () => {
    const env: Record<string, string | undefined> = {
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'AKIA',
      AWS_SECRET_ACCESS_KEY: 's',
    };
    applyEndpointsToEnv(endpoints, env);
    expect(env).toMatchObject({ AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'AKIA', AWS_SECRET_ACCESS_KEY: 's' });
    const withProfile: Record<string, string | undefined> = { AWS_PROFILE: 'dev', AWS_DEFAULT_REGION: 'eu-west-2' };
    applyEndpointsToEnv(endpoints, withProfile);
    expect(withProfile.AWS_ACCESS_KEY_ID).toBeUndefined();
    expect(withProfile.AWS_REGION).toBeUndefined();
  });
});

test('formatExports prints eval-able lines, quoting only when needed', () => {
  expect(formatExports(resolveEndpoints({}))).toBe(
    [
      'export KAFKA_BROKERS=127.0.0.1:9092',
      'export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000',
      'export AWS_ENDPOINT_URL_SQS=http://127.0.0.1:9324',
    ].join('\n'),
  );
  expect(
    formatExports({ kafkaBrokers: ['a:1'], dynamodbEndpoint: "http://x/it's", sqsEndpoint: 'http://y' }),
  ).toContain("export AWS_ENDPOINT_URL_DYNAMODB='http://x/it'\\''s'");
});

describe('rendered config', () => {
  test('kafka server.properties: single-node KRaft on 127.0.0.1, fast to start', () => {
    const props = parseProperties(
      renderKafkaServerProperties({
        ports: { ...DEFAULT_PORTS, kafka: 19092, kafkaController: 19093 },
        dataDir: '/tmp/data',
      }),
    );
    expect(props).toMatchObject({
      'process.roles': 'broker,controller',
      'node.id': '1',
      'controller.quorum.voters': '1@127.0.0.1:19093',
      listeners: 'PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093',
      'advertised.listeners': 'PLAINTEXT://127.0.0.1:19092',
      'controller.listener.names': 'CONTROLLER',
      'log.dirs': '/tmp/data',
      'num.partitions': '3',
      'auto.create.topics.enable': 'false',
      'offsets.topic.replication.factor': '1',
      'transaction.state.log.replication.factor': '1',
      'transaction.state.log.min.isr': '1',
      'group.initial.rebalance.delay.ms': '0',
    });
  });

  test('properties values are escaped', () => {
    const props = renderKafkaServerProperties({ ports: DEFAULT_PORTS, dataDir: 'C:\\data\nx' });
    expect(props).toContain('log.dirs=C:\\\\data\\nx\n');
  });

  test('kafka log4j2 config writes to the given file', () => {
    const text = renderKafkaLog4j2('/x/logs/kafka-server.log');
    expect(text).toContain('appender.file.fileName = /x/logs/kafka-server.log');
    expect(text).toContain('rootLogger.appenderRef.file.ref = file');
  });

  test('elasticmq binds and advertises 127.0.0.1 on the chosen port', () => {
    const conf = renderElasticMqConf({ port: 19324 });
    expect(conf).toContain('include classpath("application.conf")');
    expect(conf).toMatch(/node-address \{[^}]*host = "127\.0\.0\.1"[^}]*port = 19324/);
    expect(conf).toMatch(/rest-sqs \{[^}]*bind-port = 19324[^}]*bind-hostname = "127\.0\.0\.1"/);
    expect(conf).toMatch(/aws \{[^}]*region = "us-east-1"/);
    // Without a data dir, in memory; with one, queues and messages in an H2 file there (kept across restarts).
    expect(conf).not.toContain('messages-storage');
    const kept = renderElasticMqConf({ port: 19324, dataDir: '/x/.local/elasticmq/data' });
    expect(kept).toMatch(
      /messages-storage \{\s*enabled = true\s*uri = "jdbc:h2:\/x\/\.local\/elasticmq\/data\/messages"\s*\}/,
    );
  });

  test('kafka cluster ids are 22 base64url characters', () => {
    expect(newKafkaClusterId(new Uint8Array(16).fill(0xfb))).toMatch(/^[\w-]{22}$/);
    expect(() => newKafkaClusterId(new Uint8Array(8))).toThrow(ConfigError);
  });
});

describe('command lines', () => {
  const paths = localPaths('/repo');

  test('paths live under .local at the repo root', () => {
    expect(paths.lib('kafka')).toBe(path.join('/repo', '.local', 'lib', 'kafka'));
    expect(paths.pidFile('dynamodb')).toBe(path.join('/repo', '.local', 'run', 'dynamodb.pid'));
    expect(paths.pom('elasticmq')).toBe(path.join('/repo', 'scripts', 'local', 'poms', 'elasticmq', 'pom.xml'));
    expect(REPO_ROOT).toBe(`${path.resolve(import.meta.dirname, '../../..')}${path.sep}`);
    expect(paths.dataDir('dynamodb')).toBe('/repo/.local/dynamodb/data');
    expect(paths.dataDir('elasticmq')).toBe('/repo/.local/elasticmq/data');
    expect(paths.kafkaDataDir).toBe('/repo/.local/kafka/data');
  });

  test('LOCAL_STATE_DIR moves all state but the jars', () => {
    const moved = localPaths('/repo', '/tmp/state');
    expect(moved.pidFile('dynamodb')).toBe('/tmp/state/run/dynamodb.pid');
    expect(moved.dataDir('dynamodb')).toBe('/tmp/state/dynamodb/data');
    expect(moved.home('elasticmq')).toBe('/tmp/state/elasticmq');
    expect(moved.lib('kafka')).toBe('/repo/.local/lib/kafka');
  });

  test('kafka: modest heap, log4j2 config, kafka.Kafka with server.properties', () => {
    const { args, cwd } = serviceCommand('kafka', paths, DEFAULT_PORTS);
    expect(cwd).toBe('/repo/.local/kafka');
    expect(args).toContain('-Xmx512m');
    expect(args).toContain('-Dlog4j2.configurationFile=/repo/.local/kafka/log4j2.properties');
    expect(args.slice(-4)).toEqual([
      '-cp',
      '/repo/.local/lib/kafka/*',
      'kafka.Kafka',
      '/repo/.local/kafka/server.properties',
    ]);
  });

  test('kafka storage format', () => {
    const { args } = kafkaStorageFormatCommand(paths, 'abc');
    expect(args).toEqual(
      expect.arrayContaining(['kafka.tools.StorageTool', 'format', '--cluster-id', 'abc', '--ignore-formatted']),
    );
  });

  test('dynamodb local: in memory by default, on disk under .local/dynamodb/data with LOCAL_PERSIST, shared, native lib on java.library.path', () => {
    const { args } = serviceCommand('dynamodb', paths, { ...DEFAULT_PORTS, dynamodb: 18000 });
    expect(args).toContain('-Djava.library.path=/repo/.local/lib/dynamodb');
    // DynamoDB Local's main, through the launcher that binds it to 127.0.0.1 (it has no bind option).
    expect(args).toContain('-Dbind.host=127.0.0.1');
    expect(args.find((a) => a.endsWith('scripts/local/DynamoDbLocalLoopback.java'))).toBeDefined();
    expect(args.slice(-5)).toEqual(['-inMemory', '-sharedDb', '-disableTelemetry', '-port', '18000']);
    // Persisting: its tables survive a restart, as Kafka's committed offsets do.
    const persisted = serviceCommand('dynamodb', localPaths('/repo', undefined, true), {
      ...DEFAULT_PORTS,
      dynamodb: 18000,
    }).args;
    expect(persisted).not.toContain('-inMemory');
    expect(persisted.slice(-6)).toEqual([
      '-dbPath',
      '/repo/.local/dynamodb/data',
      '-sharedDb',
      '-disableTelemetry',
      '-port',
      '18000',
    ]);
  });

  test('elasticmq reads the rendered config', () => {
    const { args } = serviceCommand('elasticmq', paths, DEFAULT_PORTS);
    expect(args).toContain('-Dconfig.file=/repo/.local/elasticmq/elasticmq.conf');
    expect(args.at(-1)).toBe('org.elasticmq.server.Main');
  });

  test('maven copies dependencies, stripping versions only for dynamodb (native lib name)', () => {
    expect(mavenCopyArgs('dynamodb', '/p.xml', '/out')).toContain('-Dmdep.stripVersion=true');
    expect(mavenCopyArgs('kafka', '/p.xml', '/out')).toEqual(
      expect.arrayContaining(['-f', '/p.xml', 'dependency:copy-dependencies', '-DoutputDirectory=/out']),
    );
    expect(mavenCopyArgs('kafka', '/p.xml', '/out')).not.toContain('-Dmdep.stripVersion=true');
  });
});

test.each([
  ['openjdk version "17.0.15" 2025-04-15', 17],
  ['java version "1.8.0_412"', 8],
  ['openjdk version "21" 2023-09-19', 21],
  ['nothing useful', undefined],
])('parseJavaMajor(%j) = %j', (output, major) => {
  expect(parseJavaMajor(output)).toBe(major);
});

test.each(SERVICE_NAMES)('the %s pom pins the version the code reports', (name) => {
  const pom = fs.readFileSync(localPaths().pom(name), 'utf8');
  expect(pom).toContain(`>${SERVICE_VERSIONS[name]}</`);
  expect(pom).not.toMatch(/<version>[^<]*[[(,]/); // no version ranges
});
