// Reads a dead-letter queue without consuming it: every message is received with a visibility timeout, then made
// visible again at once. Used by reconcile and the end-to-end tests.
import { type Message, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { DeadLetterEnvelope } from '../../functions/runtime/deadLetter/envelopeSchema.ts';
import { makeVisible } from '../lib/replayRun.ts';

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
  let json: unknown;
  try {
    json = JSON.parse(message.Body ?? '');
  } catch {
    return undefined;
  }
  const parsed = DeadLetterEnvelope.safeParse(json);
  if (!parsed.success) return undefined;
  const { route, idempotencyKey, source, record, error } = parsed.data;
  return {
    messageId: message.MessageId ?? '',
    route,
    idempotencyKey,
    topic: source.topic,
    partition: source.partition,
    offset: source.offset,
    value: record.value,
    errorKind: error.kind,
    errorMessage: error.message,
  };
};

/** Every message in the queue (envelopes that do not parse are counted in `unreadable`). */
export const peekDeadLetters = async (
  sqs: SQSClient,
  queueUrl: string,
): Promise<{ letters: DeadLetter[]; unreadable: number }> => {
  const seen = new Map<string, Message>();
  const handles: string[] = [];
  try {
    for (let empty = 0; empty < 2; ) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          VisibilityTimeout: 60,
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
    // Best effort: a message left invisible comes back by itself after the timeout.
    await makeVisible(sqs, queueUrl, handles).catch(() => {});
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
