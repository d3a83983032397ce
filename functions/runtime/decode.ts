import type { z } from 'zod';
import { DecodeError, ValidationError } from './errors.ts';
import type { WireHeader, WireRecord } from './event.ts';

/**
 * Header values as Kafka carries them: several values may share a name, in order.
 * A value that is valid UTF-8 is held as a string, anything else as the raw Buffer.
 */
export class RecordHeaders {
  readonly #values: ReadonlyMap<string, readonly (string | Buffer)[]>;

  constructor(values: ReadonlyMap<string, readonly (string | Buffer)[]>) {
    this.#values = values;
  }

  static fromWire(wire: readonly WireHeader[]): RecordHeaders {
    const values = new Map<string, (string | Buffer)[]>();
    for (const header of wire) {
      for (const [name, bytes] of Object.entries(header)) {
        const list = values.get(name) ?? [];
        list.push(bytesToStringOrBuffer(Buffer.from(bytes)));
        values.set(name, list);
      }
    }
    return new RecordHeaders(values);
  }

  /** The first value of `name` as a string (non-UTF-8 bytes are decoded lossily), or undefined. */
  get(name: string): string | undefined {
    const first = this.#values.get(name)?.[0];
    return first === undefined ? undefined : first.toString();
  }

  /** Every value of `name`, in order. */
  getAll(name: string): readonly (string | Buffer)[] {
    return this.#values.get(name) ?? [];
  }

  has(name: string): boolean {
    return this.#values.has(name);
  }

  names(): string[] {
    return [...this.#values.keys()];
  }

  get size(): number {
    return this.#values.size;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const bytesToStringOrBuffer = (bytes: Buffer): string | Buffer => {
  try {
    return utf8.decode(bytes);
  } catch {
    return bytes;
  }
};

/**
 * What the event source mapping's own schema registry integration (provisioned mode) says of a record's key or value:
 * `keySchemaMetadata` / `valueSchemaMetadata`. With `eventRecordFormat: SOURCE` the bytes are the producer's payload
 * with the registry framing removed, so the schema id is only here: a Confluent id (`"42"`) or a Glue schema version
 * UUID. `dataFormat` is `AVRO`, `PROTOBUF` or `JSON`.
 */
export type SchemaMetadata = NonNullable<WireRecord['valueSchemaMetadata']>;

/** Turns a record's value (or key) bytes into a typed value. Throw a PermanentError subclass to reject. */
export type Decoder<T> = {
  /** `schemaMetadata`: the record's `valueSchemaMetadata` (or `keySchemaMetadata` for a key), when it has one. */
  decode(bytes: Buffer, schemaMetadata?: SchemaMetadata): T;
  /**
   * Optional, asynchronous, once per batch before any `decode`: the registry decoders fetch the schemas the batch
   * names here (each record's leading bytes suffice). `schemaMetadata[i]`, when given, is the metadata of the record
   * whose bytes are `heads[i]`. A throw fails the batch, so the event source re-delivers it.
   */
  prepare?(heads: readonly Buffer[], schemaMetadata?: readonly (SchemaMetadata | undefined)[]): Promise<void>;
};

/** A zod schema decodes JSON bytes; a `Decoder` decodes raw bytes its own way. */
export type ValueSpec<T> = z.ZodType<T> | Decoder<T>;

// zod 4 schemas have a `decode` method of their own, so a schema is told apart by `safeParse`.
const isSchema = <T>(spec: ValueSpec<T>): spec is z.ZodType<T> =>
  typeof (spec as z.ZodType<T>).safeParse === 'function';

/** The raw bytes, untouched: for Avro, Protobuf or anything the route parses itself. */
export const rawBytes: Decoder<Buffer> = { decode: (bytes) => bytes };

/** UTF-8 text; invalid UTF-8 is a decode error rather than silent replacement characters. */
export const utf8Text: Decoder<string> = {
  decode: (bytes) => {
    try {
      return utf8.decode(bytes);
    } catch (error) {
      throw new DecodeError('bytes are not valid UTF-8', { cause: error });
    }
  },
};

const DECODER_OF_FORMAT: Readonly<Record<string, string>> = {
  AVRO: 'confluentAvro (or glue)',
  PROTOBUF: 'confluentProtobuf (or glue)',
  JSON: 'confluentJsonSchema (or glue)',
};

export const decodeWith = <T>(
  spec: ValueSpec<T>,
  bytes: Buffer,
  what: 'key' | 'value',
  schemaMetadata?: SchemaMetadata,
): T => {
  if (!isSchema(spec)) return spec.decode(bytes, schemaMetadata);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    // eventRecordFormat SOURCE hands over the producer's bytes (Avro, Protobuf), not JSON: say which decoder fits.
    const hint = schemaMetadata
      ? `; the event source mapping sent it as ${schemaMetadata.dataFormat} with schema id ${schemaMetadata.schemaId} ` +
        `(eventRecordFormat SOURCE): decode it with ${DECODER_OF_FORMAT[schemaMetadata.dataFormat.toUpperCase()] ?? 'a registry decoder'}, or set eventRecordFormat JSON`
      : '';
    throw new DecodeError(`${what} is not valid JSON: ${(error as Error).message}${hint}`, { cause: error });
  }
  const parsed = spec.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
      .join('; ');
    throw new ValidationError(`${what} fails its schema: ${issues}`, { cause: parsed.error });
  }
  return parsed.data;
};

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Strict base64: Buffer.from() silently skips bad characters, which would corrupt the value. */
export const base64ToBuffer = (text: string, what: 'key' | 'value'): Buffer => {
  if (text.length % 4 !== 0 || !BASE64.test(text)) {
    throw new DecodeError(`${what} is not valid base64 (${text.length} characters)`);
  }
  return Buffer.from(text, 'base64');
};

/** A record as `process` and `transact` receive it: decoded once, never on access. */
export type KafkaRecord<V, K = string | null> = {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly timestamp: number;
  readonly timestampType: WireRecord['timestampType'];
  readonly key: K;
  /** `null` only for tombstones, and only reaches a route that opted in to them. */
  readonly value: V;
  readonly headers: RecordHeaders;
  /** The record exactly as the event carried it, for dead-lettering and replay. */
  readonly raw: WireRecord;
};
