import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { ParkSettings } from '../../functions/runtime/settings.ts';
import type { RouteConfig } from '../config/schema.ts';
import { BridgeQueue } from './BridgeQueue.ts';

/**
 * Lambda's guidance for an SQS event source (services-sqs-configure): the queue's visibility timeout at least six
 * times the function timeout, so a batch that was throttled or is retried has time to run before SQS shows its
 * messages again. (Lambda also refuses a mapping whose function timeout exceeds the visibility timeout.)
 */
export const VISIBILITY_TIMEOUT_FACTOR = 6;

/**
 * Receives that did not delete a message before SQS moves it to the retry queue's own dead-letter queue. Lambda's
 * guidance is at least 5 (services-sqs-configure): a throttled invocation or a batch the function failed as a whole
 * counts a receive too, and those should not set a message aside. A parked record the function cannot read (not a
 * parked record of this route) is named in `batchItemFailures` every time, so it leaves after these 5 receives.
 */
export const RETRY_QUEUE_MAX_RECEIVE_COUNT = 5;

/**
 * SQS's default. A message stays at most its delay (≤ 900 s) plus `RETRY_QUEUE_MAX_RECEIVE_COUNT` visibility
 * timeouts (at most 5 × 6 × 840 s, 7 hours), so 4 days is a wide margin for a mapping that is disabled or failing;
 * the dead-letter queue behind it keeps 14 days, longer than this as SQS advises, because a standard queue's message
 * keeps its first enqueue time when it is moved.
 */
export const RETRY_QUEUE_RETENTION = Duration.days(4);

/** The most an SQS event source mapping takes per batch without a batching window. */
export const RETRY_BATCH_SIZE = 10;

/**
 * At most this many invocations consume the retry queue at once (the SQS scaling config; 2..1000). Without it Lambda
 * adds up to 300 invocations a minute while messages remain: a backlog parked during an outage would come back on the
 * downstream as a surge the moment it recovers, and take account concurrency from the Kafka side of the same function.
 */
export const RETRY_MAX_CONCURRENCY = 10;

/** What the event source mapping calls with the function's role (with-sqs): nothing else of grantConsumeMessages. */
export const RETRY_CONSUME_ACTIONS = ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'] as const;

/** The visibility timeout of a route's retry queue. */
export const retryVisibilityTimeout = (route: Pick<RouteConfig, 'timeoutSeconds'>): Duration =>
  Duration.seconds(VISIBILITY_TIMEOUT_FACTOR * route.timeoutSeconds);

/**
 * The age of the oldest parked message that means records are stuck in park: the whole schedule (every delay), one
 * function timeout and one alarm period. No single message should wait longer than its own delay plus one invocation,
 * and each stage is a new message; so the queue is not being drained (mapping disabled, throttled, short of
 * concurrency), or a message keeps coming back after its visibility timeout.
 */
export const parkedAgeAlarmSeconds = (
  route: Pick<RouteConfig, 'timeoutSeconds'>,
  park: ParkSettings,
  periodMinutes: number,
): number => park.delaysSeconds.reduce((sum, delay) => sum + delay, 0) + route.timeoutSeconds + periodMinutes * 60;

export interface RetryQueueProps {
  readonly route: RouteConfig;
  readonly park: ParkSettings;
  readonly retain: boolean;
}

/**
 * A route's retry queue (`retry.park`, issue #13): the function parks a record that used up its in-invocation
 * retries here with SQS message timers, and takes it back through an SQS event source mapping that reports
 * `batchItemFailures`. Encrypted and TLS-only like the route's dead-letter queue; what the function cannot take
 * back after `RETRY_QUEUE_MAX_RECEIVE_COUNT` receives moves to the queue's own dead-letter queue.
 */
export class RetryQueue extends Construct {
  readonly queue: sqs.Queue;
  /** Parked messages the function could not take back; SQS's redrive moves them to the retry queue again. */
  readonly deadLetterQueue: sqs.Queue;
  readonly park: ParkSettings;
  #mapping?: lambda.EventSourceMapping;

  constructor(scope: Construct, id: string, props: RetryQueueProps) {
    super(scope, id);
    const { route, park } = props;
    this.park = park;
    const visibilityTimeout = retryVisibilityTimeout(route);
    const longest = Math.max(...park.delaysSeconds) + RETRY_QUEUE_MAX_RECEIVE_COUNT * visibilityTimeout.toSeconds();
    if (RETRY_QUEUE_RETENTION.toSeconds() <= longest) {
      throw new Error(
        `route "${route.name}": a parked message may stay ${longest} s, longer than the retry queue keeps it (${RETRY_QUEUE_RETENTION.toSeconds()} s)`,
      );
    }
    // Parked records go whole, within the route's dead-letter size limit (the runtime's retry sink uses it).
    const maxMessageSizeBytes = route.deadLetter.maxMessageBytes;
    this.deadLetterQueue = new BridgeQueue(this, 'DeadLetterQueue', {
      maxMessageSizeBytes,
      retain: props.retain,
    }).queue;
    this.queue = new BridgeQueue(this, 'Queue', {
      maxMessageSizeBytes,
      retain: props.retain,
      retentionPeriod: RETRY_QUEUE_RETENTION,
      visibilityTimeout,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: RETRY_QUEUE_MAX_RECEIVE_COUNT },
    }).queue;
  }

  /** The SQS event source mapping, once `attach` made it. */
  get mapping(): lambda.EventSourceMapping | undefined {
    return this.#mapping;
  }

  /**
   * Lets `fn` park records here (SendMessage, which also authorises SendMessageBatch) and consume them back through
   * an SQS event source mapping, with exactly the actions the mapping needs. The queue is under SQS-managed keys,
   * so there is no KMS key to grant.
   */
  attach(fn: lambda.IFunction): lambda.EventSourceMapping {
    if (this.#mapping) throw new Error('the retry queue is already attached');
    this.queue.grant(fn, 'sqs:SendMessage');
    this.queue.grant(fn, ...RETRY_CONSUME_ACTIONS);
    this.#mapping = new lambda.EventSourceMapping(this, 'EventSource', {
      target: fn,
      eventSourceArn: this.queue.queueArn,
      batchSize: RETRY_BATCH_SIZE,
      // A parked record has waited its delay already; gathering more would only add latency.
      maxBatchingWindow: Duration.seconds(0),
      reportBatchItemFailures: true,
      maxConcurrency: RETRY_MAX_CONCURRENCY,
    });
    return this.#mapping;
  }
}
