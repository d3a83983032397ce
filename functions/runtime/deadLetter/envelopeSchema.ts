import { z } from 'zod';
import { WireHeader, WireRecord } from '../event.ts';

// The schema lives apart from the builder: the handler only builds envelopes (it needs the type, not the
// schema), so a deployed function never pays for constructing it at cold start. `replay` parses with it.

/** The SQS message body of a dead letter (DESIGN §7). The record stays in wire form for a byte-exact replay. */
export const DeadLetterEnvelope = z.object({
  version: z.literal(1),
  route: z.string(),
  idempotencyKey: z.string(),
  source: z.object({
    eventSource: z.enum(['aws:kafka', 'SelfManagedKafka']),
    eventSourceArn: z.string().optional(),
    topic: z.string(),
    partition: z.number().int(),
    offset: z.number().int(),
    timestamp: z.number(),
    timestampType: z.enum(['CREATE_TIME', 'LOG_APPEND_TIME', 'NO_TIMESTAMP_TYPE']),
  }),
  record: z.object({
    key: z.string().nullable(),
    value: z.string().nullable(),
    headers: z.array(WireHeader),
    truncated: z.boolean(),
    /**
     * What the event source mapping's registry integration said of the key and the value (`{ dataFormat,
     * schemaId }`), when the record had it: with eventRecordFormat SOURCE the bytes above lost their registry
     * framing and only this names their schema. Optional, so envelopes written before it still parse (an addition
     * to DESIGN §7).
     */
    keySchemaMetadata: WireRecord.shape.keySchemaMetadata,
    valueSchemaMetadata: WireRecord.shape.valueSchemaMetadata,
  }),
  error: z.object({
    kind: z.enum(['permanent', 'transient', 'exhausted', 'conflict']),
    name: z.string(),
    message: z.string(),
  }),
  /** Only for `conflict`: the record that holds the key, and the fingerprint fields whose values differ. */
  conflict: z.object({ holder: z.string().optional(), fields: z.array(z.string()).optional() }).optional(),
  /**
   * Only with a retry queue (`retry.park`): on a message in the retry queue, the stage it waits for; on an
   * `exhausted` dead letter, its last stage. `history` holds every failed stage (an addition to DESIGN §7).
   */
  parked: z
    .object({
      stage: z.number().int(),
      history: z.array(
        z.object({
          stage: z.number().int(),
          at: z.number(),
          kind: z.enum(['transient', 'temporary']),
          name: z.string(),
          message: z.string(),
          attempts: z.number().int(),
        }),
      ),
    })
    .optional(),
  attempts: z.number().int(),
  firstFailedAt: z.string(),
  deadLetteredAt: z.string(),
});
export type DeadLetterEnvelope = z.infer<typeof DeadLetterEnvelope>;
