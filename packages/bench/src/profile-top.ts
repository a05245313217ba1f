/**
 * Top self-time functions of V8 CPU profiles (from `--cpu-prof`):
 *
 *   node packages/bench/dist/profile-top.js [--top N] FILE.cpuprofile...
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { isEntryPoint } from './entry.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  where: string;
  ms: number;
  share: number;
}

function shortUrl(url: string): string {
  if (url === '') return '(native)';
  const path = url.replace(/^file:\/\//, '');
  const pkg = /packages\/([^/]+)\/(?:dist|src)\/(.*)$/.exec(path);
  if (pkg) return `${pkg[1]}/${pkg[2]}`;
  const dep = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(path);
  if (dep) return `${dep[1]}/${dep[2]}`;
  return path.startsWith('node:') ? path : basename(path);
}

/** Self time per function (name + file + line), largest first; idle and GC reported as themselves. */
export function selfTimes(profile: CpuProfile): SelfTime[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const ms = new Map<string, { name: string; where: string; ms: number }>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    const dt = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0) / 1000;
    if (!node) continue;
    const f = node.callFrame;
    const name = f.functionName || '(anonymous)';
    const where = f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : '';
    const key = `${name}\u0000${where}`;
    const entry = ms.get(key) ?? { name, where, ms: 0 };
    entry.ms += dt;
    ms.set(key, entry);
    total += dt;
  }
  return [...ms.values()]
    .map((e) => ({ ...e, share: total > 0 ? e.ms / total : 0 }))
    .sort((a, b) => b.ms - a.ms);
}

export function main(argv: readonly string[]): number {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: { top: { type: 'string' } },
  });
  const top = Number(values.top ?? 15);
  if (positionals.length === 0) {
    process.stderr.write('usage: profile-top.js [--top N] FILE.cpuprofile...\n');
    return 2;
  }
  for (const file of positionals) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    const seconds = (profile.endTime - profile.startTime) / 1e6;
    const rows = selfTimes(profile);
    const busy = rows.filter((r) => r.name !== '(idle)').reduce((a, r) => a + r.ms, 0);
    process.stdout.write(
      `\n${basename(file)}: ${seconds.toFixed(2)} s profiled, ${(busy / 1000).toFixed(2)} s busy\n`,
    );
    for (const r of rows.slice(0, top)) {
      process.stdout.write(
        `${(r.share * 100).toFixed(1).padStart(5)} %  ${r.ms.toFixed(0).padStart(6)} ms  ${r.name}  ${r.where}\n`,
      );
    }
  }
  return 0;
}

if (isEntryPoint(import.meta.url)) process.exitCode = main(process.argv.slice(2));
