// The idempotency key the runtime gives a record (functions/runtime/processor.ts), recomputed outside the handler so
// `reconcile` and the tests can find a record's marker: `pk = "<route>#<key>"`.
//
// - By default `${topic}-${partition}@${offset}`; a replayed record (REPLAY_HEADER) keeps its original coordinates.
// - A route with its own `idempotencyKey` (payments: the txId) uses it only for a record that decodes: a tombstone or a
//   record failing the route's schema falls back to the default, exactly as the runtime does.
import { REPLAY_HEADER } from '../../functions/runtime/processor.ts';
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
    const replay = record.headers.find((h) => REPLAY_HEADER in h)?.[REPLAY_HEADER];
    const fallback = replay
      ? Buffer.from(replay).toString('utf8')
      : `${record.topic}-${record.partition}@${record.offset}`;
    if (!business || record.value === null) return fallback;
    return business(Buffer.from(record.value, 'base64')) ?? fallback;
  };
};
