// Reads a dead-letter queue without consuming it: every message is received with a visibility timeout, then made
// visible again at once. Used by reconcile, replay's report and the end-to-end tests. Also what those tools say about
// a dead letter: why it was dead-lettered (its reason, for grouping) and when.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ChangeMessageVisibilityBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { DeadLetterEnvelope } from '../../functions/runtime/deadLetter/envelopeSchema.ts';

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
  readonly errorName: string;
  readonly errorMessage: string;
  /** ISO time the record was dead-lettered (the envelope's `deadLetteredAt`, else the message's SentTimestamp). */
  readonly deadLetteredAt: string | undefined;
};

/** Why a record was dead-lettered, as replay groups letters: the kind, the error's name and its message. */
export type DeadLetterReason = { readonly kind: string; readonly name: string; readonly message: string };

/** SQS system attributes to ask for, so a letter's time is known even when its envelope does not say it. */
export const DEAD_LETTER_SYSTEM_ATTRIBUTES = ['SentTimestamp'] as const;

const MAX_BATCH = 10;

/**
 * The envelope's error without what is particular to the record: the runtime's message starts with
 * `RecordProcessingError: route R: topic-p@o: kind: ` and then `Name: ` of the cause, which `name` already says.
 * Letters that failed for the same reason then share one.
 */
export const deadLetterReason = (error: DeadLetterEnvelope['error']): DeadLetterReason => {
  let message = error.message.replace(/^RecordProcessingError: route [^:]*: \S+-\d+@\d+: [a-z]+: /, '');
  if (message.startsWith(`${error.name}: `)) message = message.slice(error.name.length + 2);
  return { kind: error.kind, name: error.name, message };
};

/** When the letter was written: the envelope's own time, else when SQS received the message. */
export const deadLetteredAtOf = (envelope: { deadLetteredAt?: string } | undefined, message: Message) => {
  const stated = envelope?.deadLetteredAt ? Date.parse(envelope.deadLetteredAt) : Number.NaN;
  if (Number.isFinite(stated)) return new Date(stated).toISOString();
  const sent = Number(message.Attributes?.SentTimestamp);
  return Number.isFinite(sent) && sent > 0 ? new Date(sent).toISOString() : undefined;
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
    errorName: error.name,
    errorMessage: error.message,
    deadLetteredAt: deadLetteredAtOf(parsed.data, message),
  };
};

/** Tries of an entry a ChangeMessageVisibilityBatch answered as failed on SQS's side (the batch itself succeeded). */
const MAKE_VISIBLE_TRIES = 3;

/**
 * Messages left behind become visible again at once, so the next run (or a look) sees them. SQS answers a batch per
 * entry: entries that failed on SQS's side are tried again; any still failing, or refused as the caller's fault, reject
 * the call with their count and first reason (such a message stays invisible until its visibility timeout ends, so a
 * look meanwhile would miss it).
 */
export const makeVisible = async (sqs: SQSClient, queueUrl: string, handles: readonly string[]): Promise<void> => {
  const failures: string[] = [];
  for (let i = 0; i < handles.length; i += MAX_BATCH) {
    let pending = handles.slice(i, i + MAX_BATCH);
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > 1) await sleep(100 * attempt);
      const { Failed = [] } = await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: pending.map((handle, n) => ({ Id: String(n), ReceiptHandle: handle, VisibilityTimeout: 0 })),
        }),
      );
      const batch = pending;
      pending = [];
      for (const f of Failed) {
        // The caller's fault (a handle that expired or never was) does not change on a retry.
        if (!f.SenderFault && attempt < MAKE_VISIBLE_TRIES) pending.push(batch[Number(f.Id)] as string);
        else failures.push(`${f.Code ?? 'unknown'}: ${f.Message ?? 'no message'}`);
      }
    }
  }
  if (failures.length > 0)
    throw new Error(
      `${failures.length} message(s) stay invisible until their visibility timeout ends; SQS refused to change it ` +
        `(${failures[0]})`,
    );
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
          MaxNumberOfMessages: MAX_BATCH,
          VisibilityTimeout: 60,
          WaitTimeSeconds: 0,
          MessageSystemAttributeNames: [...DEAD_LETTER_SYSTEM_ATTRIBUTES],
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
