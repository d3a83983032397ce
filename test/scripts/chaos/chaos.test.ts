// The fault-injection suite on a few fixed seeds (`npm run chaos` soaks many more): SDK throttles before DynamoDB or
// SQS saw a request and after they applied it, in every call the runtime makes, against DynamoDB Local and ElasticMQ,
// both work modes under both event-source-mapping modes and both dedupe strategies. Every record must end applied
// once XOR dead-lettered.
import { type ChaosResult, EsmModes, runChaos, Strategies, WorkModes } from '../../../scripts/chaos/scenario.ts';

const runs = [
  ...Strategies.flatMap((strategy) =>
    [0.06, 0.3].flatMap((faultRate) =>
      WorkModes.flatMap((work) =>
        EsmModes.map((esm) => ({ faultRate, work, esm, strategy, park: false, seed: faultRate === 0.06 ? 7 : 11 })),
      ),
    ),
  ),
  // With a retry queue (retry.park, ordering by key): each work mode once per fault rate, the ESM modes and the
  // strategies alternating.
  ...WorkModes.flatMap((work, i) => [
    {
      faultRate: 0.06,
      work,
      esm: EsmModes[i % 2] as (typeof EsmModes)[number],
      strategy: Strategies[i % 2] as (typeof Strategies)[number],
      park: true,
      seed: 13,
    },
    {
      faultRate: 0.3,
      work,
      esm: EsmModes[(i + 1) % 2] as (typeof EsmModes)[number],
      strategy: Strategies[(i + 1) % 2] as (typeof Strategies)[number],
      park: true,
      seed: 17,
    },
  ]),
];
const results: ChaosResult[] = [];

test.each(runs)(
  '$work mode, $strategy, $esm, $faultRate faults, park $park (seed $seed): applied once XOR dead-lettered',
  async (run) => {
    const result = await runChaos({ ...run, records: 160 });
    results.push(result);
    expect(result.violations).toEqual([]);
    // The run must have met what it is about: faults, dead letters, and mostly applied records.
    expect(result.faults.before + result.faults.after).toBeGreaterThan(0);
    expect(result.deadLettered).toBeGreaterThan(0);
    expect(result.applied).toBeGreaterThan(result.records / 2);
    // A run with a retry queue parked records and took them back from it.
    if (run.park) expect(result.retryQueueInvocations).toBeGreaterThan(0);
  },
  180_000,
);

// Which run meets which fault depends on timing (the seed fixes the records and the dice, not the interleaving), so
// what the runs must have met is checked across them.
test('the runs met faults on both sides of a request, and redeliveries in each work mode', () => {
  expect(results).toHaveLength(runs.length);
  expect(results.reduce((sum, r) => sum + r.faults.before, 0)).toBeGreaterThan(10);
  expect(results.reduce((sum, r) => sum + r.faults.after, 0)).toBeGreaterThan(10);
  for (const work of WorkModes)
    for (const strategy of Strategies) {
      const failed = results
        .filter((r) => r.work === work && r.strategy === strategy)
        .reduce((sum, r) => sum + r.failedInvocations, 0);
      expect({ work, strategy, redelivered: failed > 0 }).toEqual({ work, strategy, redelivered: true });
    }
});
