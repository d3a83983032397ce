// Traffic for any route, shared by `npm start`, `npm run load` and the end-to-end tests: models for the example
// routes, and values made from a route's own schema (or read from a file) for every other route.
//
// - orders: order lifecycles (PENDING → PAID → SHIPPED → DELIVERED, or CANCELLED early), keyed by orderId so an
//   order's events stay in order on one partition.
// - payments: credits and debits on accounts, keyed by accountId; a debit never exceeds the balance the account has
//   at that point, so every legitimate payment applies.
// - duplicates: an earlier legitimate record sent again, byte for byte (key, value, headers), as a producer retry or
//   an upstream replay would.
// - poison: records the route must dead-letter: not JSON, failing the schema, and business-rule violations (an
//   illegal order transition after the order was closed; an overdraft; a currency mismatch).
// - tombstones (optional): a null value for a closed order or an account, which the routes skip.
//
// Generators are deterministic for a seed and remember what a correct pipeline must end with (`expected()`).
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { RouteConfig } from '../../infra/config/index.ts';
import { ensureRegistry } from '../local/registry.ts';
import type { RawProducer } from './kafka.ts';
import {
  formatOfDecoder,
  framedEncoder,
  type RegistryFormat,
  registerSchema,
  registrySchemaOf,
} from './registryTraffic.ts';
import { loadRouteSchemas, valueMaker, zodSchemaOf } from './schemaValues.ts';

export type TrafficKind = 'event' | 'duplicate' | 'poison' | 'tombstone';

export type TrafficRecord = {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: ReadonlyArray<readonly [string, Buffer]>;
  readonly kind: TrafficKind;
  /** Why a poison record must fail. */
  readonly reason?: string;
};

export type TrafficOptions = {
  readonly seed?: number;
  /** Share of records that repeat an earlier one (0..1). */
  readonly duplicates?: number;
  /** Share of poison records (0..1). */
  readonly poison?: number;
  readonly tombstones?: number;
  /** A prefix for ids, so two runs into one table never share orders, accounts or transactions. */
  readonly idPrefix?: string;
};

export type TrafficGenerator = {
  readonly route: string;
  next(now?: number): TrafficRecord;
};

/** mulberry32: small, fast, deterministic. */
export const seededRandom = (seed: number): (() => number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const RECENT = 500;

abstract class BaseTraffic implements TrafficGenerator {
  abstract readonly route: string;
  protected readonly random: () => number;
  protected readonly options: Required<TrafficOptions>;
  protected readonly recent: TrafficRecord[] = [];
  protected sequence = 0;

  constructor(options: TrafficOptions) {
    this.options = {
      seed: options.seed ?? 1,
      duplicates: options.duplicates ?? 0.05,
      poison: options.poison ?? 0.01,
      tombstones: options.tombstones ?? 0,
      idPrefix: options.idPrefix ?? '',
    };
    this.random = seededRandom(this.options.seed);
  }

  protected headers(now: number): Array<[string, Buffer]> {
    this.sequence += 1;
    return [
      [
        'trace-id',
        Buffer.from(`${this.options.idPrefix}${this.options.seed.toString(16)}-${this.sequence.toString(16)}`),
      ],
      ['content-type', Buffer.from('application/json')],
      ['produced-at', Buffer.from(String(now))],
    ];
  }

  protected pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)] as T;
  }

  protected remember(record: TrafficRecord): TrafficRecord {
    this.recent.push(record);
    if (this.recent.length > RECENT) this.recent.shift();
    return record;
  }

  protected abstract event(now: number): TrafficRecord;
  protected abstract poisonRecord(now: number): TrafficRecord | undefined;
  protected abstract tombstone(now: number): TrafficRecord | undefined;

  next(now = Date.now()): TrafficRecord {
    const roll = this.random();
    let record: TrafficRecord | undefined;
    const { poison, duplicates, tombstones } = this.options;
    if (roll < poison) record = this.poisonRecord(now);
    else if (roll < poison + duplicates) {
      const original = this.recent.length > 0 ? this.pick(this.recent) : undefined;
      if (original) record = { key: original.key, value: original.value, headers: original.headers, kind: 'duplicate' };
    } else if (roll < poison + duplicates + tombstones) {
      record = this.tombstone(now);
    }
    record ??= this.remember(this.event(now));
    return record;
  }
}

