import type { Fingerprint } from './IdempotencyStore.ts';

/** The cache remembers a key with its fingerprint: a completed key seen again with other content is not skipped. */
export const cacheKeyOf = (record: { readonly key: string; readonly fingerprint?: Fingerprint | undefined }): string =>
  record.fingerprint ? `${record.key}\u0000${record.fingerprint.hash}` : record.key;

/**
 * Recently completed keys, remembered by a warm function so a redelivered batch skips
 * them without a DynamoDB request. Only COMPLETED keys ever enter: an IN_PROGRESS
 * claim may still fail, so serving it from here would lose the record.
 */
export class CompletedKeyCache {
  readonly #capacity: number;
  /** key → expiresAt (epoch seconds); Map order is insertion order, so the first key is the oldest. */
  readonly #entries = new Map<string, number>();

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  has(key: string, nowMs: number): boolean {
    const expiresAt = this.#entries.get(key);
    if (expiresAt === undefined) return false;
    if (expiresAt * 1000 <= nowMs) {
      this.#entries.delete(key);
      return false;
    }
    return true;
  }

  add(key: string, expiresAt: number): void {
    if (this.#capacity === 0) return;
    this.#entries.delete(key);
    this.#entries.set(key, expiresAt);
    if (this.#entries.size > this.#capacity) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }

  get size(): number {
    return this.#entries.size;
  }
}
