// The local bridge behaves like the Kafka event source mapping where it matters (issue: production fidelity):
// events that hold several partitions, a timeout that kills only its own invocation, the route's filters, and in
// provisioned mode the ESM's retry limit with bisect and its on-failure destination, in the ESM's own format, for a
// batch it gives up on and for a record over Lambda's 6 MB payload limit. Real Kafka, DynamoDB Local and ElasticMQ.
import { createProducer, ensureTopics } from '../../scripts/lib/kafka.ts';
import { HANG_PREFIX } from './countingHandler.ts';
import { PARTITIONS, Run, sharedEndpoints, waitDrained } from './harness.ts';

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
  const byRequest = new Map<string, Set<string>>();
  for (const [coordinates, applied] of applications) {
    const partition = coordinates.slice(topic.length + 1).split('@')[0] as string;
    for (const id of applied.requestIds) byRequest.set(id, (byRequest.get(id) ?? new Set()).add(partition));
  }
  expect([...byRequest.values()].some((partitions) => partitions.has('0') && partitions.has('2'))).toBe(true);
  expect([...byRequest.values()].every((partitions) => !(partitions.has('1') && partitions.size > 1))).toBe(true);

  const final = bridge.progress.get('counted');
  expect(final).toMatchObject({ toOnFailure: 2, dropped: 0, filteredOut: 3 * Math.floor(PER_PARTITION / 5) });
  // The bridge says where the skipped records went.
  expect(
    bridge.logMessages().some((m) => m.includes(`RetryAttemptsExhausted: 1 record(s) ${topic}-1@${HANG_AT}`)),
  ).toBe(true);
});
