// Dead letters that SQS or DynamoDB can never accept as they are must still leave the partition, against ElasticMQ
// (which refuses characters outside the SQS set as the sender's fault) and DynamoDB Local.
import { BusinessRuleError } from '../../../../functions/runtime/errors.ts';
import { faultyRoute } from '../../../helpers/faultyRoute.ts';

test('an error message with characters SQS refuses is escaped, and the letter lands', async () => {
  const message = 'bad bytes: \uFFFE \uFFFF \u0001 \uD800 end';
  const route = await faultyRoute({
    process: async () => {
      throw new BusinessRuleError(message);
    },
  });
  const result = await route.invoke([{ offset: 1, value: { id: 'a', amount: 1 } }]);
  expect(result.error).toBeUndefined();
  const [letter] = await route.letters();
  // JSON's own escapes: the body parses back to the very message.
  expect(letter.error.message).toContain(message);
  expect(await route.item('orders-0@1')).toMatchObject({ status: { S: 'DEAD_LETTERED' }, letterSent: { BOOL: true } });
});

test('a message SQS refuses as the sender’s fault goes again in its last-resort form', async () => {
  const route = await faultyRoute({
    process: async () => {
      throw new BusinessRuleError('refused');
    },
  });
  let refused = 0;
  route.faults.sqs = (command, input) => {
    const entries = (input.Entries ?? []) as Array<{ Id: string; MessageBody: string }>;
    // The full envelope carries the record's value; SQS refuses it (as it would an oversized or invalid message).
    const full = entries.filter((e) => JSON.parse(e.MessageBody).record.value !== null);
    if (command !== 'SendMessageBatchCommand' || full.length === 0) return undefined;
    refused += full.length;
    return {
      output: {
        Successful: [],
        Failed: full.map((e) => ({ Id: e.Id, SenderFault: true, Code: 'InvalidParameterValue', Message: 'refused' })),
      },
    };
  };
  const result = await route.invoke([{ offset: 1, value: { id: 'a', amount: 1 } }]);
  expect(result.error).toBeUndefined();
  expect(refused).toBe(1);
  const [letter] = await route.letters();
  expect(letter.record).toMatchObject({ value: null, truncated: true });
  expect(letter.source).toMatchObject({ topic: 'orders', partition: 0, offset: 1 });
});

test('a dead-letter decision DynamoDB refuses outright still sends the letter instead of stalling', async () => {
  const route = await faultyRoute({
    process: async () => {
      throw new BusinessRuleError('refused');
    },
  });
  route.faults.dynamodb = (command, input) =>
    command === 'UpdateItemCommand' && String((input.UpdateExpression as string) ?? '').includes('letter')
      ? {
          error: Object.assign(new Error('Item size has exceeded the maximum allowed size'), {
            name: 'ValidationException',
          }),
        }
      : undefined;
  const result = await route.invoke([
    { offset: 1, value: { id: 'a', amount: 1 } },
    { offset: 2, value: { id: 'b', amount: 1 } },
  ]);
  expect(result.error).toBeUndefined();
  expect((await route.letters()).map((l) => l.source.offset).sort()).toEqual([1, 2]);
});
