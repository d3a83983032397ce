import { readFileSync } from 'node:fs';

export const fixtureText = (name: string) =>
  readFileSync(new URL(`../../../fixtures/registry/${name}`, import.meta.url), 'utf8');

export const fixtureFrames = JSON.parse(fixtureText('frames.json')) as Record<
  string,
  { hex: string; payloadHex?: string }
>;
export const frame = (name: string): Buffer => {
  const f = fixtureFrames[name];
  if (!f) throw new Error(`no frame ${name}`);
  return Buffer.from(f.hex + (f.payloadHex ?? ''), 'hex');
};

type Answer = { status: number; body: unknown } | Error;

/** A Confluent REST registry as a `fetch` stub: answers by path, records every request and its headers. */
export const fakeRegistry = (routes: Record<string, Answer>, options: { delayMs?: number } = {}) => {
  const calls: { url: string; headers: Record<string, string> }[] = [];
  const fetchStub = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = String(input);
    calls.push({ url, headers: { ...(init?.headers as Record<string, string>) } });
    if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
    const path = new URL(url).pathname.replace(/^\/apis\/ccompat\/v7/, '');
    const answer = routes[path] ?? { status: 404, body: { error_code: 40403, message: 'Schema not found' } };
    if (answer instanceof Error) throw answer;
    return new Response(JSON.stringify(answer.body), { status: answer.status });
  }) as typeof fetch;
  return { calls, fetch: fetchStub };
};

/** The schemas of test/fixtures/registry as a registry serves them. */
export const fixtureRoutes = (): Record<string, Answer> => ({
  '/schemas/ids/1': { status: 200, body: { schema: fixtureText('orders.avsc') } },
  '/schemas/ids/2': { status: 200, body: { schemaType: 'JSON', schema: fixtureText('order.schema.json') } },
  '/schemas/ids/3': {
    status: 200,
    body: {
      schemaType: 'PROTOBUF',
      schema: fixtureText('orders.proto'),
      references: [{ name: 'common.proto', subject: 'common.proto', version: 1 }],
    },
  },
  '/subjects/common.proto/versions/1': {
    status: 200,
    body: { subject: 'common.proto', version: 1, id: 4, schemaType: 'PROTOBUF', schema: fixtureText('common.proto') },
  },
});
