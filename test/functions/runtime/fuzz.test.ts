// Model-based properties of the public handler (`kafkaHandler`, process mode) against DynamoDB Local and ElasticMQ.
//
// 1. Well-formed MSK and self-managed events (several topics and partitions, offsets increasing per partition) whose
//    records mix valid values, invalid JSON, non-UTF-8 bytes, schema violations, bad base64 (keys and values),
//    tombstones, null and absent keys, header bytes in -128..255 (signed, as AWS sends them), copies of the same
//    coordinates within an event, and redeliveries of earlier records to a warm or a cold function. A model predicts
//    every record's outcome, and each delivery is checked record by record against its effects: the records `process`
//    applied (with their decoded key, value and headers), the calls it got (attempt numbers included), and the dead
//    letters read back from the SQS queue. A well-formed event never makes the invocation throw.
// 2. Events that are not Kafka events at all are refused whole, with an InvalidEventError that names the offending
//    path, and leave no effect behind.
import { isUtf8 } from 'node:buffer';
import type { Message } from '@aws-sdk/client-sqs';
import fc from 'fast-check';
import { z } from 'zod';
import { DeadLetterEnvelope } from '../../../functions/runtime/deadLetter/envelopeSchema.ts';
import type { KafkaRecord } from '../../../functions/runtime/decode.ts';
import { BusinessRuleError, InvalidEventError, TransientError } from '../../../functions/runtime/errors.ts';
import { kafkaHandler } from '../../../functions/runtime/kafkaHandler.ts';
import { REPLAY_HEADER } from '../../../functions/runtime/processor.ts';
import { createQueue, createTable, drainQueue, dynamodb, sqs, uniqueName } from '../../helpers/aws.ts';
import { lambdaContext } from '../../helpers/events.ts';

const ROUTE = 'fuzz';
const MAX_ATTEMPTS = 2;
const ARN = 'arn:aws:kafka:us-east-1:123456789012:cluster/fuzz/abcd1234-abcd-cafe-abab-9876543210ab-4';

// ---- the route ----------------------------------------------------------------------------------------------

/** What `process` does with a valid value: apply it, refuse it (business rule), fail once, or always fail (transient). */
const Action = z.enum(['apply', 'reject', 'flaky', 'fail']);
type Action = z.infer<typeof Action>;
const Value = z.object({ id: z.string(), n: z.number().int(), action: Action }).strict();
type Value = z.infer<typeof Value>;

type Applied = {
  coordinates: string;
  key: string | null;
  value: Value;
  timestamp: number;
  timestampType: string;
  headers: Map<string, Array<string | Buffer>>;
  first: Map<string, string | undefined>;
};
type Calls = { applied: Applied[]; calls: Array<{ coordinates: string; attempt: number }>; failedOnce: Set<string> };
let effects: Calls = { applied: [], calls: [], failedOnce: new Set() };

const coordinatesOf = (r: { topic: string; partition: number; offset: number }) =>
  `${r.topic}-${r.partition}@${r.offset}`;

const process_ = async (record: KafkaRecord<Value, string | null>, context: { attempt: number }) => {
  const coordinates = coordinatesOf(record);
  effects.calls.push({ coordinates, attempt: context.attempt });
  const { action } = record.value;
  if (action === 'reject') throw new BusinessRuleError(`fuzz refuses ${coordinates}`);
  if (action === 'fail') throw new TransientError(`downstream unavailable for ${coordinates}`);
  if (action === 'flaky' && !effects.failedOnce.has(coordinates)) {
    effects.failedOnce.add(coordinates);
    throw new TransientError(`downstream hiccup for ${coordinates}`);
  }
  const headers = new Map<string, Array<string | Buffer>>();
  const first = new Map<string, string | undefined>();
  for (const name of record.headers.names()) {
    headers.set(name, [...record.headers.getAll(name)]);
    first.set(name, record.headers.get(name));
  }
  effects.applied.push({
    coordinates,
    key: record.key,
    value: record.value,
    timestamp: record.timestamp,
    timestampType: record.timestampType,
    headers,
    first,
  });
};

