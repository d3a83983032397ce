import { median, percentile, percentileSorted, ratio, round } from '../../../scripts/bench/stats.ts';

test('median: odd and even counts, unsorted input, empty', () => {
  expect(median([5, 1, 3])).toBe(3);
  expect(median([4, 1, 3, 2])).toBe(2.5);
  expect(median([7])).toBe(7);
  expect(median([])).toBeNaN();
});

test('percentile is nearest-rank: the smallest value with at least p% at or below it', () => {
  const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
  expect(percentile(values, 50)).toBe(50);
  expect(percentile(values, 99)).toBe(99);
  expect(percentile(values, 100)).toBe(100);
  expect(percentile(values, 0)).toBe(1);
  expect(percentile([10, 20, 30], 50)).toBe(20);
  expect(percentile([10, 20, 30], 99)).toBe(30);
  expect(percentile([42], 99)).toBe(42);
  expect(percentile([], 50)).toBeNaN();
});

test('percentileSorted works on typed arrays and rejects p outside 0..100', () => {
  expect(percentileSorted(Float64Array.from([1, 2, 3, 4]), 75)).toBe(3);
  expect(() => percentileSorted([1], 101)).toThrow(RangeError);
  expect(() => percentileSorted([1], Number.NaN)).toThrow(RangeError);
});

test('percentile sorts numerically, not as strings', () => {
  expect(percentile([9, 10, 100, 2], 100)).toBe(100);
  expect(percentile([9, 10, 100, 2], 25)).toBe(2);
});

test('round and ratio', () => {
  expect(round(1.23456, 2)).toBe(1.23);
  expect(round(1234.5, 0)).toBe(1235);
  expect(ratio(1000, 100)).toBe(10);
  expect(ratio(1, 3)).toBe(0.33);
  expect(ratio(5, 0)).toBe(0);
});
