import { kafkaHandler } from '../runtime/kafkaHandler.ts';
import { confluentAvro, registryFromEnvironment } from '../runtime/registry/index.ts';
import { applyOrderEvent, OrderEvent, STALE_EVENTS_METRIC } from './orders.ts';

/**
 * Example route `orders-avro`: the `orders` route's order status events, produced as Avro and framed by a
 * Confluent-compatible schema registry (`0x00`, the schema id, the Avro binary) instead of JSON. The decoder fetches
 * each schema id once per container from the route's `registry` (SCHEMA_REGISTRY_URL), and the decoded value still
 * passes `OrderEvent`, so the types and the effect are the orders route's own: a newer version is applied, an older
 * or repeated one is counted as stale, an illegal transition is dead-lettered. Bytes without the framing (a wrong
 * magic byte) are permanent and dead-lettered too. Run it: `npm start -- --config infra/examples/registry.config.ts`.
 */
export const handler = kafkaHandler({
  route: 'orders-avro',
  value: confluentAvro({ registry: registryFromEnvironment(), schema: OrderEvent }),
  process: async (record, context) => {
    if ((await applyOrderEvent(record.value)) === 'stale') context.count(STALE_EVENTS_METRIC);
  },
});
