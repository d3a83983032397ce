import { ConditionalCheckFailedException, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { z } from 'zod';
import { sharedDynamoDbClient } from '../runtime/clients.ts';
import { BusinessRuleError } from '../runtime/errors.ts';
import { kafkaHandler, requiredEnv } from '../runtime/kafkaHandler.ts';

/**
 * Example route `orders`: order status events applied to the `orders` table.
 * Only a newer `version` is applied, so a stale or repeated event is ignored and
 * counted; an illegal status transition is a business error and is dead-lettered.
 */
export const OrderStatus = z.enum(['PENDING', 'PAID', 'SHIPPED', 'DELIVERED', 'CANCELLED']);
export type OrderStatus = z.infer<typeof OrderStatus>;

export const OrderEvent = z.object({
  orderId: z.string().min(1).max(128),
  status: OrderStatus,
  version: z.number().int().min(1),
  updatedAt: z.iso.datetime(),
});
export type OrderEvent = z.infer<typeof OrderEvent>;

/** The statuses an order may be in before it moves to each status. */
export const ALLOWED_PREVIOUS: Record<OrderStatus, readonly OrderStatus[]> = {
  PENDING: [],
  PAID: ['PENDING'],
  SHIPPED: ['PAID'],
  DELIVERED: ['SHIPPED'],
  CANCELLED: ['PENDING', 'PAID'],
};

export const STALE_EVENTS_METRIC = 'StaleEventsIgnored';

/** Applies one order event; returns 'stale' when a newer or equal version is already stored. */
export const applyOrderEvent = async (event: OrderEvent): Promise<'applied' | 'stale'> => {
  const previous = ALLOWED_PREVIOUS[event.status];
  const values: Record<string, { S: string } | { N: string }> = {
    ':status': { S: event.status },
    ':version': { N: String(event.version) },
    ':updatedAt': { S: event.updatedAt },
  };
  previous.forEach((status, i) => {
    values[`:p${i}`] = { S: status };
  });
  // A first sighting takes any status; after that, a newer version must be a legal move.
  const transition = previous.length
    ? ` AND #status IN (${previous.map((_, i) => `:p${i}`).join(', ')})`
    : ' AND #status = :status';
  try {
    await sharedDynamoDbClient().send(
      new UpdateItemCommand({
        TableName: requiredEnv('ORDERS_TABLE_NAME', 'orders'),
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
    const storedVersion = Number(error.Item?.version?.N ?? 0);
    if (storedVersion >= event.version) return 'stale';
    const storedStatus = error.Item?.status?.S ?? 'unknown';
    throw new BusinessRuleError(
      `order ${event.orderId}: illegal transition ${storedStatus} -> ${event.status} (version ${storedVersion} -> ${event.version})`,
    );
  }
};

export const handler = kafkaHandler({
  route: 'orders',
  value: OrderEvent,
  process: async (record, context) => {
    if ((await applyOrderEvent(record.value)) === 'stale') context.count(STALE_EVENTS_METRIC);
  },
});
