// Loaded only when a route meets an Avro schema: avsc stays out of every other route's init.
import avro from 'avsc';
import type { SchemaRef } from '../errors.ts';
import { InvalidSchemaError, SchemaMismatchError } from '../errors.ts';

export type AvroOptions = {
  /** avsc's `wrapUnions`; default 'auto' (nullable unions unwrapped, ambiguous ones wrapped as `{ type: value }`). */
  readonly wrapUnions?: 'auto' | 'always' | 'never' | boolean;
};

/** Parses an Avro schema (and the named types it references) into a decode function for the binary payload. */
export const compileAvro = (
  ref: SchemaRef,
  schema: string,
  references: readonly { name: string; schema: string }[],
  options: AvroOptions = {},
): ((payload: Buffer) => unknown) => {
  let type: avro.Type;
  try {
    const registry = {};
    const opts = { registry, wrapUnions: options.wrapUnions ?? 'auto' } as avro.ForSchemaOptions;
    for (const reference of references) avro.Type.forSchema(JSON.parse(reference.schema), opts);
    type = avro.Type.forSchema(JSON.parse(schema), opts);
  } catch (error) {
    throw new InvalidSchemaError(ref, `not a usable Avro schema: ${(error as Error).message}`, { cause: error });
  }
  return (payload) => {
    try {
      // Strict: a truncated payload and trailing bytes both throw.
      return toPlain(type.fromBuffer(payload));
    } catch (error) {
      throw new SchemaMismatchError(ref, `Avro: ${(error as Error).message}`, { cause: error });
    }
  };
};

/** avsc builds records as instances of generated classes; zod and JSON want plain objects. */
const toPlain = (value: unknown): unknown => {
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return value;
  if (Array.isArray(value)) return value.map(toPlain);
  if (value instanceof Map) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = toPlain(v);
  return out;
};
