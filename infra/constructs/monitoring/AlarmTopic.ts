import { Aws } from 'aws-cdk-lib';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { removalPolicyFor } from '../retention.ts';

export interface AlarmTopicProps {
  /** Subscribes this address; AWS mails a confirmation link first. */
  readonly email?: string;
  readonly retain: boolean;
  /** Every alarm allowed to notify is named with this prefix (the stack's alarm factory names them so). */
  readonly alarmNamePrefix: string;
}

/**
 * The SNS topic every alarm notifies. It is encrypted with its own customer managed key
 * (rotated yearly), because CloudWatch cannot publish to a topic under the AWS managed SNS key.
 * TLS is enforced by the topic policy, and that policy replaces SNS's default one, so it must
 * also allow CloudWatch to publish, or alarms fire with no notification; the key policy lets
 * CloudWatch use the key under the same conditions: this account, and this stack's alarms.
 */
export class AlarmTopic extends Construct {
  readonly topic: sns.Topic;
  readonly action: actions.SnsAction;

  constructor(scope: Construct, id: string, props: AlarmTopicProps) {
    super(scope, id);
    const key = new kms.Key(this, 'Key', {
      enableKeyRotation: true,
      description: 'Encrypts the kafka-lambda-bridge alarm topic',
      removalPolicy: removalPolicyFor(props.retain),
    });
    const cloudwatch = new iam.ServicePrincipal('cloudwatch.amazonaws.com');
    const fromOurAlarms = {
      StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
      ArnLike: {
        'aws:SourceArn': `arn:${Aws.PARTITION}:cloudwatch:${Aws.REGION}:${Aws.ACCOUNT_ID}:alarm:${props.alarmNamePrefix}-*`,
      },
    };
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToUseTheKey',
        principals: [cloudwatch],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: fromOurAlarms,
      }),
    );
    this.topic = new sns.Topic(this, 'Topic', { masterKey: key, enforceSSL: true });
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToPublish',
        principals: [cloudwatch],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: fromOurAlarms,
      }),
    );
    if (props.email) this.topic.addSubscription(new subscriptions.EmailSubscription(props.email));
    this.action = new actions.SnsAction(this.topic);
  }
}
