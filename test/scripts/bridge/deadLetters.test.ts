// makeVisible against ElasticMQ: SQS answers ChangeMessageVisibilityBatch per entry, so a refused entry must not pass
// for a message made visible again (a look right after would miss it, and reconcile would call its record missing).
import { ReceiveMessageCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { makeVisible } from '../../../scripts/bridge/deadLetters.ts';
import { createQueue, sqs, uniqueName } from '../../helpers/aws.ts';

const receiveAll = async (queueUrl: string, visibilityTimeout: number) => {
  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: visibilityTimeout }),
  );
  return Messages;
};

test('makeVisible gives back every message it can, and names the ones SQS refused', async () => {
  const queueUrl = await createQueue(uniqueName('make-visible'));
  await sqs.send(
    new SendMessageBatchCommand({
      QueueUrl: queueUrl,
      Entries: [
        { Id: 'a', MessageBody: 'a' },
        { Id: 'b', MessageBody: 'b' },
      ],
    }),
  );
  const taken = await receiveAll(queueUrl, 60);
  expect(taken.map((m) => m.Body).sort()).toEqual(['a', 'b']);
  const handles = taken.map((m) => m.ReceiptHandle as string);

  await expect(makeVisible(sqs, queueUrl, [...handles, 'not-a-receipt-handle'])).rejects.toThrow(
    /^1 message\(s\) stay invisible until their visibility timeout ends; SQS refused to change it \(\w+/,
  );
  // The two real handles were given back despite the refused entry beside them.
  expect((await receiveAll(queueUrl, 60)).map((m) => m.Body).sort()).toEqual(['a', 'b']);
});