// ---- orders ----------------------------------------------------------------------------------------------

export type OrderState = { status: 'PENDING' | 'PAID' | 'SHIPPED' | 'DELIVERED' | 'CANCELLED'; version: number };

const NEXT_STATUS: Record<OrderState['status'], OrderState['status'] | undefined> = {
  PENDING: 'PAID',
  PAID: 'SHIPPED',
  SHIPPED: 'DELIVERED',
  DELIVERED: undefined,
  CANCELLED: undefined,
};

export class OrdersTraffic extends BaseTraffic {
  readonly route = 'orders';
  readonly #open: string[] = [];
  readonly #closed: string[] = [];
  /** What the orders table must hold at the end: the last legitimate state of every order. */
  readonly #orders = new Map<string, OrderState>();
  #nextOrder = 1;
  readonly #openTarget: number;

  constructor(options: TrafficOptions & { openOrders?: number } = {}) {
    super(options);
    this.#openTarget = options.openOrders ?? 200;
  }

  expected(): ReadonlyMap<string, OrderState> {
    return this.#orders;
  }

  #newOrderId(): string {
    return `${this.options.idPrefix}ord-${this.options.seed}-${this.#nextOrder++}`;
  }

  #emit(orderId: string, state: OrderState, now: number): TrafficRecord {
    return {
      key: Buffer.from(orderId),
      value: json({ orderId, status: state.status, version: state.version, updatedAt: new Date(now).toISOString() }),
      headers: this.headers(now),
      kind: 'event',
    };
  }

  protected event(now: number): TrafficRecord {
    if (this.#open.length < this.#openTarget || this.random() < 0.1) {
      const orderId = this.#newOrderId();
      const state: OrderState = { status: 'PENDING', version: 1 };
      this.#orders.set(orderId, state);
      this.#open.push(orderId);
      return this.#emit(orderId, state, now);
    }
    const index = Math.floor(this.random() * this.#open.length);
    const orderId = this.#open[index] as string;
    const current = this.#orders.get(orderId) as OrderState;
    const cancel = (current.status === 'PENDING' || current.status === 'PAID') && this.random() < 0.1;
    const status = cancel ? 'CANCELLED' : (NEXT_STATUS[current.status] as OrderState['status']);
    const state: OrderState = { status, version: current.version + 1 };
    this.#orders.set(orderId, state);
    if (NEXT_STATUS[status] === undefined) {
      this.#open.splice(index, 1);
      this.#closed.push(orderId);
    }
    return this.#emit(orderId, state, now);
  }

  protected poisonRecord(now: number): TrafficRecord | undefined {
    const roll = this.random();
    const headers = this.headers(now);
    if (roll < 0.3) {
      const orderId = this.#newOrderId();
      return {
        key: Buffer.from(orderId),
        value: Buffer.from(`{"orderId":"${orderId}","status":`),
        headers,
        kind: 'poison',
        reason: 'not JSON',
      };
    }
    if (roll < 0.6 || this.#closed.length === 0) {
      const orderId = this.#newOrderId();
      return {
        key: Buffer.from(orderId),
        value: json({ orderId, status: 'LOST_IN_TRANSIT', version: 1, updatedAt: new Date(now).toISOString() }),
        headers,
        kind: 'poison',
        reason: 'schema: unknown status',
      };
    }
    // A closed order that is "paid" again: an illegal transition. The order takes no events after it.
    const orderId = this.#closed.splice(Math.floor(this.random() * this.#closed.length), 1)[0] as string;
    const current = this.#orders.get(orderId) as OrderState;
    return {
      key: Buffer.from(orderId),
      value: json({ orderId, status: 'PAID', version: current.version + 1, updatedAt: new Date(now).toISOString() }),
      headers,
      kind: 'poison',
      reason: `illegal transition ${current.status} -> PAID`,
    };
  }

  protected tombstone(now: number): TrafficRecord | undefined {
    if (this.#closed.length === 0) return undefined;
    return { key: Buffer.from(this.pick(this.#closed)), value: null, headers: this.headers(now), kind: 'tombstone' };
  }
}

// ---- payments --------------------------------------------------------------------------------------------

export type AccountState = { balance: number; currency: string };
export type Payment = { txId: string; accountId: string; amount: number; currency: string; ts: string };

const CURRENCIES = ['EUR', 'USD', 'GBP'] as const;

export class PaymentsTraffic extends BaseTraffic {
  readonly route = 'payments';
  readonly #accounts: string[] = [];
  readonly #balances = new Map<string, AccountState>();
  /** Every legitimate transaction: the ledger must hold exactly these. */
  readonly #ledger = new Map<string, Payment>();
  #nextTx = 1;

  constructor(options: TrafficOptions & { accounts?: number } = {}) {
    super(options);
    const count = options.accounts ?? 50;
    for (let i = 1; i <= count; i++) {
      const accountId = `${this.options.idPrefix}acct-${this.options.seed}-${i}`;
      this.#accounts.push(accountId);
      this.#balances.set(accountId, { balance: 0, currency: CURRENCIES[i % CURRENCIES.length] as string });
    }
  }

  expected(): { ledger: ReadonlyMap<string, Payment>; balances: ReadonlyMap<string, AccountState> } {
    const used = new Map(
      [...this.#balances].filter(([id]) => [...this.#ledger.values()].some((p) => p.accountId === id)),
    );
    return { ledger: this.#ledger, balances: used };
  }

  #txId(): string {
    return `${this.options.idPrefix}tx-${this.options.seed}-${this.#nextTx++}`;
  }

  #record(payment: Payment, now: number, kind: TrafficKind, reason?: string): TrafficRecord {
    return {
      key: Buffer.from(payment.accountId),
      value: json(payment),
      headers: this.headers(now),
      kind,
      ...(reason && { reason }),
    };
  }

  protected event(now: number): TrafficRecord {
    const accountId = this.pick(this.#accounts);
    const account = this.#balances.get(accountId) as AccountState;
    const debit = account.balance > 0 && this.random() < 0.4;
    const amount = debit
      ? -Math.max(1, Math.floor(this.random() * account.balance))
      : 100 + Math.floor(this.random() * 50_000);
    const payment: Payment = {
      txId: this.#txId(),
      accountId,
      amount,
      currency: account.currency,
      ts: new Date(now).toISOString(),
    };
    account.balance += amount;
    this.#ledger.set(payment.txId, payment);
    return this.#record(payment, now, 'event');
  }

  protected poisonRecord(now: number): TrafficRecord | undefined {
    const roll = this.random();
    const accountId = this.pick(this.#accounts);
    const account = this.#balances.get(accountId) as AccountState;
    const ts = new Date(now).toISOString();
    if (roll < 0.25) {
      return {
        key: Buffer.from(accountId),
        value: Buffer.from(`{"txId":"${this.#txId()}","amount":12`),
        headers: this.headers(now),
        kind: 'poison',
        reason: 'not JSON',
      };
    }
    if (roll < 0.5) {
      const payment = { txId: this.#txId(), accountId, amount: 0, currency: account.currency, ts };
      return this.#record(payment, now, 'poison', 'schema: amount 0');
    }
    if (roll < 0.75) {
      const payment = { txId: this.#txId(), accountId, amount: -1_000_000_000_000, currency: account.currency, ts };
      return this.#record(payment, now, 'poison', 'overdraft');
    }
    const other = CURRENCIES.find((c) => c !== account.currency) as string;
    const payment = { txId: this.#txId(), accountId, amount: 500, currency: other, ts };
    // A first credit may open an account in any currency: only a used account refuses another one.
    if (account.balance === 0 && ![...this.#ledger.values()].some((p) => p.accountId === accountId)) {
      return this.#record(
        { ...payment, amount: -1_000_000_000_000, currency: account.currency },
        now,
        'poison',
        'overdraft',
      );
    }
    return this.#record(payment, now, 'poison', 'currency mismatch');
  }

  protected tombstone(now: number): TrafficRecord | undefined {
    return { key: Buffer.from(this.pick(this.#accounts)), value: null, headers: this.headers(now), kind: 'tombstone' };
  }
}

// ---- any route: values from its schema, or from a file ----------------------------------------------------

const bytesOf = (value: unknown): Buffer => (typeof value === 'string' ? Buffer.from(value) : json(value));

/** Not JSON: every route built on kafkaHandler dead-letters it as permanent. */
const NOT_JSON = Buffer.from('{"not json');

/**
 * Records for a route with no model of its own: each event carries a value its schema accepts (schemaValues.ts) or the
 * next line of a file. There is no business state to track, so `expected()` is not offered; duplicates repeat an
 * earlier record byte for byte, poison is bytes that are not JSON, a tombstone nulls an earlier key.
 */
export class SchemaTraffic extends BaseTraffic {
  readonly route: string;
  readonly #next: () => { key: Buffer | null; value: Buffer | null; headers: ReadonlyArray<readonly [string, Buffer]> };

  constructor(
    route: string,
    next: () => { key: Buffer | null; value: Buffer | null; headers: ReadonlyArray<readonly [string, Buffer]> },
    options: TrafficOptions,
  ) {
    super(options);
    this.route = route;
    this.#next = next;
  }

  protected event(now: number): TrafficRecord {
    const made = this.#next();
    return { ...made, headers: made.headers.length > 0 ? made.headers : this.headers(now), kind: 'event' };
  }

  protected poisonRecord(now: number): TrafficRecord {
    return { key: null, value: NOT_JSON, headers: this.headers(now), kind: 'poison', reason: 'not JSON' };
  }

  protected tombstone(now: number): TrafficRecord | undefined {
    const earlier = this.recent.find((r) => r.key !== null);
    return earlier && { key: earlier.key, value: null, headers: this.headers(now), kind: 'tombstone' };
  }
}

/** One line of a `--values` file: `{ "key"?: ..., "value": ..., "headers"?: { "name": "text" } }`. */
const ValueLine = z
  .object({
    key: z.unknown().optional(),
    value: z.unknown(),
    headers: z.record(z.string(), z.string()).optional(),
  })
  .strict();

/**
 * The lines of a JSON Lines file, in order and then again from the top. A string key or value is sent as its text,
 * anything else as JSON; `null` is a null key or a tombstone.
 */
export const valuesFromFile = (
  file: string,
  text: string,
): (() => { key: Buffer | null; value: Buffer | null; headers: Array<[string, Buffer]> }) => {
  const lines = text
    .split('\n')
    .map((line, i) => ({ line: line.trim(), number: i + 1 }))
    .filter(({ line }) => line.length > 0);
  if (lines.length === 0) throw new Error(`${file} has no lines`);
  const records = lines.map(({ line, number }) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (error) {
      throw new Error(`${file}:${number}: not JSON: ${(error as Error).message}`);
    }
    const checked = ValueLine.safeParse(parsed);
    if (!checked.success) {
      const issue = checked.error.issues[0];
      throw new Error(`${file}:${number}: ${issue?.path.join('.') || 'line'}: ${issue?.message}`);
    }
    const { key, value, headers } = checked.data;
    return {
      key: key === undefined || key === null ? null : bytesOf(key),
      value: value === null ? null : bytesOf(value),
      headers: Object.entries(headers ?? {}).map(([name, v]) => [name, Buffer.from(v)] as [string, Buffer]),
    };
  });
  let at = 0;
  return () => records[at++ % records.length] as (typeof records)[number];
};

/**
 * The traffic for a route: the example routes' models (by handler module, so renamed routes work too), else values
 * made from the route's own schema, or the lines of `valuesFile` when one is given.
 */
export const routeTraffic = async (
  route: RouteConfig,
  options: TrafficOptions & { valuesFile?: string; format?: RegistryFormat | undefined },
): Promise<TrafficGenerator> => {
  if (options.valuesFile) {
    const text = await readFile(options.valuesFile, 'utf8');
    return new SchemaTraffic(route.name, valuesFromFile(options.valuesFile, text), options);
  }
  if (!options.format && route.handler === 'orders.ts') return new OrdersTraffic(options);
  if (!options.format && route.handler === 'payments.ts') return new PaymentsTraffic(options);
  // A registry route's handler makes its registry client as its module loads (`registryFromEnvironment()`), and this
  // process loads it for its schemas: it needs the registry the local tools give the route (started if need be).
  if (route.registry?.kind === 'confluent') {
    const registry = await ensureRegistry({ log: (line) => process.stderr.write(`registry: ${line}\n`) });
    process.env.SCHEMA_REGISTRY_URL = registry.url;
  }
  const schemas = await loadRouteSchemas(route);
  const maker = valueMaker(route, schemas, options.seed);
  // A route that decodes registry-framed records gets them in its decoder's format, unless told another.
  const format = options.format ?? formatOfDecoder[(schemas.value as { format?: string }).format ?? ''];
  const encode = format ? await registryEncoder(route, zodSchemaOf(schemas.value) as z.ZodType, format) : bytesOf;
  return new SchemaTraffic(
    route.name,
    () => ({ key: bytesOf(maker.key()), value: encode(maker.value()), headers: [] }),
    options,
  );
};

/** Registers the route's schema in the registry's language under `<topic>-value`, and frames values under it. */
const registryEncoder = async (
  route: RouteConfig,
  schema: z.ZodType,
  format: RegistryFormat,
): Promise<(value: unknown) => Buffer> => {
  const { url } = await ensureRegistry({ log: (line) => process.stderr.write(`registry: ${line}\n`) });
  const registered = registrySchemaOf(schema, format, `${route.name}Value`);
  const id = await registerSchema(url, `${route.topic}-value`, registered);
  return framedEncoder(id, registered);
};

// ---- producing -------------------------------------------------------------------------------------------

export const toProducerMessage = (topic: string, record: TrafficRecord) => ({
  topic,
  ...(record.key && { key: record.key }),
  ...(record.value && { value: record.value }),
  // Distinct Buffer keys keep repeated header names (a Map keyed by strings would not).
  headers: new Map(record.headers.map(([name, value]) => [Buffer.from(name), value] as [Buffer, Buffer])),
});

export type ProduceStats = {
  sent: number;
  elapsedMs: number;
  recordsPerSec: number;
  byKind: Record<TrafficKind, number>;
};

/**
 * Produces from a generator at `rate` records/s (0: as fast as possible) until `count` records or `durationMs`
 * have gone, whichever comes first, or until `signal` aborts. Sends in batches every ~50 ms.
 */
export const produceTraffic = async (
  producer: RawProducer,
  topic: string,
  generator: TrafficGenerator,
  options: {
    rate: number;
    count?: number;
    durationMs?: number;
    signal?: AbortSignal;
    maxBatch?: number;
    onSent?: (records: readonly TrafficRecord[]) => void;
  },
): Promise<ProduceStats> => {
  const started = Date.now();
  const byKind: Record<TrafficKind, number> = { event: 0, duplicate: 0, poison: 0, tombstone: 0 };
  const limit = options.count ?? Number.POSITIVE_INFINITY;
  const maxBatch = options.maxBatch ?? 1_000;
  let sent = 0;
  while (sent < limit && !options.signal?.aborted) {
    const elapsed = Date.now() - started;
    if (options.durationMs !== undefined && elapsed >= options.durationMs) break;
    const due = options.rate > 0 ? Math.floor((options.rate * elapsed) / 1000) + 1 - sent : maxBatch;
    const n = Math.min(due, maxBatch, limit - sent);
    if (n <= 0) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      continue;
    }
    const now = Date.now();
    const records = Array.from({ length: n }, () => generator.next(now));
    await producer.send({ messages: records.map((r) => toProducerMessage(topic, r)) });
    for (const r of records) byKind[r.kind] += 1;
    sent += n;
    options.onSent?.(records);
  }
  const elapsedMs = Math.max(1, Date.now() - started);
  return { sent, elapsedMs, recordsPerSec: (sent * 1000) / elapsedMs, byKind };
};
