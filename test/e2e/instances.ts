// Service instances of a test's own, on free ports, with their state on disk, so a fault test can stop and restart
// one without disturbing anyone else using the shared local services (another suite, a developer's `npm start`):
// - DynamoDB Local with -dbPath instead of -inMemory: a restart keeps the tables, as a real outage would;
// - ElasticMQ with queue and message persistence (H2): a restart keeps the queue and the dead letters in it;
// - Kafka (KRaft) with its own data dir: a restart keeps topics, records and committed offsets.
// The jars are the ones scripts/local already fetched into .local/lib; the command lines are scripts/local's own.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  DEFAULT_PORTS,
  kafkaFiles,
  kafkaStorageFormatCommand,
  type LocalPorts,
  localPaths,
  newKafkaClusterId,
  renderElasticMqConf,
  renderKafkaLog4j2,
  renderKafkaServerProperties,
  type ServiceName,
  serviceCommand,
} from '../../scripts/local/config.ts';
import { waitUntilReady } from '../../scripts/local/probes.ts';
import { spawnDetached, stopProcess, tailFile } from '../../scripts/local/processes.ts';
import { javaExecutable } from '../../scripts/local/tools.ts';

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

export class OwnService {
  readonly name: ServiceName;
  readonly root: string;
  readonly ports: LocalPorts;
  readonly endpoint: string;
  pid: number | undefined;
  readonly #paths;

  private constructor(name: ServiceName, root: string, ports: LocalPorts) {
    this.name = name;
    this.root = root;
    this.ports = ports;
    const shared = localPaths();
    this.#paths = { ...localPaths(root), lib: shared.lib };
    this.endpoint = name === 'kafka' ? `127.0.0.1:${ports.kafka}` : `http://127.0.0.1:${ports[name]}`;
  }

  static async create(name: ServiceName, root: string): Promise<OwnService> {
    const ports: LocalPorts = { ...DEFAULT_PORTS };
    if (name === 'kafka') {
      ports.kafka = await freePort();
      ports.kafkaController = await freePort();
    } else ports[name] = await freePort();
    const service = new OwnService(name, root, ports);
    await service.#prepare();
    return service;
  }

  get logFile(): string {
    return this.#paths.logFile(this.name);
  }

  async #prepare(): Promise<void> {
    const paths = this.#paths;
    const home = paths.home(this.name);
    fs.mkdirSync(home, { recursive: true });
    if (this.name === 'elasticmq') {
      const data = path.join(home, 'data');
      fs.mkdirSync(data, { recursive: true });
      fs.writeFileSync(
        path.join(home, 'elasticmq.conf'),
        `${renderElasticMqConf({ port: this.ports.elasticmq })}
queues-storage {
  enabled = true
  path = "${path.join(data, 'queues.conf')}"
}
messages-storage {
  enabled = true
  uri = "jdbc:h2:${path.join(data, 'messages')}"
}
`,
      );
    }
    if (this.name === 'kafka') {
      const files = kafkaFiles(paths);
      fs.writeFileSync(
        files.serverProperties,
        renderKafkaServerProperties({ ports: this.ports, dataDir: paths.kafkaDataDir }),
      );
      fs.writeFileSync(files.log4j2, renderKafkaLog4j2(paths.kafkaServerLog));
      const format = kafkaStorageFormatCommand(paths, newKafkaClusterId(randomBytes(16)));
      fs.mkdirSync(paths.logs, { recursive: true });
      const code = await new Promise<number | null>((resolve, reject) => {
        const child = spawn(javaExecutable(), format.args, { cwd: format.cwd, stdio: 'ignore' });
        child.once('error', reject);
        child.once('exit', resolve);
      });
      if (code !== 0) throw new Error(`kafka storage format failed with code ${code}`);
    }
  }

  #command(): { args: string[]; cwd: string } {
    const command = serviceCommand(this.name, this.#paths, this.ports);
    if (this.name !== 'dynamodb') return command;
    const data = path.join(this.#paths.home('dynamodb'), 'data');
    fs.mkdirSync(data, { recursive: true });
    const args = command.args.flatMap((arg) => (arg === '-inMemory' ? ['-dbPath', data] : [arg]));
    return { ...command, args };
  }

  async start(timeoutMs = 90_000): Promise<void> {
    const command = this.#command();
    const child = spawnDetached(javaExecutable(), command.args, { cwd: command.cwd, logFile: this.logFile });
    this.pid = child.pid;
    try {
      await waitUntilReady(this.name, this.endpoint, {
        deadline: Date.now() + timeoutMs,
        failFast: () => {
          const exit = child.exited();
          return exit ? new Error(`${this.name} exited (code ${exit.code}):\n${tailFile(this.logFile)}`) : undefined;
        },
      });
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** SIGTERM (SIGKILL after the grace period) and wait for the process to be gone. */
  async stop(graceMs = 20_000): Promise<void> {
    if (this.pid === undefined) return;
    await stopProcess(this.pid, graceMs);
    this.pid = undefined;
  }

  async destroy(): Promise<void> {
    await this.stop(5_000);
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}
