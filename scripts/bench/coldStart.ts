// Cold start: three bundles built with identical esbuild settings, each imported by fresh Node processes that time
// their own `await import(bundle)` (module init: parse, compile, evaluate, client construction).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BuildOptions, build, type Plugin } from 'esbuild';
import type { ColdStartEntry } from './schema.ts';
import { median, percentile, round } from './stats.ts';

export const BUNDLES = ['bridge', 'powertools', 'floor'] as const;
export type BundleName = (typeof BUNDLES)[number];

const here = path.dirname(fileURLToPath(import.meta.url));
export const WORK_DIR = path.join(here, '.work');

/**
 * Powertools Kafka 2.35 imports its Avro and Protobuf codecs with literal dynamic imports, so esbuild tries to bundle
 * `avro-js` and `protobufjs` even for a JSON consumer and fails when they are not installed
 * (aws-powertools/powertools-lambda-typescript#5557, fixed by #5578 in a release we cannot install here, which loads
 * them through a non-literal specifier). This plugin gives those two packages an empty module: the effect of the fix.
 * Only the Powertools bundle imports them; the JSON path never touches them.
 */
const unusedCodecs: Plugin = {
  name: 'unused-kafka-codecs',
  setup(b) {
    b.onResolve({ filter: /^(avro-js|protobufjs)$/ }, (args) => ({ path: args.path, namespace: 'unused-codec' }));
    b.onLoad({ filter: /.*/, namespace: 'unused-codec' }, () => ({ contents: 'module.exports = {};', loader: 'js' }));
  },
};

/** One settings object for all three: ESM, minified, platform node, target node24, SDK bundled, no externals. */
export const bundleSettings: BuildOptions = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  minify: true,
  mainFields: ['module', 'main'],
  external: [],
  plugins: [unusedCodecs],
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'silent',
  // CommonJS dependencies inside an ESM bundle need `require` for Node built-ins.
  banner: { js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);" },
};

export const buildBundle = async (name: BundleName, outDir = WORK_DIR): Promise<{ file: string; bytes: number }> => {
  const file = path.join(outDir, `${name}.mjs`);
  await build({ ...bundleSettings, entryPoints: [path.join(here, 'entries', `${name}.ts`)], outfile: file });
  return { file, bytes: fs.statSync(file).size };
};

/**
 * The child: times the import of the bundle given as its argument and prints `{"initMs":…,"cpuMs":…}`: wall time
 * (the measure), and the process's CPU time over the same span (less sensitive to other load on the machine).
 */
const MEASURE_SCRIPT = `import { writeSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const url = pathToFileURL(process.argv[2]).href;
const cpu = process.cpuUsage();
const started = performance.now();
await import(url);
const initMs = performance.now() - started;
const used = process.cpuUsage(cpu);
writeSync(1, JSON.stringify({ initMs, cpuMs: (used.user + used.system) / 1000 }) + '\\n');
process.exit(0);
`;

/** A Lambda-like environment, the same for every bundle; nothing from the parent's Node options leaks in. */
const childEnv = (): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'local',
  AWS_SECRET_ACCESS_KEY: 'local',
  AWS_LAMBDA_FUNCTION_NAME: 'orders',
  AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '1024',
  IDEMPOTENCY_TABLE_NAME: 'idempotency',
  DLQ_URL: 'http://127.0.0.1:9324/000000000000/orders-dlq',
  ORDERS_TABLE_NAME: 'orders',
  BRIDGE_ROUTE: 'orders',
  TZ: 'UTC',
});

type Sample = { initMs: number; cpuMs: number };

const measureOnce = (script: string, bundle: string): Promise<Sample> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, bundle], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{"initMs"'));
      if (code !== 0 || !line) {
        reject(new Error(`init of ${path.basename(bundle)} failed (exit ${code}): ${err.trim() || out.trim()}`));
        return;
      }
      resolve(JSON.parse(line) as Sample);
    });
  });

export type ColdStartResults = Record<BundleName, ColdStartEntry>;

export const runColdStart = async (options: {
  samples: number;
  log: (line: string) => void;
}): Promise<ColdStartResults> => {
  fs.mkdirSync(WORK_DIR, { recursive: true });
  const script = path.join(WORK_DIR, 'measure-init.mjs');
  fs.writeFileSync(script, MEASURE_SCRIPT);
  const bundles = {} as Record<BundleName, { file: string; bytes: number }>;
  for (const name of BUNDLES) {
    bundles[name] = await buildBundle(name);
    options.log(`bundle ${name}: ${bundles[name].bytes} bytes`);
  }
  // One discarded import each (file cache), then round-robin so drift on the machine hits every bundle alike.
  for (const name of BUNDLES) await measureOnce(script, bundles[name].file);
  const samples = Object.fromEntries(BUNDLES.map((name) => [name, [] as Sample[]])) as Record<BundleName, Sample[]>;
  for (let i = 0; i < options.samples; i++) {
    for (const name of BUNDLES) samples[name].push(await measureOnce(script, bundles[name].file));
    if ((i + 1) % 10 === 0) options.log(`init samples: ${i + 1}/${options.samples}`);
  }
  const results = {} as ColdStartResults;
  for (const name of BUNDLES) {
    const wall = samples[name].map((s) => s.initMs);
    // Each round imports the three bundles back to back, so a round's ratio is compared under the same load.
    const paired = samples[name].map((s, i) => s.initMs / (samples.floor[i] as Sample).initMs);
    results[name] = {
      bundleBytes: bundles[name].bytes,
      initMsMedian: round(median(wall), 2),
      samples: wall.length,
      initMsP10: round(percentile(wall, 10), 2),
      initMsP90: round(percentile(wall, 90), 2),
      initCpuMsMedian: round(median(samples[name].map((s) => s.cpuMs)), 2),
      vsFloorPairedMedian: round(median(paired), 3),
    };
    options.log(
      `init ${name}: median ${results[name].initMsMedian} ms (p10 ${results[name].initMsP10}, p90 ` +
        `${results[name].initMsP90}; CPU ${results[name].initCpuMsMedian} ms; paired vs floor ` +
        `${results[name].vsFloorPairedMedian}×)`,
    );
  }
  return results;
};
