import { MetricName, publishInvocationMetrics } from '../../../functions/runtime/metrics.ts';
import { emptySamples, emptySummary } from '../../../functions/runtime/observability.ts';

type Emf = {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: Array<{
      Namespace: string;
      Dimensions: string[][];
      Metrics: Array<{ Name: string; Unit: string }>;
    }>;
  };
  [key: string]: unknown;
};

const captureStdout = (work: () => void): string[] => {
  const lines: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    return true;
  }) as typeof process.stdout.write;
  try {
    work();
  } finally {
    process.stdout.write = write;
  }
  return lines;
};

describe('EMF metrics', () => {
  test('one invocation becomes EMF objects that follow the specification', () => {
    const summary = {
      ...emptySummary(),
      received: 250,
      processed: 240,
      duplicates: 6,
      deadLettered: 4,
      failed: 4,
      ddbRequests: 251,
      breakerOpened: 1,
      breakerShortCircuited: 7,
      breakerState: 2,
      idempotencyConflicts: 2,
    };
    const samples = emptySamples();
    // 250 values of one metric exceed EMF's 100 values per metric, so it must split.
    for (let i = 0; i < 250; i++) samples.processingTime.push(i);
    samples.endToEndLatency.push(12, 15);
    samples.custom.set('StaleEventsIgnored', 3);

    const lines = captureStdout(() => publishInvocationMetrics('KafkaLambdaBridge', 'orders', summary, samples));
    const objects = lines.map((line) => JSON.parse(line) as Emf);
    expect(objects.length).toBeGreaterThanOrEqual(3);

    const values = new Map<string, number[]>();
    for (const emf of objects) {
      expect(typeof emf._aws.Timestamp).toBe('number');
      expect(emf._aws.CloudWatchMetrics).toHaveLength(1);
      const [directive] = emf._aws.CloudWatchMetrics;
      expect(directive?.Namespace).toBe('KafkaLambdaBridge');
      expect(directive?.Dimensions).toEqual([['Route']]);
      expect(emf.Route).toBe('orders');
      expect(emf.service).toBeUndefined();
      expect(directive?.Metrics.length).toBeLessThanOrEqual(100);
      for (const metric of directive?.Metrics ?? []) {
        // BreakerState is a gauge (0 closed, 1 half-open, 2 open), so it has no unit.
        if (metric.Name === MetricName.BreakerState) expect(metric.Unit).toBe('None');
        else expect(['Count', 'Milliseconds']).toContain(metric.Unit);
        const value = emf[metric.Name];
        const list = Array.isArray(value) ? (value as number[]) : [value as number];
        expect(list.length).toBeLessThanOrEqual(100);
        values.set(metric.Name, [...(values.get(metric.Name) ?? []), ...list]);
      }
    }
    expect(values.get(MetricName.RecordsReceived)).toEqual([250]);
    expect(values.get(MetricName.RecordsProcessed)).toEqual([240]);
    expect(values.get(MetricName.DuplicatesSkipped)).toEqual([6]);
    expect(values.get(MetricName.RecordsDeadLettered)).toEqual([4]);
    expect(values.get(MetricName.DedupeRequests)).toEqual([251]);
    expect(values.get(MetricName.ProcessingTime)?.sort((a, b) => a - b)).toEqual(samples.processingTime);
    expect(values.get(MetricName.EndToEndLatency)).toEqual([12, 15]);
    expect(values.get('StaleEventsIgnored')).toEqual([3]);
    expect(values.get(MetricName.BreakerOpened)).toEqual([1]);
    expect(values.get(MetricName.BreakerShortCircuited)).toEqual([7]);
    expect(values.get(MetricName.BreakerState)).toEqual([2]);
    expect(values.get(MetricName.IdempotencyConflicts)).toEqual([2]);
  });

  test('every invocation reports the breaker and conflict metrics, zero when nothing happened', () => {
    const lines = captureStdout(() =>
      publishInvocationMetrics('KafkaLambdaBridge', 'orders', emptySummary(), emptySamples()),
    );
    const [emf] = lines.map((line) => JSON.parse(line) as Emf);
    const units = new Map(emf?._aws.CloudWatchMetrics[0]?.Metrics.map((m) => [m.Name, m.Unit]));
    expect(units.get(MetricName.BreakerOpened)).toBe('Count');
    expect(units.get(MetricName.BreakerShortCircuited)).toBe('Count');
    expect(units.get(MetricName.BreakerState)).toBe('None');
    expect(units.get(MetricName.IdempotencyConflicts)).toBe('Count');
    for (const name of ['BreakerOpened', 'BreakerShortCircuited', 'BreakerState', 'IdempotencyConflicts'])
      expect(emf?.[name]).toBe(0);
  });
});
