// What `invoke` and `replay --invoke` share: keeping stdout for the tool's own JSON, preparing a
// route's environment (local resources by default), loading its handler module and running it once
// with a Lambda-like context.
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Context } from 'aws-lambda';
import { type Command, CommanderError, type OptionValues } from 'commander';
import { KafkaEvent } from '../../functions/runtime/event.ts';
import { invocationSummaryOf } from '../../functions/runtime/kafkaHandler.ts';
import {
  type BridgeConfig,
  BridgeConfigError,
  findRoute,
  loadBridgeConfig,
  type RouteConfig,
  resolveHandlerEntry,
  routeEnvironment,
} from '../../infra/config/index.ts';
import { applyEndpointsToEnv, resolveEndpoints } from '../local/config.ts';
import { describeFailure, EXIT_USAGE, oneLine } from './cliArgs.ts';
import { createLambdaContext } from './lambdaContext.ts';
import { ensureLocalResources } from './localResources.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * `invoke`'s own local resources beside the bridge's (`<config>-_invoke-*`). The underscore is what no config, route or
 * table name may hold (they are lower-case kebab-case), so invoke's names never meet the bridge's: with "invoke", the
 * invoke DLQ of route `widgets` and the bridge's DLQ of a route named `invoke-widgets` were one queue.
 */
export const INVOKE_NAMESPACE = '_invoke';

/** Whether a tool was asked for debug output (`--log-level DEBUG`, or LOG_LEVEL=DEBUG): then errors carry a stack. */
const debugWanted = (options: OptionValues): boolean =>
  String(options.logLevel ?? process.env.LOG_LEVEL ?? '').toUpperCase() === 'DEBUG';

const isBug = (error: unknown): boolean =>
  error instanceof TypeError || error instanceof ReferenceError || error instanceof RangeError;

/** Bad input from the user (flags, config, event file): reported on stderr, exit code 2. */
export class CliInputError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CliInputError';
  }
}

/** The route's resources could not be prepared (services unreachable, a table with another key, …). */
export class RouteSetupError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RouteSetupError';
  }
}

/**
 * Sends everything written to stdout (the runtime's Powertools logs and EMF lines, stray
 * console.log calls) to stderr, so the tool's one JSON document is all stdout carries.
 * `print` writes to the real stdout and resolves once the text is flushed.
 */
export const reserveStdout = (): { print: (text: string) => Promise<void>; restore: () => void } => {
  const stdoutWrite = process.stdout.write;
  const original = stdoutWrite.bind(process.stdout);
  const toStderr = ((chunk: string | Uint8Array, encoding?: unknown, callback?: unknown) =>
    (process.stderr.write as (...args: unknown[]) => boolean)(
      chunk,
      encoding,
      callback,
    )) as typeof process.stdout.write;
  process.stdout.write = toStderr;
  // A reader that goes away early (`| head`) is not an error of the tool's.
  const isEpipe = (error: unknown) => (error as NodeJS.ErrnoException | null | undefined)?.code === 'EPIPE';
  process.stdout.on('error', (error) => {
    if (!isEpipe(error)) throw error;
  });
  return {
    print: (text) =>
      new Promise<void>((resolve, reject) =>
        original(text, (error) => (error && !isEpipe(error) ? reject(error) : resolve())),
      ),
    restore: () => {
      process.stdout.write = stdoutWrite;
    },
  };
};

/** Writes a line to stderr, where the tools' progress and diagnostics go. */
export const note = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

/**
 * Runs a CLI whose stdout is one JSON document (invoke, replay): stdout is reserved before
 * anything runs, commander's help goes through it, and errors become exit codes (bad input 2,
 * anything else `failureExitCode`). Exits once the output is flushed, since the SDK's
 * keep-alive sockets would otherwise hold the process open.
 */
