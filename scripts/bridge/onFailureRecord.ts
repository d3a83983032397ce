// What the Kafka event source mapping sends to an SQS or SNS on-failure destination when it gives up on a batch:
// metadata only, never the records (with-msk-on-failure, kafka-on-failure). The local bridge writes the same
// document to the route's local on-failure queue, so what an operator reads there is what production would hold.
// Pure.
import { randomUUID } from 'node:crypto';
import type { EventSource, LambdaKafkaRecord } from '../lib/kafkaEvents.ts';
import { partitionId } from '../lib/kafkaEvents.ts';

/**
 * The `requestContext.condition` values. The docs show the first two for Kafka; for records past
 * `MaximumRecordAgeInSeconds` they show none, so the bridge uses the stream sources' `RecordAgeExceeded`.
 */
export type OnFailureCondition = 'RetryAttemptsExhausted' | 'MaximumPayloadSizeExceeded' | 'RecordAgeExceeded';

export type OnFailureInput = {
  readonly condition: OnFailureCondition;
  readonly functionArn: string;
  readonly source: EventSource;
  readonly records: readonly LambdaKafkaRecord[];
  /** Invocations the batch had (0 when it never reached the function). */
  readonly invocations: number;
  /** Bytes of the batch as the function would have received it. */
  readonly payloadSize: number;
  readonly now: Date;
};

type RecordsInfo = {
  firstRecordOffset: string;
  lastRecordOffset: string;
  firstRecordTimestamp: string;
  lastRecordTimestamp: string;
};

export const onFailureRecord = (input: OnFailureInput) => {
  const recordsInfo: Record<string, RecordsInfo> = {};
  for (const record of input.records) {
    const id = partitionId(record.topic, record.partition);
    const at = { offset: String(record.offset), timestamp: new Date(record.timestamp).toISOString() };
    const info = recordsInfo[id];
    if (!info) {
      recordsInfo[id] = {
        firstRecordOffset: at.offset,
        lastRecordOffset: at.offset,
        firstRecordTimestamp: at.timestamp,
        lastRecordTimestamp: at.timestamp,
      };
    } else {
      info.lastRecordOffset = at.offset;
      info.lastRecordTimestamp = at.timestamp;
    }
  }
  const invoked = input.invocations > 0;
  return {
    requestContext: {
      requestId: randomUUID(),
      functionArn: input.functionArn,
      condition: input.condition,
      approximateInvokeCount: input.invocations,
    },
    // Null when the batch never reached the function.
    responseContext: {
      statusCode: invoked ? 200 : null,
      executedVersion: invoked ? '$LATEST' : null,
      functionError: invoked ? 'Unhandled' : null,
    },
    version: '1.0',
    timestamp: input.now.toISOString(),
    KafkaBatchInfo: {
      batchSize: input.records.length,
      ...(input.source.kind === 'msk' && { eventSourceArn: input.source.eventSourceArn }),
      bootstrapServers: input.source.bootstrapServers,
      payloadSize: input.payloadSize,
      recordsInfo,
    },
  };
};
export type OnFailureRecord = ReturnType<typeof onFailureRecord>;
