import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchResult } from '../src/bench.js';
import { locateBins } from '../src/ferry.js';
import { BENCH_CLI, runBenchCli } from './run-cli.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('pnpm bench -- --fixed-cost', () => {
  it('times whole stat and 1-byte get processes of both builds, and node -e 0, with a ratio per command', async () => {
    if (!existsSync(BENCH_CLI))
      throw new Error(`not built: ${BENCH_CLI} — run \`pnpm turbo run build --filter=@ferry/bench...\``);
    const dir = await mkdtemp(join(tmpdir(), 'ferry-fixed-cost-test-'));
    dirs.push(dir);
    const out = join(dir, 'result.json');
    // The same build as its own baseline, through its own second server: every path of the row runs.
    const bins = locateBins({});
    const { code, stdout, stderr } = await runBenchCli([
      '--fixed-cost',
      '--runs',
      '1',
      '--warmup',
      '0',
      '--baseline-ferry',
      bins.ferry,
      '--baseline-ferry-server',
      bins.server,
      '--out',
      out,
    ]);
    expect(code, `bench exited ${code}:\n${stderr.slice(-4000)}`).toBe(0);
    // No throughput, so no chart.
    expect(existsSync(join(dir, 'result.svg'))).toBe(false);
    expect(stdout).not.toContain('chart:');
    const result = JSON.parse(await readFile(out, 'utf8')) as BenchResult;
    expect(result.failures).toEqual([]);
    expect(result.loopback).toEqual([]);
    expect(result.peers).toBeUndefined();
    const f = result.fixedCost!;
    expect(f.baseline).toEqual({ ferry: bins.ferry, ferryServer: bins.server });
    const environments = process.env.NODE_EXTRA_CA_CERTS ? [true, false] : [false];
    for (const caCerts of environments) {
      for (const [command, build] of [
        ['stat', 'this'],
        ['stat', 'baseline'],
        ['get', 'this'],
        ['get', 'baseline'],
        ['node', undefined],
      ] as const) {
        const row = f.rows.find((r) => r.command === command && r.build === build && r.caCerts === caCerts);
        expect(row?.runs, `${command} ${build} caCerts=${caCerts}`).toHaveLength(1);
        expect(row?.wallMs?.median).toBeGreaterThan(0);
      }
      for (const command of ['stat', 'get'] as const)
        expect(
          f.ratios.find((r) => r.command === command && r.caCerts === caCerts)?.ratio?.median,
        ).toBeGreaterThan(0);
    }
    expect(result.targets.filter((t) => t.name.startsWith('fixed cost')).map((t) => typeof t.met)).toEqual([
      'boolean',
      'boolean',
    ]);
    expect(stdout.trimEnd().split('\n').at(-1)).toMatch(
      /^verdict: fixed cost: ferry stat \d+ ms, 1-byte get \d+ ms; \S+x \/ \S+x the baseline's/,
    );
  }, 120_000);
});
