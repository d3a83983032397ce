/**
 * A bounded-concurrency gate. Tasks queue in call order; `run` resolves with the task's
 * own result. `cancelQueued` drops tasks not yet started (their promises reject).
 */
export class Limiter {
  readonly #limit: number;
  #active = 0;
  readonly #queue: Array<{ start: () => void; cancel: (reason: Error) => void; tag: unknown }> = [];

  constructor(limit: number) {
    this.#limit = Math.max(1, limit);
  }

  run<T>(task: () => Promise<T>, tag?: unknown): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = () => {
        this.#active += 1;
        task()
          .then(resolve, reject)
          .finally(() => {
            this.#active -= 1;
            this.#queue.shift()?.start();
          });
      };
      if (this.#active < this.#limit) start();
      else this.#queue.push({ start, cancel: reject, tag });
    });
  }

  /** Drops the queued tasks whose tag matches; returns how many were dropped. */
  cancelQueued(matches: (tag: unknown) => boolean, reason: Error): number {
    let dropped = 0;
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      const entry = this.#queue[i];
      if (entry && matches(entry.tag)) {
        this.#queue.splice(i, 1);
        entry.cancel(reason);
        dropped += 1;
      }
    }
    return dropped;
  }
}

/** Runs `worker` over `items` with at most `limit` in flight; resolves when all settle. */
export const forEachLimited = async <T>(
  items: readonly T[],
  limit: number,
  worker: (item: T) => Promise<void>,
): Promise<void> => {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await worker(item);
    }
  });
  await Promise.all(lanes);
};
