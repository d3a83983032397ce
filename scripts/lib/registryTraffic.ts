// Registry-framed traffic for `load --format` and `npm start`: the route's zod schema turned into the registry's own
// schema language, registered under `<topic>-value` (Confluent's TopicNameStrategy), and every value encoded and
// framed as a Confluent serializer would (magic byte 0, the 4-byte schema id, the payload).
import avro from 'avsc';
import { z } from 'zod';
import { frameConfluent } from '../../functions/runtime/registry/wire.ts';

export const REGISTRY_FORMATS = ['avro', 'json-schema'] as const;
export type RegistryFormat = (typeof REGISTRY_FORMATS)[number];

/** The `format` of a registry decoder, as `load --format` names it. */
export const formatOfDecoder: Readonly<Record<string, RegistryFormat>> = {
  'confluent-avro': 'avro',
  'confluent-json-schema': 'json-schema',
};

type JsonSchema = {
  type?: string | string[];
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

export type RegistrySchema = {
  /** As the Confluent REST API names it. */
  readonly schemaType: 'AVRO' | 'JSON';
  readonly schema: string;
  encode(value: unknown): Buffer;
};

/** The registry schema for a route's zod value schema, and how to encode a value under it. */
export const registrySchemaOf = (schema: z.ZodType, format: RegistryFormat, name: string): RegistrySchema => {
  const json = z.toJSONSchema(schema) as JsonSchema;
  if (format === 'json-schema') {
    return { schemaType: 'JSON', schema: JSON.stringify(json), encode: (value) => Buffer.from(JSON.stringify(value)) };
  }
  const type = avro.Type.forSchema(avroTypeOf(json, name, 'value') as avro.Schema);
  return { schemaType: 'AVRO', schema: JSON.stringify(type.schema()), encode: (value) => type.toBuffer(value) };
};

/** Registers the schema under `subject` (idempotent: the same schema gets its id back) and returns its id. */
export const registerSchema = async (registryUrl: string, subject: string, schema: RegistrySchema): Promise<number> => {
  const response = await fetch(`${registryUrl}/subjects/${encodeURIComponent(subject)}/versions`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ schemaType: schema.schemaType, schema: schema.schema }),
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
