// The local bridge behaves like the Kafka event source mapping where it matters (issue: production fidelity):
// events that hold several partitions, a timeout that kills only its own invocation, the route's filters, and in
// provisioned mode the ESM's retry limit with bisect and its on-failure destination, in the ESM's own format, for a
// batch it gives up on and for a record over Lambda's 6 MB payload limit (g); and a route that accepts skipped batches
// with Lambda's defaults for a destination (h): -1 retries capped at 10, a maximum record age, one failing partition
// holding up the other partition of its poller until the event is skipped. Real Kafka, DynamoDB Local and ElasticMQ.
import { consumerGroupIdOf } from '../../infra/config/index.ts';
import type { OnFailureRecord } from '../../scripts/bridge/onFailureRecord.ts';
import { createAdmin, createProducer, ensureTopics } from '../../scripts/lib/kafka.ts';
import { HANG_PREFIX } from './countingHandler.ts';
import { COUNTED_SKIPS, PARTITIONS, Run, sharedEndpoints, sleep, waitDrained, waitFor } from './harness.ts';

const runs: Run[] = [];
afterAll(async () => {
  await Promise.all(runs.map((r) => r.cleanup()));
});

const PER_PARTITION = 24;
/** Offset of the hanging record in partition 1, and of the oversized one in partition 0. */
const HANG_AT = 10;
const LARGE_AT = 12;

const order = (orderId: string, status: string, padding = '') =>
  Buffer.from(JSON.stringify({ orderId, status, version: 1, updatedAt: new Date().toISOString(), padding }));

/**
 * Invocations by their request id (the counter table records which invocation applied each record): the partitions
 * each applied records of, and how many records. Records an earlier attempt of the same event completed are skipped,
 * not applied again, so the count is a lower bound of the event's size: enough to catch an event over batchSize.
 */
const invocationsOf = (topic: string, applications: Map<string, { requestIds: string[] }>) => {
  const byRequest = new Map<string, { partitions: Set<string>; records: number }>();
  for (const [coordinates, applied] of applications) {
    const partition = coordinates.slice(topic.length + 1).split('@')[0] as string;
    for (const id of applied.requestIds) {
      const invocation = byRequest.get(id) ?? { partitions: new Set<string>(), records: 0 };
      invocation.partitions.add(partition);
      invocation.records += 1;
      byRequest.set(id, invocation);
    }
  }
  return [...byRequest.values()];
};

