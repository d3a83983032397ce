import { type CfnResource, Validations } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { IConstruct } from 'constructs';
import type { BridgeStack } from './stacks/BridgeStack.ts';

/** Fully qualified cdk-nag rule id, as `Validations.of().acknowledge()` matches it. */
const rule = (id: string) => `AwsSolutions::AwsSolutions-${id}`;

const acknowledge = (scope: IConstruct, id: string, reason: string) =>
  Validations.of(scope).acknowledge({ id: rule(id), reason });

/** The reasons, in one place so the README and the report can quote them. */
export const NAG_REASONS = {
  sqs3DeadLetter:
    'This queue is itself the route dead-letter queue: the runtime writes permanently failed records here (DESIGN §7) and `npm run replay` drains it. A DLQ behind it adds nothing.',
  sqs3FailedInvocations:
    'This queue is the event source mapping on-failure destination; nothing consumes it automatically, so a redrive DLQ behind it would never be used. It is alarmed on visible messages.',
  iam5Eni:
    'ec2:Describe* and ec2:CreateNetworkInterface/DeleteNetworkInterface do not support resource-level permissions; the Kafka event source mapping needs them to reach brokers inside the VPC (the same actions as AWSLambdaMSKExecutionRole, without its kafka:* and logs:* wildcards).',
  iam5KmsGenerateDataKey:
    'sns grantPublish on a KMS-encrypted topic grants kms:GenerateDataKey* on that topic key only; the wildcard covers the GenerateDataKey variants SNS calls.',
  iam5BucketObjects:
    'Lambda writes failed-invocation records under keys it generates, so s3:PutObject is scoped to the objects of this one bucket.',
  iam5GlueSchemas:
    'Lambda reads whichever schema versions the records reference; glue:GetSchemaVersion is scoped to the schemas of the one configured registry.',
  s1AccessLogs:
    'The on-failure bucket receives only Lambda-generated failure records; access is already audited by CloudTrail data events if enabled, and a second logging bucket would itself need an exemption.',
} as const;

/**
 * Acknowledges, each with its reason, the cdk-nag AwsSolutions findings the design accepts.
 * Every acknowledgment targets the one construct it is about, never the whole stack, so a
 * new finding elsewhere still fails `npm run synth`.
 */
export const acknowledgeNagFindings = (stack: BridgeStack): void => {
  for (const route of stack.routes) {
    acknowledge(route.deadLetterQueue, 'SQS3', NAG_REASONS.sqs3DeadLetter);
    if (route.failureQueue) acknowledge(route.failureQueue, 'SQS3', NAG_REASONS.sqs3FailedInvocations);
    // A route's retry queue has a redrive (SQS3), and its own dead-letter queue is one (cdk-nag sees it so): neither
    // needs an acknowledgment.

    const role = route.function.executionRole;
    const source = stack.config.source;
    if (source.kind === 'msk' || source.vpc) acknowledge(role, 'IAM5[Resource::*]', NAG_REASONS.iam5Eni);

    for (const registry of [route.route.eventSource.schemaRegistry, route.route.registry]) {
      if (registry?.kind !== 'glue') continue;
      const schemas = `${registry.registryArn.replace(':registry/', ':schema/')}/*`;
      acknowledge(role, `IAM5[Resource::${schemas}]`, NAG_REASONS.iam5GlueSchemas);
    }

    const onFailure = route.route.eventSource.onFailure;
    if (onFailure === 'sns')
      acknowledge(role, 'IAM5[Action::kms:GenerateDataKey*]', NAG_REASONS.iam5KmsGenerateDataKey);
    if (onFailure === 's3') {
      const bucket = route.node.findAll().find((c): c is s3.Bucket => c instanceof s3.Bucket);
      if (bucket) {
        const logicalId = stack.getLogicalId(bucket.node.defaultChild as CfnResource);
        acknowledge(role, `IAM5[Resource::<${logicalId}.Arn>/*]`, NAG_REASONS.iam5BucketObjects);
        acknowledge(bucket, 'S1', NAG_REASONS.s1AccessLogs);
      }
    }
  }
};
