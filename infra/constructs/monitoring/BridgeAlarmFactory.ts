import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { Construct } from 'constructs';

/** Alarm severities, highest first; alarm props are maps keyed by them. */
export const Severity = { Critical: 'Critical', Warning: 'Warning' } as const;
export type Severity = (typeof Severity)[keyof typeof Severity];

export interface ThresholdAlarmProps {
  readonly threshold: number;
  /** @default GREATER_THAN_THRESHOLD */
  readonly comparisonOperator?: cloudwatch.ComparisonOperator;
  /** @default 1 */
  readonly evaluationPeriods?: number;
  /** @default evaluationPeriods */
  readonly datapointsToAlarm?: number;
  /** @default NOT_BREACHING: no data means nothing happened */
  readonly treatMissingData?: cloudwatch.TreatMissingData;
}

/** For example `{ Critical: { threshold: 0 } }` or `{ Warning: {...}, Critical: {...} }`. */
export type SeverityAlarms = { readonly [S in Severity]?: ThresholdAlarmProps };

export interface BridgeAlarmFactoryProps {
  /** Prefixes every alarm name, such as the stack name. */
  readonly alarmNamePrefix: string;
  /** Where alarms go when they fire and recover. */
  readonly actions: readonly cloudwatch.IAlarmAction[];
}

/**
 * A metric without its dashboard label, so the alarm renders as a plain single-metric alarm
 * (MetricName/Namespace/Dimensions) rather than as a metric-math query.
 */
const forAlarm = (metric: cloudwatch.IMetric): cloudwatch.IMetric =>
  metric instanceof cloudwatch.Metric
    ? new cloudwatch.Metric({
        namespace: metric.namespace,
        metricName: metric.metricName,
        dimensionsMap: metric.dimensions as Record<string, string> | undefined,
        statistic: metric.statistic,
        period: metric.period,
        unit: metric.unit,
      })
    : metric;

/** Layer 2: turns thresholds into alarms, named and wired to the notification actions. */
export class BridgeAlarmFactory {
  readonly #props: BridgeAlarmFactoryProps;

  constructor(props: BridgeAlarmFactoryProps) {
    this.#props = props;
  }

  /**
   * One alarm per severity in `alarms`, each named `<prefix>-<subject>-<kind>-<severity>`.
   * The construct ids are `<kind><severity>` under `scope`.
   */
  addAlarms(
    scope: Construct,
    subject: string,
    kind: string,
    metric: cloudwatch.IMetric,
    alarms: SeverityAlarms,
    description: string,
  ): cloudwatch.Alarm[] {
    return (Object.entries(alarms) as Array<[Severity, ThresholdAlarmProps]>).map(([severity, props]) => {
      const evaluationPeriods = props.evaluationPeriods ?? 1;
      const alarm = new cloudwatch.Alarm(scope, `${kind}${severity}`, {
        alarmName: `${this.#props.alarmNamePrefix}-${subject}-${kind}-${severity}`,
        alarmDescription: `[${severity}] ${subject}: ${description}`,
        metric: forAlarm(metric),
        threshold: props.threshold,
        comparisonOperator: props.comparisonOperator ?? cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods,
        datapointsToAlarm: props.datapointsToAlarm ?? evaluationPeriods,
        treatMissingData: props.treatMissingData ?? cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      for (const action of this.#props.actions) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
      return alarm;
    });
  }
}
