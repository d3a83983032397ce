// One route's function instance: a worker thread with the route's own environment (process.env is per worker, as it
// is per Lambda function) that imports the handler module once and runs invocations with a Lambda-like context.
// Several invocations may run at once (one per partition): the runtime keeps per-invocation state per call.
import { pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';
import type { Context } from 'aws-lambda';
import { invocationSummaryOf } from '../../functions/runtime/kafkaHandler.ts';
import { createLambdaContext } from '../lib/lambdaContext.ts';

export type WorkerInit = {
  readonly handlerPath: string;
  readonly functionName: string;
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
};

export type WorkerRequest = { readonly type: 'invoke'; readonly id: number; readonly event: unknown };

export type WorkerReply =
  | { readonly type: 'ready'; readonly initMs: number }
  | { readonly type: 'fatal'; readonly error: { name: string; message: string } }
  | {
      readonly type: 'result';
      readonly id: number;
      readonly ok: boolean;
      readonly response?: unknown;
      readonly error?: { name: string; message: string };
      readonly summary?: unknown;
      readonly durationMs: number;
    };

type Handler = (event: unknown, context: Context) => Promise<unknown>;

const port = parentPort;
if (!port) throw new Error('scripts/bridge/worker.ts runs as a worker thread');
const init = workerData as WorkerInit;

const errorOf = (error: unknown) => ({
  name: error instanceof Error ? error.name : 'Error',
  message: error instanceof Error ? error.message : String(error),
});

const started = performance.now();
let handler: Handler;
try {
  const module = (await import(pathToFileURL(init.handlerPath).href)) as { handler?: unknown };
  if (typeof module.handler !== 'function') throw new Error(`${init.handlerPath} does not export a handler function`);
  handler = module.handler as Handler;
  port.postMessage({ type: 'ready', initMs: performance.now() - started } satisfies WorkerReply);
} catch (error) {
  port.postMessage({ type: 'fatal', error: errorOf(error) } satisfies WorkerReply);
  process.exit(1);
}

port.on('message', async (request: WorkerRequest) => {
  if (request.type !== 'invoke') return;
  const context = createLambdaContext({
    functionName: init.functionName,
    timeoutSeconds: init.timeoutSeconds,
    memoryMb: init.memoryMb,
  });
  const t0 = performance.now();
  let reply: WorkerReply;
  try {
    const response = await handler(request.event, context);
    reply = {
      type: 'result',
      id: request.id,
      ok: true,
      response: response ?? null,
      summary: invocationSummaryOf(context),
      durationMs: performance.now() - t0,
    };
  } catch (error) {
    reply = {
      type: 'result',
      id: request.id,
      ok: false,
      error: errorOf(error),
      summary: invocationSummaryOf(context),
      durationMs: performance.now() - t0,
    };
  }
  port.postMessage(reply);
});
