// Idempotency conflicts against DynamoDB Local and ElasticMQ: a key that comes back with other content is never
// applied, whichever path finds it (the claim, the warm cache, the transaction marker, a copy in the same batch).

import { fingerprintOf } from '../../../../functions/runtime/idempotency/fingerprint.ts';
import { kafkaHandler } from '../../../../functions/runtime/kafkaHandler.ts';
import { faultyRoute, Tx } from '../../../helpers/faultyRoute.ts';

const tx = (offset: number, id: string, amount: number, account = 'acct') => ({
  offset,
  value: { id, account, amount },
});

describe('fingerprintOf', () => {
  test('fields hash alike in any order, and the whole hash changes with any field', () => {
    const a = fingerprintOf({ amount: 5, account: 'x', nested: { b: 1, a: 2 } });
    const b = fingerprintOf({ nested: { a: 2, b: 1 }, account: 'x', amount: 5 });
    const c = fingerprintOf({ amount: 6, account: 'x', nested: { a: 2, b: 1 } });
    expect(a).toEqual(b);
    expect(c.hash).not.toBe(a.hash);
    expect(Object.keys(a.fields ?? {})).toEqual(['account', 'amount', 'nested']);
    expect(c.fields?.account).toBe(a.fields?.account);
    expect(c.fields?.amount).not.toBe(a.fields?.amount);
    // Only hashes: nothing of the values is kept.
    expect(JSON.stringify(a)).not.toMatch(/"x"|:5[,}]/);
  });

  test('a string fingerprint has no fields; an undefined field counts as absent', () => {
    expect(fingerprintOf('abc').fields).toBeUndefined();
    expect(fingerprintOf({ a: 1, b: undefined })).toEqual(fingerprintOf({ a: 1 }));
  });
});

test('a fingerprint without a business idempotencyKey is refused where the handler is defined', () => {
  expect(() => kafkaHandler({ route: 'r', value: Tx, fingerprint: () => 'x', process: async () => {} })).toThrow(
    /a fingerprint needs a business idempotencyKey/,
  );
});

describe.each(['transact', 'process'] as const)('%s mode', (mode) => {
  const route = async (warm = false) => {
    const applied: string[] = [];
    const r = await faultyRoute({
      fingerprint: true,
      warm,
      ...(mode === 'process'
        ? {
            process: async (record: { value: Tx }) => {
              applied.push(`${record.value.id}:${record.value.amount}`);
            },
          }
        : { transact: (t: Tx) => void applied.push(`${t.id}:${t.amount}`) }),
    });
    return { ...r, applied };
  };

  test('the same key with another amount is dead-lettered as a conflict naming both records; the same content is a duplicate', async () => {
    const r = await route();
    expect((await r.invoke([tx(0, 't1', 5)])).summary).toMatchObject({ processed: 1 });
    const again = await r.invoke([tx(1, 't1', 7), tx(2, 't1', 5)]);
    expect(again.error).toBeUndefined();
    expect(again.summary).toMatchObject({ processed: 0, duplicates: 1, deadLettered: 1, idempotencyConflicts: 1 });
    const [letter, ...more] = await r.letters();
    expect(more).toEqual([]);
    expect(letter).toMatchObject({
      idempotencyKey: 't1',
      source: { offset: 1 },
      error: { kind: 'conflict', name: 'IdempotencyConflictError' },
      conflict: { holder: 'orders-0@0', fields: ['amount'] },
    });
    expect(letter.error.message).toMatch(
      /orders-0@1: conflict: .*"t1" was first seen at orders-0@0 with different amount/,
    );
    if (mode === 'transact') {
      expect(await r.ledger()).toEqual(['t1']);
      expect(await r.balance()).toBe(5);
    } else {
      // process mode ran the record again only if it came again with the same content (here: never).
      expect(r.applied).toEqual(['t1:5']);
    }
    // The redelivery of the conflicting record finds its decision: no second letter, nothing applied.
    const redelivered = await r.invoke([tx(1, 't1', 7)]);
    expect(redelivered.summary).toMatchObject({ processed: 0, deadLettered: 0, duplicates: 1 });
    expect(await r.letters()).toEqual([]);
    if (mode === 'transact') expect(await r.balance()).toBe(5);
    else expect(r.applied).toEqual(['t1:5']);
  });

  test('two records with one key and different content in one batch: the first is applied, the second is a conflict', async () => {
    const r = await route();
    const result = await r.invoke([tx(0, 't2', 1), tx(1, 't2', 2), tx(2, 't3', 3), tx(3, 't2', 1)]);
    expect(result.error).toBeUndefined();
    expect(result.summary).toMatchObject({ processed: 2, deadLettered: 1, idempotencyConflicts: 1, duplicates: 1 });
    const letters = await r.letters();
    expect(letters.map((l) => [l.source.offset, l.error.kind, l.conflict?.holder])).toEqual([
      [1, 'conflict', 'orders-0@0'],
    ]);
    if (mode === 'transact') {
      expect(await r.ledger()).toEqual(['t2', 't3']);
      expect(await r.balance()).toBe(4);
    } else expect(r.applied).toEqual(['t2:1', 't3:3']);
  });

  test('a warm container that remembers the key as completed still catches other content', async () => {
    const r = await route(true);
    await r.invoke([tx(0, 't4', 10)]);
    const cached = await r.invoke([tx(0, 't4', 10)]);
    expect(cached.summary).toMatchObject({ duplicates: 1, ddbRequests: 0 });
    const conflicting = await r.invoke([tx(5, 't4', 11, 'other')]);
    expect(conflicting.summary).toMatchObject({ deadLettered: 1, idempotencyConflicts: 1 });
    const [letter] = await r.letters();
    expect(letter?.conflict).toEqual({ holder: 'orders-0@0', fields: ['account', 'amount'] });
    if (mode === 'transact') expect(await r.balance('other')).toBe(0);
  });
});
