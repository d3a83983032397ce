// The two registry wire formats, read and written without any schema library:
//   Confluent: [0x00][schema id, int32 big-endian][payload]; Protobuf payloads start with message indexes
//              (a zigzag varint count, then that many zigzag varints; a count of 0 is the shorthand for [0]).
//   AWS Glue:  [0x03 header version][compression: 0 none, 5 zlib][schema version UUID, 16 bytes][payload].
import { deflateSync, inflateSync } from 'node:zlib';
import { WireFormatError } from './errors.ts';

export const CONFLUENT_MAGIC = 0;
export const CONFLUENT_HEADER_BYTES = 5;
export const GLUE_HEADER_VERSION = 3;
export const GLUE_COMPRESSION = { none: 0, zlib: 5 } as const;
export const GLUE_HEADER_BYTES = 18;

export type ConfluentFrame = { readonly schemaId: number; readonly payload: Buffer };

/** The schema id and the bytes after the 5-byte header; a wrong magic byte or a short header is permanent. */
export const readConfluentFrame = (bytes: Buffer): ConfluentFrame => {
  if (bytes.length === 0) throw new WireFormatError('empty payload, expected Confluent framing (magic byte 0)');
  if (bytes[0] !== CONFLUENT_MAGIC) {
    throw new WireFormatError(
      `wrong magic byte 0x${bytes[0]?.toString(16).padStart(2, '0')}, expected 0x00 (Confluent wire format)`,
    );
  }
  if (bytes.length < CONFLUENT_HEADER_BYTES) {
    throw new WireFormatError(`truncated Confluent header: ${bytes.length} bytes, expected at least 5`);
  }
  return { schemaId: bytes.readInt32BE(1), payload: bytes.subarray(CONFLUENT_HEADER_BYTES) };
};

/** Only the schema id, or undefined when the bytes are not Confluent-framed (decode reports why). */
export const peekConfluentSchemaId = (bytes: Buffer): number | undefined =>
  bytes.length >= CONFLUENT_HEADER_BYTES && bytes[0] === CONFLUENT_MAGIC ? bytes.readInt32BE(1) : undefined;

export const frameConfluent = (schemaId: number, payload: Uint8Array): Buffer => {
  const header = Buffer.alloc(CONFLUENT_HEADER_BYTES);
  header.writeUInt8(CONFLUENT_MAGIC, 0);
  header.writeInt32BE(schemaId, 1);
  return Buffer.concat([header, payload]);
};

/** Reads one unsigned varint (at most 32 bits) at `offset`; returns the value and the next offset. */
export const readUVarint = (bytes: Buffer, offset: number): { value: number; next: number } => {
  let value = 0;
  for (let i = 0; i < 5; i++) {
    const byte = bytes[offset + i];
    if (byte === undefined) throw new WireFormatError('truncated varint');
    value += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return { value, next: offset + i + 1 };
  }
  throw new WireFormatError('varint longer than 5 bytes');
};

export const writeUVarint = (value: number): Buffer => {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return Buffer.from(out);
};

const unzigzag = (n: number): number => (n % 2 === 0 ? n / 2 : -(n + 1) / 2);
const zigzag = (n: number): number => (n >= 0 ? n * 2 : -n * 2 - 1);

/** Protobuf message indexes after the Confluent header: the path of the message type in its file. */
export const readMessageIndexes = (payload: Buffer): { indexes: number[]; payload: Buffer } => {
  const first = readUVarint(payload, 0);
  const count = unzigzag(first.value);
  if (count === 0) return { indexes: [0], payload: payload.subarray(first.next) };
  if (count < 0 || count > 100) throw new WireFormatError(`implausible message index count ${count}`);
  const indexes: number[] = [];
  let offset = first.next;
  for (let i = 0; i < count; i++) {
    const read = readUVarint(payload, offset);
    const index = unzigzag(read.value);
    if (index < 0) throw new WireFormatError(`negative message index ${index}`);
    indexes.push(index);
    offset = read.next;
  }
  return { indexes, payload: payload.subarray(offset) };
};

/** `[0]` is written as the single byte 0, as Confluent's serializers do. */
export const writeMessageIndexes = (indexes: readonly number[]): Buffer =>
  indexes.length === 1 && indexes[0] === 0
    ? Buffer.from([0])
    : Buffer.concat([writeUVarint(zigzag(indexes.length)), ...indexes.map((i) => writeUVarint(zigzag(i)))]);

