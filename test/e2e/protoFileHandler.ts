// A test-only route for test/e2e/registry.e2e.test.ts: Protobuf records of a registered .proto file with several
// messages, a nested type and a reference to another file (test/fixtures/registry/orders.proto, common.proto). The
// message indexes of each record pick its message; each decoded value must match its message's expected shape
// exactly, or it is dead-lettered, and each kind is counted (DecodedOrder, DecodedDiscount, DecodedCustomer).
import { z } from 'zod';
import { PermanentError } from '../../functions/runtime/errors.ts';
import { kafkaHandler } from '../../functions/runtime/kafkaHandler.ts';
import { confluentProtobuf, registryFromEnvironment } from '../../functions/runtime/registry/index.ts';

const Order = z.strictObject({
  order_id: z.string().startsWith('o-'),
  // int64 decodes as a string, so no precision is lost.
  total: z.strictObject({ currency: z.literal('EUR'), cents: z.string().regex(/^\d+$/) }),
  lines: z.array(z.strictObject({ sku: z.string(), quantity: z.number().int() })),
});
const Discount = z.strictObject({ code: z.string().startsWith('d-') });
const Customer = z.strictObject({ id: z.string().startsWith('c-'), name: z.string().min(1) });

const kinds = { Order, Discount, Customer } as const;

export const handler = kafkaHandler({
  value: confluentProtobuf({ registry: registryFromEnvironment() }),
  process: async (record, context) => {
    for (const [kind, schema] of Object.entries(kinds)) {
      if (schema.safeParse(record.value).success) {
        context.count(`Decoded${kind}`);
        return;
      }
    }
    throw new PermanentError(`decoded to no expected message: ${JSON.stringify(record.value)}`);
  },
});
