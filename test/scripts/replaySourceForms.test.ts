// The forms a SOURCE-format record (eventRecordFormat SOURCE: registry framing removed, the schema id only in
// keySchemaMetadata / valueSchemaMetadata) takes on its way back: re-framed for Kafka, un-framed when read back from
// Kafka for a handler, and handed to the handler with its metadata. Pure conversions, no services.
import { readFileSync } from 'node:fs';
import { buildEnvelope } from '../../functions/runtime/deadLetter/envelope.ts';
import { DeadLetterEnvelope } from '../../functions/runtime/deadLetter/envelopeSchema.ts';
import { ErrorKind } from '../../functions/runtime/errors.ts';
import { KafkaEvent, type WireRecord } from '../../functions/runtime/event.ts';
import { frameConfluent, frameGlue } from '../../functions/runtime/registry/wire.ts';
import {
  deliveredFromKafka,
  describeSchemaMetadata,
  envelopeRecordBytes,
  kafkaEvent,
  kafkaFormBytes,
  ReplayFormError,
  replayMessage,
  replayWireRecord,
} from '../../scripts/lib/replayEvents.ts';

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/registry/${name}`, import.meta.url), 'utf8'));
const frames = fixture('frames.json') as Record<string, { hex: string; payloadHex?: string }>;
const frameHex = (name: string) => Buffer.from(`${frames[name]?.hex}${frames[name]?.payloadHex ?? ''}`, 'hex');
const GLUE_VERSION = 'b7b4a7f0-8a3b-4c51-9b1e-3f0e6b7a2c10';

const letter = {
  kind: ErrorKind.permanent,
  name: 'ValidationError',
  message: 'refused',
  attempts: 1,
  firstFailedAt: 0,
};

/** The envelope the runtime writes for a record of an ESM event fixture, parsed as `replay` parses it. */
const envelopeOf = (record: WireRecord): DeadLetterEnvelope =>
  DeadLetterEnvelope.parse(
    JSON.parse(
      JSON.stringify(
        buildEnvelope({
          route: 'orders',
          idempotencyKey: `${record.topic}-${record.partition}@${record.offset}`,
          source: { eventSource: 'aws:kafka' },
          record,
          letter,
        }),
      ),
    ),
  );
const recordOf = (file: string, index = 0): WireRecord =>
  KafkaEvent.parse(fixture(file)).records['orders-0']?.[index] as WireRecord;

describe('re-framing for Kafka', () => {
  test('Glue: header version 3, compression 0 and the 16-byte schema version UUID before the payload', () => {
    const envelope = envelopeOf(recordOf('esm-registry-source-glue-event.json'));
    expect(envelope.record.valueSchemaMetadata).toEqual({ dataFormat: 'AVRO', schemaId: GLUE_VERSION });
    const { bytes, reframed } = kafkaFormBytes(envelope, envelopeRecordBytes(envelope));
    // The very bytes of frames.json's glueAvro, which the ESM had stripped down to the Avro payload.
    expect(bytes.value).toEqual(frameHex('glueAvro'));
    expect(bytes.value).toEqual(frameGlue(GLUE_VERSION, Buffer.from('066f2d31029e1f00', 'hex')));
    expect(reframed).toEqual([`value: Glue schema version ${GLUE_VERSION}`]);
    // The key had no metadata: it goes as it came, and so do the headers.
    expect(bytes.key).toEqual(Buffer.from('o-1'));
    const message = replayMessage(envelope, bytes, 'orders');
    expect(message.value).toEqual(frameHex('glueAvro'));
    expect([...message.headers.keys()].map(String)).toEqual(['headerKey', 'x-bridge-replay-of']);
  });

  test('Confluent Avro: magic byte 0 and the 4-byte big-endian id, also before a payload that looks framed', () => {
    const envelope = envelopeOf(recordOf('esm-registry-source-avro-event.json', 2));
    const { bytes, reframed } = kafkaFormBytes(envelope, envelopeRecordBytes(envelope));
    expect(bytes.value?.toString('hex')).toBe('00000000010000000202' + '78');
    expect(reframed).toEqual(['value: Confluent schema id 1']);
  });

  test('Confluent Protobuf: the message indexes the ESM left in the payload stay right after the header', () => {
    const records = KafkaEvent.parse(fixture('esm-registry-source-protobuf-event.json')).records;
    const [order, customer] = records['orders-proto-0'] as [WireRecord, WireRecord];
    const reframe = (record: WireRecord) => {
      const envelope = envelopeOf(record);
      return kafkaFormBytes(envelope, envelopeRecordBytes(envelope)).bytes.value;
    };
    expect(reframe(order)).toEqual(frameHex('protoOrder'));
    expect(reframe(customer)).toEqual(frameHex('protoCustomerShorthand'));
  });

  test('a key with metadata is re-framed too; bytes without metadata and null values go as they are', () => {
    const record = recordOf('esm-registry-source-avro-event.json');
    const envelope = envelopeOf({
      ...record,
      key: Buffer.from('k').toString('base64'),
      value: null,
      keySchemaMetadata: { dataFormat: 'JSON', schemaId: '42' },
    });
    const { bytes, reframed } = kafkaFormBytes(envelope, envelopeRecordBytes(envelope));
    expect(bytes.key).toEqual(frameConfluent(42, Buffer.from('k')));
    expect(bytes.value).toBeNull();
    expect(reframed).toEqual(['key: Confluent schema id 42']);

    const plain = envelopeOf({ ...record, valueSchemaMetadata: undefined });
    expect(plain.record).not.toHaveProperty('valueSchemaMetadata');
    expect(kafkaFormBytes(plain, envelopeRecordBytes(plain))).toEqual({
      bytes: envelopeRecordBytes(plain),
      reframed: [],
    });
  });

  test('a value the ESM converted to JSON (eventRecordFormat JSON), or an id of no registry, is refused by name', () => {
    const converted = envelopeOf({ ...recordOf('esm-registry-json-event.json'), keySchemaMetadata: undefined });
    expect(() => kafkaFormBytes(converted, envelopeRecordBytes(converted))).toThrow(ReplayFormError);
    expect(() => kafkaFormBytes(converted, envelopeRecordBytes(converted))).toThrow(
      /^orders-0@15: value \(AVRO, schema id "1"\) was delivered converted to JSON \(eventRecordFormat JSON\)/,
    );
    const odd = envelopeOf(recordOf('esm-registry-json-event.json'));
    expect(() => kafkaFormBytes(odd, envelopeRecordBytes(odd))).toThrow(
      /^orders-0@15: key \(JSON, schema id "key-schema-001"\): the schema id is neither a Confluent schema id nor a Glue/,
    );
  });
});

describe('into the handler', () => {
  test('the rebuilt record carries the metadata, so the decoder reads the bare payload under the same id', () => {
    const record = recordOf('esm-registry-source-avro-event.json');
    const envelope = envelopeOf(record);
    const wire = replayWireRecord(envelope, envelopeRecordBytes(envelope));
    expect(wire).toMatchObject({ value: record.value, valueSchemaMetadata: { dataFormat: 'AVRO', schemaId: '1' } });
    expect(wire).not.toHaveProperty('keySchemaMetadata');
    expect(KafkaEvent.safeParse(kafkaEvent({ eventSource: 'aws:kafka' }, [wire])).success).toBe(true);
    expect(describeSchemaMetadata(envelope)).toBe('value AVRO, schema id "1"');
  });

  test('a truncated letter re-read from Kafka loses its framing again, as the ESM delivered it', () => {
    const confluent = envelopeOf(recordOf('esm-registry-source-avro-event.json'));
    const headers: Array<[string, Buffer]> = [];
    const payload = Buffer.from('066f2d31029e1f00', 'hex');
    expect(deliveredFromKafka(confluent, { key: null, value: frameHex('avroOrder'), headers }).value).toEqual(payload);
    const glue = envelopeOf(recordOf('esm-registry-source-glue-event.json'));
    expect(deliveredFromKafka(glue, { key: null, value: frameHex('glueAvro'), headers }).value).toEqual(payload);
    // zlib: the ESM hands the payload over inflated.
    expect(deliveredFromKafka(glue, { key: null, value: frameHex('glueAvroZlib'), headers }).value).toEqual(payload);
    expect(() => deliveredFromKafka(confluent, { key: null, value: frameConfluent(2, payload), headers })).toThrow(
      'orders-0@15: value (AVRO, schema id "1") as read from Kafka is framed with schema id 2',
    );
    expect(() => deliveredFromKafka(confluent, { key: null, value: payload, headers })).toThrow(
      /^orders-0@15: value \(AVRO, schema id "1"\) as read from Kafka: wrong magic byte 0x06/,
    );
  });
});

test('an envelope written before the metadata was kept still parses, and replays as before', () => {
  const envelope = envelopeOf(recordOf('esm-registry-source-avro-event.json'));
  const { keySchemaMetadata: _key, valueSchemaMetadata: _value, ...oldRecord } = envelope.record;
  const old = DeadLetterEnvelope.parse({ ...envelope, record: oldRecord });
  expect(old.record).toEqual({
    key: 'by0x',
    value: 'Bm8tMQKeHwA=',
    headers: envelope.record.headers,
    truncated: false,
  });
  expect(replayWireRecord(old, envelopeRecordBytes(old))).not.toHaveProperty('valueSchemaMetadata');
  expect(kafkaFormBytes(old, envelopeRecordBytes(old)).reframed).toEqual([]);
});
