import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { withOverride } from '../../../functions/runtime/classify.ts';
import { type KafkaRecord, rawBytes } from '../../../functions/runtime/decode.ts';
import { BatchFailedError, InvalidEventError, TransientError } from '../../../functions/runtime/errors.ts';
import { BatchProcessor, type ProcessFn, type RouteDefinition } from '../../../functions/runtime/processor.ts';
import { RouteSettings, type RouteSettingsInput } from '../../../functions/runtime/settings.ts';
import { lambdaContext, mskEvent, type RecordSpec } from '../../helpers/events.ts';
import { localPorts } from '../../helpers/runtime.ts';

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../../fixtures/${name}`, import.meta.url), 'utf8'));

const Value = z.object({ id: z.string(), n: z.number().optional() });
type Value = z.infer<typeof Value>;

const setup = <V = Value>(
  process: ProcessFn<V, string | null>,
  options: {
    settings?: RouteSettingsInput;
    value?: RouteDefinition<V, string | null>['value'];
    tombstones?: 'skip' | 'process';
    random?: () => number;
  } = {},
) => {
  const processor = new BatchProcessor<V, string | null>({
    route: 'test',
    value: (options.value ?? Value) as RouteDefinition<V, string | null>['value'],
    classify: withOverride(),
    tombstones: options.tombstones ?? 'skip',
    work: { mode: 'process', process },
  });
  const ports = localPorts('test');
  const settings = RouteSettings.parse({
    retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5, maxRecordAgeSeconds: 3600 },
    ...options.settings,
  });
  const run = (records: RecordSpec[] | object, timeoutMs = 30_000) =>
    ports
      .deps(settings, options.random ? { random: options.random } : {})
      .then((deps) =>
        processor.run(Array.isArray(records) ? mskEvent(records) : records, lambdaContext(timeoutMs), deps),
      );
  return { run, ...ports };
};

describe('decoding', () => {
  test.each(['msk-event.json', 'self-managed-event.json'])('decodes the documented %s', async (name) => {
    const seen: KafkaRecord<Buffer, string | null>[] = [];
    const { run } = setup<Buffer>(async (r) => void seen.push(r), { value: rawBytes });
    const result = await run(fixture(name));
    expect(result.error).toBeUndefined();
    expect(seen).toHaveLength(1);
    const [record] = seen;
    expect(record?.topic).toBe('mytopic');
    expect(record?.offset).toBe(15);
    expect(record?.key).toBe('recordKey');
    expect(record?.value.toString()).toBe('{"key":"value"}');
    expect(record?.headers.get('headerKey')).toBe('headerValue');
    expect(record?.timestampType).toBe('CREATE_TIME');
  });

  test("header bytes arrive as Java's signed bytes, as the real event source mapping sends them", async () => {
    const seen: KafkaRecord<Buffer, string | null>[] = [];
    const { run } = setup<Buffer>(async (r) => void seen.push(r), { value: rawBytes });
    const result = await run(fixture('msk-event-signed-headers.json'));
    expect(result.error).toBeUndefined();
    expect(seen.map((r) => r.offset)).toEqual([15, 16]);
    const headers = seen[1]?.headers;
    expect(headers?.get('test-header')).toBe('hello-world-ë');
    // A binary tracing header stays bytes, each normalised with & 0xff.
    const pathway = headers?.getAll('dd-pathway-ctx')[0] as Buffer;
    expect(Buffer.isBuffer(pathway)).toBe(true);
    expect([...pathway.subarray(6, 8)]).toEqual([101, 0xf5]);
  });

  test('the fixture value decodes as JSON through a zod schema', async () => {
    const seen: unknown[] = [];
    const { run } = setup(async (r) => void seen.push(r.value), { value: z.object({ key: z.string() }) as never });
    await run(fixture('msk-event.json'));
    expect(seen).toEqual([{ key: 'value' }]);
  });

  test('tombstones are skipped and counted by default, and handed over when the route asks', async () => {
    const seen: unknown[] = [];
    const skipping = setup(async (r) => void seen.push(r.value));
    const result = await skipping.run([
      { offset: 1, value: null },
      { offset: 2, value: { id: 'a' } },
    ]);
    expect(result.summary.tombstones).toBe(1);
    expect(seen).toEqual([{ id: 'a' }]);

    const taking: unknown[] = [];
    const processing = setup(async (r) => void taking.push(r.value), { tombstones: 'process' });
    await processing.run([{ offset: 1, value: null }]);
    expect(taking).toEqual([null]);
  });

  test('a null key, LOG_APPEND_TIME, repeated and non-UTF-8 headers', async () => {
    const seen: KafkaRecord<Value, string | null>[] = [];
    const { run } = setup(async (r) => void seen.push(r));
    const binary = Buffer.from([0xff, 0xfe, 0x00, 0x80]);
    await run([
      {
        offset: 7,
        key: null,
        timestampType: 'LOG_APPEND_TIME',
        value: { id: 'x' },
        headers: [
          ['trace', 'one'],
          ['trace', 'two'],
          ['bin', binary],
        ],
      },
    ]);
    const [record] = seen;
    expect(record?.key).toBeNull();
    expect(record?.timestampType).toBe('LOG_APPEND_TIME');
    expect(record?.headers.getAll('trace')).toEqual(['one', 'two']);
    expect(record?.headers.get('trace')).toBe('one');
    const raw = record?.headers.getAll('bin')[0];
    expect(Buffer.isBuffer(raw)).toBe(true);
    expect(Buffer.compare(raw as Buffer, binary)).toBe(0);
  });

  test.each([
    ['invalid base64', { rawValue: '***not-base64***' }, /DecodeError: value is not valid base64/],
    ['invalid JSON', { value: Buffer.from('{"id":') }, /DecodeError: value is not valid JSON/],
    ['a schema violation', { value: { id: 42 } }, /ValidationError: value fails its schema: id:/],
  ])('%s is dead-lettered with the route, coordinates and reason', async (_name, spec, message) => {
    const { run, letters } = setup(async () => {});
    const result = await run([
      { offset: 3, partition: 2, ...spec },
      { offset: 4, partition: 2, value: { id: 'ok' } },
    ]);
    expect(result.error).toBeUndefined();
    expect(result.summary.processed).toBe(1);
    const sent = await letters();
    expect(sent).toHaveLength(1);
    const [letter] = sent;
    expect(letter?.error.kind).toBe('permanent');
    expect(letter?.error.message).toMatch(/^RecordProcessingError: route test: orders-2@3: permanent: /);
    expect(letter?.error.message).toMatch(message);
  });

  test('a value of several MB decodes', async () => {
    const big = 'x'.repeat(6 * 1024 * 1024);
    let length = 0;
    const { run } = setup(async (r) => {
      length = r.value.id.length;
    });
    await run([{ offset: 1, value: { id: big } }]);
    expect(length).toBe(big.length);
  });

  test('an event that is not a Kafka event is refused as a whole', async () => {
    const { run } = setup(async () => {});
    await expect(run({ eventSource: 'aws:sqs', Records: [] })).rejects.toBeInstanceOf(InvalidEventError);
  });
});

describe('ordering and parallelism', () => {
  test('records of one partition never overlap; partitions do', async () => {
    const active = new Map<number, number>();
    let maxPartitionsAtOnce = 0;
    const order = new Map<number, number[]>();
    const { run } = setup(async (r) => {
      const busy = active.get(r.partition) ?? 0;
      expect(busy).toBe(0);
      active.set(r.partition, busy + 1);
      maxPartitionsAtOnce = Math.max(maxPartitionsAtOnce, [...active.values()].filter((v) => v > 0).length);
      await new Promise((resolve) => setTimeout(resolve, 2 + Math.random() * 3));
      order.set(r.partition, [...(order.get(r.partition) ?? []), r.offset]);
      active.set(r.partition, busy);
    });
    const records: RecordSpec[] = [];
    for (let partition = 0; partition < 4; partition++) {
      // Offsets arrive shuffled within a partition; processing must still follow them.
      const offsets = Array.from({ length: 15 }, (_, i) => i + 100).sort(() => Math.random() - 0.5);
      for (const offset of offsets) records.push({ partition, offset, value: { id: `${partition}-${offset}` } });
    }
    const result = await run(records);
    expect(result.summary.processed).toBe(60);
    expect(maxPartitionsAtOnce).toBeGreaterThan(1);
    for (const offsets of order.values()) expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
  });

  test('partition concurrency is bounded', async () => {
    let active = 0;
    let peak = 0;
    const { run } = setup(
      async () => {
        active += 1;
        peak = Math.max(peak, active);
        await new Promise((resolve) => setTimeout(resolve, 5));
        active -= 1;
      },
      { settings: { partitionConcurrency: 2 } },
    );
    await run(Array.from({ length: 6 }, (_, partition) => ({ partition, offset: 1, value: { id: `${partition}` } })));
    expect(peak).toBe(2);
  });
});

describe('retry', () => {
  test('a transient failure followed by success is retried with growing delays', async () => {
    const calls: number[] = [];
    const { run, item } = setup(
      async () => {
        calls.push(Date.now());
        if (calls.length < 4) throw new TransientError('throttled');
      },
      {
        settings: { retry: { maxAttempts: 5, baseDelayMs: 40, maxDelayMs: 1_000, maxRecordAgeSeconds: 0 } },
        // Full jitter draws each delay from [0, ceiling]; the ceiling doubles. Pin the draw at its top.
        random: () => 0.999,
      },
    );
    const result = await run([{ offset: 1, value: { id: 'a' } }]);
    expect(result.error).toBeUndefined();
    expect(result.summary.retried).toBe(3);
    const gaps = calls.slice(1).map((t, i) => t - (calls[i] as number));
    expect(gaps[0]).toBeGreaterThanOrEqual(35);
    expect(gaps[1]).toBeGreaterThanOrEqual(75);
    expect(gaps[2]).toBeGreaterThanOrEqual(155);
    expect(await item('orders-0@1')).toMatchObject({ status: { S: 'COMPLETED' }, attempts: { N: '4' } });
  });

  test('retries stop before the time budget runs out', async () => {
    let calls = 0;
    const { run, item } = setup(
      async () => {
        calls += 1;
        throw new TransientError('still down');
      },
      { settings: { retry: { maxAttempts: 50, baseDelayMs: 400, maxDelayMs: 400, maxRecordAgeSeconds: 0 } } },
    );
    const started = Date.now();
    // 2.5 s of budget less the 1 s safety margin leaves room for a few 0–400 ms waits, not 50.
    const result = await run([{ offset: 1, value: { id: 'a' } }], 2_500);
    expect(Date.now() - started).toBeLessThan(1_600);
    expect(calls).toBeGreaterThan(1);
    expect(calls).toBeLessThan(50);
    expect(result.error).toBeInstanceOf(BatchFailedError);
    expect(result.error?.message).toMatch(/route test: orders-0@1: transient: TransientError: still down/);
    // The claim is released with the attempts it really made, so a redelivery proceeds at once.
    expect(await item('orders-0@1')).toMatchObject({
      status: { S: 'IN_PROGRESS' },
      leaseUntil: { N: '0' },
      attempts: { N: String(calls) },
    });
  });

  test('permanent errors are not retried', async () => {
    let calls = 0;
    const { run, letters } = setup(async () => {
      calls += 1;
      throw new TypeError('bug in the route');
    });
    const result = await run([{ offset: 1, value: { id: 'a' } }]);
    expect(calls).toBe(1);
    expect(result.summary.retried).toBe(0);
    expect((await letters())[0]?.error).toMatchObject({ kind: 'permanent', name: 'TypeError' });
  });

  test('a failed partition stops there, later records wait, other partitions go on', async () => {
    const seen: string[] = [];
    const { run, item } = setup(async (r) => {
      if (r.partition === 0 && r.offset === 2) throw new TransientError('down');
      seen.push(`${r.partition}@${r.offset}`);
    });
    const result = await run([
      { partition: 0, offset: 1, value: { id: 'a' } },
      { partition: 0, offset: 2, value: { id: 'b' } },
      { partition: 0, offset: 3, value: { id: 'c' } },
      { partition: 1, offset: 1, value: { id: 'd' } },
    ]);
    expect(seen.sort()).toEqual(['0@1', '1@1']);
    expect(result.error?.failures.map((f) => f.coordinates.offset)).toEqual([2]);
    // The claim made ahead for offset 3 is given back without counting an attempt.
    expect(await item('orders-0@3')).toMatchObject({ attempts: { N: '0' }, leaseUntil: { N: '0' } });
  });

  test('provisioned mode reports the first failed offset of each partition instead of throwing', async () => {
    const { run } = setup(
      async (r) => {
        if (r.offset >= 5) throw new TransientError('down');
      },
      { settings: { partialBatchResponse: true } },
    );
    const result = await run([
      { partition: 0, offset: 4, value: { id: 'a' } },
      { partition: 0, offset: 5, value: { id: 'b' } },
      { partition: 0, offset: 6, value: { id: 'c' } },
      { partition: 3, offset: 9, value: { id: 'd' } },
    ]);
    expect(result.error).toBeUndefined();
    expect(result.response).toEqual({
      batchItemFailures: [
        { itemIdentifier: { partition: 'orders-0', offset: 5 } },
        { itemIdentifier: { partition: 'orders-3', offset: 9 } },
      ],
    });
    expect(result.summary.batchItemFailures).toBe(2);
  });
});