/** A new function instance: a cold start, with an empty completed-key cache. */
const newHandler = () =>
  kafkaHandler({
    route: ROUTE,
    value: Value,
    process: process_,
    settings: {
      retry: { maxAttempts: MAX_ATTEMPTS, baseDelayMs: 0, maxDelayMs: 0, maxRecordAgeSeconds: 0 },
      // The model predicts each record from its own action; a breaker opened by the `fail` records would stop the
      // others for reasons outside it (the breaker has its own tests).
      breaker: { enabled: false },
    },
    clients: { dynamodb, sqs },
  });

let dlqUrl: string;
beforeAll(async () => {
  process.env.IDEMPOTENCY_TABLE_NAME = await createTable(uniqueName('fuzz-idempotency'));
  dlqUrl = await createQueue(uniqueName('fuzz-dlq'));
  process.env.DLQ_URL = dlqUrl;
  process.env.LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  delete process.env.BRIDGE_ROUTE_SETTINGS;
});

// ---- generators -----------------------------------------------------------------------------------------------

type KeySpec =
  | { kind: 'absent' }
  | { kind: 'null' }
  | { kind: 'bytes'; bytes: Buffer }
  | { kind: 'bad-base64'; text: string };
type ValueSpec =
  | { kind: 'valid'; value: Value }
  | { kind: 'invalid-json'; bytes: Buffer }
  | { kind: 'not-utf8'; bytes: Buffer }
  | { kind: 'schema'; bytes: Buffer }
  | { kind: 'bad-base64'; text: string }
  | { kind: 'tombstone'; absent: boolean };
type HeaderSpec = { name: string; bytes: number[]; sign: 'signed' | 'unsigned' | 'mixed' };
type RecordSpec = {
  key: KeySpec;
  value: ValueSpec;
  headers: HeaderSpec[];
  ageMs: number;
  timestampType: 'CREATE_TIME' | 'LOG_APPEND_TIME';
  /** Copies of the same coordinates within one event (as a redelivery overlapping a batch could produce). */
  copies: number;
  gap: number;
};
type PartitionSpec = {
  topic: 0 | 1;
  partition: number;
  firstOffset: number;
  records: RecordSpec[];
  /** Per delivery: how far back it starts (a fraction of what was delivered before) and how far it reaches. */
  windows: Array<{ rewind: number; reach: number }>;
};
type Scenario = {
  eventSource: 'aws:kafka' | 'SelfManagedKafka';
  partitions: PartitionSpec[];
  deliveries: Array<{ fresh: boolean }>;
};

/** Characters that make any string invalid (standard, padded) base64, including some SQS refuses raw. */
const NOT_BASE64 = ['!', '%', '*', '#', ' ', 'ë', '\u0000', '\uFFFE', '\uD800'];
const badBase64 = fc
  .tuple(
    fc.string({ unit: 'binary', maxLength: 8 }),
    fc.constantFrom(...NOT_BASE64),
    fc.string({ unit: 'binary', maxLength: 8 }),
  )
  .map(([a, c, b]) => `${a}${c}${b}`);

const parsesAsJson = (bytes: Buffer): boolean => {
  try {
    JSON.parse(bytes.toString('utf8'));
    return true;
  } catch {
    return false;
  }
};

const keySpec: fc.Arbitrary<KeySpec> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ kind: 'absent' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'null' as const }) },
  {
    weight: 4,
    arbitrary: fc
      .oneof(
        fc.string({ unit: 'grapheme', maxLength: 16 }).map((s) => Buffer.from(s)),
        fc.uint8Array({ maxLength: 16 }).map((b) => Buffer.from(b)),
      )
      .map((bytes) => ({ kind: 'bytes' as const, bytes })),
  },
  { weight: 1, arbitrary: badBase64.map((text) => ({ kind: 'bad-base64' as const, text })) },
);

