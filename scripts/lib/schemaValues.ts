// Values made from a route's own zod schemas, for `load`, `invoke --generate`, `new-route` and `npm start`: any route
// gets traffic without a generator written for it. zod-schema-faker (zod 4, on faker) makes the values; each is
// checked against the schema again, since a refinement can reject what the faker made from the shape alone.
import { faker } from '@faker-js/faker';
import type { z } from 'zod';
import { fake, setFaker } from 'zod-schema-faker/v4';
import type { RouteSchemas } from '../../functions/runtime/kafkaHandler.ts';
import type { RouteConfig } from '../../infra/config/index.ts';
import { CliInputError, loadRouteHandler } from './invokeRoute.ts';

setFaker(faker);

const isSchema = (spec: unknown): spec is z.ZodType =>
  typeof (spec as { safeParse?: unknown } | undefined)?.safeParse === 'function';

/** The zod schema of a spec: the spec itself, or the one a registry decoder checks decoded values with. */
export const zodSchemaOf = (spec: unknown): z.ZodType | undefined => {
  if (isSchema(spec)) return spec;
  const inner = (spec as { schema?: unknown } | undefined)?.schema;
  return isSchema(inner) ? inner : undefined;
};

/** A route's schemas, from the handler `kafkaHandler` made (its `schemas` property). */
export const loadRouteSchemas = async (route: RouteConfig): Promise<RouteSchemas<unknown, unknown>> => {
  const handler = (await loadRouteHandler(route)) as { schemas?: RouteSchemas<unknown, unknown> };
  if (!handler.schemas) {
    throw new CliInputError(
      `route ${route.name}: its handler was not made with kafkaHandler(), so it has no schema to make values from`,
    );
  }
  return handler.schemas;
};

const ATTEMPTS = 50;

/** Makes one value that `schema` accepts. */
const fakeValid = (schema: z.ZodType, what: string): unknown => {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const value = fake(schema);
    if (schema.safeParse(value).success) return value;
  }
  throw new CliInputError(`${what}: ${ATTEMPTS} values made from the schema's shape all failed its refinements`);
};

export type ValueMaker = {
  /** A value the route's value schema accepts. */
  value(): unknown;
  /** A key its key schema accepts, or a random id when the route takes keys as strings. */
  key(): unknown;
};

/** Deterministic for a seed. A route that decodes raw bytes (a `Decoder`) has no shape to make values from. */
export const valueMaker = (route: RouteConfig, schemas: RouteSchemas<unknown, unknown>, seed = 1): ValueMaker => {
  const valueSchema = zodSchemaOf(schemas.value);
  if (!valueSchema) {
    throw new CliInputError(
      `route ${route.name} decodes its values with no zod schema to make values from: give values with --values FILE.jsonl`,
    );
  }
  const keySchema = zodSchemaOf(schemas.key);
  faker.seed(seed);
  return {
    value: () => fakeValid(valueSchema, `route ${route.name}, value`),
    key: () => (keySchema ? fakeValid(keySchema, `route ${route.name}, key`) : faker.string.uuid()),
  };
};
