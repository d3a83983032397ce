import { Match } from 'aws-cdk-lib/assertions';
import { RouteSettings } from '../../functions/runtime/settings.ts';
import { actionsOf, CLUSTER_ARN, policyStatements, SECRET_ARN, SECRET_KEY_ARN, synthBridge } from './helpers.ts';
import { ROOT_CA_ARN, VARIANTS } from './variants.ts';

const CLUSTER_PATH = 'events/abcd1234-abcd-cafe-abab-9876543210ab-4';
const allActions = (statements: ReturnType<typeof policyStatements>) => statements.flatMap(actionsOf);

describe('a self-managed cluster with SASL/SCRAM-512 in a VPC', () => {
  const { template } = synthBridge(VARIANTS.selfManagedScram512Vpc);

  test('the ESM names the brokers, the secret, the root CA, the subnets and the security group', () => {
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 2);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: Match.absent(),
      SelfManagedEventSource: {
        Endpoints: { KafkaBootstrapServers: ['b-1.kafka.internal:9096', 'b-2.kafka.internal:9096'] },
      },
      SelfManagedKafkaEventSourceConfig: { ConsumerGroupId: 'self-managed-test-orders' },
      Topics: ['orders'],
      SourceAccessConfigurations: [
        { Type: 'SASL_SCRAM_512_AUTH', URI: SECRET_ARN },
        { Type: 'SERVER_ROOT_CA_CERTIFICATE', URI: ROOT_CA_ARN },
        { Type: 'VPC_SUBNET', URI: 'subnet:subnet-0aaa' },
        { Type: 'VPC_SUBNET', URI: 'subnet:subnet-0bbb' },
        { Type: 'VPC_SECURITY_GROUP', URI: 'security_group:sg-0ccc' },
      ],
    });
  });

  test('secretsmanager:GetSecretValue on the configured secrets only; no MSK permissions', () => {
    const statements = policyStatements(template);
    const secretStatements = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('secretsmanager:')));
    expect(secretStatements.length).toBe(2);
    for (const statement of secretStatements) {
      expect(actionsOf(statement)).toEqual(['secretsmanager:GetSecretValue']);
      expect(statement.Resource).toEqual([SECRET_ARN, ROOT_CA_ARN]);
    }
    expect(allActions(statements).filter((a) => a.startsWith('kafka'))).toEqual([]);
    expect(allActions(statements)).toContain('ec2:CreateNetworkInterface');
  });
});

describe('a provisioned-mode route with partial batch responses and ESM retries', () => {
  const { template, stack } = synthBridge(VARIANTS.provisionedRetries);

  test('the ESM carries the pollers and the retry options', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      Topics: ['orders'],
      BatchSize: 1000,
      MaximumBatchingWindowInSeconds: 5,
      ProvisionedPollerConfig: { MinimumPollers: 2, MaximumPollers: 10 },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      MaximumRetryAttempts: 1000,
      MaximumRecordAgeInSeconds: 7200,
      BisectBatchOnFunctionError: true,
    });
    // The on-demand route keeps none of them.
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      Topics: ['payments'],
      ProvisionedPollerConfig: Match.absent(),
      FunctionResponseTypes: Match.absent(),
      MaximumRetryAttempts: Match.absent(),
    });
  });

  test('the runtime is told to answer with a partial batch response', () => {
    const orders = stack.routes.find((r) => r.route.name === 'orders');
    const fn = template.toJSON().Resources[stack.getLogicalId(orders?.function.node.defaultChild as never)];
    const settings = RouteSettings.parse(JSON.parse(fn.Properties.Environment.Variables.BRIDGE_ROUTE_SETTINGS));
    expect(settings).toMatchObject({
      partialBatchResponse: true,
      partitionConcurrency: 8,
      retry: { maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 1000 },
    });
  });
});

describe('MSK authentication modes', () => {
  test('mTLS: the client certificate secret, and no IAM data-plane actions', () => {
    const { template } = synthBridge(VARIANTS.mskMtls);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: CLUSTER_ARN,
      SourceAccessConfigurations: [{ Type: 'CLIENT_CERTIFICATE_TLS_AUTH', URI: SECRET_ARN }],
    });
    const actions = allActions(policyStatements(template));
    expect(actions).toContain('secretsmanager:GetSecretValue');
    expect(actions.filter((a) => a.startsWith('kafka-cluster:'))).toEqual([]);
  });

  test('SASL/SCRAM-512: the credentials secret, and its customer managed key, decrypted through Secrets Manager only', () => {
    const { template } = synthBridge(VARIANTS.mskScram512);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      SourceAccessConfigurations: [{ Type: 'SASL_SCRAM_512_AUTH', URI: SECRET_ARN }],
    });
    const decrypt = policyStatements(template).filter((s) => s.Action === 'kms:Decrypt');
    expect(decrypt).toHaveLength(2);
    for (const statement of decrypt) {
      expect(statement).toMatchObject({
        Effect: 'Allow',
        Resource: SECRET_KEY_ARN,
        Condition: { StringEquals: { 'kms:ViaService': 'secretsmanager.eu-west-1.amazonaws.com' } },
      });
    }
  });
});

