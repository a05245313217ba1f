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
import { pairedSpeed } from '../src/namespace-link.js';
import { ISSUE_LINK } from '../src/netns.js';
import { formatFactor, renderMarkdown, targetsVerdict, verdictLine } from '../src/report.js';
import { pairedRatios } from '../src/seed-compat.js';
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

  it('reports the real-link scenario: % of link for ferry and scp, the paired ratio and a target of 1×', () => {
    const result = headlineResult();
    const bytes = 120 * 1024 * 1024;
    const ferry = { put: runs('put', bytes, [11, 12, 13]), get: runs('get', bytes, [12, 12, 12]) };
    const scp = { put: runs('put', bytes, [12, 12, 12]), get: runs('get', bytes, [11, 11, 11]) };
    const direction = (r: TransferRecord[]) => ({
      ...summarizeDirection(r),
      fraction: { median: 0.9, min: 0.9, max: 0.9, mean: 0.9, n: 3 },
    });
    result.namespaceLink = {
      link: ISSUE_LINK,
      fileBytes: bytes,
      runs: 3,
      tools: [
        { name: 'ferry', put: direction(ferry.put), get: direction(ferry.get) },
        { name: 'scp', put: direction(scp.put), get: direction(scp.get) },
      ],
      ferryVsScp: { put: pairedSpeed(ferry.put, scp.put)!, get: pairedSpeed(ferry.get, scp.get)! },
    };
    result.targets = targetChecks(result);
    const text = renderMarkdown(result);
    expect(text).toContain(
      '## Real link: two network namespaces, veth MTU 1500, tbf 100 Mbit/s, 1 % random drop',
    );
    const lines = text.slice(text.indexOf('## Real link')).split('\n');
    // put: 12/11, 12/12, 12/13 → median 1; get: 11/12 each.
    expect(lines.find((l) => l.startsWith('| ferry | put |'))).toMatch(/\| 1\.00 \(0\.92–1\.09\)× ✓ \|$/);
    expect(lines.find((l) => l.startsWith('|  | get |') && l.includes('×'))).toMatch(/0\.92× ✗ \|$/);
    expect(result.targets.filter((t) => t.name.startsWith('real 1500-MTU link')).map((t) => t.met)).toEqual([
      true,
      false,
    ]);
  });

  it('says why the real-link scenario did not run (not root, tools missing)', () => {
    const result = headlineResult();
    result.namespaceLink = {
      link: ISSUE_LINK,
      fileBytes: 1,
      runs: 1,
      tools: [],
      ferryVsScp: {},
      notRun: 'not root (network namespaces, tc and nftables need root)',
    };
    expect(renderMarkdown(result)).toContain(
      'not run: not root (network namespaces, tc and nftables need root)',
    );
    expect(targetChecks(result).some((t) => t.name.startsWith('real 1500-MTU link'))).toBe(false);
  });

  it('draws the peers in the chart, and says when one did not run', () => {
    const svg = renderSvg(headlineResult());
    expect(svg).toContain('>scp</text>');
    expect(svg).toContain('not run: sshd not installed');
  });
});
