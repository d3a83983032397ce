// The registry decoders. Schema libraries are imported lazily, the first time a schema of their kind is met,
// so a route pays for avsc, protobufjs or ajv only when its records use them.
import type { z } from 'zod';
import type { Decoder, SchemaMetadata } from '../decode.ts';
import { PermanentError, TransientError, ValidationError } from '../errors.ts';
import type { ConfluentRegistryClient, RegisteredSchema } from './ConfluentRegistryClient.ts';
import {
  describeSchema,
  InvalidSchemaError,
  RegistryUnavailableError,
  SchemaMismatchError,
  SchemaNotLoadedError,
  type SchemaRef,
  UnknownSchemaError,
  WireFormatError,
} from './errors.ts';
import type { AvroOptions } from './formats/avro.ts';
import type { JsonSchemaOptions } from './formats/jsonSchema.ts';
import type { ProtobufOptions } from './formats/protobuf.ts';
import { LruCache } from './lru.ts';
import {
  peekConfluentSchemaId,
  peekGlueSchemaVersionId,
  readConfluentFrame,
  readGlueFrame,
  readMessageIndexes,
  readUVarint,
} from './wire.ts';

/**
 * A decoder whose schemas come from a registry: `prepare` fetches what a batch names, `decode` stays synchronous.
 * It reads framed bytes, or, given the record's schema metadata (the event source mapping's own registry integration
 * with eventRecordFormat SOURCE), the bare payload under the id the metadata names.
 */
export type RegistryDecoder<T> = Decoder<T> & {
  prepare(heads: readonly Buffer[], schemaMetadata?: readonly (SchemaMetadata | undefined)[]): Promise<void>;
  readonly format: 'confluent-avro' | 'confluent-json-schema' | 'confluent-protobuf' | 'glue';
  /** The zod schema decoded values pass, if any: the local tools make values from it (`load`, `invoke --generate`). */
  readonly schema?: z.ZodType<T> | undefined;
};

type Common<T> = {
  /** The zod schema the decoded value must pass, as `value` would for JSON; types come from it (else `unknown`). */
  readonly schema?: z.ZodType<T>;
  /** Named in error messages (the registry's `/schemas/ids` answer does not say which subject an id belongs to). */
  readonly subject?: string;
  /** Compiled schemas kept per container; default 1000. */
  readonly cacheSize?: number;
};

type Payload = (payload: Buffer) => unknown;

type Engine<Id> = {
  readonly format: RegistryDecoder<unknown>['format'];
  peek(bytes: Buffer): Id | undefined;
  read(bytes: Buffer): { id: Id; payload: Buffer };
  /**
   * The id the event source mapping's schema metadata names (eventRecordFormat SOURCE: the bytes have lost their
   * framing, and carry only the payload). A schemaId of another registry's kind is a permanent WireFormatError.
   */
  idOf(metadata: SchemaMetadata): Id;
  load(id: Id): Promise<Payload>;
};

/** A Confluent schema id as the metadata spells it: a non-negative 32-bit integer, in decimal. */
const CONFLUENT_ID = /^\d{1,10}$/;
const GLUE_VERSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const confluentIdOf = (metadata: SchemaMetadata): number => {
  const id = Number(metadata.schemaId);
  if (!CONFLUENT_ID.test(metadata.schemaId) || id > 0x7fffffff) {
    throw new WireFormatError(
      `the event source mapping's schema metadata names schema id "${metadata.schemaId}" (${metadata.dataFormat}), ` +
        `which is not a Confluent schema id${GLUE_VERSION_ID.test(metadata.schemaId) ? ' but a Glue schema version: decode with glue()' : ''}`,
    );
  }
  return id;
};

const glueIdOf = (metadata: SchemaMetadata): string => {
  if (!GLUE_VERSION_ID.test(metadata.schemaId)) {
    throw new WireFormatError(
      `the event source mapping's schema metadata names schema id "${metadata.schemaId}" (${metadata.dataFormat}), ` +
        `which is not a Glue schema version UUID${CONFLUENT_ID.test(metadata.schemaId) ? ' but a Confluent schema id: decode with confluentAvro, confluentProtobuf or confluentJsonSchema' : ''}`,
    );
  }
  return metadata.schemaId.toLowerCase();
};

/** eventRecordFormat JSON hands over JSON; a binary decoder failing on it says so (JSON Schema payloads are JSON anyway). */
const looksLikeJsonObject = (bytes: Buffer): boolean => {
  if (bytes[0] !== 0x7b) return false;
  try {
    JSON.parse(bytes.toString('utf8'));
    return true;
  } catch {
    return false;
  }
};

const wrapLoadError = (ref: SchemaRef, error: unknown): Error => {
  if (error instanceof PermanentError || error instanceof TransientError) return error;
  return new RegistryUnavailableError(`${describeSchema(ref)}: ${(error as Error).message}`, undefined, {
    cause: error,
  });
};

