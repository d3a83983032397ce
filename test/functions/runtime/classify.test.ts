import { classifyError, withOverride } from '../../../functions/runtime/classify.ts';
import { BusinessRuleError, TemporaryError, TransientError } from '../../../functions/runtime/errors.ts';
import { retryDelay } from '../../../functions/runtime/retry.ts';
import { RetrySettings } from '../../../functions/runtime/settings.ts';

const sdkError = (name: string, status?: number, extra: object = {}) =>
  Object.assign(new Error(name), {
    name,
    ...(status !== undefined && { $metadata: { httpStatusCode: status } }),
    ...extra,
  });

test('throttling and 429 are temporary; 5xx, conflicts and network errors transient; the rest permanent', () => {
  expect(classifyError(sdkError('ProvisionedThroughputExceededException', 400))).toBe('temporary');
  expect(classifyError(sdkError('ThrottlingException', 400))).toBe('temporary');
  expect(classifyError(sdkError('SomethingElse', 429))).toBe('temporary');
  expect(classifyError(sdkError('Unknown', 400, { $retryable: { throttling: true } }))).toBe('temporary');
  expect(classifyError(sdkError('InternalServerError', 500))).toBe('transient');
  expect(classifyError(sdkError('ServiceUnavailable', 503))).toBe('transient');
  expect(classifyError(sdkError('TransactionConflictException', 400))).toBe('transient');
  expect(classifyError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe('transient');
  expect(classifyError(new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } }))).toBe('transient');
  expect(classifyError(sdkError('ValidationException', 400))).toBe('permanent');
  expect(classifyError(new TypeError('x is undefined'))).toBe('permanent');
  // Our own errors say what they are; a TemporaryError is a TransientError that waits before it is retried.
  expect(classifyError(new TemporaryError('pool full'))).toBe('temporary');
  expect(classifyError(new TransientError('blip'))).toBe('transient');
  expect(classifyError(new BusinessRuleError('overdraft'))).toBe('permanent');
  expect(
    withOverride((e) => ((e as Error).message === 'rate limited' ? 'temporary' : undefined))(new Error('rate limited')),
  ).toBe('temporary');
});

test('each tier has its policy: transient backs off a few tries, temporary waits out a cool-down, then probes', () => {
  const retry = RetrySettings.parse({});
  expect(retry).toMatchObject({
    baseDelayMs: 100,
    maxDelayMs: 2_000,
    transient: { tries: 3 },
    temporary: { coolDownMs: 5_000, probes: 2 },
  });
  const top = () => 0.999999;
  expect([0, 1, 2, 3].map((tries) => retryDelay('transient', tries, retry, top))).toEqual([99, 199, 399, undefined]);
  const capped = RetrySettings.parse({ transient: { tries: 10 } });
  expect(retryDelay('transient', 9, capped, top)).toBe(1_999);
  expect([0, 1, 2].map((tries) => retryDelay('temporary', tries, retry, () => 0))).toEqual([5_000, 5_000, undefined]);
  // Up to a tenth of jitter, so the probes of many partitions do not land together.
  expect(retryDelay('temporary', 0, retry, top)).toBe(5_499);
});
