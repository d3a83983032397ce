import { DecodeError, TransientError } from '../errors.ts';

/** Which schema a record named: a Confluent schema id, or a Glue schema version UUID; the subject when known. */
export type SchemaRef = { readonly id: number | string; readonly subject?: string | undefined };

export const describeSchema = (ref: SchemaRef): string =>
  `schema ${typeof ref.id === 'number' ? `id ${ref.id}` : `version ${ref.id}`}${ref.subject ? ` (subject ${ref.subject})` : ''}`;

/** The bytes are not registry-framed as the decoder expects: wrong magic byte, a header cut short. Permanent. */
export class WireFormatError extends DecodeError {
  readonly schema: SchemaRef | undefined;
  constructor(message: string, schema?: SchemaRef, options?: ErrorOptions) {
    super(schema ? `${describeSchema(schema)}: ${message}` : message, options);
    this.name = 'WireFormatError';
    this.schema = schema;
  }
}

/** The registry answered that it has no such schema (404): the record can never be decoded here. Permanent. */
export class UnknownSchemaError extends DecodeError {
  readonly schema: SchemaRef;
  readonly detail: string;
  constructor(schema: SchemaRef, detail: string, options?: ErrorOptions) {
    super(`${describeSchema(schema)}: unknown to the registry: ${detail}`, options);
    this.name = 'UnknownSchemaError';
    this.schema = schema;
    this.detail = detail;
  }
}

/** The registry's schema cannot be used (unparseable text, an unsupported type, a broken reference). Permanent. */
export class InvalidSchemaError extends DecodeError {
  readonly schema: SchemaRef;
  constructor(schema: SchemaRef, detail: string, options?: ErrorOptions) {
    super(`${describeSchema(schema)}: ${detail}`, options);
    this.name = 'InvalidSchemaError';
    this.schema = schema;
  }
}

/** The payload does not match its schema: truncated, trailing bytes, a wrong type, a failed JSON Schema. Permanent. */
export class SchemaMismatchError extends DecodeError {
  readonly schema: SchemaRef;
  constructor(schema: SchemaRef, detail: string, options?: ErrorOptions) {
    super(`${describeSchema(schema)}: payload does not match the schema: ${detail}`, options);
    this.name = 'SchemaMismatchError';
    this.schema = schema;
  }
}

/** The registry could not be reached, timed out, throttled (429) or failed (5xx). Retried; the batch comes again. */
export class RegistryUnavailableError extends TransientError {
  readonly status: number | undefined;
  constructor(message: string, status?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RegistryUnavailableError';
    this.status = status;
  }
}

/**
 * `decode` met a schema that `prepare` never loaded: the route decodes registry-framed records without
 * `prefetchSchemas` (or the runtime's prepare hook). Retrying after a prepare helps, so it is transient.
 */
export class SchemaNotLoadedError extends TransientError {
  readonly schema: SchemaRef;
  constructor(schema: SchemaRef) {
    super(
      `${describeSchema(schema)}: not loaded before decode; registry decoders fetch schemas in prepare(): ` +
        'kafkaHandler fetches schemas before each batch; a handler built otherwise needs `.use(prefetchSchemas(specs))`',
    );
    this.name = 'SchemaNotLoadedError';
    this.schema = schema;
  }
}
