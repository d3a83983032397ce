// Registry-framed records (Confluent and AWS Glue wire formats). Import this module only from routes that use a
// registry: the schema libraries it needs load lazily even then, the first time a schema of their kind is met.
export {
  ConfluentRegistryClient,
  type ConfluentRegistryOptions,
  type RegisteredSchema,
  type RegistryAuth,
  type ResolvedReference,
  type SchemaType,
} from './ConfluentRegistryClient.ts';
export {
  confluentAvro,
  confluentJsonSchema,
  confluentProtobuf,
  type GlueOptions,
  type GlueSchemaSource,
  type GlueSchemaVersion,
  glue,
  type RegistryDecoder,
} from './decoders.ts';
export {
  InvalidSchemaError,
  RegistryUnavailableError,
  SchemaMismatchError,
  SchemaNotLoadedError,
  type SchemaRef,
  UnknownSchemaError,
  WireFormatError,
} from './errors.ts';
export { glueSchemasFromEnvironment, registryFromEnvironment } from './fromEnvironment.ts';
export { prefetchSchemas, recordHeads } from './prefetchSchemas.ts';
export {
  frameConfluent,
  frameGlue,
  readConfluentFrame,
  readGlueFrame,
  readMessageIndexes,
  writeMessageIndexes,
} from './wire.ts';
