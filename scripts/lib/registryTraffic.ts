// Registry-framed traffic for `load --format` and `npm start`: the route's zod schema turned into the registry's own
// schema language, registered under `<topic>-value` (Confluent's TopicNameStrategy), and every value encoded and
// framed as a Confluent serializer would (magic byte 0, the 4-byte schema id, the payload; for Protobuf the message
// indexes first, `[0]` written as the single byte 0).
import avro from 'avsc';
import protobuf from 'protobufjs';
import { z } from 'zod';
import { frameConfluent, writeMessageIndexes } from '../../functions/runtime/registry/wire.ts';

export const REGISTRY_FORMATS = ['avro', 'protobuf', 'json-schema'] as const;
export type RegistryFormat = (typeof REGISTRY_FORMATS)[number];

/** The `format` of a registry decoder, as `load --format` names it. */
export const formatOfDecoder: Readonly<Record<string, RegistryFormat>> = {
  'confluent-avro': 'avro',
  'confluent-protobuf': 'protobuf',
  'confluent-json-schema': 'json-schema',
};

type JsonSchema = {
  type?: string | string[];
  minimum?: number;
  maximum?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  additionalProperties?: unknown;
};

const AVRO_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const avroName = (name: string) => name.replace(/[^A-Za-z0-9_]/g, '_').replace(/^([^A-Za-z_])/, '_$1');

/**
 * An Avro type for a JSON Schema that zod produced: objects become records, string enums Avro enums (when their
 * symbols are Avro names), integers longs, numbers doubles, nullable types unions with null. Maps and open records
 * have no Avro counterpart here: they are refused with the path.
 */
const avroTypeOf = (schema: JsonSchema, name: string, path: string): unknown => {
  const nonNull = schema.anyOf?.filter((s) => s.type !== 'null');
  if (schema.anyOf && nonNull?.length === 1) {
    return ['null', avroTypeOf(nonNull[0] as JsonSchema, name, path)];
  }
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  const wrapped = (inner: unknown) =>
    Array.isArray(schema.type) && schema.type.includes('null') ? ['null', inner] : inner;
  switch (type) {
    case 'object': {
      if (!schema.properties) throw new Error(`${path}: an open record has no Avro type; give it fields`);
      const required = new Set(schema.required ?? []);
      return wrapped({
        type: 'record',
        name: avroName(name),
        fields: Object.entries(schema.properties).map(([field, fieldSchema]) => {
          const fieldType = avroTypeOf(fieldSchema, `${name}_${field}`, `${path}.${field}`);
          return required.has(field)
            ? { name: field, type: fieldType }
            : { name: field, type: Array.isArray(fieldType) ? fieldType : ['null', fieldType], default: null };
        }),
      });
    }
    case 'string':
      return wrapped(
        schema.enum?.every((symbol) => typeof symbol === 'string' && AVRO_NAME.test(symbol))
          ? { type: 'enum', name: avroName(name), symbols: schema.enum }
          : 'string',
      );
    case 'integer':
      return wrapped('long');
    case 'number':
      return wrapped('double');
    case 'boolean':
      return wrapped('boolean');
    case 'array':
      return wrapped({ type: 'array', items: avroTypeOf(schema.items ?? {}, `${name}_item`, `${path}[]`) });
    default:
      throw new Error(`${path}: no Avro type for ${JSON.stringify(schema).slice(0, 80)}`);
  }
};

const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 };
const PROTO_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const pascalCase = (name: string) =>
  name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('')
    .replace(/^([^A-Za-z])/, 'M$1') || 'Value';

/**
 * A proto3 file for a JSON Schema that zod produced, its root message first (so the `[0]` message index names it),
 * every object field a message nested in its parent. The mapping keeps a decoded value passing the same zod schema
 * under the decoder's defaults (`longs: String`, `enums: String`, field names as written):
 * - strings, string enums (as strings: a proto3 enum's first symbol would be its unencodable default) and formats
 *   such as date-time → `string`; booleans → `bool`; numbers → `double`;
 * - integers → `int32` when their bounds fit 32 bits (`z.int32()`), else `double`, which holds every safe integer
 *   exactly (an `int64` would decode as a string);
 * - arrays → `repeated` (of scalars or messages; arrays of arrays are refused);
 * - a field not required, or nullable and not required → proto3 `optional` (null is sent as absent);
 * - a nullable required field, an open record, a union or a name that is not a proto identifier are refused with
 *   their path: proto3 has no null, no `any`-shaped object, and names must be identifiers.
 */
