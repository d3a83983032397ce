import { Duration } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { removalPolicyFor } from './retention.ts';

export interface BridgeQueueProps {
  /** @default 256 KiB, which every SQS queue accepts */
  readonly maxMessageSizeBytes?: number;
  readonly retain: boolean;
  /** @default 14 days, the longest SQS offers */
  readonly retentionPeriod?: Duration;
  /** For a queue a Lambda event source consumes. @default 30 seconds (SQS's default) */
  readonly visibilityTimeout?: Duration;
  /** Where SQS moves a message after `maxReceiveCount` receives that did not delete it. */
  readonly deadLetterQueue?: sqs.DeadLetterQueue;
}

/**
 * A queue that holds failed records: SSE with SQS-managed keys, TLS enforced by the queue
 * policy, and the longest retention SQS offers (14 days), so an operator has time to replay.
 * The route's retry queue is one too, with a shorter retention, a visibility timeout and a redrive.
 */
export class BridgeQueue extends Construct {
  readonly queue: sqs.Queue;

  constructor(scope: Construct, id: string, props: BridgeQueueProps) {
    super(scope, id);
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: props.retentionPeriod ?? Duration.days(14),
      maxMessageSizeBytes: Math.max(256 * 1024, props.maxMessageSizeBytes ?? 0),
      removalPolicy: removalPolicyFor(props.retain),
      ...(props.visibilityTimeout && { visibilityTimeout: props.visibilityTimeout }),
      ...(props.deadLetterQueue && { deadLetterQueue: props.deadLetterQueue }),
    });
  }
}

/**
 * An SQS on-failure destination for an event source mapping that grants only `sqs:SendMessage`
 * (the L2 `SqsDlq` also grants GetQueueAttributes and GetQueueUrl, which Lambda does not need).
 */
export class SendOnlySqsDestination implements lambda.IEventSourceDlq {
  readonly #queue: sqs.IQueue;

  constructor(queue: sqs.IQueue) {
    this.#queue = queue;
  }

  bind(_target: lambda.IEventSourceMapping, targetHandler: lambda.IFunction): lambda.DlqDestinationConfig {
    this.#queue.grant(targetHandler, 'sqs:SendMessage');
    return { destination: this.#queue.queueArn };
  }
}
