// The fault-injection suite on a few fixed seeds (`npm run chaos` soaks many more): SDK throttles before DynamoDB or
// SQS saw a request and after they applied it, in every call the runtime makes, against DynamoDB Local and ElasticMQ,
// both work modes under both event-source-mapping modes. Every record must end applied once XOR dead-lettered.
import { EsmModes, runChaos, WorkModes } from '../../../scripts/chaos/scenario.ts';

const runs = [0.06, 0.3].flatMap((faultRate) =>
  WorkModes.flatMap((work) => EsmModes.map((esm) => ({ faultRate, work, esm, seed: faultRate === 0.06 ? 7 : 11 }))),
);

test.each(runs)(
  '$work mode, $esm, $faultRate faults (seed $seed): applied once XOR dead-lettered',
  async (run) => {
    const result = await runChaos({ ...run, records: 160 });
    expect(result.violations).toEqual([]);
    // The run must have met what it is about: faults on both sides of a request, redeliveries, dead letters.
    expect(result.faults.before).toBeGreaterThan(0);
    expect(result.faults.after).toBeGreaterThan(0);
    expect(result.failedInvocations).toBeGreaterThan(0);
    expect(result.deadLettered).toBeGreaterThan(0);
    expect(result.applied).toBeGreaterThan(result.records / 2);
  },
  180_000,
);
