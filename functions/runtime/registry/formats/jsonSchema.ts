// Loaded only when a route meets a JSON Schema: ajv stays out of every other route's init.
import { Ajv, type AnySchema, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { SchemaRef } from '../errors.ts';
import { InvalidSchemaError, SchemaMismatchError } from '../errors.ts';

export type JsonSchemaOptions = {
  /** Validate each value against the registry's schema; default true (the zod schema still runs after it). */
  readonly validate?: boolean;
};

const NEWER_DRAFTS = /draft\/(2019-09|2020-12)\/schema/;

/** Compiles a JSON Schema (with its references, registered under their names) into a decode-and-validate function. */
export const compileJsonSchema = (
  ref: SchemaRef,
  schema: string,
  references: readonly { name: string; schema: string }[],
  options: JsonSchemaOptions = {},
): ((payload: Buffer) => unknown) => {
  let validate: ValidateFunction | undefined;
  if (options.validate ?? true) {
    try {
      const root = JSON.parse(schema) as AnySchema & { $schema?: string };
      // The registry validated the schema when it was registered: skip compiling the meta-schema (tens of ms).
      const opts = { strict: false, allErrors: false, validateFormats: false, validateSchema: false };
      const ajv =
        typeof root === 'object' && NEWER_DRAFTS.test(String(root.$schema)) ? new Ajv2020(opts) : new Ajv(opts);
      for (const reference of references) ajv.addSchema(JSON.parse(reference.schema) as AnySchema, reference.name);
      validate = ajv.compile(root);
    } catch (error) {
      throw new InvalidSchemaError(ref, `not a usable JSON Schema: ${(error as Error).message}`, { cause: error });
    }
  }
  return (payload) => {
    let value: unknown;
    try {
      value = JSON.parse(payload.toString('utf8'));
    } catch (error) {
      throw new SchemaMismatchError(ref, `not JSON: ${(error as Error).message}`, { cause: error });
    }
    if (validate && !validate(value)) {
      const issues = (validate.errors ?? [])
        .slice(0, 5)
        .map((e) => `${e.instancePath || '(root)'}: ${e.message}`)
        .join('; ');
      throw new SchemaMismatchError(ref, `JSON Schema: ${issues}`);
    }
    return value;
  };
};
