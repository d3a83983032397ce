// The project's Kafka client for the local tools (bridge, load, replay, reconcile, service readiness):
// @platformatic/kafka, a maintained pure-TypeScript client that speaks the protocol versions Kafka 4 kept (KIP-896).
// This module is deliberately thin: it fixes the defaults that matter and otherwise hands out the client's own objects.
//
// Everything is raw bytes: with no serialisers configured the client sends and returns Buffers for keys, values,
// header names and header values, which is what byte-identical Lambda events need.
//
// Consuming with a consumer group (what the local bridge does):
//
//   const consumer = createConsumer(brokers, { groupId: 'orders-bridge', clientId: 'bridge-orders' });
//   const stream = await consumer.consume({ topics: ['orders'], mode: 'committed', fallbackMode: 'earliest', autocommit: false });
//   for await (const message of stream) {
//     // message.key / message.value: Buffer | undefined (null on the wire);
//     // message.headerEntries: [Buffer, Buffer][] in wire order, repeated names kept (message.headers is a Map and
//     //   keeps one value per Buffer object, so use headerEntries).
//     // message.offset: bigint; message.partition; message.timestamp: bigint.
//     await message.commit(); // commits offset + 1 for that partition; or consumer.commit({ offsets: [...] }) in bulk
//   }
//   await stream.close();
//   await consumer.close();
//
// Use mode 'committed' with fallbackMode 'earliest' to resume where the group left off (like the ESM's
// TRIM_HORIZON), or 'latest' for LATEST. Closing the stream before the consumer leaves the group cleanly.
import { Admin, Consumer, Producer } from '@platformatic/kafka';

export { Admin, Consumer, type Message, Producer } from '@platformatic/kafka';

export type RawProducer = Producer<Buffer, Buffer, Buffer, Buffer>;
export type RawConsumer = Consumer<Buffer, Buffer, Buffer, Buffer>;

/**
 * A record batch as a raw Fetch response carries it. The local bridge and `readTopic` fetch with
 * the client's low-level API (to control positions across rebalances), so they read this shape.
 */
export type RawRecordBatch = {
  firstOffset: bigint;
  lastOffsetDelta: number;
  attributes: number;
  firstTimestamp: bigint;
  maxTimestamp: bigint;
  records: Array<{
    offsetDelta: number;
    timestampDelta: bigint;
    key: Buffer | null;
    value: Buffer | null;
    headers: Array<[Buffer | null, Buffer | null]>;
  }>;
};

export const DEFAULT_BROKERS = ['127.0.0.1:9092'];

/** Brokers from KAFKA_BROKERS (comma-separated host:port), else the local default. */
export function brokersFromEnv(env: Record<string, string | undefined> = process.env): string[] {
  const brokers = (env.KAFKA_BROKERS ?? '')
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '');
  return brokers.length > 0 ? brokers : DEFAULT_BROKERS;
}

export type ClientOptions = {
  clientId?: string;
  /** Per-request timeout in ms (client default 5000). */
  timeout?: number;
  /** Retries of retriable errors (client default 3); `0` to fail fast, as readiness probes do. */
  retries?: number;
};

export function createAdmin(brokers: string[], opts: ClientOptions = {}): Admin {
  return new Admin({
    clientId: opts.clientId ?? 'kafka-lambda-bridge-admin',
    bootstrapBrokers: brokers,
    ...(opts.timeout !== undefined && { timeout: opts.timeout }),
    ...(opts.retries !== undefined && { retries: opts.retries }),
  });
}

/**
 * A producer of raw Buffers. It is idempotent (acks=all, broker-side dedupe) by default: the client retries a
 * produce request as a whole, so without idempotence a partial failure (e.g. NOT_LEADER right after a topic is
 * created) writes the partitions that had succeeded twice. Verified against Kafka 4.1.
 */
export function createProducer(brokers: string[], opts: ClientOptions & { idempotent?: boolean } = {}): RawProducer {
  return new Producer<Buffer, Buffer, Buffer, Buffer>({
    clientId: opts.clientId ?? 'kafka-lambda-bridge-producer',
    bootstrapBrokers: brokers,
    idempotent: opts.idempotent ?? true,
    ...(opts.timeout !== undefined && { timeout: opts.timeout }),
    ...(opts.retries !== undefined && { retries: opts.retries }),
  });
}

