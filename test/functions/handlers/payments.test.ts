import { paymentsRoute } from '../../../functions/handlers/payments.ts';
import type { DeadLetterEnvelope } from '../../../functions/runtime/deadLetter/envelope.ts';
import { invocationSummaryOf, kafkaHandler } from '../../../functions/runtime/kafkaHandler.ts';
import { createTable, drainQueue, getItem, routeEnvironment, scanAll, uniqueName } from '../../helpers/aws.ts';
import { lambdaContext, mskEvent, type RecordSpec } from '../../helpers/events.ts';

let accounts: string;
let ledger: string;
let dlqUrl: string;

beforeAll(async () => {
  ({ dlqUrl } = await routeEnvironment('payments'));
  accounts = await createTable(uniqueName('accounts'), 'accountId');
  ledger = await createTable(uniqueName('ledger'), 'txId');
  process.env.ACCOUNTS_TABLE_NAME = accounts;
  process.env.LEDGER_TABLE_NAME = ledger;
});

type Tx = { txId: string; accountId: string; amount: number; currency: string; ts: string };
const tx = (txId: string, accountId: string, amount: number): Tx => ({
  txId,
  accountId,
  amount,
  currency: 'EUR',
  ts: '2026-11-01T00:00:00.000Z',
});

/** Each invocation runs in a fresh container, so a duplicate is answered by DynamoDB, never by a warm cache. */
const invoke = async (records: RecordSpec[]) => {
  const context = lambdaContext();
  try {
    await kafkaHandler(paymentsRoute)(mskEvent(records), context);
    return { error: undefined, summary: invocationSummaryOf(context) };
  } catch (error) {
    return { error: error as Error, summary: invocationSummaryOf(context) };
  }
};

const balance = async (accountId: string) =>
  Number((await getItem(accounts, { accountId: { S: accountId } }))?.balance?.N ?? Number.NaN);

describe('payments route (transact mode) against DynamoDB Local', () => {
  test('balances equal the sum of distinct transactions under duplicates and concurrent redelivery', async () => {
    const accountIds = [uniqueName('acct'), uniqueName('acct'), uniqueName('acct')];
    // Consecutive records of a partition touch different accounts, so they share transactions (packs of three).
    const distinct: Tx[] = Array.from({ length: 90 }, (_, i) =>
      tx(uniqueName(`tx${i}`), accountIds[Math.floor(i / 3) % 3] as string, 100 + i),
    );
    // The log holds every transaction, plus a re-sent copy of every fifth one at a later offset.
    const log = [...distinct, ...distinct.filter((_, i) => i % 5 === 0)];
    const specs: RecordSpec[] = log.map((value, offset) => ({
      topic: 'payments',
      partition: offset % 3,
      offset,
      value,
    }));
    // Two overlapping invocations, as in a rebalance, and then a redelivery of the whole log.
    const results = await Promise.all([invoke(specs.slice(0, 70)), invoke(specs.slice(40))]);
    for (const [i, result] of results.entries()) {
      if (result.error) results[i] = await invoke(i === 0 ? specs.slice(0, 70) : specs.slice(40));
    }
    const redelivery = await invoke(specs);
    expect(redelivery.error).toBeUndefined();
    expect(redelivery.summary).toMatchObject({ processed: 0, duplicates: specs.length });
    // A cold container had to ask DynamoDB what was done.
    expect(redelivery.summary?.ddbRequests).toBeGreaterThan(0);
    for (const accountId of accountIds) {
      const expected = distinct.filter((t) => t.accountId === accountId).reduce((sum, t) => sum + t.amount, 0);
      expect(await balance(accountId)).toBe(expected);
    }
    const entries = (await scanAll(ledger)).filter((item) => accountIds.includes(item.accountId?.S ?? ''));
    expect(entries).toHaveLength(distinct.length);
  });

  test('an overdraft is refused and dead-lettered; the rest of the partition commits', async () => {
    const account = uniqueName('acct');
    await drainQueue(dlqUrl);
    const result = await invoke([
      { topic: 'payments', offset: 1, value: tx(uniqueName('tx'), account, 500) },
      { topic: 'payments', offset: 2, value: tx(uniqueName('tx'), account, -800) },
      { topic: 'payments', offset: 3, value: tx(uniqueName('tx'), account, -200) },
    ]);
    expect(result.error).toBeUndefined();
    expect(result.summary).toMatchObject({ processed: 2, deadLettered: 1 });
    expect(await balance(account)).toBe(300);
    const [letter] = (await drainQueue(dlqUrl)).map((m) => JSON.parse(m.Body ?? '') as DeadLetterEnvelope);
    expect(letter?.source.offset).toBe(2);
    expect(letter?.error.kind).toBe('permanent');
    expect(letter?.error.message).toMatch(
      /route payments: payments-0@2: permanent: .*a condition on Update .*accountId=/,
    );
  });
});
