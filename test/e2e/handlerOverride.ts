// Preloaded into the bridge child process (`node --import test/e2e/handlerOverride.ts scripts/bridge/cli.ts ...`).
//
// A route's `handler` must name a module under functions/handlers/ (infra/config checks that it exists there, and
// the bridge worker imports `functions/handlers/<handler>`), so a config cannot point a route at a test-only handler.
// This hook runs in every thread of the bridge (worker threads inherit `--import`), and in the worker of a route listed
// in E2E_HANDLER_OVERRIDES (`{ "<route>": { "replaces": "<abs path of its configured handler>", "module": "<abs
// path>" } }`) it resolves the configured handler module to the test module instead. Everything else (the CLI, the
// config, the consumer, the worker, the runtime) stays the real thing. Other routes and other threads are untouched.
import { registerHooks } from 'node:module';
import { pathToFileURL } from 'node:url';

type Override = { replaces: string; module: string };

const overrides = JSON.parse(process.env.E2E_HANDLER_OVERRIDES ?? '{}') as Record<string, Override>;
const route = process.env.BRIDGE_ROUTE;
const override = route === undefined ? undefined : overrides[route];

if (override) {
  const replaces = pathToFileURL(override.replaces).href;
  const replacement = pathToFileURL(override.module).href;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      const resolved = nextResolve(specifier, context);
      return resolved.url === replaces ? { ...resolved, url: replacement } : resolved;
    },
  });
}
