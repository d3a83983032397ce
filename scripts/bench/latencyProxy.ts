// A latency-injecting proxy for DynamoDB Local. It works on TCP streams: every chunk from the client is held for
// `delayMs` and then written upstream, and responses flow back untouched. Requests on one connection are sequential
// (the SDK does not pipeline), so each request arrives `delayMs` later: the in-region round trip a local service
// lacks. It never rebuilds HTTP messages or holds a chunk back for parsing; a small framer reads the request heads
// (Content-Length and X-Amz-Target) to count requests, in total and per DynamoDB operation, and copies each body
// aside to charge it in capacity units as DynamoDB bills them, so both sides of a comparison are charged by the same
// meter whatever their own bookkeeping says.
import net from 'node:net';

export type ProxyCounts = {
  /** Requests seen since the last reset. */
  readonly total: number;
  /** By operation name, e.g. `PutItem`; requests without `X-Amz-Target` count as `unknown`. */
  readonly byOperation: Readonly<Record<string, number>>;
  /** Write and read capacity units the requests would be billed on demand (see `capacityUnits`). */
  readonly writeUnits: number;
  readonly readUnits: number;
};

type Capacity = { write: number; read: number };
const KB = 1024;
/** An item's size as DynamoDB bills it, approximated by its JSON wire form (names and values, a little more). */
const itemUnits = (item: unknown, unit: number): number =>
  Math.max(1, Math.ceil(Buffer.byteLength(JSON.stringify(item ?? {})) / unit));

/**
 * What one request is billed, in on-demand units: a write is 1 WRU per KB of the item (an update or a conditional
 * write that fails costs the same), 2 in a transaction; a read 1 RRU per 4 KB when strongly consistent, half
 * that when eventually consistent, 2 in a transaction. A read's item size is unknown here (it is in the answer),
 * so it counts as one unit: our items are all far below 4 KB. PartiQL statements count by their verb.
 */
export const capacityUnits = (operation: string, body: unknown): Capacity => {
  const input = (body ?? {}) as Record<string, unknown>;
  const read = (consistent: unknown, keys = 1) => keys * (consistent === true ? 1 : 0.5);
  switch (operation) {
    case 'PutItem':
      return { write: itemUnits(input.Item, KB), read: 0 };
    case 'UpdateItem':
    case 'DeleteItem':
      return { write: itemUnits(input.Key, KB), read: 0 };
    case 'GetItem':
      return { write: 0, read: read(input.ConsistentRead) };
    case 'BatchWriteItem': {
      let write = 0;
      for (const requests of Object.values((input.RequestItems ?? {}) as Record<string, unknown[]>))
        for (const request of requests as Array<{ PutRequest?: { Item: unknown }; DeleteRequest?: { Key: unknown } }>)
          write += itemUnits(request.PutRequest?.Item ?? request.DeleteRequest?.Key, KB);
      return { write, read: 0 };
    }
    case 'BatchGetItem': {
      let units = 0;
      for (const table of Object.values(
        (input.RequestItems ?? {}) as Record<string, { Keys?: unknown[]; ConsistentRead?: boolean }>,
      ))
        units += read(table.ConsistentRead, table.Keys?.length ?? 0);
      return { write: 0, read: units };
    }
    case 'TransactWriteItems': {
      const items = (input.TransactItems ?? []) as Array<Record<string, { Item?: unknown; Key?: unknown }>>;
      let write = 0;
      for (const item of items) {
        const action = item.Put ?? item.Update ?? item.Delete ?? item.ConditionCheck;
        write += 2 * itemUnits(action?.Item ?? action?.Key, KB);
      }
      return { write, read: 0 };
    }
    case 'TransactGetItems':
      return { write: 0, read: 2 * ((input.TransactItems as unknown[] | undefined)?.length ?? 0) };
    case 'ExecuteStatement':
    case 'BatchExecuteStatement': {
      const statements =
        operation === 'ExecuteStatement'
          ? [input as { Statement?: string; ConsistentRead?: boolean }]
          : ((input.Statements ?? []) as Array<{ Statement?: string; ConsistentRead?: boolean }>);
      const units: Capacity = { write: 0, read: 0 };
      for (const statement of statements) {
        if (/^\s*select\b/i.test(statement.Statement ?? '')) units.read += read(statement.ConsistentRead);
        else units.write += 1;
      }
      return units;
    }
    default:
      return { write: 0, read: 0 };
  }
};

export type LatencyProxyOptions = {
  /** Where requests go, e.g. `http://127.0.0.1:8000`. */
  readonly target: string;
  /** Added before each request is forwarded; 0 forwards at once. Default 5. */
  readonly delayMs?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0 (an ephemeral port). */
  readonly port?: number;
};

export type LatencyProxy = {
  /** `http://host:port` to give the SDK as its endpoint. */
  readonly url: string;
  delayMs: number;
  counts(): ProxyCounts;
  resetCounts(): void;
  close(): Promise<void>;
};

export const DEFAULT_DELAY_MS = 5;

/** `DynamoDB_20120810.PutItem` → `PutItem`. */
export const operationOf = (target: string | undefined): string => {
  if (!target) return 'unknown';
  const dot = target.lastIndexOf('.');
  return dot >= 0 ? target.slice(dot + 1) : target;
};

export const validDelay = (delayMs: number): number => {
  if (!Number.isFinite(delayMs) || delayMs < 0) throw new RangeError(`delay must be a number >= 0, got ${delayMs}`);
  return delayMs;
};

