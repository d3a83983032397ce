// The latency proxy on a worker thread, driven from the benchmark's main thread.
import { Worker } from 'node:worker_threads';
import type { LatencyProxyOptions, ProxyCounts } from './latencyProxy.ts';
import type { ProxyReply, ProxyRequest } from './proxyWorker.ts';

type Body<T> = T extends unknown ? Omit<T, 'id'> : never;

export class ProxyWorker {
  readonly url: string;
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  #next = 0;

  private constructor(worker: Worker, url: string) {
    this.#worker = worker;
    this.url = url;
    worker.on('message', (reply: ProxyReply) => {
      if (reply.type === 'ready') return;
      const waiter = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (reply.type === 'ok') waiter?.resolve(reply.value);
      else waiter?.reject(new Error(`latency proxy: ${reply.message}`));
    });
    worker.on('error', (error) => {
      for (const waiter of this.#pending.values()) waiter.reject(error);
      this.#pending.clear();
    });
  }

  static async start(options: LatencyProxyOptions): Promise<ProxyWorker> {
    const worker = new Worker(new URL('./proxyWorker.ts', import.meta.url), { workerData: options });
    const url = await new Promise<string>((resolve, reject) => {
      worker.once('error', reject);
      worker.on('message', (reply: ProxyReply) => {
        if (reply.type === 'ready') resolve(reply.url);
      });
    });
    return new ProxyWorker(worker, url);
  }

  #call(request: Body<ProxyRequest>): Promise<unknown> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...request, id });
    });
  }

  async counts(): Promise<ProxyCounts> {
    return (await this.#call({ type: 'counts' })) as ProxyCounts;
  }

  async resetCounts(): Promise<void> {
    await this.#call({ type: 'reset' });
  }

  async setDelay(delayMs: number): Promise<void> {
    await this.#call({ type: 'delay', delayMs });
  }

  async close(): Promise<void> {
    await this.#call({ type: 'close' });
    await this.#worker.terminate();
  }
}
