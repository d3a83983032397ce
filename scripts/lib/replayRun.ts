// The core of `npm run replay`: drain a route's dead-letter queue back into Kafka or straight into
// the route's handler. A message is deleted only after its record was re-delivered: produced with
// acks=all, or handed to a handler invocation that returned without reporting it as failed.
import { DeleteMessageBatchCommand, type Message, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DeadLetterEnvelope } from '../../functions/runtime/deadLetter/envelopeSchema.ts';
import type { KafkaBatchResponse } from '../../functions/runtime/event.ts';
import {
  DEAD_LETTER_SYSTEM_ATTRIBUTES,
  type DeadLetterReason,
  deadLetteredAtOf,
  deadLetterReason,
  makeVisible,
} from '../bridge/deadLetters.ts';
import { describeFailure } from './cliArgs.ts';
import { type InvokeSummary, invokeRoute, type PreparedRoute, type RouteHandler } from './invokeRoute.ts';
import { queueMessages } from './localResources.ts';
import {
  deliveredFromKafka,
  deliveredSide,
  describeSchemaMetadata,
  describeSource,
  envelopeRecordBytes,
  kafkaFormBytes,
  originOf,
  type RecordBytes,
  ReplayFormError,
  replayEvents,
  replayMessage,
  replayWireRecord,
  sourceCoordinates,
} from './replayEvents.ts';
import { KafkaRecordReader, ReplayProducer } from './replayKafka.ts';

export { makeVisible } from '../bridge/deadLetters.ts';

export type ReplayMode = { readonly kind: 'topic'; readonly topic?: string | undefined } | { readonly kind: 'invoke' };

export type ReplayOptions = {
  readonly prepared: PreparedRoute;
  readonly mode: ReplayMode;
  /** The route's handler, for `invoke` mode. */
  readonly handler?: RouteHandler;
  /** At most this many DLQ messages are taken. */
  readonly limit?: number | undefined;
  /** Lists what would happen; deletes, produces and invokes nothing, and leaves every message visible. */
  readonly dryRun?: boolean | undefined;
  readonly brokers: string[];
  /** How long a received message stays hidden from other consumers; default covers the work. */
  readonly visibilityTimeoutSeconds?: number | undefined;
  readonly sqs?: SQSClient;
  readonly progress?: (line: string) => void;
};

export type ReplayOutcome = 'replayed' | 'would-replay' | 'left';

export type ReplayItem = {
  readonly messageId: string;
  /** The dead-lettered record, `topic-partition@offset`. */
  source?: string;
  /** The replay header the record carries: the first delivery's coordinates. */
  origin?: string;
  truncated?: boolean;
  /** A topic name, or `handler`. */
  target?: string;
  /**
   * To a topic: the sides of a SOURCE-format record (eventRecordFormat SOURCE) whose registry framing is written
   * back before producing, e.g. `value: Confluent schema id 7`.
   */
  reframed?: string[];
  /** To the handler: the schema metadata the record goes with, e.g. `value AVRO, schema id "7"`. */
  schemaMetadata?: string;
  outcome: ReplayOutcome;
  /** Why a message was left in the DLQ, or what a dry run found. */
  reason?: string;
  /** Why the record was dead-lettered (absent when the message is not a dead-letter envelope). */
  error?: DeadLetterReason;
  /** ISO time it was dead-lettered: the envelope's `deadLetteredAt`, else the message's SentTimestamp. */
  deadLetteredAt?: string;
};

/** Dead letters that failed for the same reason: kind, error name and message (see `deadLetterReason`). */
export type ReplayGroup = DeadLetterReason & {
  count: number;
  firstDeadLetteredAt?: string;
  lastDeadLetteredAt?: string;
  letters: Array<Pick<ReplayItem, 'messageId' | 'source' | 'deadLetteredAt' | 'outcome' | 'reason'>>;
};

