#!/usr/bin/env node
// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by package / source area and by function, plus
// idle and GC. `node scripts/bench/profileSummary.ts <file.cpuprofile> [--top N]`. Pure apart from reading the file.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';

type ProfileNode = {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
};
export type CpuProfile = {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
};

/** Where a frame's code lives: a package, a project folder, Node itself, or a V8 pseudo-frame. */
export const areaOf = (url: string, functionName: string): string => {
  if (!url) {
    if (functionName === '(idle)') return '(idle)';
    if (functionName === '(garbage collector)') return '(gc)';
    if (functionName === '(program)') return '(program)';
    return '(native)';
  }
  if (url.startsWith('node:')) return 'node:internal';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] as string;
  const project = /\/(functions\/[^/]+|scripts\/[^/]+|infra|test)\//.exec(url);
  if (project) return project[1] as string;
  return url;
};

export type ProfileSummary = {
  totalMs: number;
  byArea: Array<{ area: string; ms: number; share: number }>;
  byFunction: Array<{ fn: string; area: string; ms: number; share: number }>;
};

export const summariseProfile = (profile: CpuProfile, top = 25): ProfileSummary => {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  // timeDeltas[i] is the time since the previous sample; it is spent in the frame of sample i - 1.
  for (let i = 1; i < profile.samples.length; i++) {
    const id = profile.samples[i - 1] as number;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const area = new Map<string, number>();
  const fn = new Map<string, { area: string; us: number }>();
  let total = 0;
  for (const [id, us] of self) {
    const node = nodes.get(id);
    if (!node) continue;
    total += us;
    const { functionName, url, lineNumber } = node.callFrame;
    const a = areaOf(url, functionName);
    area.set(a, (area.get(a) ?? 0) + us);
    const key =
      `${functionName || '(anonymous)'} ${url ? `${url.replace(/^.*\/(node_modules|work\/main)\//, '')}:${lineNumber + 1}` : ''}`.trim();
    const entry = fn.get(key) ?? { area: a, us: 0 };
    entry.us += us;
    fn.set(key, entry);
  }
  const share = (us: number) => Math.round((us / Math.max(1, total)) * 1000) / 10;
  return {
    totalMs: Math.round(total / 1000),
    byArea: [...area]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([a, us]) => ({ area: a, ms: Math.round(us / 1000), share: share(us) })),
    byFunction: [...fn]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top)
      .map(([f, { area: a, us }]) => ({ fn: f, area: a, ms: Math.round(us / 1000), share: share(us) })),
  };
};

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const program = new Command()
    .name('profileSummary')
    .description('Self time by package and by function in a V8 .cpuprofile')
    .argument('<file>', 'a .cpuprofile written by node --cpu-prof')
    .option('--top <n>', 'rows per table', (v) => Number(v), 25)
    .action((file: string, opts: { top: number }) => {
      const summary = summariseProfile(JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile, opts.top);
      const lines = [`total ${summary.totalMs} ms`, '', 'self time by area:'];
      for (const a of summary.byArea)
        lines.push(`${String(a.share).padStart(6)}%  ${String(a.ms).padStart(7)} ms  ${a.area}`);
      lines.push('', 'self time by function:');
      for (const f of summary.byFunction)
        lines.push(`${String(f.share).padStart(6)}%  ${String(f.ms).padStart(7)} ms  ${f.fn}  [${f.area}]`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });
  program.parse();
}