/** A consumer-group member of raw Buffers; see the example at the top of this file. */
export function createConsumer(
  brokers: string[],
  opts: ClientOptions & { groupId: string; sessionTimeout?: number; heartbeatInterval?: number; maxWaitTime?: number },
): RawConsumer {
  return new Consumer<Buffer, Buffer, Buffer, Buffer>({
    clientId: opts.clientId ?? `kafka-lambda-bridge-${opts.groupId}`,
    groupId: opts.groupId,
    bootstrapBrokers: brokers,
    sessionTimeout: opts.sessionTimeout ?? 10_000,
    heartbeatInterval: opts.heartbeatInterval ?? 1_000,
    maxWaitTime: opts.maxWaitTime ?? 500,
    ...(opts.timeout !== undefined && { timeout: opts.timeout }),
    ...(opts.retries !== undefined && { retries: opts.retries }),
  });
}

export type TopicSpec = {
  topic: string;
  partitions: number;
  /** Defaults to 1 (the local single-node broker). */
  replicationFactor?: number;
  configs?: Record<string, string>;
};

export type EnsureTopicsResult = { created: string[]; grown: string[]; existing: string[] };

/** Whether the client's error (or one it aggregates) carries the Kafka API error `apiId`. */
export const hasApiError = (error: unknown, apiId: string): boolean => {
  const e = error as { findBy?: (property: string, value: unknown) => unknown } | null;
  return typeof e?.findBy === 'function' && e.findBy('apiId', apiId) !== null;
};

/**
 * Creates the topics that are missing and grows the ones with fewer partitions than asked for (Kafka cannot
 * shrink), then waits until every partition has a leader, so the first produce does not hit NOT_LEADER.
 */
export async function ensureTopics(
  brokers: string[],
  topics: TopicSpec[],
  opts: ClientOptions & { waitTimeoutMs?: number } = {},
): Promise<EnsureTopicsResult> {
  const admin = createAdmin(brokers, opts);
  const result: EnsureTopicsResult = { created: [], grown: [], existing: [] };
  try {
    const present = new Set(await admin.listTopics());
    for (const spec of topics) {
      if (!present.has(spec.topic)) {
        try {
          await admin.createTopics({
            topics: [spec.topic],
            partitions: spec.partitions,
            replicas: spec.replicationFactor ?? 1,
            configs: Object.entries(spec.configs ?? {}).map(([name, value]) => ({ name, value })),
          });
          result.created.push(spec.topic);
          continue;
        } catch (error) {
          if (!hasApiError(error, 'TOPIC_ALREADY_EXISTS')) throw error;
        }
      }
      const metadata = await admin.metadata({ topics: [spec.topic], forceUpdate: true });
      const count = metadata.topics.get(spec.topic)?.partitionsCount ?? 0;
      if (count < spec.partitions) {
        await admin.createPartitions({ topics: [{ name: spec.topic, count: spec.partitions }] });
        result.grown.push(spec.topic);
      } else {
        result.existing.push(spec.topic);
      }
    }
    await waitForLeaders(
      admin,
      topics.map((t) => t.topic),
      opts.waitTimeoutMs ?? 30_000,
    );
    return result;
  } finally {
    await admin.close();
  }
}

async function waitForLeaders(admin: Admin, topics: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let missing: string[] = topics;
  while (missing.length > 0) {
    const metadata = await admin.metadata({ topics: missing, forceUpdate: true });
    missing = missing.filter((topic) => {
      const t = metadata.topics.get(topic);
      return !t || t.partitions.length < t.partitionsCount || t.partitions.some((p) => p.leader < 0);
    });
    if (missing.length === 0) return;
    if (Date.now() > deadline)
      throw new Error(`Kafka topics without partition leaders after ${timeoutMs} ms: ${missing}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** One metadata round trip with no retries: the cluster id and broker count, or a thrown error. */
export async function probeKafka(
  brokers: string[],
  timeoutMs = 2_000,
): Promise<{ clusterId: string; brokers: number }> {
  const admin = createAdmin(brokers, { clientId: 'kafka-lambda-bridge-probe', timeout: timeoutMs, retries: 0 });
  try {
    const metadata = await admin.metadata({ topics: [], forceUpdate: true });
    if (metadata.brokers.size === 0) throw new Error('Kafka answered metadata with no live broker yet');
    return { clusterId: metadata.id, brokers: metadata.brokers.size };
  } finally {
    await admin.close().catch(() => {});
  }
}