export type ReplayReport = {
  route: string;
  mode: 'to-topic' | 'invoke';
  dryRun: boolean;
  queueUrl: string;
  received: number;
  replayed: number;
  /** Dry run only: messages whose record could be replayed. */
  wouldReplay: number;
  /** Messages still in the DLQ after the run (in a dry run, every one). */
  left: number;
  items: ReplayItem[];
  /** The items grouped by why they were dead-lettered, largest group first. */
  groups: ReplayGroup[];
  /** `invoke` mode: what each handler invocation did. */
  invocations: Array<InvokeSummary & { error: string | null; batchItemFailures: number }>;
  /** Set when the run stopped early (Kafka or SQS unreachable); unfinished messages stay in the DLQ. */
  error?: string;
  /**
   * A route with a retry queue (`retry.park`): the records waiting there, which are not in the DLQ and need no replay
   * (they come back on their own, and are dead-lettered only after their last delay).
   */
  parked?: { queueUrl: string; waiting: number; delayed: number; inFlight: number; total: number };
};

/** A message whose record is ready to go back. */
type Ready = { message: Message; envelope: DeadLetterEnvelope; bytes: RecordBytes; item: ReplayItem };

const MAX_RECEIVE = 10;

/** What a SOURCE-format record's replay does to it: re-framed for Kafka, or handed over with its schema metadata. */
const howDelivered = (item: ReplayItem): string => {
  if (item.reframed) return `; re-framed (eventRecordFormat SOURCE): ${item.reframed.join(', ')}`;
  if (item.schemaMetadata) return `; with its schema metadata (eventRecordFormat SOURCE): ${item.schemaMetadata}`;
  return '';
};

const describeBytes = (bytes: RecordBytes): string =>
  `key ${bytes.key === null ? 'null' : `${bytes.key.length} B`}, value ${bytes.value === null ? 'null' : `${bytes.value.length} B`}, ${bytes.headers.length} header(s)`;

