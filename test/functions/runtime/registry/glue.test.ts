import { z } from 'zod';
import { PermanentError, TransientError } from '../../../../functions/runtime/errors.ts';
import {
  frameGlue,
  type GlueSchemaVersion,
  glue,
  RegistryUnavailableError,
  UnknownSchemaError,
} from '../../../../functions/runtime/registry/index.ts';
import { prepareSchemas } from '../../../../functions/runtime/registry/prefetchSchemas.ts';
import { writeUVarint } from '../../../../functions/runtime/registry/wire.ts';
import { fixtureText, frame } from './fakeRegistry.ts';

const AVRO_VERSION = 'b7b4a7f0-8a3b-4c51-9b1e-3f0e6b7a2c10';
const JSON_VERSION = '00000000-0000-4000-8000-000000000002';
const PROTO_VERSION = '00000000-0000-4000-8000-000000000003';

// Glue Protobuf schemas are self-contained: the orders file with Money defined in it.
const PROTO = `syntax = "proto3";
package example.orders;
message Order { string order_id = 1; message Line { string sku = 1; message Discount { string code = 1; } } }
message Customer { string id = 1; string name = 2; }`;

const source = (versions: Record<string, GlueSchemaVersion | Error>) => {
  const calls: string[] = [];
  return {
    calls,
    schemas: {
      async getSchemaVersion(id: string): Promise<GlueSchemaVersion> {
        calls.push(id);
        const answer = versions[id];
        if (answer instanceof Error) throw answer;
        if (!answer)
          throw Object.assign(new Error(`Schema version ${id} not found`), { name: 'EntityNotFoundException' });
        return answer;
      },
    },
  };
};

const versions = {
  [AVRO_VERSION]: { dataFormat: 'AVRO', definition: fixtureText('orders.avsc'), schemaName: 'orders' },
  [JSON_VERSION]: { dataFormat: 'JSON', definition: fixtureText('order.schema.json') },
  [PROTO_VERSION]: { dataFormat: 'PROTOBUF', definition: PROTO },
} as const;

const OrderEvent = z.object({ orderId: z.string(), status: z.string(), amountCents: z.number() });

describe('glue', () => {
  test('decodes the published framing with and without zlib, one schema call for the version', async () => {
    const { calls, schemas } = source(versions);
    const decoder = glue({ schemas, schema: OrderEvent });
    await decoder.prepare([frame('glueAvro'), frame('glueAvroZlib'), frame('glueAvro')]);
    const expected = { orderId: 'o-1', status: 'PAID', amountCents: 1999 };
    expect(decoder.decode(frame('glueAvro'))).toEqual(expected);
    expect(decoder.decode(frame('glueAvroZlib'))).toEqual(expected);
    expect(calls).toEqual([AVRO_VERSION]);
  });

  test('JSON Schema payloads, zlib-compressed', async () => {
    const { schemas } = source(versions);
    const decoder = glue({ schemas });
    const bytes = frameGlue(JSON_VERSION, Buffer.from('{"orderId":"o-2","status":"PLACED"}'), 'zlib');
    await decoder.prepare([bytes]);
    expect(decoder.decode(bytes)).toEqual({ orderId: 'o-2', status: 'PLACED' });
    const bad = frameGlue(JSON_VERSION, Buffer.from('{"status":"PLACED"}'));
    expect(() => decoder.decode(bad)).toThrow(
      `schema version ${JSON_VERSION}: payload does not match the schema: JSON Schema: (root): must have required property 'orderId'`,
    );
  });

  test('Protobuf: the message index counts every message, nested too, sorted by full name', async () => {
    const { schemas } = source(versions);
    const decoder = glue({ schemas });
    // Sorted: example.orders.Customer 0, .Order 1, .Order.Line 2, .Order.Line.Discount 3
    const customer = frameGlue(
      PROTO_VERSION,
      Buffer.concat([writeUVarint(0), Buffer.from('0a03632d311203416461', 'hex')]),
    );
    const discount = frameGlue(PROTO_VERSION, Buffer.concat([writeUVarint(3), Buffer.from('0a0158', 'hex')]));
    await decoder.prepare([customer, discount]);
    expect(decoder.decode(customer)).toEqual({ id: 'c-1', name: 'Ada' });
    expect(decoder.decode(discount)).toEqual({ code: 'X' });
    const none = frameGlue(PROTO_VERSION, writeUVarint(9));
    expect(() => decoder.decode(none)).toThrow(/no message at Glue message index 9/);
  });

  test('an unknown schema version is permanent and names it; Glue being unavailable is transient', async () => {
    const missing = '11111111-2222-4333-8444-555555555555';
    const { schemas } = source({
      ...versions,
      [JSON_VERSION]: Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }),
    });
    const decoder = glue({ schemas, subject: 'orders' });
    const unknown = frameGlue(missing, Buffer.from('00', 'hex'));
    await decoder.prepare([unknown]);
    let error: unknown;
    try {
      decoder.decode(unknown);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UnknownSchemaError);
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as Error).message).toBe(
      `schema version ${missing} (subject orders): unknown to the registry: Schema version ${missing} not found`,
    );
    const throttled = decoder.prepare([frameGlue(JSON_VERSION, Buffer.from('{}'))]);
    await expect(throttled).rejects.toBeInstanceOf(RegistryUnavailableError);
    await expect(decoder.prepare([frameGlue(JSON_VERSION, Buffer.from('{}'))])).rejects.toBeInstanceOf(TransientError);
  });

  test('a Confluent-framed record on a Glue route is a permanent wrong-header error', async () => {
    const { schemas } = source(versions);
    const decoder = glue({ schemas });
    await decoder.prepare([frame('avroOrder')]);
    expect(() => decoder.decode(frame('avroOrder'))).toThrow(/wrong header version byte 0x00, expected 0x03/);
  });

  test('eventRecordFormat SOURCE: the version comes from valueSchemaMetadata, the bytes are the bare payload', async () => {
    // Shaped like AWS's example: the ESM removed the 18-byte Glue header and names the version in the metadata.
    const event = JSON.parse(fixtureText('esm-registry-source-glue-event.json'));
    const { calls, schemas } = source(versions);
    const decoder = glue({ schemas, schema: OrderEvent });
    await prepareSchemas({ value: decoder }, event);
    const record = event.records['orders-0'][0];
    expect(decoder.decode(Buffer.from(record.value, 'base64'), record.valueSchemaMetadata)).toEqual({
      orderId: 'o-1',
      status: 'PAID',
      amountCents: 1999,
    });
    expect(calls).toEqual([AVRO_VERSION]);
    // Protobuf keeps Glue's one message-index varint, as in AWS's Glue Protobuf example.
    const customer = Buffer.concat([writeUVarint(0), Buffer.from('0a03632d311203416461', 'hex')]);
    const metadata = { dataFormat: 'PROTOBUF', schemaId: PROTO_VERSION.toUpperCase() };
    const protoDecoder = glue({ schemas });
    await protoDecoder.prepare([customer], [metadata]);
    expect(protoDecoder.decode(customer, metadata)).toEqual({ id: 'c-1', name: 'Ada' });
    expect(() => protoDecoder.decode(customer, { dataFormat: 'PROTOBUF', schemaId: '42' })).toThrow(
      'the event source mapping\'s schema metadata names schema id "42" (PROTOBUF), which is not a Glue schema ' +
        'version UUID but a Confluent schema id: decode with confluentAvro, confluentProtobuf or confluentJsonSchema',
    );
  });
});
