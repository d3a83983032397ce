// A test-only route for the end-to-end suites: `process` mode, and its only effect is an atomic ADD on a counter item
// per record (keyed by the record's coordinates) in a side table, so the checks can see how many times each record
// was applied. Unlike `orders`, which ignores a repeated version, nothing here hides a second application.
//
// The counter table lives on the shared DynamoDB Local (E2E_COUNTS_ENDPOINT), not on the endpoint the bridge uses for
// its idempotency table: a fault scenario that stops the bridge's DynamoDB must not break the counting itself, or a
// lost ADD response would look like a runtime defect. Values are order events (the `orders` schema), so the orders
// traffic generator feeds this route: bad JSON and schema violations are dead-lettered, everything else is counted.
//
// The bridge loads route handlers only from functions/handlers/; test/e2e/handlerOverride.ts points the route at
// this module instead (see there).
import { DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { OrderEvent } from '../../functions/handlers/orders.ts';
import { TransientError } from '../../functions/runtime/errors.ts';
import { kafkaHandler, requiredEnv } from '../../functions/runtime/kafkaHandler.ts';

export const COUNTED_ROUTE = 'counted';
/** Orders whose id starts with this hang their invocation until it times out. */
export const HANG_PREFIX = 'hang-';
/** Until this epoch ms (E2E_OUTAGE_UNTIL), the downstream fails every call, as a service in an outage would. */
const outageUntil = Number(process.env.E2E_OUTAGE_UNTIL ?? 0);
/** With E2E_OUTAGE_KEY, only the calls for records of that Kafka key fail (one sick entity downstream). */
const outageKey = process.env.E2E_OUTAGE_KEY || undefined;

const client = new DynamoDBClient({
  ...(process.env.E2E_COUNTS_ENDPOINT && { endpoint: process.env.E2E_COUNTS_ENDPOINT }),
});

export const handler = kafkaHandler({
  route: COUNTED_ROUTE,
  value: OrderEvent,
  process: async (record, context) => {
    // A record that never returns: its invocation times out, as a stuck downstream call would make it.
    if (record.value.orderId.startsWith(HANG_PREFIX)) await new Promise(() => {});
    if (Date.now() < outageUntil && (outageKey === undefined || record.key === outageKey))
      throw new TransientError('the downstream is in an outage (E2E_OUTAGE_UNTIL)');
    await client.send(
      new UpdateItemCommand({
        TableName: requiredEnv('E2E_COUNTS_TABLE', COUNTED_ROUTE),
        Key: { pk: { S: `${record.topic}-${record.partition}@${record.offset}` } },
        // `applications` is what the checks read; the request ids say which invocations applied it.
        // `appliedAt` orders a key's applications, for the retry queue's ordering check.
        UpdateExpression: 'ADD applications :one, requestIds :request SET appliedAt = :now',
        ExpressionAttributeValues: {
          ':one': { N: '1' },
          ':request': { SS: [context.requestId] },
          ':now': { N: String(Date.now()) },
        },
      }),
    );
  },
});
