import { emfMetrics, formatProgressLine, percentile, RouteStats } from '../../../scripts/bridge/stats.ts';
import { formatSummaryTable } from '../../../scripts/bridge/summary.ts';

test('percentiles, records/s over the recent window, and the progress line', () => {
  expect(percentile([], 99)).toBeUndefined();
  expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99)).toBe(10);
  expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50)).toBe(5);
  const stats = new RouteStats('orders');
  stats.addCommitted(0, [], 0);
  stats.addCommitted(500, [10, 20, 30], 1_000);
  stats.addCommitted(500, [40], 2_000);
  stats.lag = 7;
  stats.assigned = ['0', '1'];
  stats.addSummary({
    received: 10,
    processed: 8,
    duplicates: 1,
    tombstones: 0,
    failed: 1,
    retried: 0,
    deadLettered: 1,
    parked: 0,
    batchItemFailures: 0,
    ddbRequests: 20,
    breakerOpened: 0,
    breakerShortCircuited: 0,
    breakerState: 0,
    idempotencyConflicts: 0,
    durationMs: 5,
  });
  const snapshot = stats.snapshot(2_000);
  expect(snapshot.recordsPerSec).toBe(500);
  expect(snapshot.p99LatencyMs).toBe(40);
  expect(formatProgressLine(snapshot)).toBe(
    '[bridge] orders  500 rec/s  lag 7  committed 1000  processed 8  duplicates 1  dead-lettered 1  p99 40 ms  partitions [0,1]',
  );
});

test('EMF lines yield their metric values; other lines none', () => {
  const line = JSON.stringify({
    _aws: {
      Timestamp: 1,
      CloudWatchMetrics: [
        {
          Namespace: 'N',
          Dimensions: [['Route']],
          Metrics: [{ Name: 'StaleEventsIgnored' }, { Name: 'EndToEndLatency' }],
        },
      ],
    },
    Route: 'orders',
    StaleEventsIgnored: 3,
    EndToEndLatency: [5, 7],
  });
  expect(emfMetrics(line)).toEqual(
    new Map([
      ['StaleEventsIgnored', 3],
      ['EndToEndLatency', 12],
    ]),
  );
  expect(emfMetrics('{"level":"INFO","message":"batch done"}')).toBeUndefined();
  expect(emfMetrics('not json "_aws"')).toBeUndefined();
});

test('the demo summary is a fixed-width table with a row per route', () => {
  const stats = new RouteStats('orders');
  stats.addCommitted(10, [120], 0);
  stats.addCustom('StaleEventsIgnored', 2);
  stats.lag = 0;
  const lines = formatSummaryTable([{ ...stats.snapshot(1_000), produced: 12 }]);
  expect(lines).toHaveLength(2);
  expect(lines[0]).toMatch(
    /^route\s+produced\s+processed\s+duplicates\s+stale\s+dead-lettered\s+lag\s+records\/s\s+p99 e2e$/,
  );
  expect(lines[1]).toMatch(/^orders\s+12\s+0\s+0\s+2\s+0\s+0\s+10\s+120 ms$/);
  expect(lines[0]?.length).toBe(lines[1]?.length);
});