export const replayDeadLetters = async (options: ReplayOptions): Promise<ReplayReport> => {
  const { prepared, mode } = options;
  const dryRun = options.dryRun ?? false;
  const queueUrl = prepared.deadLetterQueueUrl;
  const sqs = options.sqs ?? new SQSClient({});
  const progress = options.progress ?? (() => {});
  if (mode.kind === 'invoke' && !options.handler) throw new Error('replay in invoke mode needs the route handler');
  const visibility =
    options.visibilityTimeoutSeconds ?? (mode.kind === 'invoke' ? prepared.route.timeoutSeconds + 60 : 120);
  const fallbackArn = prepared.config.source.kind === 'msk' ? prepared.config.source.clusterArn : undefined;
  const report: ReplayReport = {
    route: prepared.route.name,
    mode: mode.kind === 'invoke' ? 'invoke' : 'to-topic',
    dryRun,
    queueUrl,
    received: 0,
    replayed: 0,
    wouldReplay: 0,
    left: 0,
    items: [],
    groups: [],
    invocations: [],
  };

  // Dead letters written from now on (a replayed record that failed again) wait for the next run.
  const runStarted = Date.now();
  const seen = new Set<string>();
  /** Receipt handles of the messages taken and not deleted: made visible again at the end. */
  const taken = new Map<string, string>();
  let reader: KafkaRecordReader | undefined;
  let producer: ReplayProducer | undefined;

  const targetTopic = (envelope: DeadLetterEnvelope): string =>
    mode.kind === 'topic' && mode.topic ? mode.topic : envelope.source.topic;

  const openProducer = (): ReplayProducer => {
    if (!producer) producer = new ReplayProducer(options.brokers);
    return producer;
  };

  const leave = (item: ReplayItem, reason: string) => {
    item.outcome = 'left';
    item.reason = reason;
    progress(`left     ${item.source ?? item.messageId}: ${reason}`);
  };

  /** Parses a message and gathers its record's bytes, re-reading a truncated record from Kafka. */
  const plan = async (message: Message, item: ReplayItem): Promise<Ready | undefined> => {
    const sentAt = deadLetteredAtOf(undefined, message);
    if (sentAt) item.deadLetteredAt = sentAt;
    let body: unknown;
    try {
      body = JSON.parse(message.Body ?? '');
    } catch {
      leave(item, 'the message body is not JSON');
      return undefined;
    }
    const parsed = DeadLetterEnvelope.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      leave(item, `not a dead-letter envelope: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
      return undefined;
    }
    const envelope = parsed.data;
    item.error = deadLetterReason(envelope.error);
    const at = deadLetteredAtOf(envelope, message);
    if (at) item.deadLetteredAt = at;
    item.source = describeSource(envelope);
    item.truncated = envelope.record.truncated;
    item.target = mode.kind === 'invoke' ? 'handler' : targetTopic(envelope);
    const deadLetteredAt = Date.parse(envelope.deadLetteredAt);
    if (Number.isFinite(deadLetteredAt) && deadLetteredAt >= runStarted) {
      leave(item, 'dead-lettered again during this run; replay it in a later run');
      return undefined;
    }
    // The bytes in the form the mode needs: as Kafka holds them (framed) to produce, as the ESM delivered them
    // (SOURCE: unframed, the schema in the metadata) for the handler. The envelope holds the delivered form.
    let bytes: RecordBytes;
    try {
      if (envelope.record.truncated) {
        reader ??= new KafkaRecordReader(options.brokers);
        const read = await reader.read(sourceCoordinates(envelope));
        if (!read.found) {
          leave(item, `truncated dead letter, and the record cannot be read again: ${read.reason}`);
          return undefined;
        }
        const deliveredKey = deliveredSide(envelope, 'key', read.record.key);
        if ((deliveredKey === null ? null : deliveredKey.toString('base64')) !== envelope.record.key) {
          leave(item, `truncated dead letter, and Kafka holds a record with another key at ${item.source}`);
          return undefined;
        }
        bytes = mode.kind === 'invoke' ? deliveredFromKafka(envelope, read.record) : read.record;
        progress(`re-read  ${item.source} from Kafka (the dead letter was truncated)`);
      } else if (mode.kind === 'invoke') {
        bytes = envelopeRecordBytes(envelope);
      } else {
        const kafkaForm = kafkaFormBytes(envelope, envelopeRecordBytes(envelope));
        bytes = kafkaForm.bytes;
        if (kafkaForm.reframed.length > 0) item.reframed = kafkaForm.reframed;
      }
    } catch (error) {
      if (!(error instanceof ReplayFormError)) throw error;
      leave(item, error.message);
      return undefined;
    }
    if (mode.kind === 'invoke') {
      const metadata = describeSchemaMetadata(envelope);
      if (metadata) item.schemaMetadata = metadata;
    }
    item.origin = originOf(envelope, bytes);
    return { message, envelope, bytes, item };
  };

  /** Deletes the messages of re-delivered records. */
  const remove = async (ready: readonly Ready[]) => {
    for (let i = 0; i < ready.length; i += MAX_RECEIVE) {
      const chunk = ready.slice(i, i + MAX_RECEIVE);
      const result = await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: chunk.map((r, n) => ({ Id: String(n), ReceiptHandle: r.message.ReceiptHandle })),
        }),
      );
      const failed = new Map((result.Failed ?? []).map((f) => [Number(f.Id), f.Message ?? f.Code ?? 'failed']));
      chunk.forEach((r, n) => {
        r.item.outcome = 'replayed';
        const origin = r.item.origin === r.item.source ? '' : ` (first delivered as ${r.item.origin})`;
        progress(`replayed ${r.item.source} -> ${r.item.target}${origin}${howDelivered(r.item)}`);
        const failure = failed.get(n);
        // Re-delivered all the same: replaying it again later is a duplicate the runtime skips.
        if (failure === undefined) taken.delete(r.item.messageId);
        else progress(`warning  ${r.item.source}: re-delivered, but its DLQ message was not deleted: ${failure}`);
      });
    }
  };

  const replayToTopic = async (ready: Ready[]) => {
    const missing = await openProducer().missingTopics(ready.map((r) => targetTopic(r.envelope)));
    const sendable: Ready[] = [];
    for (const r of ready) {
      const topic = targetTopic(r.envelope);
      if (missing.has(topic)) leave(r.item, `topic ${topic} does not exist`);
      else sendable.push(r);
    }
    try {
      await openProducer().send(sendable.map((r) => replayMessage(r.envelope, r.bytes, targetTopic(r.envelope))));
    } catch (error) {
      for (const r of sendable) leave(r.item, `not produced: ${(error as Error).message}`);
      throw error;
    }
    await remove(sendable);
  };

  const replayByInvoke = async (ready: Ready[]) => {
    const handler = options.handler as RouteHandler;
    const events = replayEvents(
      ready.map((r) => ({ envelope: r.envelope, wire: replayWireRecord(r.envelope, r.bytes), item: r })),
      fallbackArn,
    );
    for (const { event, items } of events) {
      const outcome = await invokeRoute(prepared, handler, event);
      const failures = (outcome.response as KafkaBatchResponse | null)?.batchItemFailures ?? [];
      report.invocations.push({ ...outcome.summary, error: outcome.error, batchItemFailures: failures.length });
      progress(
        `invoked  ${items.length} record(s): processed ${outcome.summary.processed}, duplicates ${outcome.summary.duplicates}, dead-lettered again ${outcome.summary.deadLettered}${outcome.error ? `; threw: ${outcome.error}` : ''}`,
      );
      if (outcome.error !== null) {
        for (const r of items) leave(r.item, `the handler threw: ${outcome.error}`);
        continue;
      }
      // A partition reported as failed was processed only up to its first failed offset.
      const failedFrom = new Map(failures.map((f) => [f.itemIdentifier.partition, f.itemIdentifier.offset]));
      const delivered: Ready[] = [];
      for (const r of items) {
        const from = failedFrom.get(`${r.envelope.source.topic}-${r.envelope.source.partition}`);
        if (from !== undefined && r.envelope.source.offset >= from) {
          leave(r.item, `the handler reported its partition as failed from offset ${from}`);
        } else {
          delivered.push(r);
        }
      }
      await remove(delivered);
    }
  };

  try {
    let remaining = options.limit ?? Number.POSITIVE_INFINITY;
    while (remaining > 0) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(MAX_RECEIVE, remaining),
          VisibilityTimeout: visibility,
          WaitTimeSeconds: 1,
          MessageSystemAttributeNames: [...DEAD_LETTER_SYSTEM_ATTRIBUTES],
        }),
      );
      const fresh = Messages.filter((m) => m.MessageId && !seen.has(m.MessageId));
      for (const m of Messages) {
        // One left earlier, visible again after a long run: keep it for the next run.
        if (m.MessageId && seen.has(m.MessageId) && m.ReceiptHandle) taken.set(m.MessageId, m.ReceiptHandle);
      }
      if (fresh.length === 0) break;
      remaining -= fresh.length;
      const ready: Ready[] = [];
      for (const message of fresh) {
        const messageId = message.MessageId as string;
        seen.add(messageId);
        if (message.ReceiptHandle) taken.set(messageId, message.ReceiptHandle);
        const item: ReplayItem = { messageId, outcome: 'left' };
        report.items.push(item);
        report.received += 1;
        const planned = await plan(message, item);
        if (planned) ready.push(planned);
      }
      if (ready.length === 0) continue;
      if (dryRun) {
        const missing =
          mode.kind === 'topic'
            ? await openProducer().missingTopics(ready.map((r) => targetTopic(r.envelope)))
            : new Set<string>();
        for (const r of ready) {
          if (missing.has(targetTopic(r.envelope))) {
            leave(r.item, `topic ${targetTopic(r.envelope)} does not exist`);
            continue;
          }
          r.item.outcome = 'would-replay';
          const partition =
            mode.kind === 'topic' && mode.topic && mode.topic !== r.envelope.source.topic
              ? 'partition by key'
              : `partition ${r.envelope.source.partition}`;
          r.item.reason =
            mode.kind === 'invoke'
              ? `would invoke route ${prepared.route.name} with ${describeBytes(r.bytes)}${howDelivered(r.item)}`
              : `would produce to ${r.item.target} (${partition}) with ${describeBytes(r.bytes)}${howDelivered(r.item)}`;
        }
        continue;
      }
      if (mode.kind === 'invoke') await replayByInvoke(ready);
      else await replayToTopic(ready);
    }
  } catch (error) {
    report.error = describeFailure(error);
  } finally {
    await Promise.allSettled([reader?.close(), producer?.close()]);
    await makeVisible(sqs, queueUrl, [...taken.values()]).catch((error: unknown) => {
      progress(`warning: giving ${taken.size} message(s) back to the queue: ${(error as Error).message}`);
    });
  }
  report.replayed = report.items.filter((i) => i.outcome === 'replayed').length;
  report.wouldReplay = report.items.filter((i) => i.outcome === 'would-replay').length;
  report.left = report.items.filter((i) => i.outcome !== 'replayed').length;
  report.groups = groupByReason(report.items);
  const retryQueueUrl = prepared.environment.RETRY_QUEUE_URL;
  if (retryQueueUrl) {
    const held = await queueMessages(sqs, retryQueueUrl).catch(() => undefined);
    if (held) report.parked = { queueUrl: retryQueueUrl, ...held };
  }
  return report;
};

/** A message that is not a dead-letter envelope has no error of its own: its group is why it cannot be replayed. */
const UNREADABLE = 'unreadable';

/** The items grouped by why they were dead-lettered: largest group first, then the one dead-lettered first. */
export const groupByReason = (items: readonly ReplayItem[]): ReplayGroup[] => {
  const byReason = new Map<string, { reason: DeadLetterReason; letters: ReplayGroup['letters'] }>();
  for (const item of items) {
    const reason = item.error ?? { kind: UNREADABLE, name: '', message: item.reason ?? 'not a dead-letter envelope' };
    const key = JSON.stringify([reason.kind, reason.name, reason.message]);
    const group = byReason.get(key) ?? { reason, letters: [] };
    byReason.set(key, group);
    const { messageId, source, deadLetteredAt, outcome, reason: why } = item;
    group.letters.push({
      messageId,
      ...(source ? { source } : {}),
      ...(deadLetteredAt ? { deadLetteredAt } : {}),
      outcome,
      ...(why ? { reason: why } : {}),
    });
  }
  const groups = [...byReason.values()].map(({ reason, letters }): ReplayGroup => {
    // ISO times in UTC sort as strings; a letter without one goes first.
    letters.sort((a, b) => (a.deadLetteredAt ?? '').localeCompare(b.deadLetteredAt ?? ''));
    const times = letters.flatMap((l) => (l.deadLetteredAt ? [l.deadLetteredAt] : []));
    return {
      ...reason,
      count: letters.length,
      ...(times.length > 0 ? { firstDeadLetteredAt: times[0], lastDeadLetteredAt: times[times.length - 1] } : {}),
      letters,
    };
  });
  return groups.sort(
    (a, b) => b.count - a.count || (a.firstDeadLetteredAt ?? '').localeCompare(b.firstDeadLetteredAt ?? ''),
  );
};

/**
 * The groups as text, a heading per reason with its count and a line per letter:
 *
 *   3 × permanent DecodeError: value is not valid JSON: …
 *       payments-0@17  dead-lettered 2026-05-01T10:00:00.000Z  would produce to payments (partition 0) with …
 */
export const formatGroups = (groups: readonly ReplayGroup[]): string[] =>
  groups.flatMap((group) => {
    const what =
      group.kind === UNREADABLE ? `${UNREADABLE}: ${group.message}` : `${group.kind} ${group.name}: ${group.message}`;
    return [
      `  ${group.count} × ${what}`,
      ...group.letters.map((letter) => {
        const reason = group.kind === UNREADABLE ? '' : letter.reason ? `  ${letter.reason}` : `  ${letter.outcome}`;
        return `      ${letter.source ?? `message ${letter.messageId}`}  dead-lettered ${letter.deadLetteredAt ?? 'at an unknown time'}${reason}`;
      }),
    ];
  });

// ---- failures, as the CLIs report them -----------------------------------------------------------------------