export const runJsonCli = async <Options extends OptionValues>(
  name: string,
  program: Command,
  failureExitCode: number,
  main: (options: Options, print: (text: string) => Promise<void>) => Promise<number>,
): Promise<never> => {
  const stdout = reserveStdout();
  let pendingOutput = Promise.resolve();
  program
    .configureOutput({
      writeOut: (text) => {
        pendingOutput = pendingOutput.then(() => stdout.print(text));
      },
      writeErr: (text) => process.stderr.write(text),
    })
    .exitOverride();
  let exitCode: number;
  try {
    program.parse();
    exitCode = await main(program.opts<Options>(), stdout.print);
  } catch (error) {
    // One line per error (a config's list of problems joined, a connection failure named with its service); the
    // stack only with --log-level DEBUG.
    const debug = debugWanted(program.opts());
    if (error instanceof CommanderError) {
      exitCode = error.exitCode === 0 ? 0 : EXIT_USAGE;
    } else if (error instanceof CliInputError) {
      note(`${name}: ${oneLine(error.message)}`);
      exitCode = EXIT_USAGE;
    } else if (error instanceof RouteSetupError) {
      const hint = error instanceof HandlerLoadError && !debug ? ' (--log-level DEBUG shows its stack)' : '';
      note(`${name}: ${oneLine(error.message)}${hint}`);
      exitCode = failureExitCode;
    } else if (isBug(error) && !debug) {
      // A programming error keeps its stack: it is for whoever fixes the tool.
      note(`${name}: ${(error as Error).stack ?? String(error)}`);
      exitCode = failureExitCode;
    } else {
      note(`${name}: ${describeFailure(error)}`);
      exitCode = failureExitCode;
    }
    const cause = error instanceof RouteSetupError ? error.cause : error;
    if (debug && cause instanceof Error && cause.stack) note(cause.stack);
  }
  await pendingOutput;
  process.exit(exitCode);
};

/** The route's handler module threw as it loaded (a syntax error, a failing import, a check at module level). */
export class HandlerLoadError extends RouteSetupError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'HandlerLoadError';
  }
}

export type PreparedRoute = {
  readonly config: BridgeConfig;
  readonly route: RouteConfig;
  /** The route's environment contract (DESIGN §5), already applied to process.env. */
  readonly environment: Readonly<Record<string, string>>;
  readonly deadLetterQueueUrl: string;
  readonly target: 'local' | 'aws';
};

export type PrepareRouteOptions = {
  readonly route: string;
  /** Default: BRIDGE_CONFIG, else infra/bridge.config.ts. */
  readonly configPath?: string | undefined;
  /**
   * Use the SDK's own AWS endpoints and credentials and the deployed resources, named by
   * IDEMPOTENCY_TABLE_NAME, DLQ_URL and the side tables' variables, instead of local ones.
   */
  readonly aws?: boolean | undefined;
  /** Overrides the config's LOG_LEVEL for the runtime's logs (which go to stderr). */
  readonly logLevel?: string | undefined;
  /** Local resources of the tool's own beside the bridge's (see `localResourceNames`); unset: the bridge's. */
  readonly namespace?: string | undefined;
};

const loadConfig = async (path: string | undefined): Promise<BridgeConfig> => {
  try {
    return await loadBridgeConfig(path);
  } catch (error) {
    if (error instanceof BridgeConfigError) throw new CliInputError(error.message, { cause: error });
    throw error;
  }
};

/** The deployed route's resources, from the variables its function has in AWS. */
const awsEnvironment = (config: BridgeConfig, route: RouteConfig): Record<string, string> => {
  const wanted = ['IDEMPOTENCY_TABLE_NAME', 'DLQ_URL', ...route.tables.map((t) => t.env)];
  const missing = wanted.filter((name) => !process.env[name]);
  if (missing.length > 0) {
    throw new CliInputError(
      `--aws needs the deployed route's resource names in the environment; missing: ${missing.join(', ')}`,
    );
  }
  return routeEnvironment(config, route, {
    idempotencyTableName: process.env.IDEMPOTENCY_TABLE_NAME as string,
    deadLetterQueueUrl: process.env.DLQ_URL as string,
    tableNames: Object.fromEntries(route.tables.map((t) => [t.name, process.env[t.env] as string])),
  });
};

/**
 * Loads the config, points the SDKs at the local services (or at AWS), creates the route's table,
 * side tables and DLQ if they are missing (locally), and sets the route's environment in
 * process.env, which the handler module reads. Local EMF output is off unless
 * POWERTOOLS_METRICS_DISABLED says otherwise.
 */
export const prepareRoute = async (options: PrepareRouteOptions): Promise<PreparedRoute> => {
  const config = await loadConfig(options.configPath);
  let route: RouteConfig;
  try {
    route = findRoute(config, options.route);
  } catch (error) {
    throw new CliInputError((error as Error).message, { cause: error });
  }
  let environment: Record<string, string>;
  try {
    if (options.aws) {
      environment = awsEnvironment(config, route);
    } else {
      applyEndpointsToEnv(resolveEndpoints());
      const [resources] = await ensureLocalResources(config, {
        routes: [route.name],
        topics: false,
        ...(options.namespace && { namespace: options.namespace }),
      });
      if (!resources) throw new Error(`no local resources for route ${route.name}`);
      environment = { ...resources.environment };
    }
  } catch (error) {
    if (error instanceof CliInputError) throw error;
    // A service that cannot be reached is named, with `npm run local:up` when it is a local one.
    throw new RouteSetupError(`cannot prepare route ${route.name}: ${describeFailure(error)}`, { cause: error });
  }
  if (options.logLevel) environment.LOG_LEVEL = options.logLevel;
  Object.assign(process.env, environment);
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  return {
    config,
    route,
    environment,
    deadLetterQueueUrl: environment.DLQ_URL as string,
    target: options.aws ? 'aws' : 'local',
  };
};

