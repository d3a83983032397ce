import type middy from '@middy/core';
import type { SchemaMetadata, ValueSpec } from '../decode.ts';

/** Enough base64 for either header (Confluent 5 bytes, Glue 18): the schema ids are read without decoding values. */
const HEAD_CHARS = 32;

type Specs = { readonly value?: ValueSpec<unknown> | undefined; readonly key?: ValueSpec<unknown> | undefined };
type Preparable = {
  prepare?: (heads: readonly Buffer[], schemaMetadata?: readonly (SchemaMetadata | undefined)[]) => Promise<void>;
};

const preparerOf = (spec: ValueSpec<unknown> | undefined) => {
  const prepare = (spec as Preparable | undefined)?.prepare;
  return typeof prepare === 'function' ? prepare.bind(spec) : undefined;
};

export type RecordHeads = {
  keys: Buffer[];
  values: Buffer[];
  /** `keySchemaMetadata[i]` is what the event source mapping said of `keys[i]` (provisioned mode with a registry). */
  keySchemaMetadata: (SchemaMetadata | undefined)[];
  valueSchemaMetadata: (SchemaMetadata | undefined)[];
};

const schemaMetadataOf = (metadata: unknown): SchemaMetadata | undefined => {
  const candidate = metadata as Partial<SchemaMetadata> | null | undefined;
  return typeof candidate?.schemaId === 'string' && typeof candidate.dataFormat === 'string'
    ? { schemaId: candidate.schemaId, dataFormat: candidate.dataFormat }
    : undefined;
};

/**
 * The leading bytes of every record's key and value in a Kafka event, with the schema metadata the event source
 * mapping attached to each (eventRecordFormat SOURCE: the only place the schema id is). A malformed event yields
 * nothing here.
 */
export const recordHeads = (event: unknown): RecordHeads => {
  const heads: RecordHeads = { keys: [], values: [], keySchemaMetadata: [], valueSchemaMetadata: [] };
  const records = (event as { records?: unknown } | null)?.records;
  if (!records || typeof records !== 'object') return heads;
  for (const list of Object.values(records)) {
    if (!Array.isArray(list)) continue;
    for (const record of list as { key?: unknown; value?: unknown; [metadata: string]: unknown }[]) {
      if (typeof record?.value === 'string') {
        heads.values.push(Buffer.from(record.value.slice(0, HEAD_CHARS), 'base64'));
        heads.valueSchemaMetadata.push(schemaMetadataOf(record.valueSchemaMetadata));
      }
      if (typeof record?.key === 'string') {
        heads.keys.push(Buffer.from(record.key.slice(0, HEAD_CHARS), 'base64'));
        heads.keySchemaMetadata.push(schemaMetadataOf(record.keySchemaMetadata));
      }
    }
  }
  return heads;
};

/**
 * Fetches every registry schema the event's records name, before they are decoded, so the decoders stay synchronous.
 * Distinct ids are fetched once each, in parallel. `kafkaHandler` does this itself before every batch; specs without
 * a registry (`prepare`) cost nothing. A registry that is unreachable, throttling or failing throws (transient).
 */
export const prepareSchemas = async (specs: Specs, event: unknown): Promise<void> => {
  const value = preparerOf(specs.value);
  const key = preparerOf(specs.key);
  if (!value && !key) return;
  const heads = recordHeads(event);
  await Promise.all([value?.(heads.values, heads.valueSchemaMetadata), key?.(heads.keys, heads.keySchemaMetadata)]);
};

/**
 * A middy middleware for a handler not built with `kafkaHandler`: it fetches, before the batch runs, every registry schema its records name, so the decoders
 * stay synchronous. Distinct ids are fetched once each, in parallel; a registry that is unreachable, throttling or
 * failing fails the batch (transient: the event source re-delivers it), nothing is dead-lettered for it.
 *
 *   export const handler = kafkaHandler({ value, process }).use(prefetchSchemas({ value }));
 *   // or, with the handler's own specs: handler.use(prefetchSchemas(handler.schemas))
 */
export const prefetchSchemas = (specs: Specs): middy.MiddlewareObj<unknown, unknown, Error> => {
  return {
    before: async function prefetchSchemasBefore(request) {
      await prepareSchemas(specs, request.event);
    },
  };
};
