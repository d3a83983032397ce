import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { removalPolicyFor } from './retention.ts';

export interface BridgeTableProps {
  /** String partition key. */
  readonly partitionKey: string;
  /** Optional string sort key. */
  readonly sortKey?: string;
  /** Epoch-seconds attribute DynamoDB expires items by. */
  readonly timeToLiveAttribute?: string;
  /** Keep the table when the stack goes, with deletion protection on. */
  readonly retain: boolean;
}

/**
 * A bridge DynamoDB table with the defaults every table here shares: on-demand billing,
 * point-in-time recovery, server-side encryption with the AWS managed KMS key, and a
 * retain + deletion protection policy for production data.
 */
export class BridgeTable extends Construct {
  readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: BridgeTableProps) {
    super(scope, id);
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: props.partitionKey, type: dynamodb.AttributeType.STRING },
      ...(props.sortKey ? { sortKey: { name: props.sortKey, type: dynamodb.AttributeType.STRING } } : {}),
      timeToLiveAttribute: props.timeToLiveAttribute,
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      deletionProtection: props.retain,
      removalPolicy: removalPolicyFor(props.retain),
    });
  }
}

/**
 * The idempotency actions the runtime issues (DESIGN §6): batched claims (PartiQL inserts, then a consistent read of
 * the keys found taken), single claims and releases, settlements, the transactional marker.
 */
export const IDEMPOTENCY_ACTIONS = [
  'dynamodb:PartiQLInsert',
  'dynamodb:BatchGetItem',
  'dynamodb:UpdateItem',
  'dynamodb:PutItem',
  'dynamodb:BatchWriteItem',
] as const;

/** The dedupe table: partition key `pk`, TTL on `expiresAt` (DESIGN §6). */
export class IdempotencyTable extends BridgeTable {
  constructor(scope: Construct, id: string, props: { readonly retain: boolean }) {
    super(scope, id, { partitionKey: 'pk', timeToLiveAttribute: 'expiresAt', retain: props.retain });
  }
}
