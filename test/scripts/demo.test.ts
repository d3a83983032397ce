// The demo's footer says how its columns relate, also when the consumer groups start with records of an earlier run.
import { demoFooter } from '../../scripts/demo.ts';

test('with nothing left from earlier runs, produced = processed + duplicates + dead-lettered', () => {
  const footer = demoFooter(new Map([['orders', 0]]));
  expect(footer[0]).toBe('once lag is 0: produced = processed + duplicates + dead-lettered');
  expect(footer.join(' ')).not.toMatch(/earlier/);
});

test("a group's backlog from an earlier run is named with its size: processed includes those records", () => {
  const footer = demoFooter(
    new Map([
      ['orders', 1200],
      ['payments', 0],
      ['widgets', 35],
    ]),
  );
  const text = footer.join(' ');
  expect(text).toContain('produced + earlier = processed + duplicates + dead-lettered');
  expect(text).toContain(
    'of earlier runs not yet consumed when this one started, which processed includes: orders 1200, widgets 35',
  );
  expect(text).not.toContain('payments');
});

test('it says that a route keyed by offset processes the copies the traffic sends', () => {
  const text = demoFooter(new Map()).join(' ');
  expect(text).toContain(
    'a route keyed by offset (the default) processes the copies, which are new records at new offsets',
  );
});

test('each line fits a terminal (the live view redraws by line count)', () => {
  const footer = demoFooter(new Map([['a-route-with-a-long-name', 123_456]]));
  for (const line of footer) expect(line.length).toBeLessThanOrEqual(120);
});
