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
}

/**
 * The SNS topic every alarm notifies. It is encrypted with its own customer managed key
 * (rotated yearly), because CloudWatch cannot publish to a topic under the AWS managed SNS key;
 * the key policy lets CloudWatch use it. TLS is enforced by the topic policy.
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
    key.grant(new iam.ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
    this.topic = new sns.Topic(this, 'Topic', { masterKey: key, enforceSSL: true });
    if (props.email) this.topic.addSubscription(new subscriptions.EmailSubscription(props.email));
    this.action = new actions.SnsAction(this.topic);
  }
}
