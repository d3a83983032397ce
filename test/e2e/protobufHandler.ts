// A test-only route for test/e2e/registry.e2e.test.ts: order events as Protobuf (the .proto `load --format protobuf`
// builds from orders.ts's zod schema), framed by a Confluent-compatible registry, decoded and checked against the
// order event's shape. test/e2e/handlerOverride.ts points the route's configured handler at this module.
import { confluentProtobuf, registryFromEnvironment } from '../../functions/runtime/registry/index.ts';
import { decodedOrdersHandler, OrderEvent } from './decodedOrders.ts';

export const handler = decodedOrdersHandler(
  confluentProtobuf({ registry: registryFromEnvironment(), schema: OrderEvent }),
);
