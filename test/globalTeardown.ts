// Stops only the services that globalSetup started; whatever was already running stays up.
import { stopLocalServices } from '../scripts/local/services.ts';

export default async function globalTeardown(): Promise<void> {
  const started = globalThis.__LOCAL_SERVICES_STARTED__ ?? [];
  globalThis.__LOCAL_SERVICES_STARTED__ = undefined;
  if (started.length === 0) return;
  await stopLocalServices(started, { log: (line) => process.stderr.write(`[local services] ${line}\n`) });
}
