import { z } from 'zod';
import { PermanentError, TransientError, ValidationError } from '../../../../functions/runtime/errors.ts';
import {
  ConfluentRegistryClient,
  confluentAvro,
  confluentJsonSchema,
  confluentProtobuf,
  frameConfluent,
  InvalidSchemaError,
  RegistryUnavailableError,
  SchemaMismatchError,
  SchemaNotLoadedError,
  UnknownSchemaError,
  WireFormatError,
  writeMessageIndexes,
} from '../../../../functions/runtime/registry/index.ts';
import { fakeRegistry, fixtureRoutes, frame } from './fakeRegistry.ts';

const OrderEvent = z.object({
  orderId: z.string(),
  status: z.enum(['PLACED', 'PAID', 'SHIPPED']),
  amountCents: z.number().int(),
  note: z.string().nullable(),
});

const setup = (routes = fixtureRoutes(), options: { delayMs?: number; cacheSize?: number } = {}) => {
  const fake = fakeRegistry(routes, options);
  const registry = new ConfluentRegistryClient({
    url: 'http://registry.test/apis/ccompat/v7',
    fetch: fake.fetch,
    ...(options.cacheSize ? { cacheSize: options.cacheSize } : {}),
  });
  return { fake, registry };
};

/** What a decode throws, for several assertions on one error. */
const thrown = (fn: () => unknown): Error => {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a throw');
};

describe('confluentAvro', () => {
  test('decodes a framed fixture record through the zod schema', async () => {
    const { registry } = setup();
    const decoder = confluentAvro({ registry, schema: OrderEvent });
    await decoder.prepare([frame('avroOrder')]);
    const value = decoder.decode(frame('avroOrder'));
    expect(value).toEqual({ orderId: 'o-1', status: 'PAID', amountCents: 1999, note: null });
  });

  test('100 records with one id make one registry call, even across concurrent prepares', async () => {
    const { fake, registry } = setup(undefined, { delayMs: 20 });
    const decoder = confluentAvro({ registry, schema: OrderEvent });
    const batch = Array.from({ length: 100 }, () => frame('avroOrder'));
    await Promise.all([decoder.prepare(batch), decoder.prepare(batch), confluentAvro({ registry }).prepare(batch)]);
    for (const bytes of batch) decoder.decode(bytes);
    await decoder.prepare(batch);
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0]?.url).toBe('http://registry.test/apis/ccompat/v7/schemas/ids/1');
  });

  test('an unknown schema id is a permanent UnknownSchemaError naming the id and subject, asked for once', async () => {
    const { fake, registry } = setup();
    const decoder = confluentAvro({ registry, schema: OrderEvent, subject: 'orders-value' });
    const bytes = frameConfluent(99, Buffer.from('066f2d31029e1f00', 'hex'));
    await decoder.prepare([bytes, bytes]);
    const error = thrown(() => decoder.decode(bytes));
    expect(error).toBeInstanceOf(UnknownSchemaError);
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toBe(
      'schema id 99 (subject orders-value): unknown to the registry: Schema not found (error 40403)',
    );
    await confluentAvro({ registry }).prepare([bytes]);
    expect(fake.calls).toHaveLength(1);
  });

  test('wrong magic byte and a truncated payload are permanent errors naming the schema id', async () => {
    const { registry } = setup();
    const decoder = confluentAvro({ registry, schema: OrderEvent });
    const json = Buffer.from('{"orderId":"o-1"}');
    await decoder.prepare([json, frame('avroOrder')]);
    expect(() => decoder.decode(json)).toThrow(WireFormatError);
    const truncated = frame('avroOrder').subarray(0, 9);
    const error = thrown(() => decoder.decode(truncated));
    expect(error).toBeInstanceOf(SchemaMismatchError);
    expect(error.message).toMatch(/^schema id 1: payload does not match the schema: Avro: truncated buffer/);
    const trailing = Buffer.concat([frame('avroOrder'), Buffer.from([1])]);
    expect(() => decoder.decode(trailing)).toThrow(/schema id 1: payload does not match the schema: Avro: trailing/);
  });

  test('a value that decodes but fails the zod schema is a ValidationError naming the schema id', async () => {
    const { registry } = setup();
    const decoder = confluentAvro({ registry, schema: OrderEvent.extend({ amountCents: z.number().max(1000) }) });
    await decoder.prepare([frame('avroOrder')]);
    const error = thrown(() => decoder.decode(frame('avroOrder')));
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.message).toMatch(/^schema id 1: value fails its zod schema: amountCents: /);
  });

  test('a registry that is down, throttling or failing makes prepare fail transiently; nothing is cached', async () => {
    for (const answer of [
      { status: 503, body: { message: 'unavailable' } },
      { status: 429, body: { message: 'slow down' } },
      { status: 401, body: { message: 'unauthorized' } },
      new TypeError('fetch failed'),
    ]) {
      const { fake, registry } = setup({ '/schemas/ids/1': answer });
      const decoder = confluentAvro({ registry });
      const error = await decoder.prepare([frame('avroOrder')]).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(error).toBeInstanceOf(RegistryUnavailableError);
      expect(error).toBeInstanceOf(TransientError);
      await decoder.prepare([frame('avroOrder')]).catch(() => {});
      expect(fake.calls).toHaveLength(2);
      // decode without a loaded schema is transient too, and says how to fix the route
      expect(() => decoder.decode(frame('avroOrder'))).toThrow(SchemaNotLoadedError);
    }
  });

  test('decoding before prepare names the missing middleware', () => {
    const { registry } = setup();
    const error = thrown(() => confluentAvro({ registry }).decode(frame('avroOrder')));
    expect(error).toBeInstanceOf(SchemaNotLoadedError);
    expect(error.message).toMatch(/schema id 1: not loaded before decode.*prefetchSchemas/);
  });

  test('an id whose schema is of another type is a permanent InvalidSchemaError', async () => {
    const { registry } = setup();
    const decoder = confluentAvro({ registry });
    const bytes = frameConfluent(2, Buffer.from('{}'));
    await decoder.prepare([bytes]);
    expect(() => decoder.decode(bytes)).toThrow(InvalidSchemaError);
    expect(() => decoder.decode(bytes)).toThrow('schema id 2: is JSON, but this route decodes AVRO');
  });

  test('the cache per container is bounded', async () => {
    const routes = fixtureRoutes();
    routes['/schemas/ids/5'] = routes['/schemas/ids/1'] as never;
    routes['/schemas/ids/6'] = routes['/schemas/ids/1'] as never;
    const { fake, registry } = setup(routes, { cacheSize: 2 });
    const decoder = confluentAvro({ registry, cacheSize: 2 });
    const payload = Buffer.from('066f2d31029e1f00', 'hex');
    for (const id of [1, 5, 6, 1]) await decoder.prepare([frameConfluent(id, payload)]);
    expect(fake.calls.map((c) => c.url.split('/').pop())).toEqual(['1', '5', '6', '1']);
  });
});