const makeDecoder = <Id extends number | string, T>(engine: Engine<Id>, options: Common<T>): RegistryDecoder<T> => {
  const compiled = new LruCache<Id, Payload>(options.cacheSize ?? 1000);
  const failed = new LruCache<Id, PermanentError>(1000);
  const inFlight = new Map<Id, Promise<void>>();
  const refOf = (id: Id): SchemaRef => ({ id, subject: options.subject });

  const load = (id: Id): Promise<void> => {
    const pending = inFlight.get(id);
    if (pending) return pending;
    const loading = engine
      .load(id)
      .then(
        (decode) => {
          compiled.set(id, decode);
          failed.delete(id);
        },
        (error: unknown) => {
          const wrapped = wrapLoadError(refOf(id), error);
          // Unknown ids and unusable schemas are permanent: each record naming one is dead-lettered at decode.
          if (wrapped instanceof PermanentError) failed.set(id, wrapped);
          else throw wrapped;
        },
      )
      .finally(() => inFlight.delete(id));
    inFlight.set(id, loading);
    return loading;
  };

  return {
    format: engine.format,
    schema: options.schema,
    async prepare(heads, schemaMetadata) {
      const ids = new Set<Id>();
      heads.forEach((bytes, i) => {
        const metadata = schemaMetadata?.[i];
        let id: Id | undefined;
        if (metadata) {
          // SOURCE records carry no framing to peek at: their leading bytes are payload, and could look framed.
          try {
            id = engine.idOf(metadata);
          } catch {
            // Reported, with the record's coordinates, when the record is decoded.
          }
        } else {
          id = engine.peek(bytes);
        }
        if (id !== undefined && compiled.get(id) === undefined) ids.add(id);
      });
      await Promise.all([...ids].map(load));
    },
    decode(bytes, schemaMetadata) {
      const { id, payload } = schemaMetadata ? { id: engine.idOf(schemaMetadata), payload: bytes } : engine.read(bytes);
      const decodePayload = compiled.get(id);
      if (!decodePayload) throw failed.get(id) ?? new SchemaNotLoadedError(refOf(id));
      let value: unknown;
      try {
        value = decodePayload(payload);
      } catch (error) {
        if (error instanceof WireFormatError && !error.schema) {
          throw new WireFormatError(error.message, refOf(id), { cause: error });
        }
        if (
          error instanceof SchemaMismatchError &&
          schemaMetadata &&
          schemaMetadata.dataFormat.toUpperCase() !== 'JSON' &&
          looksLikeJsonObject(payload)
        ) {
          throw new SchemaMismatchError(
            refOf(id),
            `the bytes are JSON, as the event source mapping sends ${schemaMetadata.dataFormat} records with ` +
              'eventRecordFormat JSON: decode such a route with a plain zod value, or set eventRecordFormat SOURCE',
            { cause: error },
          );
        }
        throw error;
      }
      if (!options.schema) return value as T;
      const parsed = options.schema.safeParse(value);
      if (parsed.success) return parsed.data;
      const issues = parsed.error.issues
        .slice(0, 5)
        .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
        .join('; ');
      throw new ValidationError(`${describeSchema(refOf(id))}: value fails its zod schema: ${issues}`, {
        cause: parsed.error,
      });
    },
  };
};

type ConfluentOptions<T> = Common<T> & { readonly registry: ConfluentRegistryClient };

const confluentEngine = (
  format: RegistryDecoder<unknown>['format'],
  registry: ConfluentRegistryClient,
  expected: RegisteredSchema['schemaType'],
  compile: (schema: RegisteredSchema, ref: SchemaRef) => Promise<Payload>,
  subject: string | undefined,
): Engine<number> => ({
  format,
  peek: peekConfluentSchemaId,
  read: (bytes) => {
    const frame = readConfluentFrame(bytes);
    return { id: frame.schemaId, payload: frame.payload };
  },
  idOf: confluentIdOf,
  async load(id) {
    let schema: RegisteredSchema;
    try {
      schema = await registry.getSchema(id);
    } catch (error) {
      // The client knows ids only; the route may know which subject it reads.
      if (error instanceof UnknownSchemaError && subject && !error.schema.subject) {
        throw new UnknownSchemaError({ id, subject }, error.detail, { cause: error });
      }
      throw error;
    }
    const ref = { id, subject: subject ?? schema.subject };
    if (schema.schemaType !== expected) {
      throw new InvalidSchemaError(ref, `is ${schema.schemaType}, but this route decodes ${expected}`);
    }
    return compile(schema, ref);
  },
});