const HEAD_END = Buffer.from('\r\n\r\n');
/** A request head larger than this is not HTTP from an SDK: stop framing that connection. */
const MAX_HEAD_BYTES = 64 * 1024;

/**
 * Finds the HTTP/1.1 requests in a client's byte stream and reports each head's headers. It keeps only an
 * incomplete head between chunks and skips bodies by Content-Length. A chunked body cannot be skipped this way, so
 * the framer then stops (and says so): counts on that connection end there.
 */
export class RequestFramer {
  readonly #onRequest: (headers: ReadonlyMap<string, string>, body: Buffer) => void;
  #head: Buffer | undefined;
  #headers: ReadonlyMap<string, string> | undefined;
  #body: Buffer[] = [];
  #bodyLeft = 0;
  #broken: string | undefined;

  constructor(onRequest: (headers: ReadonlyMap<string, string>, body: Buffer) => void) {
    this.#onRequest = onRequest;
  }

  /** Why framing stopped, if it did. */
  get broken(): string | undefined {
    return this.#broken;
  }

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && this.#broken === undefined) {
      if (this.#bodyLeft > 0) {
        const take = Math.min(this.#bodyLeft, chunk.length - offset);
        this.#body.push(chunk.subarray(offset, offset + take));
        this.#bodyLeft -= take;
        offset += take;
        if (this.#bodyLeft === 0) this.#emit();
        continue;
      }
      const rest = chunk.subarray(offset);
      const buffer = this.#head ? Buffer.concat([this.#head, rest]) : rest;
      const searchFrom = this.#head ? Math.max(0, this.#head.length - 3) : 0;
      const end = buffer.indexOf(HEAD_END, searchFrom);
      if (end < 0) {
        if (buffer.length > MAX_HEAD_BYTES) this.#broken = 'request head too large';
        else this.#head = Buffer.from(buffer);
        return;
      }
      const consumedFromRest = end + HEAD_END.length - (this.#head?.length ?? 0);
      const headers = parseHead(buffer.subarray(0, end).toString('latin1'));
      this.#head = undefined;
      offset += consumedFromRest;
      if (headers.get('transfer-encoding')?.toLowerCase().includes('chunked')) {
        this.#broken = 'chunked request body';
        this.#onRequest(headers, Buffer.alloc(0));
      } else {
        const length = Number(headers.get('content-length') ?? 0);
        this.#bodyLeft = Number.isFinite(length) && length > 0 ? length : 0;
        this.#headers = headers;
        if (this.#bodyLeft === 0) this.#emit();
      }
    }
  }

  #emit(): void {
    const body = Buffer.concat(this.#body);
    this.#body = [];
    const headers = this.#headers ?? new Map<string, string>();
    this.#headers = undefined;
    this.#onRequest(headers, body);
  }
}

/** Header names lower-cased; the request line is skipped. */
const parseHead = (head: string): Map<string, string> => {
  const headers = new Map<string, string>();
  const lines = head.split('\r\n');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
};

export const startLatencyProxy = async (options: LatencyProxyOptions): Promise<LatencyProxy> => {
  const target = new URL(options.target);
  if (target.protocol !== 'http:') throw new Error(`the latency proxy forwards to http:// only, got ${options.target}`);
  const targetPort = Number(target.port || 80);
  let delayMs = validDelay(options.delayMs ?? DEFAULT_DELAY_MS);
  let total = 0;
  let byOperation = new Map<string, number>();
  let writeUnits = 0;
  let readUnits = 0;
  const sockets = new Set<net.Socket>();

  const count = (headers: ReadonlyMap<string, string>, body: Buffer) => {
    total += 1;
    const operation = operationOf(headers.get('x-amz-target'));
    byOperation.set(operation, (byOperation.get(operation) ?? 0) + 1);
    let input: unknown;
    try {
      input = body.length > 0 ? JSON.parse(body.toString('utf8')) : {};
    } catch {
      input = {};
    }
    const units = capacityUnits(operation, input);
    writeUnits += units.write;
    readUnits += units.read;
  };

  const server = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ host: target.hostname, port: targetPort, noDelay: true });
    sockets.add(client);
    sockets.add(upstream);
    const framer = new RequestFramer(count);
    let pending = 0;
    let clientEnded = false;
    const send = (chunk: Buffer) => {
      pending -= 1;
      if (upstream.destroyed) return;
      if (!upstream.write(chunk)) client.pause();
      if (clientEnded && pending === 0) upstream.end();
    };
    client.on('data', (chunk: Buffer) => {
      framer.push(chunk);
      pending += 1;
      // Equal delays fire in arrival order, so the byte stream keeps its order.
      if (delayMs > 0) setTimeout(send, delayMs, chunk);
      else send(chunk);
    });
    upstream.on('drain', () => client.resume());
    client.on('end', () => {
      clientEnded = true;
      if (pending === 0) upstream.end();
    });
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => {
      sockets.delete(upstream);
      if (!client.destroyed) client.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as net.AddressInfo;

  return {
    url: `http://${address.address}:${address.port}`,
    get delayMs() {
      return delayMs;
    },
    set delayMs(value: number) {
      delayMs = validDelay(value);
    },
    counts: () => ({ total, byOperation: Object.fromEntries(byOperation), writeUnits, readUnits }),
    resetCounts: () => {
      total = 0;
      byOperation = new Map();
      writeUnits = 0;
      readUnits = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
        sockets.clear();
      }),
  };
};