describe('confluentProtobuf', () => {
  const Customer = z.object({ id: z.string(), name: z.string() });

  test('the message indexes pick the message, not the first in the file; the reference resolves', async () => {
    const { fake, registry } = setup();
    const decoder = confluentProtobuf({ registry });
    const records = ['protoCustomerShorthand', 'protoCustomerExplicit', 'protoOrder', 'protoDiscount'].map(frame);
    await decoder.prepare(records);
    const [shorthand, explicit, order, discount] = records.map((r) => decoder.decode(r));
    expect(shorthand).toEqual({ id: 'c-1', name: 'Ada' });
    expect(explicit).toEqual({ id: 'c-1', name: 'Ada' });
    expect(order).toEqual({
      order_id: 'o-1',
      total: { currency: 'EUR', cents: '1999' },
      lines: [{ sku: 'A', quantity: 2 }],
    });
    expect(discount).toEqual({ code: 'X' });
    expect(fake.calls.map((c) => new URL(c.url).pathname)).toEqual([
      '/apis/ccompat/v7/schemas/ids/3',
      '/apis/ccompat/v7/subjects/common.proto/versions/1',
    ]);
  });

  test('the nested Order.Line at [1, 0], through zod', async () => {
    const { registry } = setup();
    const decoder = confluentProtobuf({ registry, schema: z.object({ sku: z.string(), quantity: z.number() }) });
    const bytes = Buffer.concat([
      frameConfluent(3, writeMessageIndexes([1, 0])),
      Buffer.from('0a01421003', 'hex'), // sku "B", quantity 3
    ]);
    await decoder.prepare([bytes]);
    expect(decoder.decode(bytes)).toEqual({ sku: 'B', quantity: 3 });
    const customers = confluentProtobuf({ registry, schema: Customer });
    await customers.prepare([frame('protoCustomerShorthand')]);
    const customer: z.infer<typeof Customer> = customers.decode(frame('protoCustomerShorthand'));
    expect(customer.name).toBe('Ada');
  });

  test('an index with no message, bad varints or bytes that are not the message are permanent', async () => {
    const { registry } = setup();
    const decoder = confluentProtobuf({ registry });
    const noSuch = Buffer.concat([frameConfluent(3, writeMessageIndexes([7])), Buffer.from('0a00', 'hex')]);
    await decoder.prepare([noSuch]);
    expect(() => decoder.decode(noSuch)).toThrow(
      'schema id 3: payload does not match the schema: no message at message index [7]',
    );
    const truncatedIndexes = frameConfluent(3, Buffer.from('04', 'hex'));
    const indexError = thrown(() => decoder.decode(truncatedIndexes));
    expect(indexError).toBeInstanceOf(WireFormatError);
    expect(indexError.message).toBe('schema id 3: truncated varint');
    const garbage = Buffer.concat([frameConfluent(3, Buffer.from([0])), Buffer.from('0a05ff', 'hex')]);
    const error = thrown(() => decoder.decode(garbage));
    expect(error).toBeInstanceOf(SchemaMismatchError);
    expect(error.message).toMatch(
      /^schema id 3: payload does not match the schema: Protobuf example.orders.Customer: /,
    );
  });

  test('a missing reference is a permanent error naming the reference', async () => {
    const routes = fixtureRoutes();
    delete routes['/subjects/common.proto/versions/1'];
    const { registry } = setup(routes);
    const decoder = confluentProtobuf({ registry });
    await decoder.prepare([frame('protoOrder')]);
    expect(() => decoder.decode(frame('protoOrder'))).toThrow(
      /schema id 3: unknown to the registry: its reference common.proto \(subject common.proto version 1\) is missing/,
    );
  });
});