const validValue = fc.record({
  id: fc.string({ unit: 'binary', maxLength: 12 }),
  n: fc.integer(),
  action: fc.constantFrom<Action>('apply', 'apply', 'apply', 'apply', 'flaky', 'reject', 'fail'),
});

const valueSpec: fc.Arbitrary<ValueSpec> = fc.oneof(
  { weight: 12, arbitrary: validValue.map((value) => ({ kind: 'valid' as const, value })) },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc.string({ unit: 'grapheme', maxLength: 20 }),
        fc.jsonValue({ maxDepth: 2 }).map((j) => JSON.stringify(j).slice(0, -1)),
        validValue.map((v) => JSON.stringify(v).slice(0, -1)),
      )
      .map((text) => Buffer.from(text))
      .filter((bytes) => !parsesAsJson(bytes))
      .map((bytes) => ({ kind: 'invalid-json' as const, bytes })),
  },
  {
    weight: 1,
    arbitrary: fc
      .uint8Array({ minLength: 1, maxLength: 24 })
      .map((b) => Buffer.from(b))
      .filter((bytes) => !isUtf8(bytes))
      .map((bytes) => ({ kind: 'not-utf8' as const, bytes })),
  },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc.jsonValue({ maxDepth: 2 }),
        fc.record(
          {
            id: fc.jsonValue({ maxDepth: 1 }),
            n: fc.jsonValue({ maxDepth: 1 }),
            action: fc.jsonValue({ maxDepth: 1 }),
          },
          { requiredKeys: [] },
        ),
        validValue.map((v) => ({ ...v, extra: true })),
        validValue.map((v) => ({ ...v, action: 'explode' })),
        validValue.map((v) => ({ ...v, n: v.n + 0.5 })),
      )
      .map((json) => Buffer.from(JSON.stringify(json)))
      .filter((bytes) => !Value.safeParse(JSON.parse(bytes.toString('utf8'))).success)
      .map((bytes) => ({ kind: 'schema' as const, bytes })),
  },
  { weight: 1, arbitrary: badBase64.map((text) => ({ kind: 'bad-base64' as const, text })) },
  { weight: 2, arbitrary: fc.boolean().map((absent) => ({ kind: 'tombstone' as const, absent })) },
);

const headerSpec: fc.Arbitrary<HeaderSpec> = fc.record({
  name: fc.oneof(
    fc.constantFrom('trace-id', 'content-type', 'ë', 'dup'),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }).filter((n) => n !== REPLAY_HEADER),
  ),
  bytes: fc.oneof<fc.Arbitrary<number[]>[]>(
    fc.constant([...Buffer.from('ë')]),
    fc.array(fc.nat(255), { maxLength: 8 }),
    fc.string({ unit: 'grapheme', maxLength: 6 }).map((s) => [...Buffer.from(s)]),
  ),
  sign: fc.constantFrom('signed', 'signed', 'unsigned', 'mixed'),
});

const recordSpec: fc.Arbitrary<RecordSpec> = fc
  .record({
    key: keySpec,
    value: valueSpec,
    headers: fc.array(headerSpec, { maxLength: 4 }),
    ageMs: fc.nat(10_000_000),
    timestampType: fc.constantFrom('CREATE_TIME', 'LOG_APPEND_TIME'),
    copies: fc.oneof(
      { weight: 6, arbitrary: fc.constant(1) },
      { weight: 1, arbitrary: fc.integer({ min: 2, max: 3 }) },
    ),
    gap: fc.oneof({ weight: 4, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 2, max: 50 }) }),
  })
  // An undecodable key on a tombstone is a case the contract leaves open: keep bad keys to records with values.
  .filter((r) => !(r.key.kind === 'bad-base64' && r.value.kind === 'tombstone'));

