// Round trips through a real Confluent-compatible registry: Apicurio Registry from scripts/local/registry.ts (started
// here if it is not running, stopped afterwards if this file started it), or SCHEMA_REGISTRY_URL when set.
// Register over /apis/ccompat/v7, frame records as a Confluent serializer would, decode them through the decoders.
import { randomUUID } from 'node:crypto';
import avro from 'avsc';
import protobuf from 'protobufjs';
import { z } from 'zod';
import { invocationSummaryOf, kafkaHandler } from '../../../../functions/runtime/kafkaHandler.ts';
import {
  ConfluentRegistryClient,
  confluentAvro,
  confluentJsonSchema,
  confluentProtobuf,
  frameConfluent,
  registryFromEnvironment,
  UnknownSchemaError,
  writeMessageIndexes,
} from '../../../../functions/runtime/registry/index.ts';
import { ensureRegistry, type RegistryHandle, stopRegistry } from '../../../../scripts/local/registry.ts';
import { routeEnvironment } from '../../../helpers/aws.ts';
import { lambdaContext } from '../../../helpers/events.ts';
import { fixtureText } from './fakeRegistry.ts';

const skip = process.env.LOCAL_SERVICES === 'skip' && !process.env.SCHEMA_REGISTRY_URL;
const suite = skip ? describe.skip : describe;
if (skip) process.stderr.write('registry round trips skipped: LOCAL_SERVICES=skip and no SCHEMA_REGISTRY_URL\n');

let handle: RegistryHandle;
const run = randomUUID().slice(0, 8);

