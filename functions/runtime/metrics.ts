import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
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
  BatchItemFailures: 'BatchItemFailures',
  DedupeRequests: 'DedupeRequests',
  ProcessingTime: 'ProcessingTime',
  EndToEndLatency: 'EndToEndLatency',
  DedupeLatency: 'DedupeLatency',
} as const;

/**
 * Publishes one invocation as CloudWatch EMF through Powertools Metrics, which keeps
 * the EMF limits (100 metrics per object, 100 values per metric) by flushing early.
 * Powertools always adds a `service` dimension; it is cleared so the dimension set is
 * exactly `[Route]` and alarms can find the metrics.
 */
export const publishInvocationMetrics = (
  namespace: string,
  route: string,
  summary: InvocationSummary,
  samples: InvocationSamples,
): void => {
  const metrics = new Metrics({ namespace, serviceName: route });
  metrics.clearDefaultDimensions();
  metrics.setDefaultDimensions({ Route: route });
  const counts: Array<[string, number]> = [
    [MetricName.RecordsReceived, summary.received],
    [MetricName.RecordsProcessed, summary.processed],
    [MetricName.DuplicatesSkipped, summary.duplicates],
    [MetricName.TombstonesSkipped, summary.tombstones],
    [MetricName.RecordsFailed, summary.failed],
    [MetricName.RecordsRetried, summary.retried],
    [MetricName.RecordsDeadLettered, summary.deadLettered],
    [MetricName.BatchItemFailures, summary.batchItemFailures],
    [MetricName.DedupeRequests, summary.ddbRequests],
  ];
  for (const [name, value] of counts) metrics.addMetric(name, MetricUnit.Count, value);
  const timings: Array<[string, number[]]> = [
    [MetricName.ProcessingTime, samples.processingTime],
    [MetricName.EndToEndLatency, samples.endToEndLatency],
    [MetricName.DedupeLatency, samples.dedupeLatency],
  ];
  for (const [name, values] of timings) {
    for (const value of values) metrics.addMetric(name, MetricUnit.Milliseconds, Math.max(0, value));
  }
  for (const [name, value] of samples.custom) metrics.addMetric(name, MetricUnit.Count, value);
  // Powertools flushes by itself at 100 values; publishing an empty store would only log a warning.
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
};