export type RouteHandler = (event: unknown, context: Context) => Promise<unknown>;

/**
 * Imports the route's handler module; call it after `prepareRoute`, as the module may read its environment. A module
 * that throws as it loads is a RouteSetupError naming the route and the file, in one line (the stack is its cause).
 */
export const loadRouteHandler = async (route: Pick<RouteConfig, 'name' | 'handler'>): Promise<RouteHandler> => {
  const entry = resolveHandlerEntry(route);
  let module: { handler?: unknown };
  try {
    module = (await import(pathToFileURL(entry).href)) as { handler?: unknown };
  } catch (error) {
    throw new HandlerLoadError(
      `route ${route.name}: its handler ${relative(ROOT, entry)} failed to load: ${describeFailure(error)}`,
      { cause: error },
    );
  }
  if (typeof module.handler !== 'function') {
    throw new CliInputError(`route ${route.name}: ${entry} does not export a handler function`);
  }
  return module.handler as RouteHandler;
};

/** The summary `invoke` prints (DESIGN §9), in this order. */
export type InvokeSummary = {
  received: number;
  processed: number;
  duplicates: number;
  failed: number;
  deadLettered: number;
  retried: number;
  ddbRequests: number;
  durationMs: number;
};

export type InvokeOutcome = {
  readonly response: unknown;
  /** The thrown error's message, or null when the handler returned. */
  readonly error: string | null;
  readonly summary: InvokeSummary;
  readonly requestId: string;
};

/** Runs the handler once with a context whose deadline is the route's timeout. */
export const invokeRoute = async (prepared: PreparedRoute, handler: RouteHandler, event: unknown) => {
  const { config, route } = prepared;
  const context = createLambdaContext({
    functionName: `${config.name}-${route.name}`,
    timeoutSeconds: route.timeoutSeconds,
    memoryMb: route.memoryMb,
  });
  const started = Date.now();
  let response: unknown = null;
  let thrown: unknown;
  let threw = false;
  try {
    response = (await handler(event, context)) ?? null;
  } catch (error) {
    threw = true;
    thrown = error;
  }
  const details = invocationSummaryOf(context);
  const summary: InvokeSummary = {
    received: details?.received ?? 0,
    processed: details?.processed ?? 0,
    duplicates: details?.duplicates ?? 0,
    failed: details?.failed ?? 0,
    deadLettered: details?.deadLettered ?? 0,
    retried: details?.retried ?? 0,
    ddbRequests: details?.ddbRequests ?? 0,
    durationMs: details?.durationMs ?? Date.now() - started,
  };
  const outcome: InvokeOutcome = {
    response,
    error: threw ? (thrown instanceof Error ? thrown.message : String(thrown)) : null,
    summary,
    requestId: context.awsRequestId,
  };
  return outcome;
};

const readStdin = async (): Promise<string> => {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};

/** Reads and checks an event file (`-` for stdin): it must be JSON and a Kafka event (MSK or self-managed). */
export const readKafkaEventFile = async (file: string): Promise<unknown> => {
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliInputError(
      code === 'ENOENT'
        ? `event file not found: ${file}`
        : `cannot read event file ${file}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  let event: unknown;
  try {
    event = JSON.parse(text);
  } catch (error) {
    throw new CliInputError(`event file ${file} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  const parsed = KafkaEvent.safeParse(event);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 3)
      .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
      .join('; ');
    throw new CliInputError(`event file ${file} is not a Kafka event (aws:kafka or SelfManagedKafka): ${issues}`);
  }
  // The handler gets the file's own object, as Lambda would pass it, not the parsed copy.
  return event;
};

export const formatSummary = (summary: InvokeSummary): string =>
  [
    `received ${summary.received}`,
    `processed ${summary.processed}`,
    `duplicates ${summary.duplicates}`,
    `failed ${summary.failed}`,
    `dead-lettered ${summary.deadLettered}`,
    `retried ${summary.retried}`,
    `idempotency-table requests ${summary.ddbRequests}`,
    `${summary.durationMs} ms`,
  ].join(', ');
