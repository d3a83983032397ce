import { readFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { PermanentError } from '../../../../functions/runtime/errors.ts';
import { WireFormatError } from '../../../../functions/runtime/registry/errors.ts';
import {
  frameConfluent,
  frameForSchemaId,
  frameGlue,
  framingOfSchemaId,
  peekConfluentSchemaId,
  peekGlueSchemaVersionId,
  readConfluentFrame,
  readGlueFrame,
  readMessageIndexes,
  writeMessageIndexes,
} from '../../../../functions/runtime/registry/wire.ts';

const frames = JSON.parse(readFileSync(new URL('../../../fixtures/registry/frames.json', import.meta.url), 'utf8'));
const hex = (name: string) => Buffer.from(frames[name].hex + (frames[name].payloadHex ?? ''), 'hex');
const UUID = 'b7b4a7f0-8a3b-4c51-9b1e-3f0e6b7a2c10';

describe('Confluent framing', () => {
  test('reads the big-endian schema id and the payload after the 5-byte header', () => {
    const frame = readConfluentFrame(hex('avroOrder'));
    expect(frame.schemaId).toBe(1);
    expect(frame.payload.toString('hex')).toBe('066f2d31029e1f00');
    expect(readConfluentFrame(Buffer.from('000000012c', 'hex')).schemaId).toBe(300);
    expect(frameConfluent(1, Buffer.from('066f2d31029e1f00', 'hex'))).toEqual(hex('avroOrder'));
  });

  test('a wrong magic byte is a permanent WireFormatError naming the byte', () => {
    const bytes = Buffer.from('{"orderId":"o-1"}');
    expect(() => readConfluentFrame(bytes)).toThrow(WireFormatError);
    expect(() => readConfluentFrame(bytes)).toThrow(/wrong magic byte 0x7b, expected 0x00/);
    expect(() => readConfluentFrame(bytes)).toThrow(PermanentError);
    expect(peekConfluentSchemaId(bytes)).toBeUndefined();
  });

  test('an empty value or a header cut short is permanent', () => {
    expect(() => readConfluentFrame(Buffer.alloc(0))).toThrow(/empty payload/);
    expect(() => readConfluentFrame(Buffer.from('000000', 'hex'))).toThrow(/truncated Confluent header: 3 bytes/);
    expect(peekConfluentSchemaId(Buffer.from('000000', 'hex'))).toBeUndefined();
  });
});

describe('Protobuf message indexes', () => {
  test('a single 0 byte is the [0] shorthand', () => {
    const { indexes, payload } = readMessageIndexes(Buffer.from('000a01', 'hex'));
    expect(indexes).toEqual([0]);
    expect(payload.toString('hex')).toBe('0a01');
    expect(writeMessageIndexes([0]).toString('hex')).toBe('00');
  });

  test('explicit [0], [1] and the nested [1, 0, 0] read as zigzag varints', () => {
    expect(readMessageIndexes(Buffer.from('0200', 'hex')).indexes).toEqual([0]);
    expect(readMessageIndexes(Buffer.from('0202', 'hex')).indexes).toEqual([1]);
    expect(readMessageIndexes(Buffer.from('06020000ff', 'hex'))).toEqual({
      indexes: [1, 0, 0],
      payload: Buffer.from('ff', 'hex'),
    });
  });

  test('indexes above 63 take two varint bytes, and write and read agree', () => {
    for (const path of [[0], [1], [1, 0], [64], [200, 3, 0], [0, 0]]) {
      const written = writeMessageIndexes(path);
      expect(readMessageIndexes(Buffer.concat([written, Buffer.from([0xaa])]))).toEqual({
        indexes: path,
        payload: Buffer.from([0xaa]),
      });
    }
    expect(writeMessageIndexes([64]).toString('hex')).toBe('028001');
  });

  test('truncated or implausible indexes are permanent WireFormatErrors', () => {
    expect(() => readMessageIndexes(Buffer.alloc(0))).toThrow(/truncated varint/);
    expect(() => readMessageIndexes(Buffer.from('04', 'hex'))).toThrow(/truncated varint/);
    expect(() => readMessageIndexes(Buffer.from('0480', 'hex'))).toThrow(/truncated varint/);
    expect(() => readMessageIndexes(Buffer.from('01', 'hex'))).toThrow(/implausible message index count -1/);
    expect(() => readMessageIndexes(Buffer.from('0201', 'hex'))).toThrow(/negative message index/);
    expect(() => readMessageIndexes(Buffer.from('ffffffffff', 'hex'))).toThrow(WireFormatError);
  });
});

describe('AWS Glue framing', () => {
  test('reads header version 3, no compression, and the schema version UUID', () => {
    const frame = readGlueFrame(hex('glueAvro'));
    expect(frame).toEqual({
      schemaVersionId: UUID,
      compression: 0,
      payload: Buffer.from('066f2d31029e1f00', 'hex'),
    });
    expect(peekGlueSchemaVersionId(hex('glueAvro'))).toBe(UUID);
    expect(frameGlue(UUID, Buffer.from('066f2d31029e1f00', 'hex'))).toEqual(hex('glueAvro'));
  });

  test('inflates a zlib payload (compression byte 5)', () => {
    const frame = readGlueFrame(hex('glueAvroZlib'));
    expect(frame.compression).toBe(5);
    expect(frame.payload.toString('hex')).toBe('066f2d31029e1f00');
    expect(readGlueFrame(frameGlue(UUID, Buffer.from('hello'), 'zlib')).payload.toString()).toBe('hello');
  });

  test('wrong header version, unknown compression, a short header or bad zlib are permanent', () => {
    expect(() => readGlueFrame(hex('avroOrder'))).toThrow(/wrong header version byte 0x00, expected 0x03/);
    expect(() => readGlueFrame(Buffer.from('0300b7b4', 'hex'))).toThrow(/truncated Glue header: 4 bytes/);
    const unknown = Buffer.from(hex('glueAvro'));
    unknown[1] = 2;
    expect(() => readGlueFrame(unknown)).toThrow(`schema version ${UUID}: unknown compression byte 2`);
    const broken = Buffer.concat([hex('glueAvroZlib').subarray(0, 18), deflateSync('x').subarray(0, 3)]);
    expect(() => readGlueFrame(broken)).toThrow(/zlib payload does not inflate/);
    expect(() => readGlueFrame(broken)).toThrow(PermanentError);
  });
});

describe('framing a SOURCE payload again by the schema id its metadata names', () => {
  test('a decimal id is Confluent framing, a UUID is the Glue header; neither kind names no framing', () => {
    expect(framingOfSchemaId('1')).toEqual({ registry: 'confluent', schemaId: 1 });
    expect(framingOfSchemaId('2147483647')).toEqual({ registry: 'confluent', schemaId: 2147483647 });
    expect(framingOfSchemaId(UUID.toUpperCase())).toEqual({ registry: 'glue', schemaVersionId: UUID });
    for (const id of ['2147483648', '-1', '', 'key-schema-001', '1.5']) expect(framingOfSchemaId(id)).toBeUndefined();
  });

  test('Confluent: the bytes a Confluent serializer wrote; Protobuf indexes stay in the payload', () => {
    expect(frameForSchemaId('1', Buffer.from('066f2d31029e1f00', 'hex'))).toEqual(hex('avroOrder'));
    const protoPayload = Buffer.from(`0202${frames.protoOrder.payloadHex}`, 'hex');
    expect(frameForSchemaId('3', protoPayload)).toEqual(hex('protoOrder'));
  });

  test('Glue: header version 3, no compression, the 16-byte schema version UUID', () => {
    const framed = frameForSchemaId(UUID, Buffer.from('066f2d31029e1f00', 'hex'));
    expect(framed).toEqual(hex('glueAvro'));
    expect(readGlueFrame(framed)).toMatchObject({ schemaVersionId: UUID, compression: 0 });
  });

  test('an id of neither kind is a WireFormatError that names it', () => {
    expect(() => frameForSchemaId('key-schema-001', Buffer.from([1]))).toThrow(WireFormatError);
    expect(() => frameForSchemaId('key-schema-001', Buffer.from([1]))).toThrow(
      'schema id "key-schema-001" is neither a Confluent schema id nor a Glue schema version UUID',
    );
  });
});
