import { OrderEvent } from '../../../functions/handlers/orders.ts';
import { PaymentEvent } from '../../../functions/handlers/payments.ts';
import { OrdersTraffic, PaymentsTraffic, seededRandom } from '../../../scripts/lib/traffic.ts';

const parse = (value: Buffer | null) => {
  try {
    return value ? JSON.parse(value.toString()) : null;
  } catch {
    return undefined;
  }
};

test('the generator is deterministic for a seed', () => {
  const a = seededRandom(42);
  const b = seededRandom(42);
  expect([a(), a(), a()]).toEqual([b(), b(), b()]);
});

test('orders: about 5% duplicates (byte-identical), 1% poison, and legitimate events that pass the schema', () => {
  const traffic = new OrdersTraffic({ seed: 3, duplicates: 0.05, poison: 0.01 });
  const records = Array.from({ length: 10_000 }, () => traffic.next(1_700_000_000_000));
  const byKind = (k: string) => records.filter((r) => r.kind === k);
  expect(byKind('duplicate').length).toBeGreaterThan(400);
  expect(byKind('duplicate').length).toBeLessThan(600);
  expect(byKind('poison').length).toBeGreaterThan(60);
  expect(byKind('poison').length).toBeLessThan(140);
  for (const r of byKind('event')) expect(OrderEvent.safeParse(parse(r.value)).success).toBe(true);
  const originals = new Set(
    byKind('event').map((r) => `${r.key}|${r.value}|${r.headers.map((h) => h.join('=')).join(',')}`),
  );
  for (const r of byKind('duplicate'))
    expect(originals.has(`${r.key}|${r.value}|${r.headers.map((h) => h.join('=')).join(',')}`)).toBe(true);
  // The expected final state is the last legitimate event of every order.
  const last = new Map<string, { status: string; version: number }>();
  for (const r of byKind('event')) {
    const e = parse(r.value);
    last.set(e.orderId, { status: e.status, version: e.version });
  }
  expect(new Map(traffic.expected())).toEqual(last);
});

test('payments: debits never overdraw, every poison record fails for its reason, and the expected balances add up', () => {
  const traffic = new PaymentsTraffic({ seed: 5, duplicates: 0.05, poison: 0.02, tombstones: 0.01 });
  const records = Array.from({ length: 5_000 }, () => traffic.next(1_700_000_000_000));
  // What the payments handler's conditions see when each record arrives, in order.
  const accounts = new Map<string, { balance: number; currency: string }>();
  const reasons = new Set<string | undefined>();
  for (const r of records) {
    if (r.kind === 'event') {
      const p = PaymentEvent.parse(parse(r.value));
      const account = accounts.get(p.accountId) ?? { balance: 0, currency: p.currency };
      expect(p.currency).toBe(account.currency);
      expect(account.balance + p.amount).toBeGreaterThanOrEqual(0);
      accounts.set(p.accountId, { balance: account.balance + p.amount, currency: account.currency });
    }
    if (r.kind !== 'poison') continue;
    reasons.add(r.reason);
    const value = parse(r.value);
    if (r.reason === 'not JSON') expect(value).toBeUndefined();
    else if (r.reason === 'schema: amount 0') expect(PaymentEvent.safeParse(value).success).toBe(false);
    else if (r.reason === 'overdraft') {
      const p = PaymentEvent.parse(value);
      expect((accounts.get(p.accountId)?.balance ?? 0) + p.amount).toBeLessThan(0);
    } else {
      expect(r.reason).toBe('currency mismatch');
      const p = PaymentEvent.parse(value);
      expect(accounts.get(p.accountId)?.currency).toBeDefined();
      expect(p.currency).not.toBe(accounts.get(p.accountId)?.currency);
    }
  }
  expect([...reasons].sort()).toEqual(['currency mismatch', 'not JSON', 'overdraft', 'schema: amount 0']);
  expect(records.filter((x) => x.kind === 'poison').length).toBeGreaterThan(50);
  const { ledger, balances: expected } = traffic.expected();
  expect(ledger.size).toBe(records.filter((x) => x.kind === 'event').length);
  expect(expected).toEqual(accounts);
  expect(records.some((r) => r.kind === 'tombstone' && r.value === null)).toBe(true);
});
