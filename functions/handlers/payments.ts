import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { z } from 'zod';
import { kafkaHandler, requiredEnv } from '../runtime/kafkaHandler.ts';

/**
 * Example route `payments`: a financial transaction log applied exactly once, in
 * `transact` mode. The ledger entry, the balance update (which refuses an overdraft
 * or a currency mismatch) and the dedupe marker commit in ONE DynamoDB transaction.
 */
export const PaymentEvent = z.object({
  txId: z.string().min(1).max(128),
  accountId: z.string().min(1).max(128),
  /** Minor units (cents): integers keep balances exact. Negative is a debit. */
  amount: z
    .number()
    .int()
    .refine((n) => n !== 0, 'amount must not be 0'),
  currency: z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code'),
  ts: z.iso.datetime(),
});
export type PaymentEvent = z.infer<typeof PaymentEvent>;

export const paymentItems = (tx: PaymentEvent): TransactWriteItem[] => {
  const amount = { N: String(tx.amount) };
  const currency = { S: tx.currency };
  const balanceUpdate: TransactWriteItem =
    tx.amount > 0
      ? {
          Update: {
            TableName: requiredEnv('ACCOUNTS_TABLE_NAME', 'payments'),
            Key: { accountId: { S: tx.accountId } },
            UpdateExpression: 'SET balance = if_not_exists(balance, :zero) + :amount, currency = :currency',
            ConditionExpression: 'attribute_not_exists(accountId) OR currency = :currency',
            ExpressionAttributeValues: { ':zero': { N: '0' }, ':amount': amount, ':currency': currency },
          },
        }
      : {
          Update: {
            TableName: requiredEnv('ACCOUNTS_TABLE_NAME', 'payments'),
            Key: { accountId: { S: tx.accountId } },
            UpdateExpression: 'SET balance = balance + :amount',
            // A debit needs an account in the same currency holding at least the amount.
            ConditionExpression: 'currency = :currency AND balance >= :needed',
            ExpressionAttributeValues: {
              ':amount': amount,
              ':currency': currency,
              ':needed': { N: String(-tx.amount) },
            },
          },
        };
  return [
    {
      Put: {
        TableName: requiredEnv('LEDGER_TABLE_NAME', 'payments'),
        Item: {
          txId: { S: tx.txId },
          accountId: { S: tx.accountId },
          amount,
          currency,
          ts: { S: tx.ts },
        },
        ConditionExpression: 'attribute_not_exists(txId)',
      },
    },
    balanceUpdate,
  ];
};

/** The route's definition, apart from the handler, so tests can start a fresh container (cold caches) at will. */
export const paymentsRoute = {
  route: 'payments',
  value: PaymentEvent,
  idempotencyKey: (record: { value: PaymentEvent }) => record.value.txId,
  // A txId that comes back with another account, amount or currency is a conflict, never a duplicate.
  fingerprint: ({ value }: { value: PaymentEvent }) => ({
    accountId: value.accountId,
    amount: value.amount,
    currency: value.currency,
  }),
  transact: (record: { value: PaymentEvent }) => paymentItems(record.value),
};

export const handler = kafkaHandler(paymentsRoute);
