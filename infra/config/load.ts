import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { z } from 'zod';
import { BridgeConfig, type BridgeConfigModule, type ConfigContext } from './schema.ts';

/** `infra/bridge.config.ts`, found from this module's URL so the working directory does not matter. */
export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('../bridge.config.ts', import.meta.url));

/** The environment variable that picks another config file (DESIGN §3). */
export const CONFIG_ENV = 'BRIDGE_CONFIG';
/** The CDK context key that picks another config file: `cdk synth -c bridgeConfig=<path>`. */
export const CONFIG_CONTEXT_KEY = 'bridgeConfig';

export type ConfigIssue = { readonly path: string; readonly message: string };

/** A config that does not parse; the message lists every problem with its path. */
export class BridgeConfigError extends Error {
  override readonly name = 'BridgeConfigError';
  readonly source: string;
  readonly issues: readonly ConfigIssue[];

  constructor(source: string, issues: readonly ConfigIssue[], options?: ErrorOptions) {
    super(`invalid bridge config ${source}:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`, options);
    this.source = source;
    this.issues = issues;
  }
}

/** `['routes', 1, 'batchSize']` → `routes[1].batchSize`. */
export const formatIssuePath = (path: readonly PropertyKey[]): string =>
  path.reduce<string>((out, key) => {
    if (typeof key === 'number') return `${out}[${key}]`;
    const name = String(key);
    return out ? `${out}.${name}` : name;
  }, '') || '(root)';

const toIssues = (error: z.ZodError): ConfigIssue[] =>
  error.issues.map((issue) => ({ path: formatIssuePath(issue.path), message: issue.message }));

/** Validates an already-loaded config object with the one schema. */
export const parseBridgeConfig = (input: unknown, source = '(inline config)'): BridgeConfig => {
  const result = BridgeConfig.safeParse(input);
  if (!result.success) throw new BridgeConfigError(source, toIssues(result.error));
  return result.data;
};

export type LoadOptions = {
  /** Reads a CDK context value (the app passes `app.node.tryGetContext`). */
  readonly context?: (key: string) => unknown;
  /** Defaults to `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
};

/**
 * Which file to load: an explicit path (the app passes `-c bridgeConfig=...`), else `BRIDGE_CONFIG`,
 * else the default. Relative paths are resolved against the working directory, where the user typed them.
 */
export const resolveConfigPath = (path?: string, options: LoadOptions = {}): string => {
  const env = options.env ?? process.env;
  const fromContext = options.context?.(CONFIG_CONTEXT_KEY);
  const chosen = path ?? (typeof fromContext === 'string' && fromContext ? fromContext : undefined) ?? env[CONFIG_ENV];
  return chosen ? resolve(chosen) : DEFAULT_CONFIG_PATH;
};

const configContext = (options: LoadOptions): ConfigContext => {
  const env = options.env ?? process.env;
  return {
    lookup(contextKey, envName) {
      const fromContext = options.context?.(contextKey);
      if (typeof fromContext === 'string' && fromContext) return fromContext;
      return env[envName] || undefined;
    },
  };
};

const readModule = async (file: string, options: LoadOptions): Promise<unknown> => {
  const extension = extname(file);
  if (extension === '.json') {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new BridgeConfigError(file, [{ path: '(file)', message: (error as Error).message }], { cause: error });
    }
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new BridgeConfigError(file, [{ path: '(file)', message: `not JSON: ${(error as Error).message}` }], {
        cause: error,
      });
    }
  }
  if (!['.ts', '.mts', '.js', '.mjs'].includes(extension)) {
    throw new BridgeConfigError(file, [{ path: '(file)', message: 'a config is a .ts, .js or .json file' }]);
  }
  let module: { default?: BridgeConfigModule };
  try {
    module = await import(pathToFileURL(file).href);
  } catch (error) {
    throw new BridgeConfigError(file, [{ path: '(file)', message: `cannot import: ${(error as Error).message}` }], {
      cause: error,
    });
  }
  if (module.default === undefined) {
    throw new BridgeConfigError(file, [{ path: '(file)', message: 'the module has no default export' }]);
  }
  return typeof module.default === 'function' ? module.default(configContext(options)) : module.default;
};

/**
 * Loads and validates the bridge config from `path`, `-c bridgeConfig`, `BRIDGE_CONFIG` or
 * `infra/bridge.config.ts`. A `.ts` module default-exports the config, or a function of a
 * {@link ConfigContext} returning it; a `.json` file holds the config itself.
 * Throws {@link BridgeConfigError} naming each offending path.
 */
export const loadBridgeConfig = async (path?: string, options: LoadOptions = {}): Promise<BridgeConfig> => {
  const file = resolveConfigPath(path, options);
  return parseBridgeConfig(await readModule(file, options), file);
};
