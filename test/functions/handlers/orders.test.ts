import { handler } from '../../../functions/handlers/orders.ts';
import type { DeadLetterEnvelope } from '../../../functions/runtime/deadLetter/envelope.ts';
import { invocationSummaryOf } from '../../../functions/runtime/kafkaHandler.ts';
import { createTable, drainQueue, getItem, routeEnvironment, uniqueName } from '../../helpers/aws.ts';
import { lambdaContext, mskEvent, type RecordSpec } from '../../helpers/events.ts';

let ordersTable: string;
let dlqUrl: string;

beforeAll(async () => {
  ({ dlqUrl } = await routeEnvironment('orders'));
  ordersTable = await createTable(uniqueName('orders'), 'orderId');
  process.env.ORDERS_TABLE_NAME = ordersTable;
});

let nextOffset = 0;
const event = (orderId: string, status: string, version: number, partition = 0): RecordSpec => ({
  topic: 'orders',
  partition,
  offset: nextOffset++,
  key: orderId,
  value: { orderId, status, version, updatedAt: new Date(Date.UTC(2026, 0, 1, 0, version)).toISOString() },
});

const invoke = async (records: RecordSpec[]) => {
  const context = lambdaContext();
  await handler(mskEvent(records), context);
  return invocationSummaryOf(context);
};

const order = async (orderId: string) => {
  const item = await getItem(ordersTable, { orderId: { S: orderId } });
  return { status: item?.status?.S, version: Number(item?.version?.N) };
};

describe('orders route against DynamoDB Local', () => {
  test('events in order move the order through its lifecycle', async () => {
    const id = uniqueName('o');
    const summary = await invoke([
      event(id, 'PENDING', 1),
      event(id, 'PAID', 2),
      event(id, 'SHIPPED', 3),
      event(id, 'DELIVERED', 4),
    ]);
    expect(summary).toMatchObject({ processed: 4, deadLettered: 0 });
    expect(await order(id)).toEqual({ status: 'DELIVERED', version: 4 });
  });

  test('out of order and stale versions are ignored, never applied backwards', async () => {
    const id = uniqueName('o');
    await invoke([event(id, 'PENDING', 1), event(id, 'PAID', 2), event(id, 'SHIPPED', 3)]);
    // A late PAID (version 2) and a repeated SHIPPED arrive after SHIPPED 3.
    const summary = await invoke([event(id, 'PAID', 2), event(id, 'SHIPPED', 3)]);
    expect(summary).toMatchObject({ processed: 2, deadLettered: 0 });
    expect(await order(id)).toEqual({ status: 'SHIPPED', version: 3 });
  });

  test('an illegal transition is a business error: dead-lettered, and its neighbours still apply', async () => {
    const id = uniqueName('o');
    const other = uniqueName('o');
    await drainQueue(dlqUrl);
    await invoke([event(id, 'PENDING', 1), event(id, 'PAID', 2), event(id, 'SHIPPED', 3), event(id, 'DELIVERED', 4)]);
    const summary = await invoke([event(id, 'PENDING', 5), event(other, 'PENDING', 1)]);
    expect(summary).toMatchObject({ processed: 1, deadLettered: 1 });
    expect(await order(id)).toEqual({ status: 'DELIVERED', version: 4 });
    expect(await order(other)).toEqual({ status: 'PENDING', version: 1 });
    const letters = (await drainQueue(dlqUrl)).map((m) => JSON.parse(m.Body ?? '') as DeadLetterEnvelope);
    expect(letters).toHaveLength(1);
    expect(letters[0]?.error).toMatchObject({ kind: 'permanent', name: 'BusinessRuleError' });
    expect(letters[0]?.error.message).toMatch(
      /route orders: orders-0@\d+: permanent: .*illegal transition DELIVERED -> PENDING/,
    );
  });

  test('an event that fails the schema is dead-lettered with the field named', async () => {
    await drainQueue(dlqUrl);
    const summary = await invoke([
      { offset: nextOffset++, value: { orderId: 'x', status: 'LOST', version: 1, updatedAt: 'now' } },
    ]);
    expect(summary).toMatchObject({ deadLettered: 1 });
    const [letter] = (await drainQueue(dlqUrl)).map((m) => JSON.parse(m.Body ?? '') as DeadLetterEnvelope);
    expect(letter?.error.name).toBe('ValidationError');
    expect(letter?.error.message).toMatch(/status: /);
  });
});
