// What the CLIs share, so they agree: option parsers that fail with the same words, and the exit codes. Every CLI
// exits 2 for usage and connection errors, with one line on stderr (never the whole help text), and 1 only when a
// check it ran found a problem (reconcile: records missing; chaos: a record lost or applied twice).
import { Command, InvalidArgumentError } from 'commander';

/** Bad flags, a bad config, or a service that cannot be reached. */
export const EXIT_USAGE = 2;

/** A commander program that reports a usage error in one line, with a suggestion for a typo, and exits 2. */
export const cliProgram = (name: string): Command =>
  new Command()
    .name(name)
    .showSuggestionAfterError()
    .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE));

/** Node's codes for a service that cannot be reached. */
const UNREACHABLE: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
};

type Failure = Error & { code?: unknown; address?: unknown; port?: unknown; hostname?: unknown; errors?: unknown };

/**
 * The first error in `error`'s cause chain and aggregated errors (depth first) that says a connection failed. Any
 * object with a `code` counts, not only `instanceof Error`: an error made in another realm (a jest sandbox, a vm
 * context) is not an instance of this one's Error.
 */
const connectionFailure = (error: unknown, depth = 0): Failure | undefined => {
  if (typeof error !== 'object' || error === null || depth > 8) return undefined;
  const e = error as Failure;
  if (typeof e.code === 'string' && e.code in UNREACHABLE) return e;
  for (const inner of [e.cause, ...(Array.isArray(e.errors) ? e.errors : [])]) {
    const found = connectionFailure(inner, depth + 1);
    if (found) return found;
  }
  // An error that kept only the message of the one it wraps (the AWS SDK's "error wrapper" for a foreign error).
  const wrapped = typeof e.message === 'string' ? WRAPPED_FAILURE.exec(e.message) : null;
  if (wrapped) {
    const [, code, host, port] = wrapped;
    return Object.assign(new Error(e.message), { code, address: host?.replace(/^\[|\]$/g, ''), port });
  }
  return undefined;
};

/** `connect ECONNREFUSED 127.0.0.1:1`, `getaddrinfo ENOTFOUND broker` in a message. */
const WRAPPED_FAILURE = new RegExp(
  `\\b(${Object.keys(UNREACHABLE).join('|')})\\b(?: (\\[[0-9a-fA-F:.]+\\]|[^\\s:]+)(?::(\\d+))?)?`,
);

/** True when `error` (or an error it wraps) says a service refused the connection: nothing listens there. */
export const isConnectionRefused = (error: unknown): boolean => connectionFailure(error)?.code === 'ECONNREFUSED';

/** True when `error` (or an error it wraps) says a service could not be reached at all. */
export const isConnectionError = (error: unknown): boolean => connectionFailure(error) !== undefined;

const LOCAL_HOSTS = new Set(['127.0.0.1', '::1', 'localhost', '0.0.0.0', '::']);

/** Which of the configured services listens on `host:port`, by the endpoints in the environment. */
const serviceAt = (port: string, env: NodeJS.ProcessEnv): string | undefined => {
  const portOf = (endpoint: string | undefined) => {
    try {
      return endpoint ? new URL(endpoint.includes('://') ? endpoint : `tcp://${endpoint}`).port : undefined;
    } catch {
      return undefined;
    }
  };
  if ((env.KAFKA_BROKERS ?? '').split(',').some((broker) => portOf(broker.trim()) === port)) return 'Kafka';
  if (portOf(env.AWS_ENDPOINT_URL_DYNAMODB) === port) return 'DynamoDB';
  if (portOf(env.AWS_ENDPOINT_URL_SQS) === port) return 'SQS';
  return undefined;
};

/** A message of several lines (a config's list of problems) as one: `first: second; third`. */
export const oneLine = (message: string): string => {
  const [first = '', ...rest] = message
    .split('\n')
    .map((line) => line.trim().replace(/^- /, ''))
    .filter((line) => line !== '');
  return rest.length === 0 ? first : `${first.replace(/:$/, '')}: ${rest.join('; ')}`;
};

/** An error's message on one line, with the first of the errors it aggregates (the Kafka client's MultipleErrors). */
const firstLine = (error: unknown, depth = 0): string => {
  const text = (error as { message?: unknown } | null)?.message;
  const message = oneLine(typeof text === 'string' ? text : String(error));
  const inner = (error as Failure | null)?.errors;
  if (!Array.isArray(inner) || inner.length === 0 || depth > 4) return message;
  const detail = firstLine(inner[0], depth + 1);
  return message ? `${message.replace(/\.$/, '')}: ${detail}` : detail;
};

/**
 * One line for an error that stopped a tool. A service that cannot be reached is named with its address; a refused
 * connection to a local one says how to start the local services.
 */
export const describeFailure = (error: unknown, env: NodeJS.ProcessEnv = process.env): string => {
  const failure = connectionFailure(error);
  if (!failure) return firstLine(error);
  const host = String(failure.address ?? failure.hostname ?? '');
  const port = failure.port === undefined ? '' : String(failure.port);
  const where = host ? `${host.includes(':') ? `[${host}]` : host}${port ? `:${port}` : ''}` : '';
  const service = (port && serviceAt(port, env)) || 'a service';
  const code = failure.code as string;
  const line = `cannot connect to ${service}${where ? ` at ${where}` : ''} (${UNREACHABLE[code]})`;
  return code === 'ECONNREFUSED' && LOCAL_HOSTS.has(host)
    ? `${line}: are the local services running? Start them with \`npm run local:up\``
    : line;
};

/** An error as one line for stderr, after the tool's name (see `describeFailure`). */
export const errorLine = (tool: string, error: unknown): string => `${tool}: ${describeFailure(error)}`;

/** The end of a CLI that failed before its check could run: one line on stderr, exit 2. */
export const failUsage = (tool: string, error: unknown): never => {
  process.stderr.write(`${errorLine(tool, error)}\n`);
  process.exit(EXIT_USAGE);
};

/**
 * A commander parser for a number within `[min, max]`; `integer` refuses fractions. A trailing `%` is accepted,
 * for percentages.
 */
export const numberArg =
  (what: string, { min = 0, max = Number.POSITIVE_INFINITY, integer = false } = {}) =>
  (value: string): number => {
    const n = Number(value.trim().replace(/%$/, ''));
    if (Number.isFinite(n) && n >= min && n <= max && (!integer || Number.isInteger(n))) return n;
    const kind =
      integer && min === 1 && max === Number.POSITIVE_INFINITY
        ? 'a positive integer'
        : `${integer ? 'an integer' : 'a number'} ${max === Number.POSITIVE_INFINITY ? `>= ${min}` : `from ${min} to ${max}`}`;
    throw new InvalidArgumentError(`${what} must be ${kind} (got "${value}")`);
  };
