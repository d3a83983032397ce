import { SQSClient } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { DeadLetterEnvelope } from '../../../../functions/runtime/deadLetter/envelopeSchema.ts';
import { BusinessRuleError, TransientError } from '../../../../functions/runtime/errors.ts';
import { invocationSummaryOf, kafkaHandler } from '../../../../functions/runtime/kafkaHandler.ts';
import type { RouteSettingsInput } from '../../../../functions/runtime/settings.ts';
import { drainQueue, getItem, routeEnvironment, uniqueName } from '../../../helpers/aws.ts';
import { lambdaContext, mskEvent, type RecordSpec } from '../../../helpers/events.ts';

const Value = z.object({ id: z.string(), pad: z.string().optional() });
let table: string;
let dlqUrl: string;

beforeAll(async () => {
  ({ table, dlqUrl } = await routeEnvironment('dlq'));
});
beforeEach(async () => {
  await drainQueue(dlqUrl);
});

const route = (options: { settings?: RouteSettingsInput; sqs?: SQSClient; name?: string } = {}) => {
  const seen: string[] = [];
  /** Every time `process` ran, by `partition@offset`, failures included. */
  const calls = new Map<string, number>();
  const name = options.name ?? uniqueName('dlq');
  const handler = kafkaHandler({
    route: name,
    value: Value,
    settings: {
      retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 10, maxRecordAgeSeconds: 0 },
      // Per-record decisions, whose sends go out together at the end (WatermarkStore.test.ts has the watermark's,
      // sent before the partition moves on).
      idempotency: { strategy: 'key' },
      ...options.settings,
    },
    ...(options.sqs ? { clients: { sqs: options.sqs } } : {}),
    process: async (record) => {
      const at = `${record.partition}@${record.offset}`;
      calls.set(at, (calls.get(at) ?? 0) + 1);
      if (record.value.id === 'rule') throw new BusinessRuleError('refunds exceed the order total');
      if (record.value.id === 'verbose') throw new BusinessRuleError(`refund refused: ${'reason '.repeat(1_000)}`);
      if (record.value.id === 'flaky') throw new TransientError('downstream timed out');
      seen.push(`${record.partition}@${record.offset}`);
    },
  });
  const invoke = async (records: RecordSpec[]) => {
    const context = lambdaContext();
    try {
      const response = await handler(mskEvent(records), context);
      return { response, error: undefined, summary: invocationSummaryOf(context) };
    } catch (error) {
      return { response: undefined, error: error as Error, summary: invocationSummaryOf(context) };
    }
  };
  return { name, invoke, seen, calls };
};

const letters = async () =>
  (await drainQueue(dlqUrl)).map((m) => ({
    envelope: DeadLetterEnvelope.parse(JSON.parse(m.Body ?? '')),
    attributes: m.MessageAttributes,
  }));

