// A test-only route for test/e2e/registry.e2e.test.ts: order events as Avro, framed by a Confluent-compatible
// registry (the local Apicurio, named in SCHEMA_REGISTRY_URL by the local tools), decoded and checked against the
// order event's shape. test/e2e/handlerOverride.ts points the route's configured handler (orders.ts, whose schema
// `load` makes the values from) at this module; in this worker that module is this one, so the shape is restated.
import { z } from 'zod';
import { kafkaHandler } from '../../functions/runtime/kafkaHandler.ts';
import { confluentAvro, registryFromEnvironment } from '../../functions/runtime/registry/index.ts';

const OrderEvent = z.object({
  orderId: z.string().min(1),
  status: z.enum(['PENDING', 'PAID', 'SHIPPED', 'DELIVERED', 'CANCELLED']),
  version: z.number().int().min(1),
  updatedAt: z.iso.datetime(),
});

export const handler = kafkaHandler({
  value: confluentAvro({ registry: registryFromEnvironment(), schema: OrderEvent }),
  process: async (_record, context) => {
    context.count('DecodedOrders');
  },
});
