// The idempotency key the runtime gives a record (functions/runtime/processor.ts), recomputed outside the handler so
// `reconcile` and the tests can find a record's marker: `pk = "<route>#<key>"`.
//
// - By default `${topic}-${partition}@${offset}`; a replayed record keeps its original coordinates (the runtime's own
//   `replayOrigin`, so a header that is not a valid coordinate is ignored here exactly as there).
// - A route with its own `idempotencyKey` (payments: the txId) uses it only for a record that decodes: a tombstone or a
//   record failing the route's schema falls back to the default, exactly as the runtime does.
import { replayOrigin } from '../../functions/runtime/batch/prepare.ts';
import type { RouteConfig } from '../../infra/config/index.ts';
import type { LambdaKafkaRecord } from '../lib/kafkaEvents.ts';

/** Business keys of the example routes, by handler module: the decoded value's key, or undefined if it fails. */
export type BusinessKey = (value: Buffer) => string | undefined;

const parseJson = (value: Buffer): unknown => {
  try {
    return JSON.parse(value.toString('utf8'));
  } catch {
    return undefined;
  }
};

const BUSINESS_KEYS: Record<string, () => Promise<BusinessKey>> = {
  'payments.ts': async () => {
    const { PaymentEvent } = await import('../../functions/handlers/payments.ts');
    return (value) => {
      const parsed = PaymentEvent.safeParse(parseJson(value));
      return parsed.success ? parsed.data.txId : undefined;
    };
  },
};

/** The key function of a route (routes without their own `idempotencyKey` use the coordinates). */
export const idempotencyKeyFor = async (
  route: Pick<RouteConfig, 'handler'>,
): Promise<(record: LambdaKafkaRecord) => string> => {
  const business = await BUSINESS_KEYS[route.handler]?.();
  return (record) => {
    const fallback = replayOrigin(record) ?? `${record.topic}-${record.partition}@${record.offset}`;
    if (!business || record.value === null) return fallback;
    return business(Buffer.from(record.value, 'base64')) ?? fallback;
  };
};
