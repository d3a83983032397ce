// External tools the local services need: a Java 17+ runtime, and Maven to fetch the services from Maven Central.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { mavenCopyArgs, parseJavaMajor, type ServiceName } from './config.ts';
import { tailFile } from './processes.ts';

export class LocalServicesError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'LocalServicesError';
  }
}

export class MissingToolError extends LocalServicesError {
  readonly tool: string;
  constructor(tool: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MissingToolError';
    this.tool = tool;
  }
}

const BRING_YOUR_OWN =
  'Or use services you already run: set KAFKA_BROKERS, AWS_ENDPOINT_URL_DYNAMODB and AWS_ENDPOINT_URL_SQS.';

export function javaExecutable(env: Record<string, string | undefined> = process.env): string {
  return env.JAVA_HOME ? path.join(env.JAVA_HOME, 'bin', 'java') : 'java';
}

function run(command: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) reject(Object.assign(error, { stdout, stderr }));
      else resolve({ stdout, stderr });
    });
  });
}

let checkedJava: Promise<string> | undefined;

/** Resolves to the java executable, or fails with an install hint when it is missing or older than 17. */
export function checkJava(): Promise<string> {
  checkedJava ??= (async () => {
    const java = javaExecutable();
    let output: string;
    try {
      const { stdout, stderr } = await run(java, ['-version']);
      output = `${stderr}${stdout}`;
    } catch (error) {
      checkedJava = undefined;
      throw new MissingToolError(
        'java',
        `Java 17+ is needed to run Kafka, DynamoDB Local and ElasticMQ, but \`${java}\` could not be run. ` +
          `Install a JDK (Debian/Ubuntu: \`apt-get install openjdk-17-jre-headless\`; macOS: \`brew install openjdk@17\`) ` +
          `or set JAVA_HOME. ${BRING_YOUR_OWN}`,
        { cause: error },
      );
    }
    const major = parseJavaMajor(output);
    if (major !== undefined && major < 17) {
      checkedJava = undefined;
      throw new MissingToolError(
        'java',
        `Java ${major} found at \`${java}\`, but Kafka 4 needs Java 17 or newer. Install a newer JDK or set JAVA_HOME. ${BRING_YOUR_OWN}`,
      );
    }
    return java;
  })();
  return checkedJava;
}

async function checkMaven(): Promise<void> {
  try {
    await run('mvn', ['-v']);
  } catch (error) {
    throw new MissingToolError(
      'mvn',
      'Maven 3.8+ (`mvn`) is needed once, to fetch Kafka, DynamoDB Local and ElasticMQ from Maven Central into .local/lib, ' +
        `but it could not be run. Install it (Debian/Ubuntu: \`apt-get install maven\`; macOS: \`brew install maven\`). ${BRING_YOUR_OWN}`,
      { cause: error },
    );
  }
}

/** The cache key of a resolved lib dir: the pom's content, so a version bump re-resolves. */
export function pomDigest(pomText: string): string {
  return createHash('sha256').update(pomText).digest('hex').slice(0, 16);
}

const MARKER = '.resolved';

export function isResolved(libDir: string, pomFile: string): boolean {
  try {
    return fs.readFileSync(path.join(libDir, MARKER), 'utf8').trim() === pomDigest(fs.readFileSync(pomFile, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * Fetches a service's jars with `mvn dependency:copy-dependencies` into `libDir`, unless already there for this pom.
 * Resolves into a temporary sibling and renames it, so an interrupted download never looks complete.
 */
export async function resolveServiceLib(
  name: ServiceName,
  pomFile: string,
  libDir: string,
  log: (line: string) => void,
): Promise<boolean> {
  if (isResolved(libDir, pomFile)) return false;
  await checkMaven();
  const pomText = fs.readFileSync(pomFile, 'utf8');
  const tmp = `${libDir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(libDir), { recursive: true });
  const mvnLog = `${tmp}.log`;
  log(`resolving ${name} from Maven Central (first run only; ~40 MB)…`);
  const started = Date.now();
  const code = await new Promise<number | null>((resolve, reject) => {
    const out = fs.openSync(mvnLog, 'w');
    const child = spawn('mvn', mavenCopyArgs(name, pomFile, tmp), { stdio: ['ignore', out, out] });
    child.once('error', reject);
    child.once('exit', (c) => {
      fs.closeSync(out);
      resolve(c);
    });
  });
  if (code !== 0) {
    const tail = tailFile(mvnLog, 15);
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(mvnLog, { force: true });
    throw new LocalServicesError(
      `mvn could not resolve ${name} from ${pomFile} (exit ${code}). Is Maven Central reachable?\n${tail}`,
    );
  }
  fs.rmSync(mvnLog, { force: true });
  fs.writeFileSync(path.join(tmp, MARKER), `${pomDigest(pomText)}\n`);
  fs.rmSync(libDir, { recursive: true, force: true });
  fs.renameSync(tmp, libDir);
  log(`${name} resolved (${((Date.now() - started) / 1000).toFixed(1)}s)`);
  return true;
}
