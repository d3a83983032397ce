// The parent side of a route's function instance (worker.ts): starts the worker with the route's environment,
// sends invocations, enforces the route's timeout like Lambda does (the instance is killed and a fresh one started),
// and turns a crashed worker into failed invocations. The worker's stdout/stderr (structured logs and EMF metrics)
// go to a sink line by line.
import { createInterface } from 'node:readline';
import { Worker } from 'node:worker_threads';
import type { InvocationSummary } from '../../functions/runtime/observability.ts';
import type { InvocationResult } from './outcome.ts';
import type { WorkerInit, WorkerReply } from './worker.ts';

export type HandlerHostOptions = WorkerInit & {
  /** The route's environment (DESIGN §5), laid over this process's. */
  readonly environment: Readonly<Record<string, string>>;
  /** Every line the handler writes (logs, EMF). */
  readonly onOutput?: (line: string) => void;
  readonly log?: (line: string) => void;
};

export type Invocation = {
  readonly result: InvocationResult;
  readonly summary?: InvocationSummary;
  readonly durationMs: number;
};

type Pending = { resolve: (invocation: Invocation) => void; timer: NodeJS.Timeout };

const WORKER_URL = new URL('./worker.ts', import.meta.url);

export class HandlerHost {
  readonly #options: HandlerHostOptions;
  #worker: Worker | undefined;
  #ready: Promise<Worker> | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  #closed = false;

  constructor(options: HandlerHostOptions) {
    this.#options = options;
  }

  /** Starts the instance now (otherwise the first invocation does), so a broken handler fails early. */
  async start(): Promise<void> {
    await this.#instance();
  }

  #instance(): Promise<Worker> {
    if (this.#ready) return this.#ready;
    const { environment, onOutput, log: _log, ...init } = this.#options;
    const worker = new Worker(WORKER_URL, {
      workerData: init satisfies WorkerInit,
      env: { ...process.env, ...environment },
      stdout: true,
      stderr: true,
    });
    for (const stream of [worker.stdout, worker.stderr]) {
      const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
      lines.on('line', (line) => onOutput?.(line));
    }
    this.#worker = worker;
    this.#ready = new Promise<Worker>((resolve, reject) => {
      const onMessage = (reply: WorkerReply) => {
        if (reply.type === 'ready') {
          resolve(worker);
        } else if (reply.type === 'fatal') {
          reject(new Error(`route ${init.functionName}: handler failed to load: ${reply.error.message}`));
        } else if (reply.type === 'result') {
          this.#settle(reply.id, {
            result: reply.ok
              ? { ok: true, response: reply.response }
              : { ok: false, error: reply.error ?? { name: 'Error', message: 'unknown error' } },
            ...(reply.summary ? { summary: reply.summary as InvocationSummary } : {}),
            durationMs: reply.durationMs,
          });
        }
      };
      worker.on('message', onMessage);
      worker.once('error', (error) => {
        reject(error);
        this.#lost(worker, `${error.name}: ${error.message}`);
      });
      worker.once('exit', (code) => {
        reject(new Error(`route ${init.functionName}: worker exited with code ${code} while loading`));
        this.#lost(worker, `worker exited with code ${code}`);
      });
    });
    // A load failure is reported to whoever awaits; the next call starts over.
    this.#ready.catch(() => {
      if (this.#worker === worker) {
        this.#worker = undefined;
        this.#ready = undefined;
      }
    });
    return this.#ready;
  }

  /** The instance died: everything it was running fails, like a crashed Lambda sandbox. */
  #lost(worker: Worker, reason: string): void {
    if (this.#worker !== worker) return;
    this.#worker = undefined;
    this.#ready = undefined;
    for (const [id] of this.#pending) {
      this.#settle(id, { result: { ok: false, error: { name: 'Runtime.ExitError', message: reason } }, durationMs: 0 });
    }
  }

  #settle(id: number, invocation: Invocation): void {
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(invocation);
  }

  /** Runs one invocation; never rejects (a failure is an `ok: false` result). */
  async invoke(event: unknown): Promise<Invocation> {
    if (this.#closed) {
      return {
        result: { ok: false, error: { name: 'BridgeStopped', message: 'the bridge is stopping' } },
        durationMs: 0,
      };
    }
    let worker: Worker;
    try {
      worker = await this.#instance();
    } catch (error) {
      return {
        result: { ok: false, error: { name: 'Runtime.InitError', message: (error as Error).message } },
        durationMs: 0,
      };
    }
    const id = this.#nextId++;
    const timeoutMs = this.#options.timeoutSeconds * 1000;
    return new Promise<Invocation>((resolve) => {
      const timer = setTimeout(() => {
        this.#settle(id, {
          result: {
            ok: false,
            error: {
              name: 'Sandbox.Timedout',
              message: `Task timed out after ${this.#options.timeoutSeconds.toFixed(2)} seconds`,
            },
          },
          durationMs: timeoutMs,
        });
        // Lambda ends a timed-out instance; so does the bridge (the next invocation starts a fresh one).
        this.#options.log?.(`route ${this.#options.functionName}: invocation timed out; restarting the instance`);
        if (this.#worker === worker) {
          this.#lost(worker, 'instance restarted after a timeout');
          void worker.terminate();
        }
      }, timeoutMs + 250);
      this.#pending.set(id, { resolve, timer });
      worker.postMessage({ type: 'invoke', id, event });
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const worker = this.#worker;
    this.#worker = undefined;
    this.#ready = undefined;
    for (const [id] of this.#pending) {
      this.#settle(id, {
        result: { ok: false, error: { name: 'BridgeStopped', message: 'abandoned at shutdown' } },
        durationMs: 0,
      });
    }
    if (worker) await worker.terminate();
  }
}
