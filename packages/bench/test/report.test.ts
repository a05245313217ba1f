import { describe, expect, it } from 'vitest';
import { parseBenchArgs, SEED_FILE_BYTES } from '../src/args.js';
import {
  type BenchResult,
  peerDirection,
  RESULT_SCHEMA,
  summarizeDirection,
  targetChecks,
} from '../src/bench.js';
import { renderSvg } from '../src/chart.js';
import { formatFactor, renderMarkdown, targetsVerdict, verdictLine } from '../src/report.js';
import { pairedRatios } from '../src/seed-compat.js';
import { summarize } from '../src/summary.js';
import type { TransferRecord } from '../src/transfer.js';

const FOUR_MIB = 4 * 1024 * 1024;

function runs(op: 'put' | 'get', bytes: number, walls: number[]): TransferRecord[] {
  return walls.map((wallSeconds) => ({ op, bytes, ok: true, wallSeconds, sha256: 'ab', command: [] }));
}

/** A headline run as the bench records it: ferry's two rows, scp beside them, sftp missing. */
function headlineResult(): BenchResult {
  const ferry = {
    put: runs('put', SEED_FILE_BYTES, [0.4, 0.4, 0.5]),
    get: runs('get', SEED_FILE_BYTES, [0.5, 0.5, 0.5]),
  };
  const scp = {
    put: runs('put', SEED_FILE_BYTES, [0.8, 0.9, 0.5]),
    get: runs('get', SEED_FILE_BYTES, [0.5, 0.55, 0.45]),
  };
  const { help: _help, ...options } = parseBenchArgs(['--runs', '3']);
  const result: BenchResult = {
    schema: RESULT_SCHEMA,
    date: '2026-12-08T10:00:00.000Z',
    machine: {
      os: 'Linux',
      release: '6',
      arch: 'x64',
      cpuModel: 'cpu',
      cpuCount: 2,
      memoryBytes: 2 ** 33,
      node: 'v20.20.2',
      commit: undefined,
      loadAverageStart: 0.2,
    },
    options,
    seed: { mbps: 1.86, fileBytes: SEED_FILE_BYTES, note: '' },
    loopback: [
      {
        id: 'default',
        label: 'default',
        fileBytes: SEED_FILE_BYTES,
        put: summarizeDirection(ferry.put),
        get: summarizeDirection(ferry.get),
      },
      {
        id: 'window-1',
        label: '--window 1',
        fileBytes: FOUR_MIB,
        window: 1,
        put: summarizeDirection(runs('put', FOUR_MIB, [0.292])),
        // 4 MiB in 4.2 s: 1.0 MB/s, 0.54 times the seed's 1.86 MB/s.
        get: summarizeDirection(runs('get', FOUR_MIB, [4.2])),
      },
    ],
    peers: [
      {
        tool: 'scp',
        version: 'OpenSSH_9.2p1',
        fileBytes: SEED_FILE_BYTES,
        put: peerDirection(scp.put, ferry.put),
        get: peerDirection(scp.get, ferry.get),
      },
      {
        tool: 'sftp',
        notRun: 'sshd not installed',
        fileBytes: SEED_FILE_BYTES,
        put: { runs: [], ok: false },
        get: { runs: [], ok: false },
      },
    ],
    scenarios: [],
    targets: [],
    failures: [],
    durationSeconds: 40,
  };
  result.targets = targetChecks(result);
  return result;
}