describe('dead-lettering to ElasticMQ', () => {
  test('each kind of poison lands with a complete envelope; neighbours run in order', async () => {
    const r = route();
    const result = await r.invoke([
      { offset: 10, value: { id: 'a' } },
      { offset: 11, value: Buffer.from('{"id": "broken'), headers: [['trace', 'abc']] },
      { offset: 12, value: { id: 99 } },
      { offset: 13, value: { id: 'rule' } },
      { offset: 14, value: { id: 'flaky' } },
      { offset: 15, key: 'k-15', value: { id: 'b' } },
    ]);
    expect(result.error).toBeUndefined();
    expect(r.seen).toEqual(['0@10', '0@15']);
    const received = (await letters()).sort((a, b) => a.envelope.source.offset - b.envelope.source.offset);
    expect(received.map((l) => [l.envelope.source.offset, l.envelope.error.kind, l.envelope.error.name])).toEqual([
      [11, 'permanent', 'DecodeError'],
      [12, 'permanent', 'ValidationError'],
      [13, 'permanent', 'BusinessRuleError'],
      [14, 'exhausted', 'TransientError'],
    ]);
    const [badJson] = received;
    expect(badJson?.envelope).toMatchObject({
      version: 1,
      route: r.name,
      idempotencyKey: 'orders-0@11',
      source: { eventSource: 'aws:kafka', topic: 'orders', partition: 0, offset: 11, timestampType: 'CREATE_TIME' },
      record: {
        value: Buffer.from('{"id": "broken').toString('base64'),
        headers: [{ trace: [97, 98, 99] }],
        truncated: false,
      },
      attempts: 1,
    });
    expect(badJson?.envelope.source.eventSourceArn).toMatch(/^arn:aws:kafka:/);
    expect(Date.parse(badJson?.envelope.deadLetteredAt ?? '')).not.toBeNaN();
    expect(badJson?.attributes).toMatchObject({
      route: { StringValue: r.name },
      topic: { StringValue: 'orders' },
      errorKind: { StringValue: 'permanent' },
    });
    expect(received[3]?.envelope.attempts).toBe(2);
    expect(received[3]?.envelope.error.message).toMatch(
      /route .*: orders-0@14: exhausted: TransientError: downstream timed out/,
    );
    expect(await getItem(table, { pk: { S: `${r.name}#orders-0@13` } })).toMatchObject({
      status: { S: 'DEAD_LETTERED' },
    });
  });

  test('an oversized record loses its value but keeps its coordinates and key', async () => {
    const r = route({ settings: { deadLetter: { maxMessageBytes: 8 * 1024 } } });
    await r.invoke([{ partition: 2, offset: 77, key: 'big-one', value: { id: 'rule', pad: 'x'.repeat(20_000) } }]);
    const [letter] = await letters();
    expect(letter?.envelope.record).toMatchObject({
      value: null,
      truncated: true,
      key: Buffer.from('big-one').toString('base64'),
    });
    expect(letter?.envelope.source).toMatchObject({ topic: 'orders', partition: 2, offset: 77 });
  });

  test('a dead letter too large even without its value drops its key and shortens its error, and still lands', async () => {
    const r = route({ settings: { deadLetter: { maxMessageBytes: 1024 } } });
    const result = await r.invoke([
      { partition: 1, offset: 5, key: 'k'.repeat(2_000), value: { id: 'verbose', pad: 'x'.repeat(5_000) } },
      { partition: 1, offset: 6, value: { id: 'after' } },
    ]);
    expect(result.error).toBeUndefined();
    expect(result.summary).toMatchObject({ deadLettered: 1, processed: 1 });
    const [letter] = await letters();
    expect(letter?.envelope.record).toMatchObject({ key: null, value: null, headers: [], truncated: true });
    expect(letter?.envelope.source).toMatchObject({ topic: 'orders', partition: 1, offset: 5 });
    expect(letter?.envelope.error.message).toMatch(/^.{1,256}…$/s);
    expect(await getItem(table, { pk: { S: `${r.name}#orders-1@5` } })).toMatchObject({
      status: { S: 'DEAD_LETTERED' },
    });
  });

  test('many large dead letters are split into batches by bytes and all arrive', async () => {
    const r = route();
    const specs = Array.from({ length: 25 }, (_, i) => ({ offset: i, value: { id: 'rule', pad: 'y'.repeat(40_000) } }));
    const result = await r.invoke(specs);
    expect(result.summary?.deadLettered).toBe(25);
    const received = await letters();
    expect(received.map((l) => l.envelope.source.offset).sort((a, b) => a - b)).toEqual(specs.map((s) => s.offset));
    expect(received.every((l) => !l.envelope.record.truncated)).toBe(true);
  });

  test('with the DLQ unreachable the decision is durable: the redelivery sends the letters and never runs the records again', async () => {
    const name = uniqueName('dlq-down');
    const down = route({ name, sqs: new SQSClient({ endpoint: 'http://127.0.0.1:9', maxAttempts: 1 }) });
    const batch: RecordSpec[] = [
      { offset: 1, value: { id: 'rule' } },
      { offset: 2, value: { id: 'ok' } },
      { offset: 3, value: Buffer.from('nope') },
    ];
    const failed = await down.invoke(batch);
    expect(failed.error?.message).toMatch(/orders-0@1: transient: DeadLetterError: dead-letter queue unreachable/);
    for (const offset of [1, 3]) {
      expect(await getItem(table, { pk: { S: `${name}#orders-0@${offset}` } })).toMatchObject({
        status: { S: 'DEAD_LETTERED' },
        letterSent: { BOOL: false },
      });
    }
    const up = route({ name });
    const retried = await up.invoke(batch);
    expect(retried.error).toBeUndefined();
    expect(retried.summary).toMatchObject({ deadLettered: 2, processed: 0, duplicates: 3 });
    // The rejected record ran once, before the outage: it is never run again after later records were applied.
    expect(down.calls.get('0@1')).toBe(1);
    expect(up.calls.get('0@1')).toBeUndefined();
    const again = await up.invoke(batch);
    expect(again.summary).toMatchObject({ deadLettered: 0, duplicates: 3 });
    expect((await letters()).map((l) => l.envelope.source.offset).sort()).toEqual([1, 3]);
    expect(await getItem(table, { pk: { S: `${name}#orders-0@1` } })).toMatchObject({ letterSent: { BOOL: true } });
  });

  test('provisioned mode returns the documented partial batch response', async () => {
    const r = route({
      settings: {
        partialBatchResponse: true,
        retry: { maxAttempts: 5, baseDelayMs: 5, maxDelayMs: 5, maxRecordAgeSeconds: 3600 },
      },
    });
    const result = await r.invoke([
      { partition: 0, offset: 1, value: { id: 'a' } },
      { partition: 0, offset: 2, value: { id: 'flaky' } },
      { partition: 0, offset: 3, value: { id: 'b' } },
      { partition: 1, offset: 8, value: { id: 'c' } },
    ]);
    expect(result.error).toBeUndefined();
    expect(result.response).toEqual({ batchItemFailures: [{ itemIdentifier: { partition: 'orders-0', offset: 2 } }] });
    expect(r.seen.sort()).toEqual(['0@1', '1@8']);
  });
});
