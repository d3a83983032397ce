import http from 'node:http';
import type { AddressInfo } from 'node:net';
import middy from '@middy/core';
import { z } from 'zod';
import { BridgeError } from '../../../../functions/runtime/errors.ts';
import { kafkaHandler } from '../../../../functions/runtime/kafkaHandler.ts';
import {
  ConfluentRegistryClient,
  confluentAvro,
  prefetchSchemas,
  RegistryUnavailableError,
  recordHeads,
} from '../../../../functions/runtime/registry/index.ts';
import { fakeRegistry, fixtureRoutes, fixtureText, frame } from './fakeRegistry.ts';

describe('ConfluentRegistryClient', () => {
  test('basic auth from the URL user info, and the user info is not sent in the URL', async () => {
    const fake = fakeRegistry(fixtureRoutes());
    const client = new ConfluentRegistryClient({ url: 'https://app%40x:s%3Acret@registry.test/', fetch: fake.fetch });
    await client.getSchema(1);
    expect(fake.calls[0]?.url).toBe('https://registry.test/schemas/ids/1');
    expect(fake.calls[0]?.headers.authorization).toBe(`Basic ${Buffer.from('app@x:s:cret').toString('base64')}`);
  });

  test('a bearer token from a function (a Secrets Manager read, say)', async () => {
    const fake = fakeRegistry(fixtureRoutes());
    const client = new ConfluentRegistryClient({
      url: 'http://registry.test',
      auth: { token: async () => 'tok-1' },
      fetch: fake.fetch,
    });
    expect((await client.getSchema(1)).schemaType).toBe('AVRO');
    expect(fake.calls[0]?.headers.authorization).toBe('Bearer tok-1');
  });

  test('SCHEMA_REGISTRY_URL is the default, and its absence is a clear error', () => {
    const saved = process.env.SCHEMA_REGISTRY_URL;
    try {
      process.env.SCHEMA_REGISTRY_URL = 'http://127.0.0.1:8081/apis/ccompat/v7/';
      expect(new ConfluentRegistryClient().url).toBe('http://127.0.0.1:8081/apis/ccompat/v7');
      delete process.env.SCHEMA_REGISTRY_URL;
      expect(() => new ConfluentRegistryClient()).toThrow(BridgeError);
      expect(() => new ConfluentRegistryClient()).toThrow(/SCHEMA_REGISTRY_URL/);
    } finally {
      if (saved === undefined) delete process.env.SCHEMA_REGISTRY_URL;
      else process.env.SCHEMA_REGISTRY_URL = saved;
    }
  });

  test('over real HTTP: a 503, then a closed port, then a timeout are all transient', async () => {
    let mode: 'fail' | 'hang' = 'fail';
    const server = http.createServer((_req, res) => {
      if (mode === 'fail') {
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"message":"down for maintenance"}');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      const client = new ConfluentRegistryClient({ url: `http://127.0.0.1:${port}`, timeoutMs: 200 });
      await expect(client.getSchema(1)).rejects.toThrow(/answered 503: down for maintenance/);
      mode = 'hang';
      await expect(client.getSchema(1)).rejects.toBeInstanceOf(RegistryUnavailableError);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    const closed = new ConfluentRegistryClient({ url: `http://127.0.0.1:${port}` });
    await expect(closed.getSchema(1)).rejects.toThrow(/unreachable/);
  });
});

describe('prefetchSchemas', () => {
  const event = (values: (Buffer | null)[]) => ({
    eventSource: 'aws:kafka',
    records: {
      'orders-0': values.map((v, offset) => ({
        topic: 'orders',
        partition: 0,
        offset,
        timestamp: 0,
        timestampType: 'CREATE_TIME',
        key: Buffer.from('k').toString('base64'),
        value: v === null ? null : v.toString('base64'),
        headers: [],
      })),
    },
  });

  test('recordHeads reads only the leading bytes of each value and key', () => {
    const big = Buffer.concat([frame('avroOrder'), Buffer.alloc(10_000, 1)]);
    const heads = recordHeads(event([big, null]));
    expect(heads.values).toHaveLength(1);
    expect(heads.values[0]?.length).toBe(24);
    expect(heads.values[0]?.subarray(0, 5)).toEqual(frame('avroOrder').subarray(0, 5));
    expect(heads.keys.map(String)).toEqual(['k', 'k']);
    expect(recordHeads({ nope: true })).toEqual({
      keys: [],
      values: [],
      keySchemaMetadata: [],
      valueSchemaMetadata: [],
    });
  });

  test("recordHeads pairs each head with the event source mapping's schema metadata (eventRecordFormat SOURCE)", () => {
    const source = JSON.parse(fixtureText('esm-registry-source-avro-event.json'));
    const heads = recordHeads(source);
    expect(heads.values.map((v) => v.toString('hex'))).toEqual([
      '066f2d31029e1f00',
      '066f2d3204d041020867696674',
      '000000020278',
    ]);
    expect(heads.valueSchemaMetadata).toEqual(Array(3).fill({ dataFormat: 'AVRO', schemaId: '1' }));
    expect(heads.keySchemaMetadata).toEqual([undefined, undefined, undefined]);
  });

  test('as middy middleware: the batch schemas are loaded before the handler decodes', async () => {
    const fake = fakeRegistry(fixtureRoutes());
    const value = confluentAvro({ registry: new ConfluentRegistryClient({ url: 'http://r.test', fetch: fake.fetch }) });
    const handler = middy<unknown, unknown>()
      .use(prefetchSchemas({ value }))
      .handler(async () => value.decode(frame('avroOrder')));
    const records = Array.from({ length: 100 }, () => frame('avroOrder'));
    expect(await handler(event(records), {} as never)).toMatchObject({ orderId: 'o-1' });
    expect(fake.calls).toHaveLength(1);
  });

  test("plugs into kafkaHandler with the handler's own specs, typed from the zod schema", () => {
    const fake = fakeRegistry(fixtureRoutes());
    const Order = z.object({ orderId: z.string() });
    const handler = kafkaHandler({
      route: 'orders-avro',
      value: confluentAvro({
        registry: new ConfluentRegistryClient({ url: 'http://r.test', fetch: fake.fetch }),
        schema: Order,
      }),
      process: async (record) => {
        const orderId: string = record.value.orderId;
        void orderId;
      },
    });
    const used = handler.use(prefetchSchemas(handler.schemas));
    expect(used).toBe(handler);
  });

  test('a registry outage fails the invocation with the transient error (the batch is re-delivered)', async () => {
    const fake = fakeRegistry({ '/schemas/ids/1': { status: 502, body: { message: 'bad gateway' } } });
    const value = confluentAvro({ registry: new ConfluentRegistryClient({ url: 'http://r.test', fetch: fake.fetch }) });
    let ran = false;
    const handler = middy<unknown, unknown>()
      .use(prefetchSchemas({ value, key: undefined }))
      .handler(async () => {
        ran = true;
      });
    await expect(handler(event([frame('avroOrder')]), {} as never)).rejects.toBeInstanceOf(RegistryUnavailableError);
    expect(ran).toBe(false);
  });
});
