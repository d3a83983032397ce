import { SendMessageBatchCommand, type SendMessageBatchRequestEntry, type SQSClient } from '@aws-sdk/client-sqs';
import { DeadLetterError } from '../errors.ts';
import { backoffDelay, sleep } from '../retry.ts';
import type { DeadLetterSink } from './DeadLetterSink.ts';
import {
  type DeadLetterEnvelope,
  type FittedEnvelope,
  fitEnvelope,
  fitLastResort,
  messageAttributes,
} from './envelope.ts';

/** SendMessageBatch takes at most 10 entries. */
export const SQS_BATCH_ENTRIES = 10;
const FAILED_ENTRY_RETRIES = 5;
const FAILED_ENTRY_BACKOFF = { baseDelayMs: 50, maxDelayMs: 1_000 };

type Pending = {
  entry: SendMessageBatchRequestEntry;
  envelope: DeadLetterEnvelope;
  bytes: number;
  /** Set once SQS refused the full envelope as the sender's fault and the last-resort form went instead. */
  lastResort?: boolean;
  resolve: () => void;
  reject: (error: unknown) => void;
};

export type SqsDeadLetterSinkOptions = {
  client: SQSClient;
  queueUrl: string;
  maxMessageBytes: number;
  /**
   * Set for the route's retry queue (`retry.park`): each message waits the delay of its stage, and goes whole or not
   * at all, since the record is run again from it.
   */
  retryDelaysSeconds?: readonly number[];
};

/**
 * Buffers dead letters and sends them with SendMessageBatch: at most 10 entries and at
 * most `maxMessageBytes` per call (SQS limits the batch's total size, not only each
 * message's). Entries reported as Failed are retried with backoff.
 */
export class SqsDeadLetterSink implements DeadLetterSink {
  readonly #client: SQSClient;
  readonly #queueUrl: string;
  readonly #maxBytes: number;
  #buffer: Pending[] = [];
  #bufferedBytes = 0;
  readonly #inFlight = new Set<Promise<void>>();
  #sequence = 0;
  readonly #retryDelays: readonly number[] | undefined;

  constructor(options: SqsDeadLetterSinkOptions) {
    this.#client = options.client;
    this.#queueUrl = options.queueUrl;
    this.#maxBytes = options.maxMessageBytes;
    this.#retryDelays = options.retryDelaysSeconds;
  }

  /** Whether the envelope goes whole within the size limit: a record parked in the retry queue must. */
  fitsWhole(envelope: DeadLetterEnvelope): boolean {
    return !fitEnvelope(envelope, this.#maxBytes).envelope.record.truncated;
  }

  send(envelope: DeadLetterEnvelope, delaySeconds?: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // Inside the executor, so an envelope that cannot fit rejects like any failed send.
      const fitted = fitEnvelope(envelope, this.#maxBytes);
      if (this.#retryDelays && fitted.envelope.record.truncated)
        throw new DeadLetterError('a parked record must go to the retry queue whole, and this one does not fit');
      if (this.#bufferedBytes + fitted.bytes > this.#maxBytes) this.#sendBuffered();
      this.#buffer.push({
        entry: entryOf(String(this.#sequence++), fitted, delaySeconds ?? this.#delayOf(envelope)),
        envelope,
        bytes: fitted.bytes,
        resolve,
        reject,
      });
      this.#bufferedBytes += fitted.bytes;
      if (this.#buffer.length >= SQS_BATCH_ENTRIES) this.#sendBuffered();
    });
  }

  #delayOf(envelope: DeadLetterEnvelope): number | undefined {
    const stage = envelope.parked?.stage;
    return this.#retryDelays && stage !== undefined ? this.#retryDelays[stage] : undefined;
  }

  async flush(): Promise<void> {
    this.#sendBuffered();
    while (this.#inFlight.size > 0) await Promise.allSettled(this.#inFlight);
  }

  #sendBuffered(): void {
    const batch = this.#buffer;
    if (batch.length === 0) return;
    this.#buffer = [];
    this.#bufferedBytes = 0;
    const sending = this.#sendBatch(batch).finally(() => this.#inFlight.delete(sending));
    this.#inFlight.add(sending);
  }

  async #sendBatch(batch: Pending[]): Promise<void> {
    let remaining = batch;
    for (let attempt = 1; remaining.length > 0; attempt++) {
      let failedIds: Map<string, { reason: string; sender: boolean | undefined }>;
      try {
        const result = await this.#client.send(
          new SendMessageBatchCommand({ QueueUrl: this.#queueUrl, Entries: remaining.map((p) => p.entry) }),
        );
        failedIds = new Map(
          (result.Failed ?? []).map((f) => [
            f.Id ?? '',
            { reason: `${f.Code}: ${f.Message ?? ''}`, sender: f.SenderFault },
          ]),
        );
      } catch (error) {
        const failure = new DeadLetterError(`dead-letter queue unreachable: ${(error as Error).message}`, {
          cause: error,
        });
        for (const pending of remaining) pending.reject(failure);
        return;
      }
      const retry: Pending[] = [];
      for (const pending of remaining) {
        const failed = failedIds.get(pending.entry.Id ?? '');
        if (failed === undefined) pending.resolve();
        else if (failed.sender && !pending.lastResort && !this.#retryDelays) {
          // SQS will refuse these bytes every time; the smallest envelope still names the record, so it goes instead.
          retry.push({
            ...pending,
            entry: entryOf(pending.entry.Id ?? '', fitLastResort(pending.envelope)),
            lastResort: true,
          });
        } else if (attempt >= FAILED_ENTRY_RETRIES) {
          pending.reject(new DeadLetterError(`dead-letter queue refused a message ${attempt} times: ${failed.reason}`));
        } else retry.push(pending);
      }
      remaining = retry;
      if (remaining.length > 0) await sleep(backoffDelay(attempt, FAILED_ENTRY_BACKOFF));
    }
  }
}

const entryOf = (id: string, fitted: FittedEnvelope, delaySeconds?: number): SendMessageBatchRequestEntry => ({
  Id: id,
  MessageBody: fitted.body,
  MessageAttributes: messageAttributes(fitted.envelope),
  ...(delaySeconds ? { DelaySeconds: delaySeconds } : {}),
});
