import { z } from 'zod';
import { OrderEvent as OrdersRouteEvent } from '../../../functions/handlers/orders.ts';
import { KafkaEvent } from '../../../functions/runtime/event.ts';
import { endToEndLatencies } from '../../../scripts/bench/endToEnd.ts';
import { OrderEvent as BundledOrderEvent } from '../../../scripts/bench/entries/orderModel.ts';
import { duplicateSubset, mskEventOf, orderRecords } from '../../../scripts/bench/events.ts';
import { areaOf, summariseProfile } from '../../../scripts/bench/profileSummary.ts';
import { fullScenarios, quickScenarios } from '../../../scripts/bench/throughput.ts';

test('the bundles’ copy of the orders schema still matches the orders route', () => {
  expect(z.toJSONSchema(BundledOrderEvent)).toEqual(z.toJSONSchema(OrdersRouteEvent));
});

test('order records spread round-robin over partitions with offsets counting up per partition', () => {
  const records = orderRecords('t', 10, 4, 1_700_000_000_000);
  expect(records.map((r) => `${r.partition}@${r.offset}`)).toEqual([
    '0@0',
    '1@0',
    '2@0',
    '3@0',
    '0@1',
    '1@1',
    '2@1',
    '3@1',
    '0@2',
    '1@2',
  ]);
  for (const r of records) expect(OrdersRouteEvent.safeParse(r.value).success).toBe(true);
});

test('the events are valid MSK events, keyed topic-partition, in offset order', () => {
  const event = mskEventOf(orderRecords('orders-x', 100, 4, Date.now()));
  const parsed = KafkaEvent.parse(event);
  expect(Object.keys(parsed.records).sort()).toEqual(['orders-x-0', 'orders-x-1', 'orders-x-2', 'orders-x-3']);
  for (const list of Object.values(parsed.records)) {
    expect(list).toHaveLength(25);
    expect(list.map((r) => r.offset)).toEqual([...list.map((r) => r.offset)].sort((a, b) => a - b));
  }
});

test("duplicateSubset picks the rate of each partition's records from its first offset, and nothing at 0", () => {
  const records = orderRecords('t', 100, 4, 0);
  const picked = duplicateSubset(records, 0.2);
  expect(picked).toHaveLength(20);
  expect(new Set(picked).size).toBe(20);
  // Every partition gets its share, as a prefix (a redelivery from the committed offset).
  for (let partition = 0; partition < 4; partition++)
    expect(picked.filter((r) => r.partition === partition).map((r) => r.offset)).toEqual([0, 1, 2, 3, 4]);
  expect(duplicateSubset(records, 0)).toEqual([]);
  expect(duplicateSubset(records, 1)).toHaveLength(100);
});

test('the quick scenarios are a subset of the full matrix and include every goal scenario', () => {
  const key = (s: { batchSize: number; partitions: number; duplicateRate: number; rttMs: number }) =>
    `${s.batchSize}/${s.partitions}/${s.duplicateRate}/${s.rttMs}`;
  const full = new Set(fullScenarios(5).map(key));
  expect(full.size).toBe(16);
  for (const s of quickScenarios(5)) expect(full.has(key(s))).toBe(true);
  expect(quickScenarios(5).map(key)).toEqual(expect.arrayContaining(['100/4/0/5', '100/4/0.2/5']));
});

test('EndToEndLatency values are read from EMF lines only, lists and single values alike', () => {
  const emf = (value: unknown) =>
    JSON.stringify({
      _aws: { CloudWatchMetrics: [{ Metrics: [{ Name: 'EndToEndLatency' }] }] },
      EndToEndLatency: value,
    });
  const lines = [
    emf([1, 2, 3]),
    emf(7),
    '{"level":"INFO","message":"batch done","EndToEndLatency":99}',
    'not json "EndToEndLatency"',
    '',
  ];
  expect(endToEndLatencies(lines)).toEqual([1, 2, 3, 7]);
});

test('profile summary: self time by area and function, from sample deltas', () => {
  const frame = (id: number, functionName: string, url: string) => ({
    id,
    callFrame: { functionName, url, lineNumber: 0 },
  });
  const summary = summariseProfile({
    nodes: [
      frame(1, '(root)', ''),
      frame(2, 'send', 'file:///x/node_modules/@smithy/core/dist/index.js'),
      frame(3, 'claim', 'file:///work/main/functions/runtime/processor.ts'),
      frame(4, '(idle)', ''),
    ],
    startTime: 0,
    endTime: 100,
    samples: [2, 2, 3, 4, 2],
    timeDeltas: [0, 10_000, 10_000, 20_000, 40_000],
  });
  expect(summary.totalMs).toBe(80);
  expect(summary.byArea).toEqual([
    { area: '(idle)', ms: 40, share: 50 },
    { area: '@smithy/core', ms: 20, share: 25 },
    { area: 'functions/runtime', ms: 20, share: 25 },
  ]);
  expect(areaOf('node:internal/http', 'x')).toBe('node:internal');
  expect(areaOf('', '(garbage collector)')).toBe('(gc)');
});