test('(g) provisioned-mode ESM controls: multi-partition events, filters, isolated timeouts, retries with bisect and the on-failure destination', async () => {
  const run = new Run(sharedEndpoints(), { routes: ['counted'], countedEsm: true });
  runs.push(run);
  const topic = run.route('counted').topic;
  // The broker's default message limit is 1 MB; the topic takes 8 MB, so a record over Lambda's 6 MB can exist.
  await ensureTopics(run.endpoints.brokers, [
    { topic, partitions: PARTITIONS, configs: { 'max.message.bytes': String(8 * 1024 * 1024) } },
  ]);
  await run.createResources();

  const kinds = new Map<string, 'counted' | 'filtered' | 'hang' | 'large'>();
  const producer = createProducer(run.endpoints.brokers, { clientId: `${run.id}-producer` });
  try {
    for (let offset = 0; offset < PER_PARTITION; offset++) {
      const messages = [];
      for (let partition = 0; partition < PARTITIONS; partition++) {
        const id = `${run.id}-${partition}-${offset}`;
        const at = `${partition}@${offset}`;
        if (partition === 1 && offset === HANG_AT) {
          kinds.set(at, 'hang');
          messages.push({ topic, partition, value: order(`${HANG_PREFIX}${id}`, 'PENDING') });
        } else if (partition === 0 && offset === LARGE_AT) {
          kinds.set(at, 'large');
          messages.push({ topic, partition, value: order(id, 'PENDING', 'x'.repeat(6_500_000)) });
        } else if (offset % 5 === 4) {
          kinds.set(at, 'filtered');
          messages.push({ topic, partition, value: order(id, 'CANCELLED') });
        } else {
          kinds.set(at, 'counted');
          messages.push({ topic, partition, value: order(id, 'PENDING') });
        }
      }
      await producer.send({ messages });
    }
  } finally {
    await producer.close();
  }

  const bridge = run.startBridge(['--backoff-ms', '100', '--max-backoff-ms', '400']);
  await waitDrained(run, 180_000);
  expect((await bridge.stop()).code).toBe(0);

  // The ESM gave up on two records, and only those: the hanging one after 1 + 5 invocations (bisect isolated it
  // without spending retries), and the oversized one without ever invoking the function.
  const failures = await run.onFailureRecords('counted');
  const summary = failures
    .map((f) => ({
      condition: f.requestContext.condition,
      invocations: f.requestContext.approximateInvokeCount,
      functionError: f.responseContext.functionError,
      records: f.KafkaBatchInfo.recordsInfo,
      batchSize: f.KafkaBatchInfo.batchSize,
    }))
    .sort((a, b) => a.condition.localeCompare(b.condition));
  const info = (partition: number, offset: number) => ({
    [`${topic}-${partition}`]: expect.objectContaining({
      firstRecordOffset: String(offset),
      lastRecordOffset: String(offset),
    }),
  });
  expect(summary).toEqual([
    {
      condition: 'MaximumPayloadSizeExceeded',
      invocations: 0,
      functionError: null,
      records: info(0, LARGE_AT),
      batchSize: 1,
    },
    {
      condition: 'RetryAttemptsExhausted',
      invocations: 6,
      functionError: 'Unhandled',
      records: info(1, HANG_AT),
      batchSize: 1,
    },
  ]);
  expect(failures[0]?.KafkaBatchInfo).toMatchObject({ eventSourceArn: expect.stringContaining(':kafka:') });

  // Every record that passed the filters reached the handler; the filtered, hanging and oversized ones never did.
  const applications = await run.applications();
  const twice: string[] = [];
  for (const [at, kind] of kinds) {
    const [partition, offset] = at.split('@');
    const applied = applications.get(`${topic}-${partition}@${offset}`)?.applications ?? 0;
    if (kind !== 'counted') {
      expect({ at, kind, applied }).toEqual({ at, kind, applied: 0 });
      continue;
    }
    // Only the timed-out invocations of partition 1 may have applied a record whose complete they never wrote.
    if (applied === 2 && partition === '1') twice.push(at);
    else expect({ at, applied }).toEqual({ at, applied: 1 });
  }
  expect(twice.length).toBeLessThanOrEqual(HANG_AT);

  // Partitions 0 and 2 share poller 0: its events held records of both, and batchSize counted across them.
  const invocations = invocationsOf(topic, applications);
  const batchSize = run.route('counted').batchSize;
  expect(invocations.some((i) => i.partitions.has('0') && i.partitions.has('2'))).toBe(true);
  expect(invocations.every((i) => !(i.partitions.has('1') && i.partitions.size > 1))).toBe(true);
  expect(invocations.filter((i) => i.records > batchSize)).toEqual([]);
  expect(invocations.some((i) => i.partitions.size > 1 && i.records === batchSize)).toBe(true);

  const final = bridge.progress.get('counted');
  expect(final).toMatchObject({ toOnFailure: 2, dropped: 0, filteredOut: 3 * Math.floor(PER_PARTITION / 5) });
  // The bridge says where the skipped records went.
  expect(
    bridge.logMessages().some((m) => m.includes(`RetryAttemptsExhausted: 1 record(s) ${topic}-1@${HANG_AT}`)),
  ).toBe(true);
});

