// Option parsers shared by the CLIs, so every numeric flag is checked the same way and fails with the same words.
import { InvalidArgumentError } from 'commander';

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
