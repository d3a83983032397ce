import { z } from 'zod';

/**
 * The event the Lambda Kafka event source mapping sends, for Amazon MSK (`aws:kafka`)
 * and self-managed Kafka (`SelfManagedKafka`). Byte fields stay in wire form here;
 * `decode.ts` turns them into Buffers exactly once per record.
 */

const SchemaMetadata = z.object({ dataFormat: z.string(), schemaId: z.string() });

/**
 * A header is a single-key object holding the value's bytes. The event source mapping serialises Java's signed
 * `byte[]`, so bytes of 0x80 and above arrive as -128..-1; the local tools may send 0..255. Both are accepted, and
 * `Buffer.from` normalises each to `& 0xff` where the bytes are used.
 */
export const WireHeader = z.record(z.string(), z.array(z.number().int().min(-128).max(255)));
export type WireHeader = z.infer<typeof WireHeader>;

export const WireRecord = z.object({
  topic: z.string().min(1),
  partition: z.number().int().min(0),
  offset: z.number().int().min(0),
  timestamp: z.number(),
  timestampType: z.enum(['CREATE_TIME', 'LOG_APPEND_TIME', 'NO_TIMESTAMP_TYPE']),
  key: z.string().nullish(),
  value: z.string().nullish(),
  headers: z.array(WireHeader).default([]),
  keySchemaMetadata: SchemaMetadata.optional(),
  valueSchemaMetadata: SchemaMetadata.optional(),
});
export type WireRecord = z.infer<typeof WireRecord>;

const records = z.record(z.string(), z.array(WireRecord));

export const MskEvent = z.object({
  eventSource: z.literal('aws:kafka'),
  eventSourceArn: z.string(),
  bootstrapServers: z.string().optional(),
  records,
});
export const SelfManagedKafkaEvent = z.object({
  eventSource: z.literal('SelfManagedKafka'),
  eventSourceArn: z.string().optional(),
  bootstrapServers: z.string().optional(),
  records,
});
export const KafkaEvent = z.discriminatedUnion('eventSource', [MskEvent, SelfManagedKafkaEvent]);
export type KafkaEvent = z.infer<typeof KafkaEvent>;
export type KafkaEventInput = z.input<typeof KafkaEvent>;

/** The partial batch response of provisioned-mode Kafka event sources. */
export type KafkaBatchItemFailure = { itemIdentifier: { partition: string; offset: number } };
export type KafkaBatchResponse = { batchItemFailures: KafkaBatchItemFailure[] };

/** The part of an SQS event the retry queue's handler reads: each message's id and body. */
export const SqsEvent = z.object({
  Records: z.array(z.object({ messageId: z.string(), body: z.string(), eventSource: z.literal('aws:sqs') })).min(1),
});
export type SqsEvent = z.infer<typeof SqsEvent>;

/** The partial batch response of SQS event sources (`ReportBatchItemFailures`). */
export type SqsBatchResponse = { batchItemFailures: { itemIdentifier: string }[] };

/** Whether an event comes from an SQS event source, not a Kafka one. */
export const isSqsEvent = (event: unknown): boolean => {
  const records = (event as { Records?: unknown } | null)?.Records;
  return Array.isArray(records) && (records[0] as { eventSource?: unknown } | undefined)?.eventSource === 'aws:sqs';
};
