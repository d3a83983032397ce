// The route's `eventSource.filters`, applied by the local bridge as Lambda event filtering applies them to Kafka
// records (invocation-eventfiltering, kafka-filtering). Pure.
//
// - A record passes when it matches any of the filters; a record that passes none is committed without an
//   invocation (Lambda "commits offsets for matched and unmatched messages").
// - Kafka mappings filter on `value` only. Lambda decodes the bytes as UTF-8: a JSON value is matched as the parsed
//   JSON, any other value as a plain string. A value whose format does not fit the pattern (a plain string against a
//   JSON pattern, or the reverse) does not match.
// - The comparison operators are Lambda's: exact values (strings, numbers, booleans, null, ""), `prefix`, `suffix`
//   (each also with `equals-ignore-case`), `equals-ignore-case`, `anything-but`, `numeric`, `exists`, and `$or`.
//   Keys of a pattern are ANDed, the entries of a key's array ORed; an array in the value matches if any element does.
//
// Written here, not taken from npm: AWS evaluates patterns only through an API call (EventBridge TestEventPattern),
// and the one local evaluator we found (eb-patterns) is not on the registry, and implements EventBridge's wider
// language (wildcard, cidr), which Lambda's filters refuse.
import type { LambdaKafkaRecord } from '../lib/kafkaEvents.ts';

type Pattern = Record<string, unknown>;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const NUMERIC_OPS: Record<string, (a: number, b: number) => boolean> = {
  '=': (a, b) => a === b,
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
};

const stringTest = (spec: unknown, test: (value: string, operand: string) => boolean) => (value: unknown) => {
  if (typeof value !== 'string') return false;
  if (typeof spec === 'string') return test(value, spec);
  if (isObject(spec) && typeof spec['equals-ignore-case'] === 'string') {
    return test(value.toLowerCase(), spec['equals-ignore-case'].toLowerCase());
  }
  return false;
};

/** Whether one leaf value matches one entry of a pattern array. */
const matchesEntry = (entry: unknown, value: unknown): boolean => {
  if (!isObject(entry)) return value === entry;
  const [operator, operand] = Object.entries(entry)[0] ?? [];
  switch (operator) {
    case 'prefix':
      return stringTest(operand, (v, o) => v.startsWith(o))(value);
    case 'suffix':
      return stringTest(operand, (v, o) => v.endsWith(o))(value);
    case 'equals-ignore-case':
      return typeof value === 'string' && typeof operand === 'string' && value.toLowerCase() === operand.toLowerCase();
    case 'anything-but': {
      if (value === undefined) return false;
      if (isObject(operand)) {
        const [inner, arg] = Object.entries(operand)[0] ?? [];
        return typeof value === 'string' && !matchesEntry({ [inner as string]: arg }, value);
      }
      return !(Array.isArray(operand) ? operand : [operand]).includes(value);
    }
    case 'numeric': {
      if (typeof value !== 'number' || !Array.isArray(operand)) return false;
      for (let i = 0; i < operand.length; i += 2) {
        const op = NUMERIC_OPS[operand[i] as string];
        if (!op?.(value, operand[i + 1] as number)) return false;
      }
      return true;
    }
    case 'exists':
      return (value !== undefined) === operand;
    default:
      return false;
  }
};

/** An absent key is `undefined`, which only `{ exists: false }` matches. */
const matchesField = (spec: unknown, value: unknown): boolean => {
  if (isObject(spec)) return isObject(value) && matchesPattern(spec, value);
  if (!Array.isArray(spec)) return false;
  const values = Array.isArray(value) ? value : [value];
  return spec.some((entry) =>
    isObject(entry) && 'exists' in entry ? matchesEntry(entry, value) : values.some((v) => matchesEntry(entry, v)),
  );
};

const matchesPattern = (pattern: Pattern, data: Record<string, unknown>): boolean =>
  Object.entries(pattern).every(([key, spec]) =>
    key === '$or'
      ? Array.isArray(spec) && spec.some((alternative) => isObject(alternative) && matchesPattern(alternative, data))
      : matchesField(spec, data[key]),
  );

/** The `value` as Lambda filters see it: parsed JSON, or the UTF-8 text of anything else. */
const filterView = (record: LambdaKafkaRecord): Record<string, unknown> => {
  if (record.value === null) return {};
  const text = Buffer.from(record.value, 'base64').toString('utf8');
  try {
    const parsed: unknown = JSON.parse(text);
    if (isObject(parsed) || Array.isArray(parsed)) return { value: parsed };
  } catch {
    // Not JSON: matched as a plain string.
  }
  return { value: text };
};

/** Whether a pattern for `value` fits a value of this shape: JSON patterns need JSON, string patterns a string. */
const formatFits = (pattern: Pattern, view: Record<string, unknown>): boolean => {
  if (!('value' in pattern) || !('value' in view)) return true;
  return isObject(pattern.value) === (typeof view.value !== 'string');
};

const OPERATORS = new Set(['prefix', 'suffix', 'equals-ignore-case', 'anything-but', 'numeric', 'exists']);

/** Throws on what Lambda would refuse, so a bad pattern stops the bridge at start, not at the first record. */
const checkPattern = (pattern: unknown, path: string): void => {
  if (!isObject(pattern)) throw new Error(`filter pattern ${path} must be an object`);
  for (const [key, spec] of Object.entries(pattern)) {
    const at = `${path}.${key}`;
    if (key === '$or') {
      if (!Array.isArray(spec)) throw new Error(`${at} must be an array of patterns`);
      spec.forEach((alternative, i) => {
        checkPattern(alternative, `${at}[${i}]`);
      });
    } else if (isObject(spec)) checkPattern(spec, at);
    else if (!Array.isArray(spec)) throw new Error(`${at}: a filter pattern's leaves must be arrays`);
    else {
      for (const entry of spec) {
        const operator = isObject(entry) ? Object.keys(entry)[0] : undefined;
        if (operator !== undefined && !OPERATORS.has(operator)) {
          throw new Error(`${at}: unsupported filter operator "${operator}"`);
        }
      }
    }
  }
};

/** A predicate for the route's filters; undefined when it has none (everything passes). */
export const recordFilter = (
  filters: ReadonlyArray<Record<string, unknown>>,
): ((record: LambdaKafkaRecord) => boolean) | undefined => {
  if (filters.length === 0) return undefined;
  filters.forEach((pattern, i) => {
    checkPattern(pattern, `filters[${i}]`);
  });
  return (record) => {
    const view = filterView(record);
    return filters.some((pattern) => formatFits(pattern, view) && matchesPattern(pattern, view));
  };
};
