import { DESTINATION_RETRY_CAP, esmRetryLimits, parseBridgeConfig } from '../../infra/config/index.ts';
import { withOrders } from './helpers.ts';

const PROVISIONED = { provisioned: { minPollers: 1, maxPollers: 2 } } as const;
/** The parsed `orders` route of a config whose orders route has `change`. */
const orders = (change: Parameters<typeof withOrders>[0]) =>
  parseBridgeConfig(withOrders(change)).routes[0] as Parameters<typeof esmRetryLimits>[0];

test('-1 with an on-failure destination is 10 retries (kafka-retry-configurations, kafka-on-failure-destination)', () => {
  expect(DESTINATION_RETRY_CAP).toBe(10);
  const limits = esmRetryLimits(
    orders({ mode: PROVISIONED, eventSource: { onFailure: 'sqs', retryAttempts: -1, acceptSkippedBatches: true } }),
  );
  // The template states -1; Lambda applies at most 10, and that is what the local bridge applies.
  expect(limits).toMatchObject({ retryAttempts: -1, effectiveRetries: 10, destination: true });
  // Unset is -1 too.
  expect(
    esmRetryLimits(orders({ mode: PROVISIONED, eventSource: { onFailure: 'sns', acceptSkippedBatches: true } })),
  ).toMatchObject({ retryAttempts: -1, effectiveRetries: 10 });
});

test('without a destination -1 stays infinite; an explicit count applies as given, with or without one', () => {
  expect(esmRetryLimits(orders({ mode: PROVISIONED }))).toEqual({
    retryAttempts: -1,
    maxRecordAgeSeconds: -1,
    effectiveRetries: undefined,
    effectiveMaxRecordAgeSeconds: undefined,
    bisectOnError: false,
    destination: false,
  });
  expect(
    esmRetryLimits(
      orders({
        mode: PROVISIONED,
        eventSource: {
          onFailure: 'sqs',
          retryAttempts: 1_000,
          maxRecordAgeSeconds: 7_200,
          bisectOnError: true,
          acceptSkippedBatches: true,
        },
      }),
    ),
  ).toEqual({
    retryAttempts: 1_000,
    maxRecordAgeSeconds: 7_200,
    effectiveRetries: 1_000,
    effectiveMaxRecordAgeSeconds: 7_200,
    bisectOnError: true,
    destination: true,
  });
});

test('on-demand mode has no retry limits; with a destination the cap of 10 is assumed to hold', () => {
  expect(esmRetryLimits(orders({}))).toMatchObject({ retryAttempts: -1, effectiveRetries: undefined });
  expect(esmRetryLimits(orders({ eventSource: { onFailure: 'sqs', acceptSkippedBatches: true } }))).toMatchObject({
    retryAttempts: -1,
    maxRecordAgeSeconds: -1,
    effectiveRetries: 10,
    bisectOnError: false,
  });
});