// Percentages rather than doubles: they shrink in a few steps, and every step of a shrink is a run against the services.
const fraction = fc.integer({ min: 0, max: 100 }).map((n) => n / 100);
const scenario = (maxDeliveries: number): fc.Arbitrary<Scenario> =>
  fc.integer({ min: 1, max: maxDeliveries }).chain((deliveryCount) =>
    fc.record({
      eventSource: fc.constantFrom('aws:kafka', 'SelfManagedKafka'),
      partitions: fc.uniqueArray(
        fc.record({
          topic: fc.constantFrom<0 | 1>(0, 1),
          partition: fc.nat(3),
          firstOffset: fc.oneof(fc.nat(20), fc.nat(1_000_000_000)),
          records: fc.array(recordSpec, { minLength: 1, maxLength: 12 }),
          windows: fc.array(fc.record({ rewind: fraction, reach: fraction }), {
            minLength: deliveryCount,
            maxLength: deliveryCount,
          }),
        }),
        { minLength: 1, maxLength: 4, selector: (p) => `${p.topic}-${p.partition}` },
      ),
      deliveries: fc.array(fc.record({ fresh: fc.boolean() }), { minLength: deliveryCount, maxLength: deliveryCount }),
    }),
  );

// ---- wire form and the model ------------------------------------------------------------------------------------

type Wire = {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  timestampType: string;
  key?: string | null;
  value?: string | null;
  headers: Array<Record<string, number[]>>;
};

type Expected =
  | { outcome: 'skipped' }
  | { outcome: 'applied'; attempts: number[]; key: string | null; value: Value; headers: HeaderSpec[] }
  | { outcome: 'dead-lettered'; kind: 'permanent' | 'exhausted'; names: string[]; attempts: number[] };

const toWireBytes = (bytes: number[], sign: HeaderSpec['sign']) =>
  bytes.map((b, i) => (b > 127 && (sign === 'signed' || (sign === 'mixed' && i % 2 === 0)) ? b - 256 : b));

const wireOf = (spec: RecordSpec, topic: string, partition: number, offset: number, now: number): Wire => {
  const wire: Wire = {
    topic,
    partition,
    offset,
    timestamp: now - spec.ageMs,
    timestampType: spec.timestampType,
    headers: spec.headers.map((h) => ({ [h.name]: toWireBytes(h.bytes, h.sign) })),
  };
  if (spec.key.kind === 'null') wire.key = null;
  if (spec.key.kind === 'bytes') wire.key = spec.key.bytes.toString('base64');
  if (spec.key.kind === 'bad-base64') wire.key = spec.key.text;
  const v = spec.value;
  if (v.kind === 'valid') wire.value = Buffer.from(JSON.stringify(v.value)).toString('base64');
  if (v.kind === 'invalid-json' || v.kind === 'not-utf8' || v.kind === 'schema')
    wire.value = v.bytes.toString('base64');
  if (v.kind === 'bad-base64') wire.value = v.text;
  if (v.kind === 'tombstone' && !v.absent) wire.value = null;
  return wire;
};

/** The model: what the contract says must become of one record the first time it is delivered. */
const expectedOf = (spec: RecordSpec): Expected => {
  const v = spec.value;
  if (v.kind === 'tombstone') return { outcome: 'skipped' };
  const permanent = (names: string[]) => ({
    outcome: 'dead-lettered' as const,
    kind: 'permanent' as const,
    names,
    attempts: [],
  });
  if (spec.key.kind === 'bad-base64') return permanent(['DecodeError']);
  if (v.kind === 'bad-base64' || v.kind === 'invalid-json') return permanent(['DecodeError']);
  // Bytes that are not UTF-8 may still parse as JSON once decoded lossily; either way they never reach `process`.
  if (v.kind === 'not-utf8') return permanent(['DecodeError', 'ValidationError']);
  if (v.kind === 'schema') return permanent(['ValidationError']);
  const key = spec.key.kind === 'bytes' ? spec.key.bytes.toString('utf8') : null;
  switch (v.value.action) {
    case 'apply':
      return { outcome: 'applied', attempts: [1], key, value: v.value, headers: spec.headers };
    case 'flaky':
      return { outcome: 'applied', attempts: [1, 2], key, value: v.value, headers: spec.headers };
    case 'reject':
      return { outcome: 'dead-lettered', kind: 'permanent', names: ['BusinessRuleError'], attempts: [1] };
    case 'fail':
      return { outcome: 'dead-lettered', kind: 'exhausted', names: ['TransientError'], attempts: [1, 2] };
  }
};

