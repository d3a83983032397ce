// Runs the latency proxy on its own thread, so its event loop never competes with the handler being timed.
import { parentPort, workerData } from 'node:worker_threads';
import { type LatencyProxyOptions, startLatencyProxy } from './latencyProxy.ts';

export type ProxyRequest =
  | { readonly id: number; readonly type: 'counts' }
  | { readonly id: number; readonly type: 'reset' }
  | { readonly id: number; readonly type: 'delay'; readonly delayMs: number }
  | { readonly id: number; readonly type: 'close' };

export type ProxyReply =
  | { readonly type: 'ready'; readonly url: string }
  | { readonly id: number; readonly type: 'ok'; readonly value?: unknown }
  | { readonly id: number; readonly type: 'error'; readonly message: string };

const port = parentPort;
if (!port) throw new Error('proxyWorker.ts runs as a worker thread');

const proxy = await startLatencyProxy(workerData as LatencyProxyOptions);
port.postMessage({ type: 'ready', url: proxy.url } satisfies ProxyReply);
port.on('message', async (request: ProxyRequest) => {
  try {
    switch (request.type) {
      case 'counts':
        port.postMessage({ id: request.id, type: 'ok', value: proxy.counts() } satisfies ProxyReply);
        return;
      case 'reset':
        proxy.resetCounts();
        break;
      case 'delay':
        proxy.delayMs = request.delayMs;
        break;
      case 'close':
        await proxy.close();
        port.postMessage({ id: request.id, type: 'ok' } satisfies ProxyReply);
        port.close();
        return;
    }
    port.postMessage({ id: request.id, type: 'ok' } satisfies ProxyReply);
  } catch (error) {
    port.postMessage({ id: request.id, type: 'error', message: (error as Error).message } satisfies ProxyReply);
  }
});
