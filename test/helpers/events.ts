import type { KafkaEventInput } from '../../functions/runtime/event.ts';

/** Builds Kafka events in the shape the Lambda event source mapping sends. */
export type RecordSpec = {
  topic?: string;
  partition?: number;
  offset: number;
  timestamp?: number;
  timestampType?: 'CREATE_TIME' | 'LOG_APPEND_TIME';
  key?: string | Buffer | null;
  /** An object is JSON-encoded; a Buffer is sent as is; null is a tombstone. */
  value?: unknown;
  headers?: Array<[string, string | Buffer | number[]]>;
  /** Wire fields as-is, for malformed input. */
  rawKey?: string | null;
  rawValue?: string | null;
};

const toBase64 = (value: unknown): string | null => {
  if (value === null) return null;
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (typeof value === 'string') return Buffer.from(value).toString('base64');
  return Buffer.from(JSON.stringify(value)).toString('base64');
};

export const wireRecord = (spec: RecordSpec) => {
  const topic = spec.topic ?? 'orders';
  const partition = spec.partition ?? 0;
  return {
    topic,
    partition,
    offset: spec.offset,
    timestamp: spec.timestamp ?? Date.now(),
    timestampType: spec.timestampType ?? 'CREATE_TIME',
    key: spec.rawKey !== undefined ? spec.rawKey : spec.key === undefined ? null : toBase64(spec.key),
    value: spec.rawValue !== undefined ? spec.rawValue : toBase64(spec.value === undefined ? {} : spec.value),
    headers: (spec.headers ?? []).map(([name, v]) => ({
      [name]: Array.isArray(v) ? v : [...(Buffer.isBuffer(v) ? v : Buffer.from(v))],
    })),
  };
};

export const mskEvent = (records: RecordSpec[]): KafkaEventInput => {
  const grouped: Record<string, ReturnType<typeof wireRecord>[]> = {};
  for (const spec of records) {
    const wire = wireRecord(spec);
    const id = `${wire.topic}-${wire.partition}`;
    grouped[id] ??= [];
    grouped[id].push(wire);
  }
  return {
    eventSource: 'aws:kafka',
    eventSourceArn: 'arn:aws:kafka:us-east-1:123456789012:cluster/demo/abcd1234-abcd-cafe-abab-9876543210ab-4',
    bootstrapServers: 'b-1.demo.kafka.us-east-1.amazonaws.com:9092',
    records: grouped,
  };
};

let invocations = 0;
/** A Lambda-like context with a real deadline. */
export const lambdaContext = (timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs;
  invocations += 1;
  return {
    awsRequestId: `test-request-${process.pid}-${invocations}-${Math.random().toString(36).slice(2, 8)}`,
    functionName: 'test',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:test',
    memoryLimitInMB: '256',
    logGroupName: '/aws/lambda/test',
    logStreamName: 'test',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
};
