import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../../', import.meta.url));

/** Runs a module in a fresh Node process and reports which schema libraries it loaded. */
const loadedBy = (body: string): string[] => {
  const script = `
    import { createRequire } from 'node:module';
    const require = createRequire(import.meta.url);
    const loaded = () => [...new Set(Object.keys(require.cache)
      .map((p) => /node_modules[\\\\/](avsc|protobufjs|ajv)[\\\\/]/.exec(p)?.[1]).filter(Boolean))].sort();
    ${body}
    process.stdout.write(JSON.stringify(loaded()));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
  return JSON.parse(out) as string[];
};

describe('schema libraries load lazily', () => {
  test('a route handler that uses no registry loads none of them', () => {
    expect(loadedBy(`await import('./functions/handlers/orders.ts');`)).toEqual([]);
  });

  test('importing the registry module loads none; the first Avro schema loads avsc only', () => {
    expect(loadedBy(`await import('./functions/runtime/registry/index.ts');`)).toEqual([]);
    const body = `
      const r = await import('./functions/runtime/registry/index.ts');
      const schema = JSON.stringify({ type: 'record', name: 'A', fields: [{ name: 'a', type: 'string' }] });
      const registry = new r.ConfluentRegistryClient({ url: 'http://r.test',
        fetch: async () => new Response(JSON.stringify({ schema })) });
      await r.confluentAvro({ registry }).prepare([r.frameConfluent(1, Buffer.from([0]))]);`;
    expect(loadedBy(body)).toEqual(['avsc']);
  });
});
