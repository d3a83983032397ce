// Fault injection at the SDK client boundary, for the chaos suite. This is a deliberate stand-in for AWS: DynamoDB
// Local and ElasticMQ never throttle and never lose an answer, so these two faults cannot be produced by the real
// local services themselves. Every request still goes to the real service; only its fate around it is changed.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';

export type FaultStats = {
  /** Requests that failed before they reached the service. */
  before: number;
  /** Requests the service applied whose answer was then lost. */
  after: number;
  requests: number;
};

export type FaultPlan = {
  /** Share of request attempts that fail, half before the service sees them, half after it applied them. */
  readonly rate: number;
  readonly random: () => number;
  readonly stats: FaultStats;
};

/** What the SDK itself throws on throttling, so its retry strategy and our classifier treat it as AWS's own. */
const throttled = (service: string, lost: boolean): Error =>
  Object.assign(new Error(`${service} throttled the request (injected${lost ? ', after it was applied' : ''})`), {
    name: 'ThrottlingException',
    $fault: 'client',
    $retryable: { throttling: true },
    $metadata: { httpStatusCode: 400, attempts: 1 },
  });

/**
 * Adds the faults to a client. The middleware sits in the deserialize step, inside the SDK's retry loop, like a
 * real lost answer: the SDK retries the request (a retried write that already landed), and only when its own
 * retries run out does the fault reach the runtime.
 */
export const injectFaults = <C extends DynamoDBClient | SQSClient>(client: C, service: string, plan: FaultPlan): C => {
  (client as DynamoDBClient).middlewareStack.add(
    (next) => async (args) => {
      plan.stats.requests += 1;
      const roll = plan.random();
      if (roll < plan.rate / 2) {
        plan.stats.before += 1;
        throw throttled(service, false);
      }
      const result = await next(args);
      if (roll < plan.rate) {
        plan.stats.after += 1;
        throw throttled(service, true);
      }
      return result;
    },
    { step: 'deserialize', name: 'chaosFaults', priority: 'high' },
  );
  return client;
};

/** Request attempts per call, as the SDK's standard mode makes them. */
const SDK_ATTEMPTS = 3;
const retryToken = (count: number) => ({
  getRetryCount: () => count,
  getRetryDelay: () => (count === 0 ? 0 : 5 * 2 ** count),
});

/**
 * The SDK's own retry loop, as many attempts as its standard mode, with waits of milliseconds instead of its
 * half-second throttling backoff: the suite is after interleavings, not AWS's pacing, and runs in a fraction of the time.
 */
export const quickRetries = {
  acquireInitialRetryToken: async () => retryToken(0),
  refreshRetryTokenForRetry: async (token: { getRetryCount(): number }, info: { errorType: string }) => {
    const next = token.getRetryCount() + 1;
    if (info.errorType === 'CLIENT_ERROR' || next >= SDK_ATTEMPTS) throw new Error('no retries left');
    return retryToken(next);
  },
  recordSuccess: () => {},
};

/** What a scripted fault does to one request attempt. */
export type ScriptedFault = 'before' | 'after' | { readonly output: unknown } | { readonly error: Error } | undefined;

/**
 * Faults chosen per request by a test: `before` fails it unsent, `after` loses the answer of an applied request, an
 * `output` replaces the service's answer without sending (a DynamoDB answer DynamoDB Local never gives, such as
 * UnprocessedItems), an `error` is thrown unsent (a refusal the local service would not make). The decision sees the command's name and input, so a test can aim at one record's write.
 */
export const injectScriptedFaults = <C extends DynamoDBClient | SQSClient>(
  client: C,
  decide: (command: string, input: Record<string, unknown>) => ScriptedFault,
): C => {
  (client as DynamoDBClient).middlewareStack.add(
    (next, context) => async (args) => {
      const fault = decide(context.commandName ?? '', args.input as Record<string, unknown>);
      if (fault === 'before') throw throttled(context.clientName ?? 'the service', false);
      if (fault && typeof fault === 'object' && 'error' in fault) throw fault.error;
      if (fault && typeof fault === 'object')
        return { output: { $metadata: {}, ...(fault.output as object) }, response: {} } as never;
      const result = await next(args);
      if (fault === 'after') throw throttled(context.clientName ?? 'the service', true);
      return result;
    },
    { step: 'deserialize', name: 'scriptedFaults', priority: 'high' },
  );
  return client;
};