test('(h) an ESM that skips (retryAttempts -1 with a destination, a record age): a failing partition stalls its poller until 1 + 10 invocations, then RetryAttemptsExhausted; old records as RecordAgeExceeded', async () => {
  const run = new Run(sharedEndpoints(), { routes: ['counted'], countedSkips: true });
  runs.push(run);
  const route = run.route('counted');
  const topic = route.topic;
  await run.createResources();

  // Partition 0 (poller 0, shared with partition 2) has a record that hangs; partition 1 (poller 1) starts with
  // records older than the ESM's maximum record age.
  const OLD = 3;
  const produced: Array<{ partition: number; offset: number; kind: 'counted' | 'hang' | 'old' }> = [];
  const producer = createProducer(run.endpoints.brokers, { clientId: `${run.id}-producer` });
  try {
    const longAgo = BigInt(Date.now() - 20 * 60_000);
    await producer.send({
      messages: Array.from({ length: OLD }, (_, offset) => ({
        topic,
        partition: 1,
        value: order(`${run.id}-1-${offset}`, 'PENDING'),
        timestamp: longAgo,
      })),
    });
    for (let offset = 0; offset < OLD; offset++) produced.push({ partition: 1, offset, kind: 'old' });
    for (let offset = 0; offset < PER_PARTITION; offset++) {
      const messages = [];
      for (let partition = 0; partition < PARTITIONS; partition++) {
        if (partition === 1 && offset < OLD) continue;
        const hang = partition === 0 && offset === HANG_AT;
        const id = `${run.id}-${partition}-${offset}`;
        messages.push({ topic, partition, value: order(hang ? `${HANG_PREFIX}${id}` : id, 'PENDING') });
        produced.push({ partition, offset, kind: hang ? 'hang' : 'counted' });
      }
      await producer.send({ messages });
    }
  } finally {
    await producer.close();
  }

  // The group's committed offsets, sampled while the bridge runs: when each snapshot's answer was in.
  const groupId = consumerGroupIdOf(run.config, route);
  const snapshots: Array<{ at: number; committed: (partition: number) => number }> = [];
  const admin = createAdmin(run.endpoints.brokers, { clientId: `${run.id}-watch` });
  let watching = true;
  const watch = (async () => {
    while (watching) {
      try {
        const [group] = await admin.listConsumerGroupOffsets({ groups: [groupId] });
        const parts = group?.topics.find((t) => t.name === topic)?.partitions ?? [];
        const offsets = new Map(parts.map((p) => [p.partitionIndex, Number(p.committedOffset)]));
        snapshots.push({ at: Date.now(), committed: (p) => offsets.get(p) ?? -1 });
      } catch {}
      await sleep(250);
    }
  })();

  const bridge = run.startBridge(['--backoff-ms', '100', '--max-backoff-ms', '400']);
  let aged: { offset: number; producedAt: number };
  try {
    // Poller 1 is not held up by poller 0's failing event: it finishes partition 1 meanwhile. Then a record that hangs
    // and is 20 s short of the ESM's maximum age: retried until it is too old, well before 10 retries could run out.
    await waitFor(
      'partition 1 to be committed to its end',
      () => snapshots.at(-1)?.committed(1) === PER_PARTITION,
      60_000,
    );
    const late = createProducer(run.endpoints.brokers, { clientId: `${run.id}-late` });
    try {
      const producedAt = Date.now();
      await late.send({
        messages: [
          {
            topic,
            partition: 1,
            value: order(`${HANG_PREFIX}${run.id}-1-aged`, 'PENDING'),
            timestamp: BigInt(producedAt - (COUNTED_SKIPS.maxRecordAgeSeconds - 20) * 1000),
          },
        ],
      });
      aged = { offset: PER_PARTITION, producedAt };
    } finally {
      await late.close();
    }
    await waitDrained(run, 150_000);
  } finally {
    watching = false;
    await watch;
    await admin.close();
  }
  expect((await bridge.stop()).code).toBe(0);

  let failures: OnFailureRecord[] = [];
  await waitFor(
    'three on-failure records',
    async () => {
      failures = await run.onFailureRecords('counted');
      return failures.length >= 3;
    },
    10_000,
  );
  const of = (condition: string, partition: number) =>
    failures.filter(
      (f) => f.requestContext.condition === condition && f.KafkaBatchInfo.recordsInfo[`${topic}-${partition}`],
    );
  expect(failures).toHaveLength(3);

  // (c) The event holding the hanging record: the first invocation and Lambda's 10 retries for -1 with a destination.
  const [exhausted] = of('RetryAttemptsExhausted', 0);
  expect(exhausted).toBeDefined();
  const skipped = exhausted as OnFailureRecord;
  expect(skipped.requestContext.approximateInvokeCount).toBe(11);
  expect(skipped.responseContext.functionError).toBe('Unhandled');
  const info = skipped.KafkaBatchInfo.recordsInfo;
  // (b) It held records of both partitions of poller 0, batchSize counted across them.
  expect(Object.keys(info).sort()).toEqual([`${topic}-0`, `${topic}-2`]);
  expect(skipped.KafkaBatchInfo.batchSize).toBeLessThanOrEqual(COUNTED_SKIPS.batchSize);
  const range = (partition: number) => {
    const r = info[`${topic}-${partition}`] as { firstRecordOffset: string; lastRecordOffset: string };
    return [Number(r.firstRecordOffset), Number(r.lastRecordOffset)] as const;
  };
  expect(range(0)[0]).toBeLessThanOrEqual(HANG_AT);
  expect(range(0)[1]).toBeGreaterThanOrEqual(HANG_AT);

  // (d) Records past the ESM's maximum age: the old ones never invoked, the aged hanging one after some invocations
  // (fewer than 1 + 10: its age ran out first).
  const tooOld = of('RecordAgeExceeded', 1).sort(
    (a, b) =>
      Number(a.KafkaBatchInfo.recordsInfo[`${topic}-1`]?.firstRecordOffset) -
      Number(b.KafkaBatchInfo.recordsInfo[`${topic}-1`]?.firstRecordOffset),
  );
  expect(
    tooOld.map((f) => ({
      info: f.KafkaBatchInfo.recordsInfo[`${topic}-1`],
      invoked: f.requestContext.approximateInvokeCount > 0,
      functionError: f.responseContext.functionError,
    })),
  ).toEqual([
    {
      info: expect.objectContaining({ firstRecordOffset: '0', lastRecordOffset: String(OLD - 1) }),
      invoked: false,
      functionError: null,
    },
    {
      info: expect.objectContaining({ firstRecordOffset: String(aged.offset), lastRecordOffset: String(aged.offset) }),
      invoked: true,
      functionError: 'Unhandled',
    },
  ]);
  const agedInvocations = tooOld[1]?.requestContext.approximateInvokeCount ?? 0;
  expect(agedInvocations).toBeLessThanOrEqual(10);

  // (b) While poller 0 retried that event, partition 2 made no progress past it; partition 1 (poller 1) finished.
  // Only snapshots answered before the skip was written count: the skip is written before its commit.
  const skippedAt = Date.parse(skipped.timestamp);
  const before = snapshots.filter((s) => s.at < skippedAt);
  const [first2] = range(2);
  expect(before.filter((s) => s.committed(2) > first2).map((s) => s.committed(2))).toEqual([]);
  const stalled = before.filter((s) => s.committed(2) === first2 && s.committed(0) <= HANG_AT);
  expect(stalled.length).toBeGreaterThan(0);
  // 11 invocations that each ran into the 2 s timeout: at least 10 s with partition 2 held (a lower bound).
  expect((stalled.at(-1)?.at ?? 0) - (stalled[0]?.at ?? 0)).toBeGreaterThanOrEqual(10_000);
  expect(before.some((s) => s.committed(1) === PER_PARTITION)).toBe(true);
  // And after the skip, everything was committed: the aged record's partition one further.
  const committed = await run.committedOffsets('counted');
  expect([0, 1, 2].map((p) => committed.get(p))).toEqual([PER_PARTITION, PER_PARTITION + 1, PER_PARTITION]);

  // Every record applied once, but those the ESM skipped: the hanging, old and aged ones never; a record of the skipped
  // event after the hanging one in its partition never (it was not reached). One before it, or of partition 2, was
  // applied by the first invocation, and possibly again by each retry: its complete waits for the end of the
  // invocation, which times out every time (the crash window of a timeout), so at most once per invocation.
  const applications = await run.applications();
  const perInvocation = Array.from({ length: 11 }, (_, i) => i + 1);
  for (const { partition, offset, kind } of produced) {
    const applied = applications.get(`${topic}-${partition}@${offset}`)?.applications ?? 0;
    const inSkipped = partition !== 1 && offset >= range(partition)[0] && offset <= range(partition)[1];
    const expected =
      kind !== 'counted' || (partition === 0 && offset > HANG_AT && inSkipped) ? [0] : inSkipped ? perInvocation : [1];
    const at = `${partition}@${offset}`;
    expect({ at, kind, applied }).toEqual({ at, kind, applied: expected.includes(applied) ? applied : expected });
  }
  // (a) No invocation held more than batchSize records, however many partitions it spanned.
  const invocations = invocationsOf(topic, applications);
  expect(invocations.filter((i) => i.records > COUNTED_SKIPS.batchSize)).toEqual([]);
  expect(invocations.some((i) => i.partitions.size > 1 && i.records === COUNTED_SKIPS.batchSize)).toBe(true);

  const final = bridge.progress.get('counted');
  expect(final).toMatchObject({ toOnFailure: OLD + 1 + skipped.KafkaBatchInfo.batchSize, dropped: 0, filteredOut: 0 });
  expect(final?.failedInvocations).toBeGreaterThanOrEqual(11 + agedInvocations);
  expect(
    bridge
      .logMessages()
      .some((m) =>
        m.startsWith(`[bridge] counted: RetryAttemptsExhausted: ${skipped.KafkaBatchInfo.batchSize} record(s)`),
      ),
  ).toBe(true);
});