const register = async (subject: string, body: Record<string, unknown>): Promise<number> => {
  const response = await fetch(`${handle.url}/subjects/${encodeURIComponent(subject)}/versions`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as { id?: number; message?: string };
  if (!response.ok || typeof json.id !== 'number')
    throw new Error(`register ${subject}: ${response.status} ${json.message}`);
  return json.id;
};

suite('round trips through a real registry', () => {
  beforeAll(async () => {
    handle = await ensureRegistry({ log: (line) => process.stderr.write(`[registry] ${line}\n`) });
  }, 240_000);

  afterAll(async () => {
    if (handle?.source === 'started') await stopRegistry();
  }, 30_000);

  const client = () => new ConfluentRegistryClient({ url: handle.url });

  test('Avro: register, frame, decode through zod', async () => {
    const schema = fixtureText('orders.avsc');
    const id = await register(`orders-${run}-value`, { schema });
    const type = avro.Type.forSchema(JSON.parse(schema));
    const value = { orderId: 'o-7', status: 'SHIPPED', amountCents: 4200, note: 'gift' };
    const records = Array.from({ length: 100 }, () => frameConfluent(id, type.toBuffer(value)));
    const registry = client();
    const decoder = confluentAvro({
      registry,
      subject: `orders-${run}-value`,
      schema: z.object({
        orderId: z.string(),
        status: z.string(),
        amountCents: z.number(),
        note: z.string().nullable(),
      }),
    });
    await decoder.prepare(records);
    expect(records.map((r) => decoder.decode(r))).toEqual(Array(100).fill(value));
    expect(registry.requests).toBe(1);
  });

  test('Protobuf: several messages, a nested type and a reference', async () => {
    await register(`common-${run}.proto`, { schemaType: 'PROTOBUF', schema: fixtureText('common.proto') });
    const id = await register(`orders-${run}-proto-value`, {
      schemaType: 'PROTOBUF',
      schema: fixtureText('orders.proto'),
      references: [{ name: 'common.proto', subject: `common-${run}.proto`, version: 1 }],
    });
    const root = new protobuf.Root();
    protobuf.parse(fixtureText('common.proto'), root, { keepCase: true });
    protobuf.parse(fixtureText('orders.proto'), root, { keepCase: true });
    const encode = (name: string, value: object) => {
      const type = root.lookupType(name);
      return Buffer.from(type.encode(type.fromObject(value)).finish());
    };
    const order = Buffer.concat([
      frameConfluent(id, writeMessageIndexes([1])),
      encode('example.orders.Order', { order_id: 'o-9', total: { currency: 'EUR', cents: 125 }, lines: [] }),
    ]);
    const discount = Buffer.concat([
      frameConfluent(id, writeMessageIndexes([1, 0, 0])),
      encode('example.orders.Order.Line.Discount', { code: 'SPRING' }),
    ]);
    const customer = Buffer.concat([
      frameConfluent(id, writeMessageIndexes([0])),
      encode('example.orders.Customer', { id: 'c-9', name: 'Grace' }),
    ]);
    const decoder = confluentProtobuf({ registry: client() });
    await decoder.prepare([order, discount, customer]);
    expect(decoder.decode(order)).toEqual({
      order_id: 'o-9',
      total: { currency: 'EUR', cents: '125' },
      lines: [],
    });
    expect(decoder.decode(discount)).toEqual({ code: 'SPRING' });
    expect(decoder.decode(customer)).toEqual({ id: 'c-9', name: 'Grace' });
  });

  test('JSON Schema: register, frame, validate, decode', async () => {
    const id = await register(`orders-${run}-json-value`, {
      schemaType: 'JSON',
      schema: fixtureText('order.schema.json'),
    });
    const decoder = confluentJsonSchema({ registry: client() });
    const good = frameConfluent(id, Buffer.from(JSON.stringify({ orderId: 'o-3', status: 'PLACED' })));
    const bad = frameConfluent(id, Buffer.from(JSON.stringify({ orderId: 'o-3', status: 'LOST' })));
    await decoder.prepare([good, bad]);
    expect(decoder.decode(good)).toEqual({ orderId: 'o-3', status: 'PLACED' });
    expect(() => decoder.decode(bad)).toThrow(`schema id ${id}: payload does not match the schema`);
  });

  test('a kafkaHandler route decodes framed records with no middleware: the runtime fetches the schemas first', async () => {
    await routeEnvironment('registry-route');
    const schema = fixtureText('orders.avsc');
    const id = await register(`handler-${run}-value`, { schema });
    const type = avro.Type.forSchema(JSON.parse(schema));
    const value = { orderId: 'o-9', status: 'PLACED', amountCents: 100, note: null };
    const seen: unknown[] = [];
    const handler = kafkaHandler({
      route: 'registry-route',
      value: confluentAvro({ registry: client(), schema: z.object({ orderId: z.string(), amountCents: z.number() }) }),
      process: async (record) => {
        seen.push(record.value);
      },
    });
    const framed = frameConfluent(id, type.toBuffer(value)).toString('base64');
    const context = lambdaContext();
    await handler(
      {
        eventSource: 'SelfManagedKafka',
        bootstrapServers: '127.0.0.1:9092',
        records: {
          'orders-0': [
            {
              topic: 'orders',
              partition: 0,
              offset: 0,
              timestamp: Date.now(),
              timestampType: 'CREATE_TIME',
              key: null,
              value: framed,
              headers: [],
            },
          ],
        },
      },
      context,
    );
    expect(invocationSummaryOf(context)).toMatchObject({ processed: 1, deadLettered: 0 });
    expect(seen).toEqual([{ orderId: 'o-9', amountCents: 100 }]);
  });

  test('registryFromEnvironment: the registry the deployment names in SCHEMA_REGISTRY_URL', async () => {
    const schema = fixtureText('orders.avsc');
    const id = await register(`env-${run}-value`, { schema });
    const value = { orderId: 'o-1', status: 'PLACED', amountCents: 1, note: null };
    const framed = frameConfluent(id, avro.Type.forSchema(JSON.parse(schema)).toBuffer(value));
    const saved = process.env.SCHEMA_REGISTRY_URL;
    process.env.SCHEMA_REGISTRY_URL = handle.url;
    try {
      const decoder = confluentAvro({ registry: registryFromEnvironment() });
      await decoder.prepare([framed]);
      expect(decoder.decode(framed)).toEqual(value);
    } finally {
      if (saved === undefined) delete process.env.SCHEMA_REGISTRY_URL;
      else process.env.SCHEMA_REGISTRY_URL = saved;
    }
  });

  test('an id the registry never issued is a permanent UnknownSchemaError with its answer', async () => {
    const decoder = confluentAvro({ registry: client(), subject: 'orders-value' });
    const bytes = frameConfluent(987_654_321, Buffer.from([0]));
    await decoder.prepare([bytes]);
    expect(() => decoder.decode(bytes)).toThrow(UnknownSchemaError);
    expect(() => decoder.decode(bytes)).toThrow(
      /^schema id 987654321 \(subject orders-value\): unknown to the registry: .*40403/,
    );
  });
});
