import { DeadLetterError, describeError, type ErrorKind, type RecordProcessingError } from '../errors.ts';
import type { WireRecord } from '../event.ts';
import type { Letter } from '../idempotency/IdempotencyStore.ts';
import type { DeadLetterEnvelope } from './envelopeSchema.ts';

export type { DeadLetterEnvelope } from './envelopeSchema.ts';

export type DeadLetterSource = { eventSource: 'aws:kafka' | 'SelfManagedKafka'; eventSourceArn?: string };

export type DeadLetterInput = {
  route: string;
  idempotencyKey: string;
  source: DeadLetterSource;
  record: WireRecord;
  letter: Letter;
};

const MAX_ERROR_MESSAGE = 2_048;
/** What an envelope that fits nothing else keeps of the error message; with the rest it stays far below 1 KiB. */
const LAST_RESORT_ERROR_MESSAGE = 256;
/** What a last-resort envelope keeps of an idempotency key (a business key may be up to any length). */
const LAST_RESORT_KEY = 512;

const shorten = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max)}…` : text);

/** The letter a failed record leaves: what its envelope says and its DEAD_LETTERED item remembers. */
export const letterFor = (
  kind: ErrorKind,
  error: RecordProcessingError,
  attempts: number,
  firstFailedAt: number,
): Letter => ({
  kind,
  // The name of what went wrong, not of the wrapper that adds the route and the coordinates to the message.
  name: error.cause instanceof Error ? error.cause.name : 'Error',
  message: shorten(describeError(error), MAX_ERROR_MESSAGE),
  attempts,
  firstFailedAt,
});

export const buildEnvelope = (input: DeadLetterInput, now: Date = new Date()): DeadLetterEnvelope => {
  const { record, letter } = input;
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
    record: {
      key: record.key ?? null,
      value: record.value ?? null,
      headers: record.headers,
      truncated: false,
      // SOURCE-format bytes name their schema only here: without it a replay could neither decode nor re-frame them.
      // A few dozen bytes, kept by every truncated form below (they spread the record).
      ...(record.keySchemaMetadata ? { keySchemaMetadata: { ...record.keySchemaMetadata } } : {}),
      ...(record.valueSchemaMetadata ? { valueSchemaMetadata: { ...record.valueSchemaMetadata } } : {}),
    },
    error: { kind: letter.kind, name: letter.name, message: letter.message },
    ...(letter.conflict
      ? { conflict: { ...letter.conflict, fields: letter.conflict.fields && [...letter.conflict.fields] } }
      : {}),
    ...(letter.parked
      ? { parked: { stage: letter.parked.stage, history: letter.parked.history.map((entry) => ({ ...entry })) } }
      : {}),
    attempts: letter.attempts,
    firstFailedAt: new Date(letter.firstFailedAt).toISOString(),
    deadLetteredAt: now.toISOString(),
  };
};

/** What SQS refuses in a message: anything outside #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF. */
const SQS_REFUSED = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;
const escapeChar = (char: string): string => `\\u${(char.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`;

/**
 * Text SQS accepts. In a JSON body the escape is JSON's own, so the body parses back to the same string (the
 * characters JSON.stringify leaves raw, U+FFFE and U+FFFF, are the ones that need it); an attribute shows it as text.
 */
const sqsSafe = (text: string): string => text.replace(SQS_REFUSED, escapeChar);

/** SQS counts each attribute's name, type and value towards the message size. */
export const messageAttributes = (envelope: DeadLetterEnvelope) => ({
  route: { DataType: 'String', StringValue: sqsSafe(envelope.route) },
  topic: { DataType: 'String', StringValue: sqsSafe(envelope.source.topic) },
  errorKind: { DataType: 'String', StringValue: envelope.error.kind },
});

export const messageBytes = (body: string, envelope: DeadLetterEnvelope): number => {
  let bytes = Buffer.byteLength(body);
  for (const [name, attribute] of Object.entries(messageAttributes(envelope))) {
    bytes += Buffer.byteLength(name) + Buffer.byteLength(attribute.DataType) + Buffer.byteLength(attribute.StringValue);
  }
  return bytes;
};

/** The smallest envelope that still names the record: its coordinates, a short key and a short error. */
const lastResortEnvelope = (envelope: DeadLetterEnvelope): DeadLetterEnvelope => ({
  ...envelope,
  idempotencyKey: shorten(envelope.idempotencyKey, LAST_RESORT_KEY),
  record: { ...envelope.record, key: null, value: null, headers: [], truncated: true },
  error: { ...envelope.error, message: shorten(envelope.error.message, LAST_RESORT_ERROR_MESSAGE) },
});

export type FittedEnvelope = { body: string; bytes: number; envelope: DeadLetterEnvelope };

const fitted = (envelope: DeadLetterEnvelope): FittedEnvelope => {
  const body = sqsSafe(JSON.stringify(envelope));
  return { body, bytes: messageBytes(body, envelope), envelope };
};

/**
 * The body to send, within `maxBytes`. An oversized record first loses its value, then its
 * headers; the coordinates and the key always stay, so the record can be read again from Kafka.
 */
export const fitEnvelope = (envelope: DeadLetterEnvelope, maxBytes: number): FittedEnvelope => {
  const candidates: DeadLetterEnvelope[] = [
    envelope,
    { ...envelope, record: { ...envelope.record, value: null, truncated: true } },
    { ...envelope, record: { ...envelope.record, value: null, headers: [], truncated: true } },
    // Last resort: the coordinates still name the record, and a truncated envelope is re-read from Kafka on replay.
    lastResortEnvelope(envelope),
  ];
  for (const candidate of candidates) {
    const result = fitted(candidate);
    if (result.bytes <= maxBytes) return result;
  }
  throw new DeadLetterError(
    `dead letter for ${envelope.source.topic}-${envelope.source.partition}@${envelope.source.offset} exceeds ${maxBytes} bytes even without key, value and headers`,
  );
};

/** The last-resort form of a message SQS refused as the sender's fault. */
export const fitLastResort = (envelope: DeadLetterEnvelope): FittedEnvelope => fitted(lastResortEnvelope(envelope));
