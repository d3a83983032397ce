import { z } from 'zod';
import { kafkaHandler } from '../../../functions/runtime/kafkaHandler.ts';
import { drainQueue, getItem, routeEnvironment, uniqueName } from '../../helpers/aws.ts';
import { lambdaContext, mskEvent } from '../../helpers/events.ts';

/** Powertools writes info to stdout and warnings and errors to stderr, as Lambda's console does. */
const captureOutput = async (work: () => Promise<unknown>): Promise<Array<Record<string, unknown>>> => {
  const lines: string[] = [];
  const capture = ((chunk: string | Uint8Array) => {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    return true;
  }) as typeof process.stdout.write;
  const [stdout, stderr] = [process.stdout.write, process.stderr.write];
  process.stdout.write = capture;
  process.stderr.write = capture;
  try {
    await work();
  } finally {
    process.stdout.write = stdout;
    process.stderr.write = stderr;
  }
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
};

beforeAll(async () => {
  await routeEnvironment('logging');
  process.env.LOG_LEVEL = 'INFO';
});

const SECRET = 'card-4111-1111-1111-1111';

const run = (logPayloads: boolean) => {
  const handler = kafkaHandler({
    route: uniqueName('logging'),
    value: z.object({ card: z.string(), amount: z.number() }),
    settings: { logPayloads },
    process: async () => {},
  });
  // A schema violation: the record is dead-lettered and logged.
  return captureOutput(() =>
    handler(mskEvent([{ partition: 1, offset: 42, value: { card: SECRET, amount: 'ten' } }]), lambdaContext()),
  );
};

describe('structured logs', () => {
  test('carry the coordinates and never the payload by default', async () => {
    const logs = await run(false);
    const letter = logs.find((l) => String(l.message).startsWith('dead-lettered'));
    expect(letter).toMatchObject({ level: 'WARN', topic: 'orders', partition: 1, offset: 42, errorKind: 'permanent' });
    expect(letter?.message).toMatch(/orders-1@42: permanent: ValidationError: value fails its schema: amount/);
    expect(logs.find((l) => l.message === 'batch done')).toMatchObject({ received: 1, deadLettered: 1 });
    const all = JSON.stringify(logs);
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain(Buffer.from(SECRET).toString('base64').slice(0, 12));
  });

  test('carry the payload when the route opts in', async () => {
    const logs = await run(true);
    const letter = logs.find((l) => String(l.message).startsWith('dead-lettered'));
    expect(Buffer.from(String(letter?.value), 'base64').toString()).toContain(SECRET);
  });
});

describe('the route name', () => {
  test("comes from BRIDGE_ROUTE (the config's name), not the string written in the handler", async () => {
    const configName = uniqueName('orders-eu');
    await drainQueue(process.env.DLQ_URL as string);
    process.env.BRIDGE_ROUTE = configName;
    process.env.POWERTOOLS_METRICS_DISABLED = 'false';
    try {
      // A handler copied from `orders` that still says so: alarms, the dashboard and the tables use the config's name.
      const handler = kafkaHandler({ route: 'orders', value: z.object({ id: z.string() }), process: async () => {} });
      const output = await captureOutput(() =>
        handler(
          mskEvent([
            { offset: 1, value: { id: 'a' } },
            { offset: 2, value: { bad: true } },
          ]),
          lambdaContext(),
        ),
      );
      const emf = output.filter((line) => line._aws !== undefined);
      expect(emf.length).toBeGreaterThan(0);
      for (const line of emf) expect(line.Route).toBe(configName);
      const letters = (await drainQueue(process.env.DLQ_URL as string)).map((m) => JSON.parse(m.Body ?? '{}'));
      expect(letters.map((l) => l.route)).toEqual([configName]);
      expect(output.find((l) => String(l.message).startsWith('dead-lettered'))?.message).toMatch(
        new RegExp(`^dead-lettered: route ${configName}: `),
      );
      // Coordinate-keyed, so on the watermark strategy: the partition's item, and the dead letter's own.
      const table = process.env.IDEMPOTENCY_TABLE_NAME as string;
      expect(await getItem(table, { pk: { S: `${configName}#wm#orders-0` } })).toMatchObject({
        committedOffset: { N: '2' },
      });
      expect(await getItem(table, { pk: { S: `${configName}#orders-0@2` } })).toMatchObject({
        status: { S: 'DEAD_LETTERED' },
      });
    } finally {
      delete process.env.BRIDGE_ROUTE;
      process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    }
  });
});
