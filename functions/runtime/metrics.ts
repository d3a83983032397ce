import type { InvocationSamples, InvocationSummary } from './observability.ts';

export const DEFAULT_NAMESPACE = 'KafkaLambdaBridge';

/** Metric names are a contract with the dashboards and alarms (DESIGN §8). */
export const MetricName = {
  RecordsReceived: 'RecordsReceived',
  RecordsProcessed: 'RecordsProcessed',
  DuplicatesSkipped: 'DuplicatesSkipped',
  TombstonesSkipped: 'TombstonesSkipped',
  RecordsFailed: 'RecordsFailed',
  RecordsRetried: 'RecordsRetried',
  RecordsDeadLettered: 'RecordsDeadLettered',
  /** Records moved to the route's retry queue (`retry.park`). */
  RecordsParked: 'RecordsParked',
  BatchItemFailures: 'BatchItemFailures',
  DedupeRequests: 'DedupeRequests',
  BreakerOpened: 'BreakerOpened',
  BreakerShortCircuited: 'BreakerShortCircuited',
  /** A gauge, not a count: 0 closed, 1 half-open, 2 open; graphed and alarmed on its maximum. */
  BreakerState: 'BreakerState',
  IdempotencyConflicts: 'IdempotencyConflicts',
  ProcessingTime: 'ProcessingTime',
  EndToEndLatency: 'EndToEndLatency',
  DedupeLatency: 'DedupeLatency',
} as const;

/** CloudWatch EMF limits: metrics per object and values per metric. */
export const EMF_MAX_METRICS = 100;
export const EMF_MAX_VALUES = 100;

type Unit = 'Count' | 'Milliseconds' | 'None';
type Series = { name: string; unit: Unit; values: number[] };

/**
 * Renders one invocation as CloudWatch Embedded Metric Format lines, within the EMF
 * limits: a metric with more than 100 values continues in the next object.
 *
 * Written by hand rather than with Powertools Metrics: importing that library added
 * about 10 ms to module init (7% of the cold start, measured with the bench's method),
 * and it forces a `service` dimension the alarms would then have to carry.
 */
export const renderEmf = (
  namespace: string,
  route: string,
  summary: InvocationSummary,
  samples: InvocationSamples,
  timestamp = Date.now(),
): string[] => {
  const series: Series[] = [
    { name: MetricName.RecordsReceived, unit: 'Count', values: [summary.received] },
    { name: MetricName.RecordsProcessed, unit: 'Count', values: [summary.processed] },
    { name: MetricName.DuplicatesSkipped, unit: 'Count', values: [summary.duplicates] },
    { name: MetricName.TombstonesSkipped, unit: 'Count', values: [summary.tombstones] },
    { name: MetricName.RecordsFailed, unit: 'Count', values: [summary.failed] },
    { name: MetricName.RecordsRetried, unit: 'Count', values: [summary.retried] },
    { name: MetricName.RecordsDeadLettered, unit: 'Count', values: [summary.deadLettered] },
    { name: MetricName.RecordsParked, unit: 'Count', values: [summary.parked] },
    { name: MetricName.BatchItemFailures, unit: 'Count', values: [summary.batchItemFailures] },
    { name: MetricName.DedupeRequests, unit: 'Count', values: [summary.ddbRequests] },
    { name: MetricName.BreakerOpened, unit: 'Count', values: [summary.breakerOpened] },
    { name: MetricName.BreakerShortCircuited, unit: 'Count', values: [summary.breakerShortCircuited] },
    { name: MetricName.BreakerState, unit: 'None', values: [summary.breakerState] },
    { name: MetricName.IdempotencyConflicts, unit: 'Count', values: [summary.idempotencyConflicts] },
    { name: MetricName.ProcessingTime, unit: 'Milliseconds', values: samples.processingTime },
    { name: MetricName.EndToEndLatency, unit: 'Milliseconds', values: samples.endToEndLatency },
    { name: MetricName.DedupeLatency, unit: 'Milliseconds', values: samples.dedupeLatency },
    ...[...samples.custom].map(([name, value]): Series => ({ name, unit: 'Count', values: [value] })),
  ];
  const lines: string[] = [];
  for (let chunk = 0; ; chunk++) {
    const slice = series
      .map((s) => ({ ...s, values: s.values.slice(chunk * EMF_MAX_VALUES, (chunk + 1) * EMF_MAX_VALUES) }))
      .filter((s) => s.values.length > 0);
    if (slice.length === 0) return lines;
    for (let start = 0; start < slice.length; start += EMF_MAX_METRICS) {
      const part = slice.slice(start, start + EMF_MAX_METRICS);
      const object: Record<string, unknown> = {
        _aws: {
          Timestamp: timestamp,
          CloudWatchMetrics: [
            {
              Namespace: namespace,
              Dimensions: [['Route']],
              Metrics: part.map((s) => ({ Name: s.name, Unit: s.unit })),
            },
          ],
        },
        Route: route,
      };
      for (const s of part) {
        const values = s.values.map((v) => Math.max(0, v));
        object[s.name] = values.length === 1 ? values[0] : values;
      }
      lines.push(JSON.stringify(object));
    }
  }
};

/** Writes the invocation's EMF lines to stdout, where Lambda's log agent picks them up. */
export const publishInvocationMetrics = (
  namespace: string,
  route: string,
  summary: InvocationSummary,
  samples: InvocationSamples,
): void => {
  // The switch Powertools users already know; the local tools use it to keep stdout clean.
  if (process.env.POWERTOOLS_METRICS_DISABLED === 'true') return;
  const lines = renderEmf(namespace, route, summary, samples);
  if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
};