export type GlueFrame = { readonly schemaVersionId: string; readonly compression: number; readonly payload: Buffer };

const uuidOf = (bytes: Buffer): string => {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};

/** The schema version UUID and the payload, inflated when the header says zlib. */
export const readGlueFrame = (bytes: Buffer): GlueFrame => {
  if (bytes.length === 0) throw new WireFormatError('empty payload, expected Glue framing (header version 3)');
  if (bytes[0] !== GLUE_HEADER_VERSION) {
    throw new WireFormatError(
      `wrong header version byte 0x${bytes[0]?.toString(16).padStart(2, '0')}, expected 0x03 (AWS Glue Schema Registry)`,
    );
  }
  if (bytes.length < GLUE_HEADER_BYTES) {
    throw new WireFormatError(`truncated Glue header: ${bytes.length} bytes, expected at least 18`);
  }
  const compression = bytes[1] as number;
  const schemaVersionId = uuidOf(bytes.subarray(2, GLUE_HEADER_BYTES));
  const body = bytes.subarray(GLUE_HEADER_BYTES);
  if (compression === GLUE_COMPRESSION.none) return { schemaVersionId, compression, payload: body };
  if (compression !== GLUE_COMPRESSION.zlib) {
    throw new WireFormatError(`unknown compression byte ${compression} (0 none, 5 zlib)`, { id: schemaVersionId });
  }
  try {
    return { schemaVersionId, compression, payload: inflateSync(body) };
  } catch (error) {
    throw new WireFormatError(
      `zlib payload does not inflate: ${(error as Error).message}`,
      { id: schemaVersionId },
      {
        cause: error,
      },
    );
  }
};

export const peekGlueSchemaVersionId = (bytes: Buffer): string | undefined =>
  bytes.length >= GLUE_HEADER_BYTES && bytes[0] === GLUE_HEADER_VERSION
    ? uuidOf(bytes.subarray(2, GLUE_HEADER_BYTES))
    : undefined;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const frameGlue = (
  schemaVersionId: string,
  payload: Uint8Array,
  compression: 'none' | 'zlib' = 'none',
): Buffer => {
  if (!UUID.test(schemaVersionId)) throw new Error(`not a UUID: ${schemaVersionId}`);
  const header = Buffer.alloc(GLUE_HEADER_BYTES);
  header.writeUInt8(GLUE_HEADER_VERSION, 0);
  header.writeUInt8(GLUE_COMPRESSION[compression], 1);
  Buffer.from(schemaVersionId.replaceAll('-', ''), 'hex').copy(header, 2);
  return Buffer.concat([header, compression === 'zlib' ? deflateSync(payload) : payload]);
};

/**
 * A schema id as the event source mapping's schema metadata spells it (eventRecordFormat SOURCE): a decimal
 * Confluent id, or a Glue schema version UUID. Anything else names no registry framing this module can write.
 */
export type SchemaIdFraming =
  | { readonly registry: 'confluent'; readonly schemaId: number }
  | { readonly registry: 'glue'; readonly schemaVersionId: string };

const CONFLUENT_SCHEMA_ID = /^\d{1,10}$/;

export const framingOfSchemaId = (schemaId: string): SchemaIdFraming | undefined => {
  if (CONFLUENT_SCHEMA_ID.test(schemaId) && Number(schemaId) <= 0x7fffffff) {
    return { registry: 'confluent', schemaId: Number(schemaId) };
  }
  if (UUID.test(schemaId)) return { registry: 'glue', schemaVersionId: schemaId.toLowerCase() };
  return undefined;
};

/**
 * The framing the event source mapping removed with eventRecordFormat SOURCE, put back in front of the payload, so
 * that the bytes read as the producer wrote them. Protobuf needs nothing more: the ESM leaves the message indexes
 * (Confluent) or Glue's index varint in the payload. Glue payloads come uncompressed (the compression byte lived in
 * the removed header), and go back uncompressed. An id of neither kind is a WireFormatError.
 */
export const frameForSchemaId = (schemaId: string, payload: Uint8Array): Buffer => {
  const framing = framingOfSchemaId(schemaId);
  if (!framing) {
    throw new WireFormatError(
      `schema id "${schemaId}" is neither a Confluent schema id nor a Glue schema version UUID: no framing to write`,
    );
  }
  return framing.registry === 'confluent'
    ? frameConfluent(framing.schemaId, payload)
    : frameGlue(framing.schemaVersionId, payload);
};