type Built = {
  byCoordinates: Map<string, { wire: Wire; expected: Expected; spec: RecordSpec }>;
  deliveries: Array<{ fresh: boolean; event: unknown; coordinates: string[] }>;
};

let runs = 0;
const prefix = uniqueName('fz');

const build = (s: Scenario): Built => {
  runs += 1;
  // Topics of their own per run (shrinking replays values), so coordinates never collide in the shared table.
  const topics = [`${prefix}-r${runs}-a`, `${prefix}-r${runs}-b`];
  const now = Date.now();
  const byCoordinates: Built['byCoordinates'] = new Map();
  const lists = s.partitions.map((p) => {
    const topic = topics[p.topic] as string;
    let offset = p.firstOffset;
    const distinct = p.records.map((spec, i) => {
      if (i > 0) offset += spec.gap;
      const wire = wireOf(spec, topic, p.partition, offset, now);
      byCoordinates.set(coordinatesOf(wire), { wire, expected: expectedOf(spec), spec });
      return { wire, copies: spec.copies };
    });
    // Delivery windows over the distinct records: the first starts at 0, later ones start at or before where the
    // previous one ended (a redelivery) and reach at least as far.
    const ranges: Array<[number, number]> = [];
    let end = 0;
    for (let k = 0; k < s.deliveries.length; k++) {
      const isLast = k === s.deliveries.length - 1;
      const w = p.windows[k] as { rewind: number; reach: number };
      const start = Math.floor((1 - w.rewind) * end);
      const reach = isLast ? distinct.length : Math.max(end, Math.ceil(w.reach * distinct.length));
      ranges.push([start, reach]);
      end = reach;
    }
    return { id: `${topic}-${p.partition}`, distinct, ranges };
  });
  const deliveries = s.deliveries.map((d, k) => {
    const records: Record<string, Wire[]> = {};
    const coordinates: string[] = [];
    for (const list of lists) {
      const [start, end] = list.ranges[k] as [number, number];
      const wires = list.distinct
        .slice(start, end)
        .flatMap(({ wire, copies }) => Array.from({ length: copies }, () => structuredClone(wire)));
      if (wires.length === 0) continue;
      records[list.id] = wires;
      coordinates.push(...list.distinct.slice(start, end).map(({ wire }) => coordinatesOf(wire)));
    }
    const event =
      s.eventSource === 'aws:kafka'
        ? { eventSource: 'aws:kafka', eventSourceArn: ARN, bootstrapServers: 'b-1.fuzz:9098', records }
        : { eventSource: 'SelfManagedKafka', bootstrapServers: 'kafka-1.fuzz:9092', records };
    return { fresh: d.fresh, event, coordinates };
  });
  return { byCoordinates, deliveries };
};

// ---- checks -----------------------------------------------------------------------------------------------------

const bytesOf = (v: string | Buffer) => (typeof v === 'string' ? Buffer.from(v, 'utf8') : v);
const normalised = (headers: ReadonlyArray<Record<string, number[]>>) =>
  headers.map((h) => Object.fromEntries(Object.entries(h).map(([n, bytes]) => [n, bytes.map((b) => b & 0xff)])));