const protoMessageOf = (schema: JsonSchema, name: string, path: string): string[] => {
  if (schema.type !== 'object' || !schema.properties) {
    throw new Error(`${path}: a Protobuf message needs an object with fields`);
  }
  const required = new Set(schema.required ?? []);
  const fields: string[] = [];
  const nested: string[] = [];
  let number = 0;
  for (const [field, fieldSchema] of Object.entries(schema.properties)) {
    const fieldPath = `${path}.${field}`;
    if (!PROTO_IDENTIFIER.test(field)) throw new Error(`${fieldPath}: not a Protobuf field name (letters, digits, _)`);
    const nonNull = fieldSchema.anyOf?.filter((s) => s.type !== 'null');
    const nullable =
      (fieldSchema.anyOf !== undefined && nonNull?.length !== fieldSchema.anyOf.length) ||
      (Array.isArray(fieldSchema.type) && fieldSchema.type.includes('null'));
    if (fieldSchema.anyOf && nonNull?.length !== 1) throw new Error(`${fieldPath}: a union has no Protobuf type here`);
    const inner: JsonSchema = nonNull?.[0] ?? {
      ...fieldSchema,
      type: Array.isArray(fieldSchema.type) ? fieldSchema.type.find((t) => t !== 'null') : fieldSchema.type,
    };
    if (nullable && required.has(field)) {
      throw new Error(`${fieldPath}: nullable and required has no proto3 counterpart (no null); make it optional`);
    }
    const typeOf = (item: JsonSchema, itemName: string, itemPath: string): string => {
      switch (item.type) {
        case 'string':
          return 'string';
        case 'boolean':
          return 'bool';
        case 'number':
          return 'double';
        case 'integer':
          return (item.minimum ?? Number.NEGATIVE_INFINITY) >= INT32.min &&
            (item.maximum ?? Number.POSITIVE_INFINITY) <= INT32.max
            ? 'int32'
            : 'double';
        case 'object':
          nested.push(...protoMessageOf(item, itemName, itemPath).map((line) => `  ${line}`));
          return itemName;
        default:
          throw new Error(`${itemPath}: no Protobuf type for ${JSON.stringify(item).slice(0, 80)}`);
      }
    };
    number += 1;
    if (inner.type === 'array') {
      const items = inner.items ?? {};
      if (items.type === 'array') throw new Error(`${fieldPath}: arrays of arrays have no Protobuf type`);
      fields.push(`  repeated ${typeOf(items, pascalCase(`${field}_item`), `${fieldPath}[]`)} ${field} = ${number};`);
    } else {
      const label = required.has(field) ? '' : 'optional ';
      fields.push(`  ${label}${typeOf(inner, pascalCase(field), fieldPath)} ${field} = ${number};`);
    }
  }
  return [`message ${name} {`, ...fields, ...nested, '}'];
};

/** Drops nulls (proto3 has none: an optional field left out decodes as absent) before protobufjs encodes. */
const withoutNulls = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => [k, withoutNulls(v)]),
  );
};

/** A schema another one imports, by the name it imports it under (Confluent's REST API). */
export type SchemaReference = { readonly name: string; readonly subject: string; readonly version: number };

export type RegistrySchema = {
  /** As the Confluent REST API names it. */
  readonly schemaType: 'AVRO' | 'PROTOBUF' | 'JSON';
  readonly schema: string;
  encode(value: unknown): Buffer;
};

/** The registry schema for a route's zod value schema, and how to encode a value under it. */
export const registrySchemaOf = (schema: z.ZodType, format: RegistryFormat, name: string): RegistrySchema => {
  const json = z.toJSONSchema(schema) as JsonSchema;
  if (format === 'json-schema') {
    return { schemaType: 'JSON', schema: JSON.stringify(json), encode: (value) => Buffer.from(JSON.stringify(value)) };
  }
  if (format === 'protobuf') {
    const messageName = pascalCase(name);
    const text = ['syntax = "proto3";', '', ...protoMessageOf(json, messageName, 'value'), ''].join('\n');
    const type = protobuf.parse(text, { keepCase: true }).root.lookupType(messageName);
    // The root message is the file's first: message indexes [0], the one-byte shorthand.
    const indexes = writeMessageIndexes([0]);
    return {
      schemaType: 'PROTOBUF',
      schema: text,
      encode: (value) => {
        const plain = withoutNulls(value) as Record<string, unknown>;
        const problem = type.verify(plain);
        if (problem) throw new Error(`a value does not fit the Protobuf message ${messageName}: ${problem}`);
        return Buffer.concat([indexes, type.encode(type.fromObject(plain)).finish()]);
      },
    };
  }
  const type = avro.Type.forSchema(avroTypeOf(json, name, 'value') as avro.Schema);
  return { schemaType: 'AVRO', schema: JSON.stringify(type.schema()), encode: (value) => type.toBuffer(value) };
};

/** Registers the schema under `subject` (idempotent: the same schema gets its id back) and returns its id. */
export const registerSchema = async (
  registryUrl: string,
  subject: string,
  schema: Pick<RegistrySchema, 'schemaType' | 'schema'> & { readonly references?: readonly SchemaReference[] },
): Promise<number> => {
  const response = await fetch(`${registryUrl}/subjects/${encodeURIComponent(subject)}/versions`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({
      schemaType: schema.schemaType,
      schema: schema.schema,
      ...(schema.references && { references: schema.references }),
    }),
  });
  const answer = (await response.json().catch(() => ({}))) as { id?: unknown; message?: unknown };
  if (!response.ok || typeof answer.id !== 'number') {
    throw new Error(
      `the registry refused the schema for ${subject}: ${response.status} ${String(answer.message ?? '')}`,
    );
  }
  return answer.id;
};

/** Encodes and frames values as a Confluent serializer would, under a registered schema id. */
export const framedEncoder =
  (schemaId: number, schema: RegistrySchema) =>
  (value: unknown): Buffer =>
    frameConfluent(schemaId, schema.encode(value));
