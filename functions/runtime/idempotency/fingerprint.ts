import { createHash } from 'node:crypto';
import type { Fingerprint } from './IdempotencyStore.ts';

/** What a route's `fingerprint` returns: one string, or named fields (so a conflict can say which of them differ). */
export type FingerprintSource = string | Readonly<Record<string, unknown>>;

/** Per-field hashes are short: they only tell fields apart, the whole fingerprint's hash decides. */
const FIELD_HASH_CHARS = 16;

const sha256 = (text: string): string => createHash('sha256').update(text).digest('base64url');

/** JSON with object keys sorted, so `{a, b}` and `{b, a}` fingerprint alike. */
const canonicalJson = (value: unknown): string =>
  JSON.stringify(value, (_key, inner: unknown) =>
    inner && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  ) ?? 'null';

/**
 * Hashes what a route's `fingerprint` returned. Only hashes reach the idempotency table, never the values, so a
 * fingerprint over an amount or an account number stores nothing a reader of the table could use. A field whose
 * value is `undefined` counts as absent.
 */
export const fingerprintOf = (source: FingerprintSource): Fingerprint => {
  if (typeof source === 'string') return { hash: sha256(source) };
  const fields: Record<string, string> = {};
  for (const name of Object.keys(source).sort()) {
    const value = source[name];
    if (value !== undefined) fields[name] = sha256(canonicalJson(value)).slice(0, FIELD_HASH_CHARS);
  }
  return { hash: sha256(canonicalJson(fields)), fields };
};
