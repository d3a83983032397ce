import fc from 'fast-check';
import { z } from 'zod';
import { withOverride } from '../../../functions/runtime/classify.ts';
import { BridgeError } from '../../../functions/runtime/errors.ts';
import { CompletedKeyCache } from '../../../functions/runtime/idempotency/CompletedKeyCache.ts';
import { BatchProcessor } from '../../../functions/runtime/processor.ts';
import { RouteSettings } from '../../../functions/runtime/settings.ts';
import { lambdaContext } from '../../helpers/events.ts';
import { MemorySink, MemoryStore } from '../../helpers/memory.ts';

const processor = new BatchProcessor({
  route: 'fuzz',
  value: z.object({ orderId: z.string(), version: z.number().int() }),
  classify: withOverride(),
  tombstones: 'skip',
  work: { mode: 'process', process: async () => {} },
});
const settings = RouteSettings.parse({
  retry: { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0, maxRecordAgeSeconds: 0 },
});

const base64ish = fc.oneof(
  fc.base64String(),
  fc.string(),
  fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v)).toString('base64')),
  fc
    .record({ orderId: fc.string(), version: fc.integer() })
    .map((v) => Buffer.from(JSON.stringify(v)).toString('base64')),
  fc.constant(null),
);
const wireRecord = fc.record(
  {
    topic: fc.oneof(fc.constant('orders'), fc.string()),
    partition: fc.oneof(fc.nat(5), fc.integer(), fc.double()),
    offset: fc.oneof(fc.nat(1000), fc.integer()),
    timestamp: fc.oneof(fc.nat(), fc.string()),
    timestampType: fc.constantFrom('CREATE_TIME', 'LOG_APPEND_TIME', 'BOGUS'),
    key: base64ish,
    value: base64ish,
    headers: fc.oneof(
      fc.array(fc.dictionary(fc.string(), fc.array(fc.nat(255)))),
      fc.array(fc.dictionary(fc.string(), fc.array(fc.integer()))),
      fc.anything(),
    ),
  },
  { requiredKeys: ['topic', 'partition', 'offset'] },
);
const event = fc.oneof(
  fc.record({
    eventSource: fc.constantFrom('aws:kafka', 'SelfManagedKafka', 'aws:sqs'),
    eventSourceArn: fc.option(fc.string(), { nil: undefined }),
    records: fc.dictionary(fc.string(), fc.array(wireRecord, { maxLength: 5 })),
  }),
  fc.anything(),
);

describe('fuzzing the processor with malformed events', () => {
  test('never crashes and never throws anything but a classified BridgeError', async () => {
    let returned = 0;
    await fc.assert(
      fc.asyncProperty(event, async (input) => {
        const sink = new MemorySink();
        try {
          const result = await processor.run(input, lambdaContext(), {
            store: new MemoryStore(),
            sink,
            settings,
            cache: new CompletedKeyCache(10),
          });
          // Nothing is lost: every received record was processed, skipped, dead-lettered or failed.
          const { received, processed, duplicates, tombstones, deadLettered } = result.summary;
          expect(processed + duplicates + tombstones + deadLettered).toBe(received);
          expect(sink.letters).toHaveLength(deadLettered);
          for (const letter of sink.letters)
            expect(letter.error.message).toMatch(/^RecordProcessingError: route fuzz: /);
          returned += 1;
        } catch (error) {
          expect(error).toBeInstanceOf(BridgeError);
        }
      }),
      { numRuns: 3_000 },
    );
    // A processor that rejected every event would pass the property; some shapes must be taken and counted.
    expect(returned).toBeGreaterThan(0);
  });
});
