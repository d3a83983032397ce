import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  capacityUnits,
  type LatencyProxy,
  operationOf,
  RequestFramer,
  startLatencyProxy,
  validDelay,
} from '../../../scripts/bench/latencyProxy.ts';
import { ProxyWorker } from '../../../scripts/bench/proxyHost.ts';

/** An echo server standing in for DynamoDB Local: answers each request with its method, target and body. */
const startEcho = async () => {
  const agentsSeen = new Set<string>();
  const server = http.createServer((req, res) => {
    agentsSeen.add(`${req.socket.remotePort}`);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          method: req.method,
          target: req.headers['x-amz-target'] ?? null,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, server, connections: () => agentsSeen.size };
};

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

const post = (url: string, target: string | undefined, body: string) =>
  new Promise<{ status: number; json: { method: string; target: string | null; body: string } }>((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/x-amz-json-1.0',
          'content-length': Buffer.byteLength(body),
          ...(target ? { 'x-amz-target': target } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });

let echo: Awaited<ReturnType<typeof startEcho>>;
let proxy: LatencyProxy;

beforeAll(async () => {
  echo = await startEcho();
  proxy = await startLatencyProxy({ target: echo.url, delayMs: 0 });
});

afterAll(async () => {
  agent.destroy();
  await proxy.close();
  await new Promise((resolve) => echo.server.close(resolve));
});

beforeEach(() => {
  proxy.delayMs = 0;
  proxy.resetCounts();
});

test('forwards requests and responses byte for byte, and counts them per DynamoDB operation', async () => {
  const body = JSON.stringify({ TableName: 't', Item: { pk: { S: 'é'.repeat(5000) } } });
  const first = await post(proxy.url, 'DynamoDB_20120810.PutItem', body);
  expect(first.status).toBe(200);
  expect(first.json).toEqual({ method: 'POST', target: 'DynamoDB_20120810.PutItem', body });
  await post(proxy.url, 'DynamoDB_20120810.PutItem', '{}');
  await post(proxy.url, 'DynamoDB_20120810.UpdateItem', '{}');
  await post(proxy.url, undefined, '{}');
  // The first item is 10 KB (5,000 two-byte characters): 10 write units; the others 1 each.
  expect(proxy.counts()).toEqual({
    total: 4,
    byOperation: { PutItem: 2, UpdateItem: 1, unknown: 1 },
    writeUnits: 12,
    readUnits: 0,
  });
  proxy.resetCounts();
  expect(proxy.counts()).toEqual({ total: 0, byOperation: {}, writeUnits: 0, readUnits: 0 });
});

test('counts concurrent requests on kept-alive connections exactly', async () => {
  await Promise.all(Array.from({ length: 50 }, (_, i) => post(proxy.url, 'DynamoDB_20120810.GetItem', `{"i":${i}}`)));
  expect(proxy.counts().total).toBe(50);
  expect(proxy.counts().byOperation.GetItem).toBe(50);
});

test('adds the configured delay to every request, and none at 0', async () => {
  const time = async () => {
    const started = performance.now();
    await post(proxy.url, 'DynamoDB_20120810.GetItem', '{}');
    return performance.now() - started;
  };
  await time(); // connection warm
  proxy.delayMs = 0;
  const fast = Math.min(await time(), await time(), await time());
  proxy.delayMs = 60;
  const slow = [await time(), await time()];
  expect(Math.min(...slow)).toBeGreaterThanOrEqual(59);
  expect(fast).toBeLessThan(40);
  // Parallel requests are delayed side by side, not one after another.
  const started = performance.now();
  await Promise.all(Array.from({ length: 6 }, () => post(proxy.url, 'DynamoDB_20120810.GetItem', '{}')));
  expect(performance.now() - started).toBeLessThan(6 * 60);
});

test('rejects a negative or non-numeric delay', () => {
  expect(() => validDelay(-1)).toThrow(RangeError);
  expect(() => validDelay(Number.NaN)).toThrow(RangeError);
  expect(validDelay(0)).toBe(0);
  expect(() => {
    proxy.delayMs = -5;
  }).toThrow(RangeError);
});

test('operationOf takes the part after the last dot of X-Amz-Target', () => {
  expect(operationOf('DynamoDB_20120810.BatchWriteItem')).toBe('BatchWriteItem');
  expect(operationOf('PutItem')).toBe('PutItem');
  expect(operationOf(undefined)).toBe('unknown');
});

describe('RequestFramer', () => {
  const request = (target: string, body: string) =>
    `POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: ${target}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

  const frame = (chunks: Buffer[]) => {
    const seen: string[] = [];
    const framer = new RequestFramer((headers) => seen.push(operationOf(headers.get('x-amz-target'))));
    for (const chunk of chunks) framer.push(chunk);
    return { seen, framer };
  };

  test('finds several requests in one chunk, bodies that look like heads included', () => {
    const body = 'POST / HTTP/1.1\r\n\r\n';
    const stream = Buffer.from(request('D.PutItem', body) + request('D.GetItem', '{}') + request('D.Query', ''));
    expect(frame([stream]).seen).toEqual(['PutItem', 'GetItem', 'Query']);
  });

  test('finds requests split at every possible byte boundary', () => {
    const stream = Buffer.from(request('D.PutItem', '{"a":1}') + request('D.UpdateItem', '{"b":2}'));
    for (let cut = 1; cut < stream.length; cut++) {
      expect(frame([stream.subarray(0, cut), stream.subarray(cut)]).seen).toEqual(['PutItem', 'UpdateItem']);
    }
    const bytes = [...stream].map((b) => Buffer.from([b]));
    expect(frame(bytes).seen).toEqual(['PutItem', 'UpdateItem']);
  });

  test('stops at a chunked body, which it cannot skip, and says why', () => {
    const chunked =
      'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-Amz-Target: D.PutItem\r\n\r\n2\r\n{}\r\n0\r\n\r\n';
    const { seen, framer } = frame([Buffer.from(chunked + request('D.GetItem', ''))]);
    expect(seen).toEqual(['PutItem']);
    expect(framer.broken).toBe('chunked request body');
  });
});

test('the worker-thread proxy forwards, delays, counts and resets like the in-process one', async () => {
  const worker = await ProxyWorker.start({ target: echo.url, delayMs: 0 });
  try {
    const response = await post(worker.url, 'DynamoDB_20120810.PutItem', '{"x":1}');
    expect(response.json.body).toBe('{"x":1}');
    await post(worker.url, 'DynamoDB_20120810.PutItem', '{}');
    expect(await worker.counts()).toEqual({ total: 2, byOperation: { PutItem: 2 }, writeUnits: 2, readUnits: 0 });
    await worker.setDelay(40);
    const started = performance.now();
    await post(worker.url, 'DynamoDB_20120810.GetItem', '{}');
    expect(performance.now() - started).toBeGreaterThanOrEqual(39);
    await worker.resetCounts();
    expect((await worker.counts()).total).toBe(0);
    await expect(worker.setDelay(-1)).rejects.toThrow(/delay must be/);
  } finally {
    await worker.close();
  }
});

test('capacity units as DynamoDB bills them on demand, per operation', () => {
  const item = (bytes: number) => ({ pk: { S: 'x'.repeat(bytes) } });
  expect(capacityUnits('PutItem', { Item: item(100) })).toEqual({ write: 1, read: 0 });
  expect(capacityUnits('PutItem', { Item: item(3000) })).toEqual({ write: 3, read: 0 });
  expect(capacityUnits('UpdateItem', { Key: item(10) })).toEqual({ write: 1, read: 0 });
  expect(
    capacityUnits('BatchWriteItem', {
      RequestItems: { t: [{ PutRequest: { Item: item(10) } }, { DeleteRequest: { Key: item(10) } }] },
    }),
  ).toEqual({ write: 2, read: 0 });
  // A transactional write costs two units per item.
  expect(
    capacityUnits('TransactWriteItems', {
      TransactItems: [{ Put: { Item: item(10) } }, { Update: { Key: item(10) } }],
    }),
  ).toEqual({ write: 4, read: 0 });
  expect(capacityUnits('GetItem', { ConsistentRead: true })).toEqual({ write: 0, read: 1 });
  expect(capacityUnits('GetItem', {})).toEqual({ write: 0, read: 0.5 });
  expect(
    capacityUnits('BatchGetItem', { RequestItems: { a: { Keys: [{}, {}], ConsistentRead: true }, b: { Keys: [{}] } } }),
  ).toEqual({ write: 0, read: 2.5 });
  expect(
    capacityUnits('BatchExecuteStatement', {
      Statements: [{ Statement: 'INSERT INTO "t" VALUE {}' }, { Statement: 'select * from "t"', ConsistentRead: true }],
    }),
  ).toEqual({ write: 1, read: 1 });
  expect(capacityUnits('DescribeTable', {})).toEqual({ write: 0, read: 0 });
});
