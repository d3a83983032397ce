// What the CLIs share, so they agree: option parsers that fail with the same words, and the exit codes. Every CLI
// exits 2 for usage and connection errors, with one line on stderr (never the whole help text), and 1 only when a
// check it ran found a problem (reconcile: records missing; chaos: a record lost or applied twice).
import { Command, InvalidArgumentError } from 'commander';

/** Bad flags, a bad config, or a service that cannot be reached. */
export const EXIT_USAGE = 2;
/** The check ran and found a problem. */
export const EXIT_PROBLEM_FOUND = 1;

/** A commander program that reports a usage error in one line, with a suggestion for a typo, and exits 2. */
export const cliProgram = (name: string): Command =>
  new Command()
    .name(name)
    .showSuggestionAfterError()
    .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE));

const LOCAL_HOST = /(127\.\d+\.\d+\.\d+|localhost|::1)/;

/** Whether an error, or one it wraps, is a refused connection. */
const refusedConnection = (error: unknown, depth = 0): { address?: string } | undefined => {
  if (!error || typeof error !== 'object' || depth > 5) return undefined;
  const e = error as { code?: unknown; message?: unknown; address?: unknown; cause?: unknown; errors?: unknown };
  if (e.code === 'ECONNREFUSED' || (typeof e.message === 'string' && e.message.includes('ECONNREFUSED'))) {
    return { ...(typeof e.address === 'string' && { address: e.address }) };
  }
  for (const inner of [e.cause, ...(Array.isArray(e.errors) ? e.errors : [])]) {
    const found = refusedConnection(inner, depth + 1);
    if (found) return found;
  }
  return undefined;
};

/**
 * An error as one line for stderr; a refused connection to a service on this machine says how to start the local
 * services.
 */
export const errorLine = (tool: string, error: unknown): string => {
  const message = (error instanceof Error ? error.message : String(error)).split('\n')[0] as string;
  const refused = refusedConnection(error);
  const local = refused && (refused.address === undefined || LOCAL_HOST.test(refused.address));
  return `${tool}: ${message}${local ? ' (is a local service down? `npm run local:up` starts them)' : ''}`;
};

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