/** Confluent-framed Avro: `[0][schema id][Avro binary]`. */
export const confluentAvro = <T = unknown>(options: ConfluentOptions<T> & AvroOptions): RegistryDecoder<T> =>
  makeDecoder(
    confluentEngine(
      'confluent-avro',
      options.registry,
      'AVRO',
      async (schema, ref) => {
        const { compileAvro } = await import('./formats/avro.ts');
        return compileAvro(ref, schema.schema, schema.references, options);
      },
      options.subject,
    ),
    options,
  );

/** Confluent-framed JSON Schema: `[0][schema id][UTF-8 JSON]`, validated against the registry's schema. */
export const confluentJsonSchema = <T = unknown>(
  options: ConfluentOptions<T> & JsonSchemaOptions,
): RegistryDecoder<T> =>
  makeDecoder(
    confluentEngine(
      'confluent-json-schema',
      options.registry,
      'JSON',
      async (schema, ref) => {
        const { compileJsonSchema } = await import('./formats/jsonSchema.ts');
        return compileJsonSchema(ref, schema.schema, schema.references, options);
      },
      options.subject,
    ),
    options,
  );

/**
 * Confluent-framed Protobuf: `[0][schema id][message indexes][Protobuf binary]`. The indexes pick the message in
 * the file (several messages, nested ones), so the right type is decoded whatever the file's first message is.
 */
export const confluentProtobuf = <T = unknown>(options: ConfluentOptions<T> & ProtobufOptions): RegistryDecoder<T> =>
  makeDecoder(
    confluentEngine(
      'confluent-protobuf',
      options.registry,
      'PROTOBUF',
      async (schema, ref) => {
        const { compileProtobuf } = await import('./formats/protobuf.ts');
        const proto = compileProtobuf(ref, schema.schema, schema.references, options);
        return (payload) => {
          const { indexes, payload: body } = readMessageIndexes(payload);
          return proto.decode(proto.byPath(indexes), body);
        };
      },
      options.subject,
    ),
    options,
  );

/** What Glue's `GetSchemaVersion` answers, reduced to what decoding needs. */
export type GlueSchemaVersion = {
  readonly dataFormat: 'AVRO' | 'JSON' | 'PROTOBUF';
  readonly definition: string;
  readonly schemaName?: string;
};

/**
 * Where Glue schemas come from: typically `GetSchemaVersion` through `@aws-sdk/client-glue` (IAM:
 * `glue:GetSchemaVersion`). Throw an error named `EntityNotFoundException` for an unknown version; anything else
 * counts as the registry being unavailable.
 */
export type GlueSchemaSource = { getSchemaVersion(schemaVersionId: string): Promise<GlueSchemaVersion> };

export type GlueOptions<T> = Common<T> & {
  readonly schemas: GlueSchemaSource;
  readonly avro?: AvroOptions;
  readonly jsonSchema?: JsonSchemaOptions;
  readonly protobuf?: ProtobufOptions;
};

/**
 * AWS Glue Schema Registry framing: `[3][compression 0|5][schema version UUID, 16 bytes][payload]`, the payload
 * zlib-compressed when the compression byte is 5. Avro, JSON Schema and Protobuf (one unsigned varint, the index
 * of the message among the file's messages sorted by full name, as the Glue SerDe writes it).
 */
export const glue = <T = unknown>(options: GlueOptions<T>): RegistryDecoder<T> =>
  makeDecoder<string, T>(
    {
      format: 'glue',
      peek: peekGlueSchemaVersionId,
      read: (bytes) => {
        const frame = readGlueFrame(bytes);
        return { id: frame.schemaVersionId, payload: frame.payload };
      },
      idOf: glueIdOf,
      async load(id) {
        let version: GlueSchemaVersion;
        try {
          version = await options.schemas.getSchemaVersion(id);
        } catch (error) {
          if ((error as { name?: unknown } | null)?.name === 'EntityNotFoundException') {
            throw new UnknownSchemaError({ id, subject: options.subject }, (error as Error).message, { cause: error });
          }
          throw error;
        }
        const ref = { id, subject: options.subject ?? version.schemaName };
        switch (version.dataFormat) {
          case 'AVRO': {
            const { compileAvro } = await import('./formats/avro.ts');
            return compileAvro(ref, version.definition, [], options.avro);
          }
          case 'JSON': {
            const { compileJsonSchema } = await import('./formats/jsonSchema.ts');
            return compileJsonSchema(ref, version.definition, [], options.jsonSchema);
          }
          case 'PROTOBUF': {
            const { compileProtobuf } = await import('./formats/protobuf.ts');
            const proto = compileProtobuf(ref, version.definition, [], options.protobuf);
            return (payload) => {
              const { value, next } = readUVarint(payload, 0);
              return proto.decode(proto.byGlueIndex(value), payload.subarray(next));
            };
          }
          default:
            throw new InvalidSchemaError(ref, `unsupported data format ${String(version.dataFormat)}`);
        }
      },
    },
    options,
  );