describe('bench report', () => {
  it('shows factors with two significant digits instead of rounding 0.54 to 1', () => {
    expect([0.537, 5.13, 74.3, 153.2].map(formatFactor)).toEqual(['0.54', '5.1', '74', '153']);
    const md = renderMarkdown(headlineResult());
    const stopAndWaitGet = md.split('\n').find((line) => line.startsWith('|  | get | 4 MiB |'));
    expect(stopAndWaitGet).toContain('| 0.54 |');
    // The 4 MiB row scaled to the seed's 56 MiB: 0.292 s × 14.
    expect(md).toContain('| 4.09 |');
  });

  it('puts each peer beside ferry with the median ratio of paired runs and a mark against 1.5×', () => {
    const result = headlineResult();
    const scp = result.peers![0]!;
    // put: 0.8/0.4, 0.9/0.4, 0.5/0.5 → median 2.0; get: 1.0, 1.1, 0.9 → median 1.0.
    expect(scp.put.ferryRatio).toMatchObject({ median: 2, min: 1, max: 2.25, n: 3 });
    expect(scp.get.ferryRatio?.median).toBeCloseTo(1, 10);
    const lines = renderMarkdown(result).split('\n');
    const row = (tool: string, op: string) => lines.find((l) => l.startsWith(`| ${tool} | ${op} |`));
    expect(row('scp', 'put')).toMatch(/\| 2\.00 \(1\.00–2\.25\) \| ✓ \|$/);
    expect(row('scp', 'get')).toMatch(/\| 1\.00 \(0\.90–1\.10\) \| ✗ \|$/);
    expect(row('ferry', 'put')).toContain('| 0.40 (0.40–0.50) |');
    expect(row('sftp', 'put')).toContain('| not run: sshd not installed |');
  });

  it('ends the targets table with how many were met and which were missed', () => {
    const result = headlineResult();
    const verdict = targetsVerdict(result);
    expect(verdict).toBe(
      '**1 of 4 targets met**. missed: loopback put, default, 56 MiB (146.8 MB/s); ' +
        'loopback get, default, 56 MiB (117.4 MB/s); ferry get vs scp, 56 MiB (1.00×).',
    );
    const md = renderMarkdown(result);
    expect(md.indexOf(verdict)).toBeGreaterThan(md.indexOf('## Targets'));
  });

  it('reports the 1 GiB row: ferry against the ceiling measured before each run and against scp, with peak RSS', () => {
    const result = headlineResult();
    const GiB = 1024 ** 3;
    const ferryRuns = (op: 'put' | 'get', transferSeconds: number, rss: number) =>
      runs(op, GiB, [transferSeconds + 0.1]).map((r) => ({
        ...r,
        transferSeconds,
        client: { cpuSeconds: 3, userSeconds: 3, systemSeconds: 0, peakRssBytes: rss },
        server: { cpuSeconds: 3, userSeconds: 3, systemSeconds: 0, peakRssBytes: 110e6 },
      }));
    const ferry = { put: ferryRuns('put', 2.5, 118e6), get: ferryRuns('get', 4, 125e6) };
    const scp = { put: runs('put', GiB, [5.2]), get: runs('get', GiB, [4.2]) };
    // 1 GiB in 2.5 s is 429.5 MB/s: 86 % of a 500 MB/s ceiling; in 4 s, 268.4 MB/s: 54 %.
    const put = { ...summarizeDirection(ferry.put), ceilingFraction: summarize([GiB / 2.5 / 1e6 / 500])! };
    const get = { ...summarizeDirection(ferry.get), ceilingFraction: summarize([GiB / 4 / 1e6 / 500])! };
    result.large = {
      fileBytes: GiB,
      ceilingMbps: summarize([500, 500])!,
      put,
      get,
      scp: {
        tool: 'scp',
        fileBytes: GiB,
        put: peerDirection(scp.put, ferry.put),
        get: peerDirection(scp.get, ferry.get),
      },
    };
    result.memory = {
      fileBytes: GiB,
      put: summarizeDirection(ferry.put),
      get: summarizeDirection(ferry.get),
    };
    result.targets = targetChecks(result);
    const target = (name: string) => result.targets.find((t) => t.name === name);
    expect(target('1024 MiB put: transfer vs the one-core seal + hash ceiling')).toMatchObject({ met: true });
    expect(target('1024 MiB get: transfer vs the one-core seal + hash ceiling')).toMatchObject({
      met: false,
    });
    // scp's seconds / ferry's whole command: 5.2 / 2.6 = 2, 4.2 / 4.1 < 2.
    expect(target('1024 MiB ferry put vs scp')).toMatchObject({ met: true });
    expect(target('1024 MiB ferry get vs scp')).toMatchObject({ met: false });
    expect(target('1024 MiB get, client peak RSS')).toMatchObject({ target: '<= 120 MB', met: false });
    const lines = renderMarkdown(result).split('\n');
    expect(lines).toContain('## Large file: 1 GiB each way, ferry beside scp and the one-core ceiling');
    expect(lines.find((l) => l.startsWith('| put | 429.5 |'))).toMatch(
      /\| 86 % ✓ \|.*\| 2\.00 ✓ \| 118 \| 110 \|$/,
    );
    expect(lines.find((l) => l.startsWith('| get | 268.4 |'))).toMatch(/\| 54 % ✗ \|/);
  });

  it('reports the busy-machine row: ferry beside scp with two loops running, and its timeouts against 0', () => {
    const result = headlineResult();
    const ferryRuns = (op: 'put' | 'get', walls: number[], timeouts: number[]) =>
      runs(op, SEED_FILE_BYTES, walls).map((r, i) => ({
        ...r,
        clientStats: { rtoCount: timeouts[i] },
        serverStats: { rtoCount: 0 },
      }));
    const ferry = { put: ferryRuns('put', [0.6, 0.7], [0, 0]), get: ferryRuns('get', [0.9, 1.0], [1, 2]) };
    const scp = {
      put: runs('put', SEED_FILE_BYTES, [0.7, 0.7]),
      get: runs('get', SEED_FILE_BYTES, [0.6, 0.6]),
    };
    result.busy = {
      fileBytes: SEED_FILE_BYTES,
      hogs: 2,
      ferry: { put: summarizeDirection(ferry.put), get: summarizeDirection(ferry.get) },
      peers: [
        {
          tool: 'scp',
          fileBytes: SEED_FILE_BYTES,
          put: peerDirection(scp.put, ferry.put),
          get: peerDirection(scp.get, ferry.get),
        },
      ],
      rtoCount: { put: 0, get: 3 },
    };
    result.targets = targetChecks(result);
    const target = (name: string) => result.targets.find((t) => t.name === name);
    expect(target('busy machine (2 CPU-bound processes): ferry put vs scp')).toMatchObject({ met: true });
    expect(target('busy machine (2 CPU-bound processes): ferry get vs scp')).toMatchObject({ met: false });
    expect(target('busy machine: ferry put retransmission timeouts (all runs, both sides)')).toMatchObject({
      value: 0,
      met: true,
    });
    expect(target('busy machine: ferry get retransmission timeouts (all runs, both sides)')).toMatchObject({
      value: 3,
      met: false,
    });
    const md = renderMarkdown(result);
    expect(md).toContain('## Busy machine: 2 CPU-bound processes beside 56 MiB transfers');
    expect(md).toContain('| ferry | get | 0.95 (0.90–1.00) |');
    expect(md).toContain('| 3 ✗ |');
    expect(targetsVerdict(result)).toContain(
      'busy machine: ferry get retransmission timeouts (all runs, both sides) (3 timeouts)',
    );
  });

  it('sums the run up in one verdict line against the seed and each peer', () => {
    expect(verdictLine(headlineResult())).toBe(
      "verdict: ferry put 79x / get 63x the seed's 1.86 MB/s (56 MB in 30 s); " +
        "2.00x / 1.00x scp's speed (target 1.5x: 1 of 2 met); sftp not run (sshd not installed)",
    );
  });

  it("reports the seed's client row: both servers, the paired ratio, a target of 1× and a verdict part", () => {
    const result = headlineResult();
    const withTimes = (op: 'put' | 'get', seconds: number[]) =>
      runs(op, SEED_FILE_BYTES, seconds).map((r, i) => ({ ...r, transferSeconds: seconds[i]! }));
    const reference = { put: withTimes('put', [3, 3, 3]), get: withTimes('get', [2, 2, 2]) };
    const ferry = { put: withTimes('put', [2, 1.5, 3]), get: withTimes('get', [4, 2, 4]) };
    result.seedCompat = {
      fileBytes: SEED_FILE_BYTES,
      reference: { put: summarizeDirection(reference.put), get: summarizeDirection(reference.get) },
      ferry: { put: summarizeDirection(ferry.put), get: summarizeDirection(ferry.get) },
      ratio: {
        put: pairedRatios(reference.put, ferry.put)!,
        get: pairedRatios(reference.get, ferry.get)!,
      },
    };
    result.targets = targetChecks(result);
    // put: 3/2, 3/1.5, 3/3 → median 1.5; get: 0.5, 1, 0.5 → median 0.5.
    expect(result.seedCompat.ratio.put).toMatchObject({ median: 1.5, min: 1, max: 2 });
    const lines = renderMarkdown(result).split('\n');
    expect(lines.find((l) => l.startsWith('| ferry-server --seed-compat | put |'))).toMatch(
      /\| 1\.50 \(1\.00–2\.00\) \| ✓ \|$/,
    );
    expect(lines.find((l) => l.startsWith('| ferry-server --seed-compat | get |'))).toMatch(
      /\| 0\.50 \(0\.50–1\.00\) \| ✗ \|$/,
    );
    expect(result.targets.filter((t) => t.name.startsWith('ferry --seed-compat')).map((t) => t.met)).toEqual([
      true,
      false,
    ]);
    expect(verdictLine(result)).toContain(
      "the seed's client: ferry --seed-compat 1.50x / 0.50x the seed server's speed",
    );
  });

  it("says plainly when the seed's client could not run", () => {
    const result = headlineResult();
    const none = { put: { runs: [], ok: false }, get: { runs: [], ok: false } };
    result.seedCompat = {
      fileBytes: SEED_FILE_BYTES,
      notRun: 'python3 not runnable',
      reference: none,
      ferry: none,
      ratio: {},
    };
    expect(renderMarkdown(result)).toContain('Not run: python3 not runnable.');
    expect(targetChecks(result).some((t) => t.name.includes('seed-compat'))).toBe(false);
    expect(verdictLine(result)).toContain("the seed's client not run (python3 not runnable)");
  });

  it('draws the peers in the chart, and says when one did not run', () => {
    const svg = renderSvg(headlineResult());
    expect(svg).toContain('>scp</text>');
    expect(svg).toContain('not run: sshd not installed');
  });
});

