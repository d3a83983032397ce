// The dedupe rule that needs the handler module (DESIGN §3 leaves it to the route's code): checked at synth against
// the real example handlers, and each way a route's config and its handler can disagree.
import { z } from 'zod';
import { kafkaHandler } from '../../functions/runtime/kafkaHandler.ts';
import { checkRouteHandlers, DEDUPE_RULE, dedupeProblem } from '../../infra/config/handlerRules.ts';
import { BridgeConfigError, parseBridgeConfig } from '../../infra/config/index.ts';
import { baseConfig } from './helpers.ts';

type RouteInput = NonNullable<ReturnType<typeof baseConfig>['routes']>[number];
/** The base config with its payments route changed. */
const withPayments = (change: Partial<RouteInput>) => {
  const [orders, payments] = baseConfig().routes as RouteInput[];
  return parseBridgeConfig({ ...baseConfig(), routes: [orders, { ...(payments as RouteInput), ...change }] });
};

const issuesOf = async (promise: Promise<void>) => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BridgeConfigError);
  return (error as BridgeConfigError).issues;
};

test('the example handlers fit their routes: orders on the watermark strategy, payments on its txId and fingerprint', async () => {
  await expect(checkRouteHandlers(parseBridgeConfig(baseConfig()))).resolves.toBeUndefined();
});

test('a fingerprint on the watermark strategy is a config error at synth, naming the route and the rule', async () => {
  const config = withPayments({ idempotency: { strategy: 'watermark' } });
  expect(await issuesOf(checkRouteHandlers(config))).toEqual([
    {
      path: 'routes[1].idempotency.strategy',
      message: expect.stringMatching(
        new RegExp(
          `^route "payments": the handler sets a fingerprint, but the watermark strategy .*\\[${DEDUPE_RULE}\\]$`,
        ),
      ),
    },
  ]);
});

test('a handler module that refuses to load (a fingerprint without a business key) fails the synth for its route', async () => {
  const refused = async () => {
    kafkaHandler({ route: 'payments', value: z.unknown(), fingerprint: () => 'f', process: async () => {} });
    return {};
  };
  const issues = await issuesOf(
    checkRouteHandlers(parseBridgeConfig(baseConfig()), async (route) =>
      route.name === 'payments' ? refused() : { handler: { dedupe: { businessKey: false, fingerprint: false } } },
    ),
  );
  expect(issues).toEqual([
    {
      path: 'routes[1].handler',
      message: expect.stringMatching(
        /^route "payments": its handler functions\/handlers\/payments\.ts refused to load: .*a fingerprint needs a business idempotencyKey/,
      ),
    },
  ]);
});

test('a handler that cannot load outside Lambda for its own reasons (its environment) is left to the bundling and the first invocation', async () => {
  const needsItsEnvironment = async () => {
    throw new Error('ORDERS_TABLE_NAME is not set');
  };
  await expect(checkRouteHandlers(parseBridgeConfig(baseConfig()), needsItsEnvironment)).resolves.toBeUndefined();
});

test.each([
  ['no key, no fingerprint, default', undefined, { businessKey: false, fingerprint: false }, undefined],
  ['a business key, default', undefined, { businessKey: true, fingerprint: false }, undefined],
  ['a business key and a fingerprint, default', undefined, { businessKey: true, fingerprint: true }, undefined],
  ["no key, 'key'", 'key', { businessKey: false, fingerprint: false }, undefined],
  ["a business key, 'watermark'", 'watermark', { businessKey: true, fingerprint: false }, /sets an idempotencyKey/],
  ["a fingerprint, 'watermark'", 'watermark', { businessKey: true, fingerprint: true }, /sets a fingerprint/],
  ['a fingerprint without a key, default', undefined, { businessKey: false, fingerprint: true }, /sets a fingerprint/],
] as const)('%s', (_name, strategy, dedupe, problem) => {
  const route = withPayments(strategy ? { idempotency: { strategy } } : {}).routes[1];
  const found = dedupeProblem(route as never, dedupe);
  if (problem) expect(found).toMatch(problem);
  else expect(found).toBeUndefined();
});
