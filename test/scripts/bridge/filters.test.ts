import { recordFilter } from '../../../scripts/bridge/filters.ts';
import type { LambdaKafkaRecord } from '../../../scripts/lib/kafkaEvents.ts';

const withValue = (value: unknown): LambdaKafkaRecord => ({
  topic: 't',
  partition: 0,
  offset: 0,
  timestamp: 0,
  timestampType: 'CREATE_TIME',
  key: null,
  value:
    value === null ? null : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64'),
  headers: [],
});
const passes = (filters: Array<Record<string, unknown>>, value: unknown) =>
  (recordFilter(filters) as (r: LambdaKafkaRecord) => boolean)(withValue(value));

test('no filters: every record passes', () => {
  expect(recordFilter([])).toBeUndefined();
});

test('exact values, ANDed keys, ORed entries, nested objects and arrays in the value', () => {
  const paid = [{ value: { status: ['PAID', 'REFUNDED'], customer: { tier: ['gold'] } } }];
  expect(passes(paid, { status: 'PAID', customer: { tier: 'gold' } })).toBe(true);
  expect(passes(paid, { status: 'PAID', customer: { tier: 'silver' } })).toBe(false);
  expect(passes(paid, { status: 'NEW', customer: { tier: 'gold' } })).toBe(false);
  expect(passes(paid, { status: 'PAID' })).toBe(false);
  expect(passes([{ value: { tags: ['x'] } }], { tags: ['a', 'x'] })).toBe(true);
});

test("Lambda's comparison operators", () => {
  const v = { id: 'ord-17', file: 'a.PNG', amount: 250, note: '' };
  expect(passes([{ value: { id: [{ prefix: 'ord-' }] } }], v)).toBe(true);
  expect(passes([{ value: { file: [{ suffix: { 'equals-ignore-case': '.png' } }] } }], v)).toBe(true);
  expect(passes([{ value: { file: [{ 'equals-ignore-case': 'A.png' }] } }], v)).toBe(true);
  expect(passes([{ value: { id: [{ 'anything-but': ['ord-17'] }] } }], v)).toBe(false);
  expect(passes([{ value: { id: [{ 'anything-but': { prefix: 'cus-' } }] } }], v)).toBe(true);
  expect(passes([{ value: { amount: [{ numeric: ['>', 100, '<=', 250] }] } }], v)).toBe(true);
  expect(passes([{ value: { amount: [{ numeric: ['<', 100] }] } }], v)).toBe(false);
  expect(passes([{ value: { missing: [{ exists: false }] } }], v)).toBe(true);
  expect(passes([{ value: { id: [{ exists: false }] } }], v)).toBe(false);
  expect(passes([{ value: { note: [''] } }], v)).toBe(true);
  expect(passes([{ value: { $or: [{ id: ['x'] }, { amount: [250] }] } }], v)).toBe(true);
});

test('several filters: a record passes if it matches any', () => {
  const filters = [{ value: { status: ['PAID'] } }, { value: { status: ['REFUNDED'] } }];
  expect(passes(filters, { status: 'REFUNDED' })).toBe(true);
  expect(passes(filters, { status: 'NEW' })).toBe(false);
});

test('a plain-string value matches string patterns only; JSON patterns never match it, nor a tombstone', () => {
  expect(passes([{ value: [{ 'anything-but': ['error'] }] }], 'all good')).toBe(true);
  expect(passes([{ value: [{ 'anything-but': ['error'] }] }], 'error')).toBe(false);
  expect(passes([{ value: { status: ['PAID'] } }], 'status=PAID')).toBe(false);
  expect(passes([{ value: ['x'] }], { status: 'PAID' })).toBe(false);
  expect(passes([{ value: { status: ['PAID'] } }], null)).toBe(false);
});

test('a pattern Lambda would refuse fails when the filter is made, naming where', () => {
  expect(() => recordFilter([{ value: { id: [{ wildcard: 'ord-*' }] } }])).toThrow(
    'filters[0].value.id: unsupported filter operator "wildcard"',
  );
  expect(() => recordFilter([{ value: { id: 'x' } }])).toThrow("filters[0].value.id: a filter pattern's leaves");
});
