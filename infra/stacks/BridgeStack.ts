import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { BridgeConfig } from '../config/schema.ts';
import { BridgeRoute } from '../constructs/BridgeRoute.ts';
import { BridgeTable, IdempotencyTable } from '../constructs/BridgeTable.ts';
import { AlarmTopic } from '../constructs/monitoring/AlarmTopic.ts';
import { BridgeAlarmFactory } from '../constructs/monitoring/BridgeAlarmFactory.ts';
import { BridgeDashboard } from '../constructs/monitoring/BridgeDashboard.ts';
import { BridgeMetricFactory } from '../constructs/monitoring/BridgeMetricFactory.ts';
import { RouteMonitoringSegment } from '../constructs/monitoring/RouteMonitoringSegment.ts';

export interface BridgeStackProps extends StackProps {
  readonly config: BridgeConfig;
  /**
   * Keep data (tables, queues, logs) on stack deletion and turn on DynamoDB deletion protection.
   * The app sets it from `config.retainData`, else from the stage (`-c stage=prod`).
   */
  readonly retainData: boolean;
  /** The deployment stage (`-c stage`); part of each route's default consumer group id. */
  readonly stage: string;
  /** Routes deployed without their event source mapping: step 1 of a change the mapping cannot take in place. */
  readonly detachedRoutes?: readonly string[];
}

/** PascalCase construct id from a kebab-case config name. */
export const constructId = (name: string): string =>
  name
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');

/**
 * Everything one bridge config deploys: the idempotency table, the routes' side tables,
 * a function + Kafka event source + dead-letter queue + on-failure destination per route (and a retry
 * queue + SQS event source for a route that parks records), and the alarms, alarm topic and dashboard.
 */
export class BridgeStack extends Stack {
  readonly config: BridgeConfig;
  readonly idempotencyTable: dynamodb.Table;
  readonly tables: ReadonlyMap<string, dynamodb.Table>;
  readonly routes: readonly BridgeRoute[];
  readonly segments: readonly RouteMonitoringSegment[];
  readonly alarmTopic: AlarmTopic;
  readonly dashboard: BridgeDashboard;

  constructor(scope: Construct, id: string, props: BridgeStackProps) {
    super(scope, id, props);
    const { config, retainData } = props;
    this.config = config;

    this.idempotencyTable = new IdempotencyTable(this, 'Idempotency', { retain: retainData }).table;
    const tables = new Map<string, dynamodb.Table>();
    for (const route of config.routes) {
      for (const table of route.tables) {
        const created = new BridgeTable(this, `${constructId(table.name)}Table`, {
          partitionKey: table.partitionKey,
          sortKey: table.sortKey,
          retain: retainData,
        }).table;
        tables.set(table.name, created);
      }
    }
    this.tables = tables;

    const logRetention = config.observability.logRetentionDays as logs.RetentionDays;
    this.routes = config.routes.map(
      (route) =>
        new BridgeRoute(this, `${constructId(route.name)}Route`, {
          config,
          route,
          stage: props.stage,
          idempotencyTable: this.idempotencyTable,
          tables,
          retain: retainData,
          logRetention,
          detached: props.detachedRoutes?.includes(route.name) ?? false,
        }),
    );

    this.alarmTopic = new AlarmTopic(this, 'Alarms', {
      email: config.observability.alarmEmail,
      retain: retainData,
      alarmNamePrefix: this.stackName,
    });
    const alarms = new BridgeAlarmFactory({ alarmNamePrefix: this.stackName, actions: [this.alarmTopic.action] });
    this.segments = this.routes.map(
      (route) =>
        new RouteMonitoringSegment(this, `${constructId(route.route.name)}Monitoring`, {
          route,
          idempotencyTable: this.idempotencyTable,
          metrics: new BridgeMetricFactory({
            namespace: config.observability.namespace,
            period: Duration.minutes(route.route.alarms.periodMinutes),
          }),
          alarms,
          thresholds: route.route.alarms,
        }),
    );
    this.dashboard = new BridgeDashboard(this, 'Dashboard', {
      dashboardName: this.stackName,
      title: `kafka-lambda-bridge · ${config.name} · namespace ${config.observability.namespace}`,
      segments: this.segments,
    });

    new CfnOutput(this, 'IdempotencyTableName', { value: this.idempotencyTable.tableName });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topic.topicArn });
    new CfnOutput(this, 'DashboardName', { value: this.stackName });
    for (const route of this.routes) {
      new CfnOutput(this, `${constructId(route.route.name)}DeadLetterQueueUrl`, {
        value: route.deadLetterQueue.queueUrl,
      });
      new CfnOutput(this, `${constructId(route.route.name)}FunctionName`, { value: route.function.functionName });
      if (route.retryQueue) {
        new CfnOutput(this, `${constructId(route.route.name)}RetryQueueUrl`, {
          value: route.retryQueue.queue.queueUrl,
        });
      }
    }
  }
}