test('a Confluent registry: its credentials, and their key decrypted through Secrets Manager only', () => {
  const { template } = synthBridge(VARIANTS.confluentRegistry);
  const statements = policyStatements(template);
  expect(statements.filter((s) => s.Action === 'secretsmanager:GetSecretValue').map((s) => s.Resource)).toContain(
    SECRET_ARN,
  );
  expect(statements.filter((s) => s.Action === 'kms:Decrypt')).toEqual([
    expect.objectContaining({
      Resource: SECRET_KEY_ARN,
      Condition: { StringEquals: { 'kms:ViaService': 'secretsmanager.eu-west-1.amazonaws.com' } },
    }),
  ]);
});

describe('on-failure destinations and other ESM options', () => {
  test('SNS: an encrypted topic the function may publish to; filters become filter criteria', () => {
    const { template } = synthBridge(VARIANTS.onFailureSns);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      Topics: ['orders'],
      DestinationConfig: { OnFailure: { Destination: { Ref: Match.stringLikeRegexp('FailedInvocations') } } },
      FilterCriteria: { Filters: [{ Pattern: JSON.stringify({ value: { status: ['PAID'] } }) }] },
    });
    template.resourcePropertiesCountIs('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() }, 2);
    expect(allActions(policyStatements(template))).toContain('sns:Publish');
  });

  test('S3: a private, encrypted bucket; PutObject on its objects and ListBucket on it', () => {
    const { template } = synthBridge(VARIANTS.onFailureS3);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      Topics: ['orders'],
      StartingPosition: 'AT_TIMESTAMP',
      StartingPositionTimestamp: 1_700_000_000,
      DestinationConfig: {
        OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('FailedInvocations'), 'Arn'] } },
      },
    });
    template.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
    });
    const s3Actions = allActions(policyStatements(template)).filter((a) => a.startsWith('s3:'));
    expect(s3Actions.sort()).toEqual(['s3:ListBucket', 's3:PutObject']);
  });

  test('a Kafka topic: kafka:// destination, WriteData on that topic only, and a Glue schema registry', () => {
    const { template } = synthBridge(VARIANTS.onFailureKafkaTopic);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      Topics: ['orders'],
      DestinationConfig: { OnFailure: { Destination: 'kafka://orders-dlt' } },
      AmazonManagedKafkaEventSourceConfig: {
        ConsumerGroupId: 'bridge-test-test-orders',
        SchemaRegistryConfig: {
          SchemaRegistryURI: 'arn:aws:glue:eu-west-1:111122223333:registry/events',
          EventRecordFormat: 'SOURCE',
          SchemaValidationConfigs: [{ Attribute: 'VALUE' }],
        },
      },
    });
    const write = policyStatements(template).filter((s) => actionsOf(s).includes('kafka-cluster:WriteData'));
    expect(write).toHaveLength(1);
    expect(write[0]?.Resource).toBe(`arn:aws:kafka:eu-west-1:111122223333:topic/${CLUSTER_PATH}/orders-dlt`);
    // No SQS on-failure queue for this route, so no FailedInvocations alarm.
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).filter((a) =>
      String((a as { Properties: { AlarmName: string } }).Properties.AlarmName).includes('-orders-'),
    );
    expect(alarms).toHaveLength(12);
  });
});

describe("a handler's own schema registry (functions/runtime/registry)", () => {
  const environment = (template: ReturnType<typeof synthBridge>['template']) => {
    const fn = Object.values(template.findResources('AWS::Lambda::Function')).find(
      (f) =>
        (f as { Properties: { Environment: { Variables: Record<string, unknown> } } }).Properties.Environment.Variables
          .BRIDGE_ROUTE === 'orders',
    ) as { Properties: { Environment: { Variables: Record<string, unknown> } } };
    return fn.Properties.Environment.Variables;
  };

  test('Confluent-compatible: its URL and credentials secret in the environment; GetSecretValue on that secret, the key only through Secrets Manager', () => {
    const { template } = synthBridge(VARIANTS.runtimeConfluentRegistry);
    expect(environment(template)).toMatchObject({
      SCHEMA_REGISTRY_URL: 'https://registry.example.com/apis/ccompat/v7',
      SCHEMA_REGISTRY_SECRET_ARN: SECRET_ARN,
    });
    const statements = policyStatements(template);
    const secret = statements.filter((s) => actionsOf(s).includes('secretsmanager:GetSecretValue'));
    expect(secret.map((s) => s.Resource)).toEqual([SECRET_ARN]);
    const decrypt = statements.filter((s) => actionsOf(s).includes('kms:Decrypt'));
    expect(decrypt).toEqual([
      expect.objectContaining({
        Resource: SECRET_KEY_ARN,
        Condition: { StringEquals: { 'kms:ViaService': 'secretsmanager.eu-west-1.amazonaws.com' } },
      }),
    ]);
  });

  test('Glue: its ARN in the environment, and GetSchemaVersion on the registry and its schemas only', () => {
    const { template } = synthBridge(VARIANTS.runtimeGlueRegistry);
    expect(environment(template)).toMatchObject({
      GLUE_REGISTRY_ARN: 'arn:aws:glue:eu-west-1:111122223333:registry/events',
    });
    expect(environment(template).SCHEMA_REGISTRY_URL).toBeUndefined();
    const glue = policyStatements(template).filter((s) => actionsOf(s).some((a) => a.startsWith('glue:')));
    expect(glue).toEqual([
      expect.objectContaining({
        Action: 'glue:GetSchemaVersion',
        Resource: [
          'arn:aws:glue:eu-west-1:111122223333:registry/events',
          'arn:aws:glue:eu-west-1:111122223333:schema/events/*',
        ],
      }),
    ]);
  });
});
