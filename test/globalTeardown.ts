// Stops only the services that globalSetup started; whatever was already running stays up.
import { stopRegistry } from '../scripts/local/registry.ts';
import { stopLocalServices } from '../scripts/local/services.ts';

export default async function globalTeardown(): Promise<void> {
  const started = globalThis.__LOCAL_SERVICES_STARTED__ ?? [];
  const registryStarted = globalThis.__LOCAL_REGISTRY_STARTED__ === true;
  globalThis.__LOCAL_SERVICES_STARTED__ = undefined;
  globalThis.__LOCAL_REGISTRY_STARTED__ = undefined;
  if (registryStarted) await stopRegistry({ log: (line) => process.stderr.write(`[registry] ${line}\n`) });
  if (started.length === 0) return;
  await stopLocalServices(started, { log: (line) => process.stderr.write(`[local services] ${line}\n`) });
}
