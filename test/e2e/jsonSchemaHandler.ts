// A test-only route for test/e2e/registry.e2e.test.ts: order events as JSON Schema records (the schema `load --format
// json-schema` builds from orders.ts's zod schema), framed by a Confluent-compatible registry, validated against the
// registered schema and checked against the order event's shape. test/e2e/handlerOverride.ts points the route's
// configured handler at this module.
import { confluentJsonSchema, registryFromEnvironment } from '../../functions/runtime/registry/index.ts';
import { decodedOrdersHandler, OrderEvent } from './decodedOrders.ts';

export const handler = decodedOrdersHandler(
  confluentJsonSchema({ registry: registryFromEnvironment(), schema: OrderEvent }),
);
