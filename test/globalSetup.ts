// Starts (or reuses) Kafka, DynamoDB Local and ElasticMQ before any test file runs, and points the SDKs and the local
// tools at them through process.env, which the jest workers inherit. A stack that was already running (say from
// `npm run local:up`), or endpoints given through KAFKA_BROKERS / AWS_ENDPOINT_URL_*, are used as they are.
//
// The local Apicurio registry starts here too, beside them, rather than in the test files that use it: a file that
// started it and stopped it in its afterAll pulled it from under another file still using it in the other worker.
//
// The first run on a clean machine downloads the services from Maven Central (about 120 MB with Maven's own cache,
// and about 160 MB more for the registry), which can take a minute or two. LOCAL_SERVICES=skip starts nothing (unit
// tests only, no Java needed).
import { ensureRegistry } from '../scripts/local/registry.ts';
import { applyEndpointsToEnv, ensureLocalServices, resolveEndpoints } from '../scripts/local/services.ts';

const log = (line: string) => process.stderr.write(`[local services] ${line}\n`);

export default async function globalSetup(): Promise<void> {
  if (process.env.LOCAL_SERVICES === 'skip') {
    log('LOCAL_SERVICES=skip: starting nothing; integration tests need services at the configured endpoints');
    applyEndpointsToEnv(resolveEndpoints());
    return;
  }
  process.stderr.write('\n');
  const t0 = Date.now();
  const [{ endpoints, started }, registry] = await Promise.all([
    ensureLocalServices({ log, readyTimeoutMs: 180_000 }),
    ensureRegistry({ log: (line) => process.stderr.write(`[registry] ${line}\n`), readyTimeoutMs: 180_000 }),
  ]);
  applyEndpointsToEnv(endpoints);
  // globalTeardown runs in this same process and stops exactly these, leaving a developer's own stack alone.
  globalThis.__LOCAL_SERVICES_STARTED__ = started;
  globalThis.__LOCAL_REGISTRY_STARTED__ = registry.source === 'started';
  log(
    `ready in ${((Date.now() - t0) / 1000).toFixed(1)}s${started.length > 0 ? ` (started ${started.join(', ')})` : ''}`,
  );
}

declare global {
  var __LOCAL_SERVICES_STARTED__: import('../scripts/local/services.ts').ServiceName[] | undefined;
  var __LOCAL_REGISTRY_STARTED__: boolean | undefined;
}
