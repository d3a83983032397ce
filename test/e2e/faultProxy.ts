// An HTTP proxy in front of DynamoDB Local that fails chosen requests, for faults finer than a whole-service outage:
// - 'before': answers 500 InternalServerError without forwarding (the service never saw the request);
// - 'after': forwards the request, lets the service apply it, then answers 500 instead of its response (the answer
//   was lost: the SDK and the runtime see a failure for something that happened).
// A 500 is what DynamoDB answers for an internal error: the SDK retries it, and the runtime classifies it as transient.
// Each request's operation comes from its X-Amz-Target header; the rule decides per request.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault = 'pass' | 'before' | 'after';
export type FaultRule = (request: { operation: string; body: Buffer }) => Fault;

const INTERNAL_ERROR = JSON.stringify({
  __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError',
  message: 'injected by the end-to-end fault proxy',
});

export class FaultProxy {
  readonly url: string;
  /** Per operation: requests passed, failed before and failed after the service applied them. */
  readonly counts: Map<string, Record<Fault, number>>;
  readonly #server: http.Server;
  readonly #agent: http.Agent;

  private constructor(server: http.Server, agent: http.Agent, counts: Map<string, Record<Fault, number>>) {
    this.counts = counts;
    this.#server = server;
    this.#agent = agent;
    const { port } = server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
  }

  static async start(target: string, rule: FaultRule): Promise<FaultProxy> {
    const upstream = new URL(target);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
    const counts = new Map<string, Record<Fault, number>>();
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const target = req.headers['x-amz-target'];
        const operation = typeof target === 'string' ? target.slice(target.lastIndexOf('.') + 1) : 'unknown';
        const fault = rule({ operation, body });
        const tally = counts.get(operation) ?? { pass: 0, before: 0, after: 0 };
        tally[fault] += 1;
        counts.set(operation, tally);
        const fail = () => {
          res.writeHead(500, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'fault-proxy' });
          res.end(INTERNAL_ERROR);
        };
        if (fault === 'before') return fail();
        const forwarded = http.request(
          {
            host: upstream.hostname,
            port: upstream.port,
            method: req.method,
            path: req.url,
            headers: req.headers,
            agent,
          },
          (response) => {
            if (fault === 'after') {
              response.resume();
              response.on('end', fail);
              return;
            }
            res.writeHead(response.statusCode ?? 502, response.headers);
            response.pipe(res);
          },
        );
        forwarded.on('error', () => {
          // The service is unreachable: so is the proxy's client.
          res.destroy();
        });
        forwarded.end(body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new FaultProxy(server, agent, counts);
  }

  failed(operation: string): number {
    const counts = this.counts.get(operation);
    return counts ? counts.before + counts.after : 0;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#agent.destroy();
  }
}
