// Smoke test of ElasticMQ through the AWS SDK v3 (endpoint from AWS_ENDPOINT_URL_SQS): a queue with a DLQ
// redrive policy, a batch with message attributes, receive and delete.
import { randomUUID } from 'node:crypto';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';

const client = new SQSClient({});
const runId = `${Date.now()}-${randomUUID().slice(0, 8)}`;
const queueUrls: string[] = [];

afterAll(async () => {
  for (const QueueUrl of queueUrls) await client.send(new DeleteQueueCommand({ QueueUrl })).catch(() => {});
  client.destroy();
});

async function createQueue(name: string, attributes: Record<string, string> = {}): Promise<string> {
  const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  if (!QueueUrl) throw new Error(`no URL for ${name}`);
  queueUrls.push(QueueUrl);
  return QueueUrl;
}

test('queue with a DLQ: SendMessageBatch with attributes, receive, delete', async () => {
  const dlqUrl = await createQueue(`smoke-sqs-${runId}-dlq`);
  expect(new URL(dlqUrl).origin).toBe(process.env.AWS_ENDPOINT_URL_SQS);
  const dlqArn = (await client.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] })))
    .Attributes?.QueueArn;
  expect(dlqArn).toMatch(/^arn:aws:sqs:/);

  const redrive = { deadLetterTargetArn: dlqArn, maxReceiveCount: 3 };
  const queueUrl = await createQueue(`smoke-sqs-${runId}`, {
    RedrivePolicy: JSON.stringify(redrive),
    VisibilityTimeout: '30',
  });
  const attrs = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['RedrivePolicy'] }),
  );
  expect(JSON.parse(attrs.Attributes?.RedrivePolicy ?? '{}')).toMatchObject({
    deadLetterTargetArn: dlqArn,
    maxReceiveCount: 3,
  });

  const binary = Uint8Array.from([0xff, 0x00, 0xc3, 0x28]);
  const entries = ['permanent', 'transient', 'exhausted'].map((errorKind, i) => ({
    Id: `m${i}`,
    MessageBody: JSON.stringify({ version: 1, route: 'orders', offset: i }),
    MessageAttributes: {
      route: { DataType: 'String', StringValue: 'orders' },
      topic: { DataType: 'String', StringValue: 'orders' },
      errorKind: { DataType: 'String', StringValue: errorKind },
      offset: { DataType: 'Number', StringValue: String(i) },
      raw: { DataType: 'Binary', BinaryValue: binary },
    },
  }));
  const sentBatch = await client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
  expect(sentBatch.Failed ?? []).toEqual([]);
  expect(sentBatch.Successful).toHaveLength(3);

  const received: Message[] = [];
  const deadline = Date.now() + 20_000;
  while (received.length < entries.length && Date.now() < deadline) {
    const out = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        MessageAttributeNames: ['All'],
      }),
    );
    received.push(...(out.Messages ?? []));
  }
  expect(received).toHaveLength(3);
  for (const message of received) {
    const body = JSON.parse(message.Body ?? '{}') as { offset: number };
    const entry = entries[body.offset];
    expect(message.Body).toBe(entry?.MessageBody);
    const a = message.MessageAttributes ?? {};
    expect(a.route?.StringValue).toBe('orders');
    expect(a.topic?.StringValue).toBe('orders');
    expect(a.errorKind?.StringValue).toBe(entry?.MessageAttributes.errorKind.StringValue);
    expect(a.offset).toMatchObject({ DataType: 'Number', StringValue: String(body.offset) });
    expect(Buffer.from(a.raw?.BinaryValue ?? []).toString('hex')).toBe('ff00c328');
  }

  const deleted = await client.send(
    new DeleteMessageBatchCommand({
      QueueUrl: queueUrl,
      Entries: received.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle })),
    }),
  );
  expect(deleted.Failed ?? []).toEqual([]);
  expect(deleted.Successful).toHaveLength(3);

  const after = await client.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  expect(after.Attributes?.ApproximateNumberOfMessages).toBe('0');
  expect(after.Attributes?.ApproximateNumberOfMessagesNotVisible).toBe('0');
});
