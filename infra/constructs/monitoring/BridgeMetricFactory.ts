import type { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { MetricName } from '../../../functions/runtime/metrics.ts';

/** The EMF metric names the runtime publishes (DESIGN §8), re-exported for the infra. */
export { MetricName };

/** Event source mapping metrics for Kafka, by `MetricsConfig` group (monitoring-metrics-types). */
export const EsmMetricName = {
  PolledEventCount: 'PolledEventCount',
  FilteredOutEventCount: 'FilteredOutEventCount',
  InvokedEventCount: 'InvokedEventCount',
  FailedInvokeEventCount: 'FailedInvokeEventCount',
  DroppedEventCount: 'DroppedEventCount',
  OnFailureDestinationDeliveredEventCount: 'OnFailureDestinationDeliveredEventCount',
  CommittedEventCount: 'CommittedEventCount',
  PollingErrorCount: 'PollingErrorCount',
  InvokeErrorCount: 'InvokeErrorCount',
  CommitErrorCount: 'CommitErrorCount',
  SchemaRegistryErrorCount: 'SchemaRegistryErrorCount',
  OnFailureDestinationDeliveryErrorCount: 'OnFailureDestinationDeliveryErrorCount',
  MaxOffsetLag: 'MaxOffsetLag',
} as const;
export type EsmMetricName = (typeof EsmMetricName)[keyof typeof EsmMetricName];

/**
 * The whole `ErrorCount` group. `InvokeErrorCount` counts the times Lambda failed to invoke the function: a throttle
 * or another invocation error is recorded neither as `Invocations` nor as `Errors` (monitoring-metrics-types), so the
 * function's own Errors alarm never sees it.
 */
const ESM_ERROR_METRICS: readonly EsmMetricName[] = [
  EsmMetricName.PollingErrorCount,
  EsmMetricName.InvokeErrorCount,
  EsmMetricName.CommitErrorCount,
  EsmMetricName.SchemaRegistryErrorCount,
  EsmMetricName.OnFailureDestinationDeliveryErrorCount,
];

/** The one dimension the runtime's metrics carry: no per-partition dimensions (cardinality). */
export const ROUTE_DIMENSION = 'Route';

export interface BridgeMetricFactoryProps {
  /** The CloudWatch namespace the runtime publishes to. */
  readonly namespace: string;
  readonly period: Duration;
}

/**
 * Layer 1 of the monitoring (after cdk-monitoring-constructs): builds metrics and nothing else.
 * Bridge metrics live in the configured namespace with the dimension set `[Route]`; the
 * AWS/Lambda, AWS/SQS and AWS/DynamoDB metrics come from the resources' own helpers.
 */
export class BridgeMetricFactory {
  readonly namespace: string;
  readonly period: Duration;

  constructor(props: BridgeMetricFactoryProps) {
    this.namespace = props.namespace;
    this.period = props.period;
  }

  /** A count the runtime emits per invocation, summed per period. */
  routeCount(route: string, name: string, label?: string): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: this.namespace,
      metricName: name,
      dimensionsMap: { [ROUTE_DIMENSION]: route },
      statistic: cloudwatch.Stats.SUM,
      period: this.period,
      label: label ?? name,
    });
  }

  /** A gauge the runtime emits per invocation, such as `BreakerState`: its worst (maximum) value per period. */
  routeGauge(route: string, name: string, label?: string): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: this.namespace,
      metricName: name,
      dimensionsMap: { [ROUTE_DIMENSION]: route },
      statistic: cloudwatch.Stats.MAXIMUM,
      period: this.period,
      label: label ?? `${name} (max)`,
    });
  }

  /** A millisecond timing at a percentile, such as `p99`. */
  routeTiming(route: string, name: string, statistic: string): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: this.namespace,
      metricName: name,
      dimensionsMap: { [ROUTE_DIMENSION]: route },
      statistic,
      period: this.period,
      unit: cloudwatch.Unit.MILLISECONDS,
      label: `${name} ${statistic}`,
    });
  }

  /** How far the consumer group trails the topic; MAX, as cdk-monitoring-constructs does for Kafka. */
  offsetLag(fn: lambda.IFunction): cloudwatch.Metric {
    return fn.metric('OffsetLag', {
      statistic: cloudwatch.Stats.MAXIMUM,
      period: this.period,
      label: 'OffsetLag (max)',
    });
  }

  errors(fn: lambda.IFunction): cloudwatch.Metric {
    return fn.metricErrors({ statistic: cloudwatch.Stats.SUM, period: this.period, label: 'Errors' });
  }

  throttles(fn: lambda.IFunction): cloudwatch.Metric {
    return fn.metricThrottles({ statistic: cloudwatch.Stats.SUM, period: this.period, label: 'Throttles' });
  }

  duration(fn: lambda.IFunction, statistic: string): cloudwatch.Metric {
    return fn.metricDuration({ statistic, period: this.period, label: `Duration ${statistic}` });
  }

  invocations(fn: lambda.IFunction): cloudwatch.Metric {
    return fn.metricInvocations({ statistic: cloudwatch.Stats.SUM, period: this.period, label: 'Invocations' });
  }

  /**
   * A metric of the event source mapping itself (its `MetricsConfig`), in AWS/Lambda by `EventSourceMappingUUID`
   * (monitoring-metrics-types). Error counts are emitted only when an error happens: no data means none.
   */
  eventSourceMapping(mapping: lambda.IEventSourceMapping, name: EsmMetricName, label?: string): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/Lambda',
      metricName: name,
      dimensionsMap: { EventSourceMappingUUID: mapping.eventSourceMappingId },
      statistic: cloudwatch.Stats.SUM,
      period: this.period,
      label: label ?? name,
    });
  }

  /** The mapping's own failures to poll, invoke, commit, reach the schema registry or deliver to its destination, summed. */
  eventSourceErrors(mapping: lambda.IEventSourceMapping): cloudwatch.MathExpression {
    return this.#sum(
      Object.fromEntries(ESM_ERROR_METRICS.map((name, i) => [`e${i}`, this.eventSourceMapping(mapping, name)])),
      'ESM errors',
    );
  }

  queueVisible(queue: sqs.IQueue, label: string): cloudwatch.Metric {
    return queue.metricApproximateNumberOfMessagesVisible({
      statistic: cloudwatch.Stats.MAXIMUM,
      period: this.period,
      label,
    });
  }

  /** Messages sent with a delay (the retry queue's timers) that are not yet visible. */
  queueDelayed(queue: sqs.IQueue, label: string): cloudwatch.Metric {
    return queue.metricApproximateNumberOfMessagesDelayed({
      statistic: cloudwatch.Stats.MAXIMUM,
      period: this.period,
      label,
    });
  }

  /** Messages received and not yet deleted: in an invocation, or waiting out their visibility timeout. */
  queueInFlight(queue: sqs.IQueue, label: string): cloudwatch.Metric {
    return queue.metricApproximateNumberOfMessagesNotVisible({
      statistic: cloudwatch.Stats.MAXIMUM,
      period: this.period,
      label,
    });
  }

  queueOldestAge(queue: sqs.IQueue, label: string): cloudwatch.Metric {
    return queue.metricApproximateAgeOfOldestMessage({
      statistic: cloudwatch.Stats.MAXIMUM,
      period: this.period,
      label,
    });
  }

  tableConsumed(table: dynamodb.ITable, label: string): cloudwatch.Metric[] {
    return [
      table.metricConsumedReadCapacityUnits({
        statistic: cloudwatch.Stats.SUM,
        period: this.period,
        label: `${label} RCU`,
      }),
      table.metricConsumedWriteCapacityUnits({
        statistic: cloudwatch.Stats.SUM,
        period: this.period,
        label: `${label} WCU`,
      }),
    ];
  }

  /**
   * Read and write throttle events summed over several tables. Alarm math takes at most
   * 10 metrics, so at most 5 tables.
   */
  tablesThrottled(
    tables: ReadonlyArray<{ readonly table: dynamodb.ITable; readonly label: string }>,
  ): cloudwatch.MathExpression {
    if (tables.length === 0 || tables.length > 5)
      throw new Error(`tablesThrottled takes 1..5 tables, got ${tables.length}`);
    const usingMetrics: Record<string, cloudwatch.IMetric> = {};
    tables.forEach(({ table }, i) => {
      usingMetrics[`r${i}`] = table.metric('ReadThrottleEvents', {
        statistic: cloudwatch.Stats.SUM,
        period: this.period,
      });
      usingMetrics[`w${i}`] = table.metric('WriteThrottleEvents', {
        statistic: cloudwatch.Stats.SUM,
        period: this.period,
      });
    });
    return this.#sum(usingMetrics, 'Throttled requests');
  }

  /** The metrics' sum per period, a missing data point counting as 0. */
  #sum(usingMetrics: Record<string, cloudwatch.IMetric>, label: string): cloudwatch.MathExpression {
    return new cloudwatch.MathExpression({
      expression: Object.keys(usingMetrics)
        .map((id) => `FILL(${id}, 0)`)
        .join(' + '),
      usingMetrics,
      period: this.period,
      label,
    });
  }
}
