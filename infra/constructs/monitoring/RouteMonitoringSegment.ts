import { Annotations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import type { AlarmThresholds } from '../../config/schema.ts';
import type { BridgeRoute } from '../BridgeRoute.ts';
import { parkedAgeAlarmSeconds, RETRY_QUEUE_MAX_RECEIVE_COUNT, RETRY_QUEUE_RETENTION } from '../RetryQueue.ts';
import type { BridgeAlarmFactory } from './BridgeAlarmFactory.ts';
import { type BridgeMetricFactory, EsmMetricName, MetricName } from './BridgeMetricFactory.ts';

export interface RouteMonitoringSegmentProps {
  readonly route: BridgeRoute;
  readonly idempotencyTable: dynamodb.ITable;
  readonly metrics: BridgeMetricFactory;
  readonly alarms: BridgeAlarmFactory;
  readonly thresholds: AlarmThresholds;
}

const WIDGET_WIDTH = 6;
const WIDGET_HEIGHT = 6;

/**
 * Layer 3: one route's monitoring. Wires the metric and alarm factories, owns the route's
 * alarms, and exposes its dashboard widgets (`widgets()`, `summaryWidgets()`, `breakerWidgets()`, `parkWidgets()`,
 * `alarmWidgets()`).
 */
export class RouteMonitoringSegment extends Construct {
  readonly routeName: string;
  readonly alarms: readonly cloudwatch.Alarm[];
  readonly #props: RouteMonitoringSegmentProps;

  constructor(scope: Construct, id: string, props: RouteMonitoringSegmentProps) {
    super(scope, id);
    this.#props = props;
    const { route, metrics, thresholds } = props;
    const name = route.route.name;
    this.routeName = name;
    const fn = route.function;
    const mapping = this.#publishingMapping();
    if (route.eventSource && !mapping && thresholds.minInvocations === undefined)
      Annotations.of(this).addWarningV2(
        'kafka-lambda-bridge:unwatched-mapping',
        `route "${name}": eventSource.metrics is false and alarms.minInvocations is unset, so no alarm fires when ` +
          'its event source mapping cannot poll (auth, KMS, network); set alarms.minInvocations',
      );
    const timeoutMs = route.route.timeoutSeconds * 1000;
    const add = props.alarms.addAlarms.bind(props.alarms, this, name);

    const alarms = [
      ...add(
        'OffsetLag',
        metrics.offsetLag(fn),
        { Warning: { threshold: thresholds.offsetLag, evaluationPeriods: 3 } },
        `the consumer group trails topic ${route.route.topic} by more than ${thresholds.offsetLag} records`,
      ),
      ...add(
        'Errors',
        metrics.errors(fn),
        { Warning: { threshold: thresholds.errors } },
        'invocations failed; the batch is retried from its first uncommitted offset',
      ),
      ...add(
        'Throttles',
        metrics.throttles(fn),
        { Warning: { threshold: thresholds.throttles } },
        'invocations were throttled',
      ),
      ...add(
        'DurationP99',
        metrics.duration(fn, 'p99'),
        { Warning: { threshold: Math.round(timeoutMs * thresholds.durationP99OfTimeout), evaluationPeriods: 3 } },
        `p99 duration above ${Math.round(thresholds.durationP99OfTimeout * 100)}% of the ${route.route.timeoutSeconds} s timeout`,
      ),
      ...add(
        'DeadLetterMessages',
        metrics.queueVisible(route.deadLetterQueue, 'DLQ visible'),
        { Critical: { threshold: 0 } },
        'records are waiting in the dead-letter queue (npm run replay)',
      ),
      ...add(
        'DeadLetterAge',
        metrics.queueOldestAge(route.deadLetterQueue, 'DLQ oldest (s)'),
        { Warning: { threshold: thresholds.dlqOldestMessageSeconds } },
        `a dead-letter message is older than ${thresholds.dlqOldestMessageSeconds} s; SQS drops it after 14 days`,
      ),
      ...add(
        'RecordsDeadLettered',
        metrics.routeCount(name, MetricName.RecordsDeadLettered),
        { Critical: { threshold: 0 } },
        'the runtime dead-lettered records',
      ),
      ...add(
        'BreakerOpened',
        metrics.routeCount(name, MetricName.BreakerOpened),
        { Warning: { threshold: 0 } },
        'a circuit breaker opened: a downstream failed transiently or temporarily past breaker.failureRateThreshold, so its records wait (offset lag grows) instead of using up their attempts',
      ),
      ...add(
        'IdempotencyConflicts',
        metrics.routeCount(name, MetricName.IdempotencyConflicts),
        { Critical: { threshold: 0 } },
        'an idempotency key came again with different content; the later record was dead-lettered as a conflict, never applied',
      ),
      ...add(
        'TableThrottles',
        metrics.tablesThrottled(this.#tables()),
        { Warning: { threshold: 0 } },
        'DynamoDB throttled requests on the idempotency or route tables',
      ),
      ...(mapping
        ? [
            ...add(
              'EventSourceErrors',
              metrics.eventSourceErrors(mapping),
              { Critical: { threshold: 0 } },
              'the event source mapping failed to poll, invoke the function, commit, reach the schema registry or deliver to its on-failure destination (auth, KMS, network, throttling); see its PollingErrorCount and InvokeErrorCount',
            ),
            ...add(
              'RecordsDropped',
              metrics.eventSourceMapping(mapping, EsmMetricName.DroppedEventCount),
              { Critical: { threshold: 0 } },
              'the event source mapping skipped records past its retry or age limit without delivering them anywhere',
            ),
          ]
        : []),
      ...(thresholds.minInvocations !== undefined
        ? add(
            'MissingInvocations',
            metrics.invocations(fn),
            {
              Critical: {
                threshold: thresholds.minInvocations,
                comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluationPeriods: 3,
                treatMissingData: cloudwatch.TreatMissingData.BREACHING,
              },
            },
            `fewer than ${thresholds.minInvocations} invocations per period, or none at all: the mapping may be unable to poll`,
          )
        : []),
      ...this.#parkAlarms(),
      ...(route.failureQueue
        ? add(
            'FailedInvocations',
            metrics.queueVisible(route.failureQueue, 'Failed invocations'),
            { Critical: { threshold: 0 } },
            'the event source mapping recorded invocation-level failures (timeouts, crashes)',
          )
        : []),
    ];
    this.alarms = alarms;
  }

  /**
   * A parking route's two alarms: records stuck in park (the oldest parked message is older than the whole schedule
   * plus a timeout and a period; see `parkedAgeAlarmSeconds`), and parked messages the function could not take back
   * (its retry queue's own dead-letter queue has messages).
   */
  #parkAlarms(): cloudwatch.Alarm[] {
    const { route, metrics, thresholds } = this.#props;
    const retry = route.retryQueue;
    if (!retry) return [];
    const add = this.#props.alarms.addAlarms.bind(this.#props.alarms, this, this.routeName);
    const ageSeconds = parkedAgeAlarmSeconds(route.route, retry.park, thresholds.periodMinutes);
    return [
      ...add(
        'RetryQueueAge',
        metrics.queueOldestAge(retry.queue, 'Retry queue oldest (s)'),
        { Warning: { threshold: ageSeconds } },
        `a parked record has waited more than ${ageSeconds} s (every delay of retry.park, one timeout and one period): the retry queue is not being drained (mapping disabled or throttled, function failing), so records are stuck in park; SQS drops them after ${RETRY_QUEUE_RETENTION.toDays()} days`,
      ),
      ...add(
        'RetryDeadLetterMessages',
        metrics.queueVisible(retry.deadLetterQueue, 'Retry DLQ visible'),
        { Critical: { threshold: 0 } },
        `parked messages came back ${RETRY_QUEUE_MAX_RECEIVE_COUNT} times without being deleted and left the retry queue: the function could not read them or failed them every time; move them back with an SQS dead-letter queue redrive once fixed`,
      ),
    ];
  }

  /** The route's event source mapping when it publishes its own metrics (`eventSource.metrics`), for their alarms and graphs. */
  #publishingMapping(): lambda.IEventSourceMapping | undefined {
    const { route } = this.#props;
    return route.route.eventSource.metrics ? route.eventSource?.mapping : undefined;
  }

  #tables(): Array<{ table: dynamodb.ITable; label: string }> {
    return [
      { table: this.#props.idempotencyTable, label: 'idempotency' },
      ...[...this.#props.route.tables].map(([label, table]) => ({ table, label })),
    ];
  }

  /** The route's title line. */
  summaryWidgets(): cloudwatch.IWidget[] {
    const { route } = this.#props.route;
    const mode = route.mode === 'on-demand' ? 'on-demand' : 'provisioned';
    return [
      new cloudwatch.TextWidget({
        markdown: `### Route \`${route.name}\` · topic \`${route.topic}\` · ${mode} · batch ${route.batchSize}`,
        width: 24,
        height: 1,
      }),
    ];
  }

  /** The route's row: records, latency, lag, function health, dead letters, DynamoDB, alarms. */
  widgets(): cloudwatch.IWidget[] {
    const { route, metrics, thresholds } = this.#props;
    const name = route.route.name;
    const fn = route.function;
    const mapping = this.#publishingMapping();
    const graph = (title: string, left: cloudwatch.IMetric[], extra: Partial<cloudwatch.GraphWidgetProps> = {}) =>
      new cloudwatch.GraphWidget({ title, left, width: WIDGET_WIDTH, height: WIDGET_HEIGHT, ...extra });
    const deadLetterLeft = [metrics.queueVisible(route.deadLetterQueue, 'DLQ visible')];
    if (route.failureQueue) deadLetterLeft.push(metrics.queueVisible(route.failureQueue, 'Failed invocations'));
    const tables = this.#tables();

    return [
      graph('Records', [
        metrics.routeCount(name, MetricName.RecordsReceived, 'received'),
        metrics.routeCount(name, MetricName.RecordsProcessed, 'processed'),
        metrics.routeCount(name, MetricName.DuplicatesSkipped, 'duplicates'),
        metrics.routeCount(name, MetricName.RecordsFailed, 'failed'),
        metrics.routeCount(name, MetricName.RecordsDeadLettered, 'dead-lettered'),
      ]),
      graph('Latency (ms)', [
        metrics.routeTiming(name, MetricName.EndToEndLatency, 'p50'),
        metrics.routeTiming(name, MetricName.EndToEndLatency, 'p99'),
        metrics.routeTiming(name, MetricName.ProcessingTime, 'p50'),
        metrics.routeTiming(name, MetricName.ProcessingTime, 'p99'),
      ]),
      graph('Offset lag', [metrics.offsetLag(fn)], {
        leftAnnotations: [{ value: thresholds.offsetLag, label: 'alarm', color: cloudwatch.Color.ORANGE }],
      }),
      graph('Errors and throttles', [metrics.errors(fn), metrics.throttles(fn)], {
        ...(mapping && { right: [metrics.eventSourceErrors(mapping)] }),
      }),
      ...(mapping
        ? [
            graph('Event source mapping', [
              metrics.eventSourceMapping(mapping, EsmMetricName.PolledEventCount, 'polled'),
              metrics.eventSourceMapping(mapping, EsmMetricName.FilteredOutEventCount, 'filtered out'),
              metrics.eventSourceMapping(mapping, EsmMetricName.InvokedEventCount, 'invoked'),
              metrics.eventSourceMapping(mapping, EsmMetricName.DroppedEventCount, 'dropped'),
              metrics.eventSourceMapping(
                mapping,
                EsmMetricName.OnFailureDestinationDeliveredEventCount,
                'to on-failure destination',
              ),
            ]),
          ]
        : []),
      graph('Duration (ms)', [metrics.duration(fn, 'p50'), metrics.duration(fn, 'p99')], {
        leftAnnotations: [{ value: route.route.timeoutSeconds * 1000, label: 'timeout', color: cloudwatch.Color.RED }],
      }),
      graph('Dead letters', deadLetterLeft, {
        right: [metrics.queueOldestAge(route.deadLetterQueue, 'DLQ oldest (s)')],
      }),
      graph(
        'DynamoDB',
        tables.flatMap(({ table, label }) => metrics.tableConsumed(table, label)),
        { right: [metrics.tablesThrottled(tables)] },
      ),
      ...this.alarmWidgets(),
    ];
  }

  /** The route's second row: its circuit breakers, and idempotency conflicts. */
  breakerWidgets(): cloudwatch.IWidget[] {
    const { metrics } = this.#props;
    const name = this.routeName;
    return [
      new cloudwatch.GraphWidget({
        title: 'Circuit breaker',
        left: [
          metrics.routeCount(name, MetricName.BreakerOpened, 'opened'),
          metrics.routeCount(name, MetricName.BreakerShortCircuited, 'short-circuited'),
        ],
        right: [metrics.routeGauge(name, MetricName.BreakerState, 'state (max)')],
        rightYAxis: { min: 0, max: 2, showUnits: false },
        rightAnnotations: [
          { value: 1, label: 'half-open', color: cloudwatch.Color.ORANGE },
          { value: 2, label: 'open', color: cloudwatch.Color.RED },
        ],
        width: WIDGET_WIDTH * 2,
        height: WIDGET_HEIGHT,
      }),
      new cloudwatch.GraphWidget({
        title: 'Idempotency conflicts',
        left: [metrics.routeCount(name, MetricName.IdempotencyConflicts, 'conflicts')],
        leftAnnotations: [{ value: 0, label: 'alarm', color: cloudwatch.Color.RED }],
        width: WIDGET_WIDTH,
        height: WIDGET_HEIGHT,
      }),
    ];
  }

  /** A parking route's row: records parked, the retry queue's oldest message and depth, its dead-letter queue. */
  parkWidgets(): cloudwatch.IWidget[] {
    const { route, metrics, thresholds } = this.#props;
    const retry = route.retryQueue;
    if (!retry) return [];
    const graph = (title: string, left: cloudwatch.IMetric[], extra: Partial<cloudwatch.GraphWidgetProps> = {}) =>
      new cloudwatch.GraphWidget({ title, left, width: WIDGET_WIDTH, height: WIDGET_HEIGHT, ...extra });
    const ageSeconds = parkedAgeAlarmSeconds(route.route, retry.park, thresholds.periodMinutes);
    return [
      graph('Parked records', [metrics.routeCount(this.routeName, MetricName.RecordsParked, 'parked')]),
      graph('Retry queue oldest (s)', [metrics.queueOldestAge(retry.queue, 'oldest (s)')], {
        leftAnnotations: [{ value: ageSeconds, label: 'alarm', color: cloudwatch.Color.ORANGE }],
      }),
      graph('Retry queue depth', [
        metrics.queueVisible(retry.queue, 'visible'),
        metrics.queueDelayed(retry.queue, 'delayed'),
        metrics.queueInFlight(retry.queue, 'in flight'),
      ]),
      graph('Retry dead letters', [metrics.queueVisible(retry.deadLetterQueue, 'Retry DLQ visible')], {
        leftAnnotations: [{ value: 0, label: 'alarm', color: cloudwatch.Color.RED }],
      }),
    ];
  }

  alarmWidgets(): cloudwatch.IWidget[] {
    return [
      new cloudwatch.AlarmStatusWidget({
        title: `Alarms: ${this.routeName}`,
        alarms: [...this.alarms],
        width: WIDGET_WIDTH,
        height: WIDGET_HEIGHT,
      }),
    ];
  }
}
