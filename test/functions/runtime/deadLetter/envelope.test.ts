// The dead-letter envelope keeps what the event source mapping's registry integration said of a record
// (eventRecordFormat SOURCE names the schema only there), through every size-limited form it can take.
import { buildEnvelope, fitEnvelope, fitLastResort } from '../../../../functions/runtime/deadLetter/envelope.ts';
import { DeadLetterEnvelope } from '../../../../functions/runtime/deadLetter/envelopeSchema.ts';
import { ErrorKind } from '../../../../functions/runtime/errors.ts';
import type { WireRecord } from '../../../../functions/runtime/event.ts';

const keySchemaMetadata = { dataFormat: 'JSON', schemaId: '12' };
const valueSchemaMetadata = { dataFormat: 'AVRO', schemaId: 'b7b4a7f0-8a3b-4c51-9b1e-3f0e6b7a2c10' };
const record: WireRecord = {
  topic: 'orders',
  partition: 0,
  offset: 15,
  timestamp: 1545084650987,
  timestampType: 'CREATE_TIME',
  key: 'by0x',
  value: Buffer.alloc(4096, 1).toString('base64'),
  headers: [{ trace: [1, 2, 3] }, { big: Array.from({ length: 512 }, () => 7) }],
  keySchemaMetadata,
  valueSchemaMetadata,
};
const envelope = buildEnvelope({
  route: 'orders',
  idempotencyKey: 'orders-0@15',
  source: { eventSource: 'aws:kafka' },
  record,
  letter: { kind: ErrorKind.permanent, name: 'ValidationError', message: 'refused', attempts: 1, firstFailedAt: 0 },
});
const bodyOf = (body: string) => DeadLetterEnvelope.parse(JSON.parse(body));

test('the record keeps its key and value schema metadata, and the body parses back to it', () => {
  expect(envelope.record).toMatchObject({ key: 'by0x', keySchemaMetadata, valueSchemaMetadata, truncated: false });
  expect(bodyOf(fitEnvelope(envelope, 256 * 1024).body).record).toMatchObject({
    keySchemaMetadata,
    valueSchemaMetadata,
  });
});

test('without metadata the record has no such fields', () => {
  const plain = buildEnvelope({
    route: 'orders',
    idempotencyKey: 'orders-0@15',
    source: { eventSource: 'aws:kafka' },
    record: { ...record, keySchemaMetadata: undefined, valueSchemaMetadata: undefined },
    letter: { kind: ErrorKind.permanent, name: 'Error', message: 'x', attempts: 1, firstFailedAt: 0 },
  });
  expect(Object.keys(plain.record).sort()).toEqual(['headers', 'key', 'truncated', 'value']);
});

test('every truncated form keeps the metadata: a record re-read from Kafka is un-framed with it', () => {
  const withoutValue = fitEnvelope(envelope, 3000);
  expect(bodyOf(withoutValue.body).record).toMatchObject({ value: null, truncated: true, valueSchemaMetadata });
  expect(bodyOf(withoutValue.body).record.headers).toHaveLength(2);
  const withoutHeaders = fitEnvelope(envelope, 1000);
  expect(withoutHeaders.bytes).toBeLessThanOrEqual(1000);
  expect(bodyOf(withoutHeaders.body).record).toMatchObject({
    key: 'by0x',
    value: null,
    headers: [],
    truncated: true,
    keySchemaMetadata,
    valueSchemaMetadata,
  });
  expect(bodyOf(fitLastResort(envelope).body).record).toMatchObject({
    key: null,
    keySchemaMetadata,
    valueSchemaMetadata,
  });
});
