// A copy of the orders route's model (schema and conditional update) for the Powertools and floor bundles, so they
// do the same business work as our bundle without importing our runtime. test/scripts/bench checks it still matches
// functions/handlers/orders.ts.
import { ConditionalCheckFailedException, type DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { z } from 'zod';

export const OrderStatus = z.enum(['PENDING', 'PAID', 'SHIPPED', 'DELIVERED', 'CANCELLED']);
export type OrderStatus = z.infer<typeof OrderStatus>;

export const OrderEvent = z.object({
  orderId: z.string().min(1).max(128),
  status: OrderStatus,
  version: z.number().int().min(1),
  updatedAt: z.iso.datetime(),
});
export type OrderEvent = z.infer<typeof OrderEvent>;

const ALLOWED_PREVIOUS: Record<OrderStatus, readonly OrderStatus[]> = {
  PENDING: [],
  PAID: ['PENDING'],
  SHIPPED: ['PAID'],
  DELIVERED: ['SHIPPED'],
  CANCELLED: ['PENDING', 'PAID'],
};

export class IllegalTransitionError extends Error {
  override readonly name = 'IllegalTransitionError';
}

export const applyOrderEvent = async (client: DynamoDBClient, event: OrderEvent): Promise<'applied' | 'stale'> => {
  const previous = ALLOWED_PREVIOUS[event.status];
  const values: Record<string, { S: string } | { N: string }> = {
    ':status': { S: event.status },
    ':version': { N: String(event.version) },
    ':updatedAt': { S: event.updatedAt },
  };
  previous.forEach((status, i) => {
    values[`:p${i}`] = { S: status };
  });
  const transition = previous.length
    ? ` AND #status IN (${previous.map((_, i) => `:p${i}`).join(', ')})`
    : ' AND #status = :status';
  try {
    await client.send(
      new UpdateItemCommand({
        TableName: process.env.ORDERS_TABLE_NAME,
        Key: { orderId: { S: event.orderId } },
        UpdateExpression: 'SET #status = :status, #version = :version, updatedAt = :updatedAt',
        ConditionExpression: `attribute_not_exists(orderId) OR (#version < :version${transition})`,
        ExpressionAttributeNames: { '#status': 'status', '#version': 'version' },
        ExpressionAttributeValues: values,
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    return 'applied';
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    if (Number(error.Item?.version?.N ?? 0) >= event.version) return 'stale';
    throw new IllegalTransitionError(`order ${event.orderId}: illegal transition to ${event.status}`);
  }
};