const checkApplied = (applied: Applied, expected: Extract<Expected, { outcome: 'applied' }>, wire: Wire) => {
  expect(applied.key).toBe(expected.key);
  expect(applied.value).toEqual(expected.value);
  expect(applied.timestamp).toBe(wire.timestamp);
  expect(applied.timestampType).toBe(wire.timestampType);
  // Headers: repeated names in order, the bytes as produced (signed wire bytes normalised with & 0xff),
  // non-UTF-8 values as Buffers, and `get` giving the first value as a string.
  const want = new Map<string, Buffer[]>();
  for (const h of expected.headers) want.set(h.name, [...(want.get(h.name) ?? []), Buffer.from(h.bytes)]);
  expect([...applied.headers.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [name, values] of want) {
    const got = applied.headers.get(name) ?? [];
    expect(got.map(bytesOf)).toEqual(values);
    got.forEach((v, i) => {
      if (!isUtf8(values[i] as Buffer)) expect(Buffer.isBuffer(v)).toBe(true);
    });
    const first = values[0] as Buffer;
    if (isUtf8(first)) expect(applied.first.get(name)).toBe(first.toString('utf8'));
  }
};

const checkLetter = (
  message: Message,
  expected: Extract<Expected, { outcome: 'dead-lettered' }>,
  wire: Wire,
  eventSource: string,
) => {
  const envelope = DeadLetterEnvelope.parse(JSON.parse(message.Body ?? ''));
  const coordinates = coordinatesOf(wire);
  expect(envelope).toMatchObject({
    version: 1,
    route: ROUTE,
    idempotencyKey: coordinates,
    source: {
      eventSource,
      topic: wire.topic,
      partition: wire.partition,
      offset: wire.offset,
      timestamp: wire.timestamp,
      timestampType: wire.timestampType,
    },
    record: { key: wire.key ?? null, value: wire.value ?? null, truncated: false },
    error: { kind: expected.kind },
  });
  expect(envelope.source.eventSourceArn).toBe(eventSource === 'aws:kafka' ? ARN : undefined);
  expect(normalised(envelope.record.headers)).toEqual(normalised(wire.headers));
  expect(expected.names).toContain(envelope.error.name);
  expect(
    envelope.error.message.startsWith(`RecordProcessingError: route ${ROUTE}: ${coordinates}: ${expected.kind}: `),
  ).toBe(true);
  if (expected.kind === 'exhausted') expect(envelope.attempts).toBe(MAX_ATTEMPTS);
  else if (expected.attempts.length > 0) expect(envelope.attempts).toBe(1);
  else expect(envelope.attempts).toBeLessThanOrEqual(1);
  expect(Date.parse(envelope.deadLetteredAt)).toBeGreaterThanOrEqual(Date.parse(envelope.firstFailedAt));
  expect({
    route: message.MessageAttributes?.route?.StringValue,
    topic: message.MessageAttributes?.topic?.StringValue,
    errorKind: message.MessageAttributes?.errorKind?.StringValue,
  }).toEqual({ route: ROUTE, topic: wire.topic, errorKind: expected.kind });
  return envelope.idempotencyKey;
};

/** How often each case of the model was met, so a generator that drifted into one kind of record is noticed. */
const coverage = new Map<string, number>();
const met = (what: string) => coverage.set(what, (coverage.get(what) ?? 0) + 1);

const runScenario = async (s: Scenario) => {
  // A run that failed half-way may have left dead letters behind: they are not this run's.
  await drainQueue(dlqUrl);
  const built = build(s);
  const seen = new Set<string>();
  let handler = newHandler();
  effects = { applied: [], calls: [], failedOnce: new Set() };
  for (const { wire, expected, spec } of built.byCoordinates.values()) {
    met(expected.outcome === 'dead-lettered' ? `dead-lettered ${expected.names.join('|')}` : expected.outcome);
    met(`value ${spec.value.kind}`);
    met(`key ${spec.key.kind}`);
    if (spec.copies > 1) met('copies in one event');
    if (wire.headers.some((h) => Object.values(h).some((bytes) => bytes.some((b) => b < 0))))
      met('signed header bytes');
  }
  for (const [k, delivery] of built.deliveries.entries()) {
    if (k > 0) met(delivery.fresh ? 'redelivery to a cold function' : 'redelivery to a warm function');
    if (k > 0 && delivery.fresh) handler = newHandler();
    effects = { applied: [], calls: [], failedOnce: effects.failedOnce };
    // A well-formed event never fails the invocation: every record here is applied, skipped or dead-lettered.
    const response = await handler(delivery.event, lambdaContext());
    if (response) expect(response.batchItemFailures).toEqual([]);

    const fresh = [...new Set(delivery.coordinates)].filter((c) => !seen.has(c));
    const model = (c: string) => built.byCoordinates.get(c) as { wire: Wire; expected: Expected };
    // Applied: exactly the valid, accepted records seen for the first time, once each, with their content.
    const shouldApply = fresh.filter((c) => model(c).expected.outcome === 'applied').sort();
    expect(effects.applied.map((a) => a.coordinates).sort()).toEqual(shouldApply);
    for (const applied of effects.applied) {
      const { wire, expected } = model(applied.coordinates);
      checkApplied(applied, expected as Extract<Expected, { outcome: 'applied' }>, wire);
    }
    // Calls: only records seen for the first time reach `process`, with the attempts the model predicts.
    const calls = new Map<string, number[]>();
    for (const call of effects.calls)
      calls.set(call.coordinates, [...(calls.get(call.coordinates) ?? []), call.attempt]);
    const shouldCall = new Map(
      fresh
        .map((c) => [c, model(c).expected] as const)
        .filter(([, e]) => e.outcome !== 'skipped' && e.attempts.length > 0)
        .map(([c, e]) => [c, (e as { attempts: number[] }).attempts]),
    );
    expect(calls).toEqual(shouldCall);
    // Dead letters: one envelope per undecodable, refused or exhausted record seen for the first time; none again.
    const letters = await drainQueue(dlqUrl);
    const shouldDeadLetter = fresh.filter((c) => model(c).expected.outcome === 'dead-lettered').sort();
    const keys = letters.map((m) => {
      const envelope = JSON.parse(m.Body ?? '{}') as { idempotencyKey?: string };
      const entry = built.byCoordinates.get(envelope.idempotencyKey ?? '');
      if (entry?.expected.outcome !== 'dead-lettered')
        throw new Error(`unexpected dead letter for ${envelope.idempotencyKey}: ${m.Body}`);
      return checkLetter(m, entry.expected, entry.wire, s.eventSource);
    });
    expect(keys.sort()).toEqual(shouldDeadLetter);
    for (const c of delivery.coordinates) if (seen.has(c)) met('record delivered again');
    for (const c of fresh) seen.add(c);
  }
};

// ---- malformed envelopes ------------------------------------------------------------------------------------------

type Mutation = { path: string; apply: (event: Record<string, unknown>) => void };

const recordMutations = (id: string, index: number): fc.Arbitrary<Mutation> => {
  const at = (field: string) => `records.${id}.${index}.${field}`;
  const setField =
    (field: string, value: unknown) =>
    (event: Record<string, unknown>): void => {
      const list = (event.records as Record<string, Array<Record<string, unknown>>>)[id] as Array<
        Record<string, unknown>
      >;
      (list[index] as Record<string, unknown>)[field] = value;
    };
  const field = (name: string, bad: fc.Arbitrary<unknown>) =>
    bad.map((value) => ({ path: at(name), apply: setField(name, value) }));
  const headerByte = fc
    .oneof(fc.integer({ min: 256, max: 100_000 }), fc.integer({ min: -100_000, max: -129 }), fc.constant(1.5))
    .map((bad) => ({
      path: at('headers.0.h.1'),
      apply: setField('headers', [{ h: [104, bad] }]),
    }));
  return fc.oneof(
    field('topic', fc.constantFrom('', 5, null)),
    field('partition', fc.constantFrom(-1, 1.5, '0', null)),
    field('offset', fc.constantFrom(-1, 2.5, '15', null)),
    field('timestamp', fc.constantFrom('now', null, {})),
    field('timestampType', fc.constantFrom('BOGUS', 3)),
    field('key', fc.constantFrom(5, {}, [1, 2])),
    field('value', fc.constantFrom(5, { a: 1 }, true)),
    field('headers', fc.constantFrom('h', { h: [1] }, [{ h: 'abc' }], [{ h: [1, 'x'] }])),
    headerByte,
  );
};

const malformed: fc.Arbitrary<{ event: unknown; path?: string }> = fc.oneof(
  // Not an object, or an object of some other event source.
  fc.anything().map((event) => ({ event })),
  fc.constantFrom(null, undefined, 'aws:kafka', 42, [], {}).map((event) => ({ event })),
  // A well-formed event with exactly one thing wrong: the error names where.
  scenario(1).chain((s) => {
    const event = build(s).deliveries[0]?.event as Record<string, unknown>;
    const records = event.records as Record<string, unknown[]>;
    const ids = Object.keys(records);
    const top: fc.Arbitrary<Mutation> = fc.oneof(
      fc.constantFrom('aws:sqs', 'aws:kinesis', '', 7).map((bad) => ({
        path: 'eventSource',
        apply: (e: Record<string, unknown>) => {
          e.eventSource = bad;
        },
      })),
      fc.constantFrom('nope', 5, null, [[]]).map((bad) => ({
        path: 'records',
        apply: (e: Record<string, unknown>) => {
          e.records = bad;
        },
      })),
    );
    const mutations =
      ids.length === 0
        ? top
        : fc.oneof(
            top,
            fc
              .constantFrom(...ids)
              .chain((id) => fc.nat((records[id]?.length ?? 1) - 1).chain((i) => recordMutations(id, i))),
          );
    return mutations.map((m) => {
      const copy = structuredClone(event);
      m.apply(copy);
      return { event: copy, path: m.path };
    });
  }),
);

const isKafkaEventShaped = (event: unknown) =>
  typeof event === 'object' &&
  event !== null &&
  ['aws:kafka', 'SelfManagedKafka'].includes((event as { eventSource?: unknown }).eventSource as string) &&
  typeof (event as { records?: unknown }).records === 'object';

// ---- the properties -----------------------------------------------------------------------------------------------

describe('kafkaHandler against DynamoDB Local and ElasticMQ, checked record by record against a model', () => {
  test('well-formed events: valid records applied exactly once, undecodable ones dead-lettered once, tombstones skipped, nothing thrown', async () => {
    await fc.assert(fc.asyncProperty(scenario(3), runScenario), {
      numRuns: 75,
      seed: 20_260_611,
      // A failure shrinks against the services too; past this it reports the smallest counterexample found so far.
      plugins: [fc.interruptAfterTimeLimit(120_000, { failOnInterrupt: true })],
    });
    const cases = [
      'applied',
      'skipped',
      'dead-lettered DecodeError',
      'dead-lettered DecodeError|ValidationError',
      'dead-lettered ValidationError',
      'dead-lettered BusinessRuleError',
      'dead-lettered TransientError',
      'value bad-base64',
      'value invalid-json',
      'key bad-base64',
      'key null',
      'key absent',
      'copies in one event',
      'signed header bytes',
      'record delivered again',
      'redelivery to a cold function',
      'redelivery to a warm function',
    ];
    expect(Object.fromEntries(cases.map((c) => [c, (coverage.get(c) ?? 0) >= 5]))).toEqual(
      Object.fromEntries(cases.map((c) => [c, true])),
    );
  }, 180_000);

  test('events that are not Kafka events are refused whole with an InvalidEventError naming the path', async () => {
    const handler = newHandler();
    let targeted = 0;
    await fc.assert(
      fc.asyncProperty(malformed, async ({ event, path }) => {
        // fc.anything() may, rarely, build something that is a Kafka event; only refusals are checked.
        if (path === undefined && isKafkaEventShaped(event)) return;
        effects = { applied: [], calls: [], failedOnce: new Set() };
        const error = await handler(event, lambdaContext()).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(InvalidEventError);
        if (path !== undefined) {
          targeted += 1;
          expect((error as Error).message).toContain(path);
        }
        expect(effects.calls).toEqual([]);
      }),
      { numRuns: 300, seed: 20_260_612 },
    );
    expect(targeted).toBeGreaterThan(50);
    // Refused as a whole: nothing was dead-lettered.
    expect(await drainQueue(dlqUrl)).toEqual([]);
  }, 120_000);
});
