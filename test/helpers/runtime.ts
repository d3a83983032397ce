import { Breakers } from '../../functions/runtime/breaker/Breakers.ts';
import type { DeadLetterEnvelope } from '../../functions/runtime/deadLetter/envelope.ts';
import { DeadLetterEnvelope as EnvelopeSchema } from '../../functions/runtime/deadLetter/envelopeSchema.ts';
import { SqsDeadLetterSink } from '../../functions/runtime/deadLetter/SqsDeadLetterSink.ts';
import { CompletedKeyCache } from '../../functions/runtime/idempotency/CompletedKeyCache.ts';
import { DynamoDbIdempotencyStore } from '../../functions/runtime/idempotency/DynamoDbIdempotencyStore.ts';
import type { InvocationDeps } from '../../functions/runtime/processor.ts';
import type { RouteSettings } from '../../functions/runtime/settings.ts';
import { createQueue, createTable, drainQueue, dynamodb, getItem, sqs, uniqueName } from './aws.ts';

/**
 * The processor's two ports on the real local services: a fresh idempotency table and dead-letter queue, so a unit
 * test of the processing logic meets DynamoDB's and SQS's real behaviour rather than a kinder fake. Each `deps()`
 * is one invocation's (a new store, as the handler builds one per invocation); `cache` is the warm container's.
 */
export const localPorts = (route: string) => {
  const ready = Promise.all([createTable(uniqueName(`${route}-idempotency`)), createQueue(uniqueName(`${route}-dlq`))]);
  const cache = new CompletedKeyCache(100);
  // The container's breakers, like its cache; made on first use, from the first invocation's settings.
  let breakers: Breakers | undefined;
  return {
    cache,
    deps: async (settings: RouteSettings, extra: Partial<InvocationDeps> = {}): Promise<InvocationDeps> => {
      const [table, queueUrl] = await ready;
      breakers ??= new Breakers(route, settings.breaker);
      return {
        store: new DynamoDbIdempotencyStore({
          client: dynamodb,
          tableName: table,
          route,
          ttlSeconds: settings.idempotency.ttlSeconds,
          cache,
          clockSkewMs: settings.idempotency.clockSkewMs,
        }),
        sink: new SqsDeadLetterSink({ client: sqs, queueUrl, maxMessageBytes: settings.deadLetter.maxMessageBytes }),
        cache,
        breakers,
        settings,
        ...extra,
      };
    },
    /** The idempotency item of a key, read consistently. */
    item: async (key: string) => getItem((await ready)[0], { pk: { S: `${route}#${key}` } }),
    /** Every dead letter sent so far (the queue is drained). */
    letters: async (): Promise<DeadLetterEnvelope[]> =>
      (await drainQueue((await ready)[1])).map((m) => EnvelopeSchema.parse(JSON.parse(m.Body ?? ''))),
  };
};