describe('bench tree rows', () => {
  /** The headline plus the two trees: ferry beside scp -r and rsync -a, and beside one file. */
  function withTrees(): BenchResult {
    const result = headlineResult();
    const bytes = 46_000_000;
    const ferry = { put: runs('put', bytes, [1.6, 1.7, 1.5]), get: runs('get', bytes, [2.3, 2.2, 2.4]) };
    const scp = { put: runs('put', bytes, [5.0, 5.1, 4.9]), get: runs('get', bytes, [5.5, 5.4, 5.6]) };
    const rsync = { put: runs('put', bytes, [1.1, 1.2, 1.0]), get: runs('get', bytes, [1.2, 1.3, 1.2]) };
    const big = 400 * 1024 * 1024;
    const tree = { put: runs('put', big, [1.7, 1.6, 1.8]), get: runs('get', big, [2.0, 2.0, 2.1]) };
    const single = { put: runs('put', big, [1.5, 1.5, 1.6]), get: runs('get', big, [2.6, 2.7, 2.5]) };
    for (const r of [...ferry.put, ...ferry.get])
      r.client = { cpuSeconds: 1, userSeconds: 1, systemSeconds: 0, peakRssBytes: 180e6 };
    for (const r of [...ferry.put, ...ferry.get])
      r.server = { cpuSeconds: 1, userSeconds: 1, systemSeconds: 0, peakRssBytes: 210e6 };
    result.options.trees = true;
    result.options.treeRuns = 3;
    result.trees = [
      {
        id: 'small-files',
        label: '10,000 files of 1–8 KiB in 100 directories',
        files: 10_000,
        bytes,
        contenders: [
          { tool: 'ferry', put: summarizeDirection(ferry.put), get: summarizeDirection(ferry.get) },
          { tool: 'scp', put: peerDirection(scp.put, ferry.put), get: peerDirection(scp.get, ferry.get) },
          {
            tool: 'rsync',
            put: peerDirection(rsync.put, ferry.put),
            get: peerDirection(rsync.get, ferry.get),
          },
        ],
      },
      {
        id: 'large-files',
        label: '20 files of 20 MiB',
        files: 20,
        bytes: big,
        contenders: [
          { tool: 'ferry', put: summarizeDirection(tree.put), get: summarizeDirection(tree.get) },
          {
            tool: 'ferry, one file',
            put: peerDirection(single.put, tree.put),
            get: peerDirection(single.get, tree.get),
          },
        ],
      },
    ];
    result.targets = targetChecks(result);
    return result;
  }

  it('checks ferry -r against 2× scp -r and rsync -a, 90 % of the single-file speed, and 200 MB of RSS', () => {
    const targets = withTrees().targets.filter((t) => t.name.includes('-r') || t.name.includes('RSS'));
    const byName = Object.fromEntries(targets.map((t) => [t.name, [t.value, t.met]]));
    const small = '10,000 files of 1–8 KiB in 100 directories';
    expect(byName[`ferry put -r vs scp -r, ${small}`]?.[1]).toBe(true);
    expect(byName[`ferry put -r vs rsync -a, ${small}`]?.[1]).toBe(false);
    expect(byName[`ferry get -r of 20 files of 20 MiB vs one file of the same bytes`]?.[1]).toBe(true);
    expect(byName[`ferry put -r of 20 files of 20 MiB vs one file of the same bytes`]?.[1]).toBe(false);
    expect(byName[`${small}, put -r, client peak RSS`]).toEqual([180, true]);
    expect(byName[`${small}, put -r, server peak RSS`]).toEqual([210, false]);
  });

  it('prints a table per tree and a clause in the verdict line', () => {
    const result = withTrees();
    const md = renderMarkdown(result);
    expect(md).toContain('## Tree: 10,000 files of 1–8 KiB in 100 directories (46.0 MB), 3 run(s) each way');
    const row = md.split('\n').find((l) => l.startsWith('| scp -r | put |'));
    expect(row).toMatch(/\| 5\.00 \(4\.90–5\.10\) \|.*\| 3\.13 \(3\.00–3\.27\) \| ✓ \|$/);
    expect(md.split('\n').find((l) => l.startsWith('| ferry, one file | get |'))).toMatch(/✓ \|$/);
    expect(verdictLine(result)).toContain(
      "tree of 10,000 files: ferry -r 3.13x / 2.39x scp -r's speed, 0.69x / 0.52x rsync -a's speed; " +
        'tree of 20 files: ferry -r 0.89x / 1.30x the speed of one file of the same bytes',
    );
  });
});