describe('confluentJsonSchema', () => {
  const Order = z.object({ orderId: z.string(), status: z.string() });

  test('decodes and validates against the registry schema, then zod', async () => {
    const { registry } = setup();
    const decoder = confluentJsonSchema({ registry, schema: Order });
    await decoder.prepare([frame('jsonOrder')]);
    expect(decoder.decode(frame('jsonOrder'))).toEqual({ orderId: 'o-1', status: 'PAID' });
  });

  test('a value that breaks the JSON Schema, or is not JSON, is a permanent SchemaMismatchError', async () => {
    const { registry } = setup();
    const decoder = confluentJsonSchema({ registry });
    const bad = frameConfluent(2, Buffer.from('{"orderId":"o-1","status":"LOST"}'));
    await decoder.prepare([bad]);
    expect(() => decoder.decode(bad)).toThrow(
      'schema id 2: payload does not match the schema: JSON Schema: /status: must be equal to one of the allowed values',
    );
    expect(() => decoder.decode(frameConfluent(2, Buffer.from('{"orderId"')))).toThrow(
      /schema id 2: payload does not match the schema: not JSON/,
    );
    const lenient = confluentJsonSchema({ registry, validate: false });
    await lenient.prepare([bad]);
    expect(lenient.decode(bad)).toEqual({ orderId: 'o-1', status: 'LOST' });
  });
});

describe('schema references', () => {
  const routes = () => ({
    ...fixtureRoutes(),
    '/schemas/ids/10': {
      status: 200,
      body: {
        schema: JSON.stringify({
          type: 'record',
          name: 'Shipment',
          namespace: 'com.example',
          fields: [
            { name: 'id', type: 'string' },
            { name: 'to', type: 'com.example.Address' },
          ],
        }),
        references: [{ name: 'com.example.Address', subject: 'address-avro', version: 2 }],
      },
    },
    '/subjects/address-avro/versions/2': {
      status: 200,
      body: {
        schema: JSON.stringify({
          type: 'record',
          name: 'Address',
          namespace: 'com.example',
          fields: [{ name: 'city', type: 'string' }],
        }),
      },
    },
    '/schemas/ids/11': {
      status: 200,
      body: {
        schemaType: 'JSON',
        schema: JSON.stringify({
          type: 'object',
          required: ['to'],
          properties: { id: { type: 'string' }, to: { $ref: 'address.json' } },
        }),
        references: [{ name: 'address.json', subject: 'address-json', version: 1 }],
      },
    },
    '/subjects/address-json/versions/1': {
      status: 200,
      body: {
        schemaType: 'JSON',
        schema: JSON.stringify({ type: 'object', required: ['city'], properties: { city: { type: 'string' } } }),
      },
    },
  });

  test('Avro: a named type from another subject', async () => {
    const { fake, registry } = setup(routes());
    const decoder = confluentAvro({ registry });
    // id "s-1" (06 73 2d 31), city "Oslo" (08 4f 73 6c 6f)
    const bytes = frameConfluent(10, Buffer.from('06732d31084f736c6f', 'hex'));
    await decoder.prepare([bytes]);
    expect(decoder.decode(bytes)).toEqual({ id: 's-1', to: { city: 'Oslo' } });
    expect(fake.calls.map((c) => new URL(c.url).pathname)).toEqual([
      '/apis/ccompat/v7/schemas/ids/10',
      '/apis/ccompat/v7/subjects/address-avro/versions/2',
    ]);
  });

  test('JSON Schema: a $ref to another subject, by its reference name', async () => {
    const { registry } = setup(routes());
    const decoder = confluentJsonSchema({ registry });
    const good = frameConfluent(11, Buffer.from('{"id":"s-1","to":{"city":"Oslo"}}'));
    const bad = frameConfluent(11, Buffer.from('{"id":"s-1","to":{}}'));
    await decoder.prepare([good]);
    expect(decoder.decode(good)).toEqual({ id: 's-1', to: { city: 'Oslo' } });
    expect(() => decoder.decode(bad)).toThrow(/schema id 11: .*\/to: must have required property 'city'/);
  });
});
