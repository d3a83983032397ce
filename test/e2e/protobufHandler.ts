// A test-only route for test/e2e/registry.e2e.test.ts: order events as Protobuf, framed by a Confluent-compatible
// registry (the local Apicurio, named in SCHEMA_REGISTRY_URL by the local tools), decoded and checked against the
// order event's shape. `load --format protobuf` registers the .proto it builds from orders.ts's zod schema (the
// route's configured handler, which test/e2e/handlerOverride.ts points at this module), so the shape is restated.
import { z } from 'zod';
import { kafkaHandler } from '../../functions/runtime/kafkaHandler.ts';
import { confluentProtobuf, registryFromEnvironment } from '../../functions/runtime/registry/index.ts';

const OrderEvent = z.object({
  orderId: z.string().min(1),
  status: z.enum(['PENDING', 'PAID', 'SHIPPED', 'DELIVERED', 'CANCELLED']),
  version: z.number().int().min(1),
  updatedAt: z.iso.datetime(),
});

export const handler = kafkaHandler({
  value: confluentProtobuf({ registry: registryFromEnvironment(), schema: OrderEvent }),
  process: async (_record, context) => {
    context.count('DecodedOrders');
  },
});
