import { z } from 'zod';
import { kafkaHandler } from '../runtime/kafkaHandler.ts';

/**
 * Example route `audit`: an audit trail that accepts any JSON object as the value and records
 * nothing but a count. It shows the smallest useful route (no side table), and it is the route
 * `npm run invoke` is tried with on a sample MSK event (value `{"key":"value"}`).
 */
export const AuditEvent = z.record(z.string(), z.unknown());
export type AuditEvent = z.infer<typeof AuditEvent>;

export const AUDIT_ENTRIES_METRIC = 'AuditEntries';

export const handler = kafkaHandler({
  route: 'audit',
  value: AuditEvent,
  process: async (_record, context) => {
    context.count(AUDIT_ENTRIES_METRIC);
  },
});
