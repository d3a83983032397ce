// What the registry e2e routes share: the order event's shape (restated, since in their workers `orders.ts`, whose
// zod schema `load` makes the values from, resolves to the test handler itself; see test/e2e/handlerOverride.ts),
// and a route that only counts what it decoded.
import { z } from 'zod';
import type { Decoder } from '../../functions/runtime/decode.ts';
import { kafkaHandler } from '../../functions/runtime/kafkaHandler.ts';

export const OrderEvent = z.object({
  orderId: z.string().min(1),
  status: z.enum(['PENDING', 'PAID', 'SHIPPED', 'DELIVERED', 'CANCELLED']),
  version: z.number().int().min(1),
  updatedAt: z.iso.datetime(),
});

/** A route decoding with `value`, counting each decoded record in `DecodedOrders`. */
export const decodedOrdersHandler = (value: Decoder<z.infer<typeof OrderEvent>>) =>
  kafkaHandler({
    value,
    process: async (_record, context) => {
      context.count('DecodedOrders');
    },
  });
