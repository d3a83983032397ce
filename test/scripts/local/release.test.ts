// What `npm start` says about the local services on its way out (Ctrl-C, --duration, SIGTERM, a failure).
import {
  localServicesStatus,
  releaseLocalServices,
  releaseSummary,
  type ServiceName,
} from '../../../scripts/local/services.ts';

test('it stopped everything this run started', () => {
  expect(releaseSummary({ stopped: ['kafka', 'dynamodb', 'elasticmq'], failed: [], kept: [] })).toBe(
    'local services: stopped kafka, dynamodb-local, elasticmq, which this run started ' +
      '(start them with `npm run local:up` to keep them between runs)',
  );
});

test('services that were running before the run keep running, and it says how to stop them', () => {
  expect(releaseSummary({ stopped: [], failed: [], kept: ['kafka', 'dynamodb', 'elasticmq'] })).toBe(
    'local services: left kafka, dynamodb-local, elasticmq running, as before this run (`npm run local:down` stops them)',
  );
  expect(releaseSummary({ stopped: ['elasticmq'], failed: [], kept: ['kafka'] })).toBe(
    'local services: stopped elasticmq, which this run started; left kafka running, as before this run ' +
      '(`npm run local:down` stops them)',
  );
});

test('a service that would not stop is named, with the way to stop it', () => {
  expect(
    releaseSummary({ stopped: ['dynamodb'], failed: ['kafka'], kept: [], error: 'port(s) 9092 are still in use' }),
  ).toBe(
    'local services: stopped dynamodb-local, which this run started; could not stop kafka ' +
      '(port(s) 9092 are still in use) (`npm run local:down` stops them)',
  );
});

test('with nothing started by the run, nothing is stopped: the running services are named as left running', async () => {
  expect(releaseSummary({ stopped: [], failed: [], kept: [] })).toBe(
    'local services: this run started none of them, so it stopped none',
  );
  // With no endpoint variables, the status shows the processes these scripts started (PID files).
  const ours = async () =>
    (await localServicesStatus({ env: {} })).filter((s) => s.source === 'managed' && s.pid).map((s) => [s.name, s.pid]);
  const before = await ours();
  expect(await releaseLocalServices([])).toBe(
    releaseSummary({ stopped: [], failed: [], kept: before.map(([name]) => name as ServiceName) }),
  );
  expect(await ours()).toEqual(before);
});
