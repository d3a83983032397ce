// Reads a dead-letter queue without consuming it: every message is received with a visibility timeout, then made
// visible again at once. Used by reconcile and the end-to-end tests.
import {
  ChangeMessageVisibilityBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';

/** The parts of the dead-letter envelope (DESIGN §7) the tools read. */
export type DeadLetter = {
  readonly messageId: string;
  readonly route: string;
  readonly idempotencyKey: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly value: string | null;
  readonly errorKind: string;
  readonly errorMessage: string;
};

const parseEnvelope = (message: Message): DeadLetter | undefined => {
  try {
    const body = JSON.parse(message.Body ?? '') as {
      route: string;
      idempotencyKey: string;
      source: { topic: string; partition: number; offset: number };
      record: { value: string | null };
      error: { kind: string; message: string };
    };
    return {
      messageId: message.MessageId ?? '',
      route: body.route,
      idempotencyKey: body.idempotencyKey,
      topic: body.source.topic,
      partition: body.source.partition,
      offset: body.source.offset,
      value: body.record.value,
      errorKind: body.error.kind,
      errorMessage: body.error.message,
    };
  } catch {
    return undefined;
  }
};

/** Every message in the queue (envelopes that do not parse are counted in `unreadable`). */
export const peekDeadLetters = async (
  sqs: SQSClient,
  queueUrl: string,
  options: { visibilityTimeoutSeconds?: number } = {},
): Promise<{ letters: DeadLetter[]; unreadable: number }> => {
  const seen = new Map<string, Message>();
  const handles: string[] = [];
  try {
    for (let empty = 0; empty < 2; ) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          VisibilityTimeout: options.visibilityTimeoutSeconds ?? 60,
          WaitTimeSeconds: 0,
        }),
      );
      if (Messages.length === 0) empty += 1;
      else empty = 0;
      for (const message of Messages) {
        if (message.ReceiptHandle) handles.push(message.ReceiptHandle);
        if (message.MessageId) seen.set(message.MessageId, message);
      }
    }
  } finally {
    for (let i = 0; i < handles.length; i += 10) {
      const chunk = handles.slice(i, i + 10);
      await sqs
        .send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: queueUrl,
            Entries: chunk.map((handle, j) => ({ Id: String(j), ReceiptHandle: handle, VisibilityTimeout: 0 })),
          }),
        )
        .catch(() => {});
    }
  }
  const letters: DeadLetter[] = [];
  let unreadable = 0;
  for (const message of seen.values()) {
    const letter = parseEnvelope(message);
    if (letter) letters.push(letter);
    else unreadable += 1;
  }
  return { letters, unreadable };
};
