// Cold-start entry: the floor. A bare middy handler with only zod and the DynamoDB and SQS clients: it validates
// each record, applies it with one conditional update and dead-letters what fails, with no dedupe, metrics or logs.
// Any handler of this kind pays at least this much at init.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import { applyOrderEvent, OrderEvent } from './orderModel.ts';

const dynamodb = new DynamoDBClient({});
const sqs = new SQSClient({});

type WireRecord = { topic: string; partition: number; offset: number; value: string | null };

export const handler = middy<{ records: Record<string, WireRecord[]> }>().handler(async (event) => {
  for (const records of Object.values(event.records)) {
    for (const record of records) {
      try {
        const value = OrderEvent.parse(JSON.parse(Buffer.from(record.value ?? '', 'base64').toString('utf8')));
        await applyOrderEvent(dynamodb, value);
      } catch (error) {
        await sqs.send(
          new SendMessageCommand({
            QueueUrl: process.env.DLQ_URL,
            MessageBody: JSON.stringify({ record, error: (error as Error).message }),
          }),
        );
      }
    }
  }
});
