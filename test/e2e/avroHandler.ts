// A test-only route for test/e2e/registry.e2e.test.ts: order events as Avro, framed by a Confluent-compatible
// registry (the local Apicurio, named in SCHEMA_REGISTRY_URL by the local tools), decoded and checked against the
// order event's shape. test/e2e/handlerOverride.ts points the route's configured handler at this module.
import { confluentAvro, registryFromEnvironment } from '../../functions/runtime/registry/index.ts';
import { decodedOrdersHandler, OrderEvent } from './decodedOrders.ts';

export const handler = decodedOrdersHandler(confluentAvro({ registry: registryFromEnvironment(), schema: OrderEvent }));
