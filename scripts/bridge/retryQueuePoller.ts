// The SQS event source of a route's retry queue (`retry.park`), as the local bridge runs it: long-polls ElasticMQ,
// hands up to 10 messages to the route's function as an SQS event, and deletes the messages the response does not
// name in batchItemFailures (all of them stay when the invocation fails). What stays comes back after the visibility
// timeout, as with Lambda's SQS event source. The function instance is its own, as an SQS-triggered invocation gets
// an execution environment of its own.
import { DeleteMessageBatchCommand, type Message, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { HandlerHost } from './handlerHost.ts';
import type { RouteStats } from './stats.ts';

export type RetryQueuePollerOptions = {
  readonly queueUrl: string;
  readonly host: HandlerHost;
  readonly sqs: SQSClient;
  readonly stats: RouteStats;
  /** How long a received message stays invisible: the function's timeout and a margin, so it never runs twice at once. */
  readonly visibilityTimeoutSeconds: number;
  readonly log: (line: string) => void;
};

/** Lambda's SQS event source hands over at most 10 messages per invocation by default. */
const BATCH_SIZE = 10;
/** Short enough that a stopping bridge is not kept waiting by a long poll. */
const WAIT_SECONDS = 1;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The event Lambda's SQS event source sends, for the messages received. */
export const sqsEvent = (queueUrl: string, messages: readonly Message[]) => {
  const region = process.env.AWS_REGION ?? 'us-east-1';
  const queueName = queueUrl.split('/').pop() ?? 'retry';
  return {
    Records: messages.map((m) => ({
      messageId: m.MessageId,
      receiptHandle: m.ReceiptHandle,
      body: m.Body,
      attributes: m.Attributes ?? {},
      messageAttributes: m.MessageAttributes ?? {},
      md5OfBody: m.MD5OfBody,
      eventSource: 'aws:sqs',
      eventSourceARN: `arn:aws:sqs:${region}:000000000000:${queueName}`,
      awsRegion: region,
    })),
  };
};

/** The message ids an invocation's result leaves in the queue: those it names, or all when it failed. */
export const messagesToKeep = (
  messages: readonly Message[],
  result: { ok: boolean; response?: unknown },
): Set<string | undefined> => {
  if (!result.ok) return new Set(messages.map((m) => m.MessageId));
  const failures = (result.response as { batchItemFailures?: Array<{ itemIdentifier?: string }> } | null)
    ?.batchItemFailures;
  return new Set((failures ?? []).map((f) => f.itemIdentifier));
};

export class RetryQueuePoller {
  readonly #options: RetryQueuePollerOptions;
  #stopping = false;
  #loop: Promise<void> | undefined;

  constructor(options: RetryQueuePollerOptions) {
    this.#options = options;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async #run(): Promise<void> {
    const { sqs, queueUrl, host, stats, log } = this.#options;
    let failures = 0;
    while (!this.#stopping) {
      let messages: Message[];
      try {
        ({ Messages: messages = [] } = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: BATCH_SIZE,
            WaitTimeSeconds: WAIT_SECONDS,
            VisibilityTimeout: this.#options.visibilityTimeoutSeconds,
            MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
          }),
        ));
        failures = 0;
      } catch (error) {
        failures += 1;
        if (failures === 1 || failures % 20 === 0) log(`retry queue: receiving failed: ${(error as Error).message}`);
        await sleep(Math.min(5_000, 200 * 2 ** Math.min(failures, 5)));
        continue;
      }
      if (messages.length === 0 || this.#stopping) continue;
      stats.invocations += 1;
      const invocation = await host.invoke(sqsEvent(queueUrl, messages));
      stats.addSummary(invocation.summary);
      const keep = messagesToKeep(messages, invocation.result);
      if (keep.size > 0) {
        stats.failedInvocations += 1;
        const why = invocation.result.ok ? 'reported as failed' : (invocation.result.error?.message ?? 'failed');
        log(
          `retry queue: ${keep.size} of ${messages.length} message(s) come again after their visibility timeout (${why})`,
        );
      }
      const done = messages.filter((m) => !keep.has(m.MessageId));
      if (done.length === 0) continue;
      try {
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
          }),
        );
      } catch (error) {
        // They come again and are found settled: duplicates, as with a delete Lambda could not make.
        log(`retry queue: deleting ${done.length} message(s) failed: ${(error as Error).message}`);
      }
    }
  }

  /** Stops receiving; the invocation in flight (if any) finishes first. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#loop;
  }
}
