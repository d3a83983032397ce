import { DeadLetterError, describeError, type ErrorKind, RecordProcessingError } from '../errors.ts';
import type { WireRecord } from '../event.ts';
import type { DeadLetterEnvelope } from './envelopeSchema.ts';

export type { DeadLetterEnvelope } from './envelopeSchema.ts';

export type DeadLetterSource = { eventSource: 'aws:kafka' | 'SelfManagedKafka'; eventSourceArn?: string };

export type DeadLetterInput = {
  route: string;
  idempotencyKey: string;
  source: DeadLetterSource;
  record: WireRecord;
  kind: ErrorKind;
  error: unknown;
  attempts: number;
  firstFailedAt: Date;
};

const MAX_ERROR_MESSAGE = 4_096;
/** What an envelope that fits nothing else keeps of the error message; with the rest it stays far below 1 KiB. */
const LAST_RESORT_ERROR_MESSAGE = 256;

const shorten = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max)}…` : text);

const errorName = (error: unknown): string => (error instanceof Error ? error.name : 'Error');

export const buildEnvelope = (input: DeadLetterInput, now: Date = new Date()): DeadLetterEnvelope => {
  const { record } = input;
  const message = describeError(input.error);
  return {
    version: 1,
    route: input.route,
    idempotencyKey: input.idempotencyKey,
    source: {
      eventSource: input.source.eventSource,
      ...(input.source.eventSourceArn ? { eventSourceArn: input.source.eventSourceArn } : {}),
      topic: record.topic,
      partition: record.partition,
      offset: record.offset,
      timestamp: record.timestamp,
      timestampType: record.timestampType,
    },
    record: { key: record.key ?? null, value: record.value ?? null, headers: record.headers, truncated: false },
    error: {
      kind: input.kind,
      // The name of what went wrong, not of the wrapper that adds the route and the coordinates to the message.
      name: errorName(input.error instanceof RecordProcessingError ? input.error.cause : input.error),
      message: shorten(message, MAX_ERROR_MESSAGE),
    },
    attempts: input.attempts,
    firstFailedAt: input.firstFailedAt.toISOString(),
    deadLetteredAt: now.toISOString(),
  };
};

/** SQS counts each attribute's name, type and value towards the message size. */
export const messageAttributes = (envelope: DeadLetterEnvelope) => ({
  route: { DataType: 'String', StringValue: envelope.route },
  topic: { DataType: 'String', StringValue: envelope.source.topic },
  errorKind: { DataType: 'String', StringValue: envelope.error.kind },
});

export const messageBytes = (body: string, envelope: DeadLetterEnvelope): number => {
  let bytes = Buffer.byteLength(body);
  for (const [name, attribute] of Object.entries(messageAttributes(envelope))) {
    bytes += Buffer.byteLength(name) + Buffer.byteLength(attribute.DataType) + Buffer.byteLength(attribute.StringValue);
  }
  return bytes;
};

/**
 * The body to send, within `maxBytes`. An oversized record first loses its value, then its
 * headers; the coordinates and the key always stay, so the record can be read again from Kafka.
 */
export const fitEnvelope = (
  envelope: DeadLetterEnvelope,
  maxBytes: number,
): { body: string; bytes: number; envelope: DeadLetterEnvelope } => {
  const candidates: DeadLetterEnvelope[] = [
    envelope,
    { ...envelope, record: { ...envelope.record, value: null, truncated: true } },
    { ...envelope, record: { ...envelope.record, value: null, headers: [], truncated: true } },
    // Last resort: the coordinates still name the record, and a truncated envelope is re-read from Kafka on replay.
    {
      ...envelope,
      record: { ...envelope.record, key: null, value: null, headers: [], truncated: true },
      error: { ...envelope.error, message: shorten(envelope.error.message, LAST_RESORT_ERROR_MESSAGE) },
    },
  ];
  for (const candidate of candidates) {
    const body = JSON.stringify(candidate);
    const bytes = messageBytes(body, candidate);
    if (bytes <= maxBytes) return { body, bytes, envelope: candidate };
  }
  throw new DeadLetterError(
    `dead letter for ${envelope.source.topic}-${envelope.source.partition}@${envelope.source.offset} exceeds ${maxBytes} bytes even without key, value and headers`,
  );
};
