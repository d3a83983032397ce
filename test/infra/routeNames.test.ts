// One name per route (issue #15, item 5): a route named `orders-eu` that runs the `orders` handler module. Its
// metrics must carry the config's route name, which the runtime takes from BRIDGE_ROUTE, so that the alarms and the
// dashboard (built from the config's name) watch metrics that exist. None of them may use the handler's own `orders`.
import type { Template } from 'aws-cdk-lib/assertions';
import type { BridgeConfigInput } from '../../infra/config/schema.ts';
import { baseConfig, synthBridge } from './helpers.ts';

type Resource = { Type: string; Properties: Record<string, unknown> };
const resources = (template: Template, type: string): Resource[] =>
  Object.values(template.findResources(type)) as Resource[];

const config = (): BridgeConfigInput => {
  const base = baseConfig();
  const [orders, ...rest] = base.routes ?? [];
  return {
    ...base,
    routes: [{ ...orders, name: 'orders-eu', topic: 'orders-eu', handler: 'orders.ts' }, ...rest],
  } as BridgeConfigInput;
};

/** Every dimension of a metric alarm, and of the metrics of a math alarm. */
const dimensionsOf = (alarm: Resource): Array<{ Name: string; Value: unknown }> => {
  const own = (alarm.Properties.Dimensions as Array<{ Name: string; Value: unknown }> | undefined) ?? [];
  const math = (
    (alarm.Properties.Metrics as Array<{ MetricStat?: { Metric: { Dimensions?: [] } } }> | undefined) ?? []
  ).flatMap((m) => m.MetricStat?.Metric.Dimensions ?? []);
  return [...own, ...math];
};

test('a route named orders-eu with handler orders.ts: BRIDGE_ROUTE, the alarms and the dashboard all say orders-eu', () => {
  const { template } = synthBridge(config(), { stage: 'dev' });

  // The function of the route: BRIDGE_ROUTE (the runtime's route name, and so its metrics' Route dimension) is the
  // config's name, not the handler's.
  const functions = resources(template, 'AWS::Lambda::Function').map(
    (fn) => (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables,
  );
  const env = functions.find((v) => v.BRIDGE_ROUTE === 'orders-eu');
  expect(env).toMatchObject({ BRIDGE_ROUTE: 'orders-eu', POWERTOOLS_SERVICE_NAME: 'orders-eu' });
  expect(functions.map((v) => v.BRIDGE_ROUTE).sort()).toEqual(['orders-eu', 'payments']);

  // Every alarm on the runtime's metrics watches Route=orders-eu (or payments), never Route=orders.
  const alarms = resources(template, 'AWS::CloudWatch::Alarm');
  const routeValues = alarms.flatMap((a) =>
    dimensionsOf(a)
      .filter((d) => d.Name === 'Route')
      .map((d) => d.Value),
  );
  expect(new Set(routeValues)).toEqual(new Set(['orders-eu', 'payments']));
  const mine = alarms.filter((a) => String(a.Properties.AlarmName).startsWith('bridge-test-dev-orders-eu-'));
  for (const metric of ['RecordsDeadLettered', 'BreakerOpened', 'IdempotencyConflicts']) {
    const alarm = mine.find((a) => a.Properties.MetricName === metric);
    expect({ metric, dimensions: alarm?.Properties.Dimensions }).toEqual({
      metric,
      dimensions: [{ Name: 'Route', Value: 'orders-eu' }],
    });
  }

  // The dashboard graphs the runtime's metrics by Route=orders-eu, and titles the row with that name.
  const [dashboard] = resources(template, 'AWS::CloudWatch::Dashboard');
  const body = JSON.stringify(dashboard?.Properties.DashboardBody);
  expect(body).toContain('### Route `orders-eu`');
  for (const metric of ['RecordsReceived', 'RecordsProcessed', 'RecordsDeadLettered', 'BreakerOpened']) {
    expect(body).toContain(`\\"${metric}\\",\\"Route\\",\\"orders-eu\\"`);
  }
  expect(body).not.toContain('\\"Route\\",\\"orders\\"');
});
