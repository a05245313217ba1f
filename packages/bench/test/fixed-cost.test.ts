import { describe, expect, it } from 'vitest';
import { parseBenchArgs, SEED_FILE_BYTES } from '../src/args.js';
import { type BenchResult, RESULT_SCHEMA, targetChecks } from '../src/bench.js';
import {
  type FixedCostResult,
  type FixedCostRow,
  type FixedCostRun,
  summarizeFixedCost,
} from '../src/fixed-cost.js';
import { renderMarkdown, targetsVerdict, verdictLine } from '../src/report.js';

const ok = (...walls: number[]): FixedCostRun[] => walls.map((wallMs) => ({ wallMs, ok: true }));

function row(
  command: FixedCostRow['command'],
  build: FixedCostRow['build'],
  caCerts: boolean,
  runs: FixedCostRun[],
): FixedCostRow {
  return { command, ...(build ? { build } : {}), caCerts, runs };
}

/** A fixed-cost row as the bench records it: both builds, with and without the CA file. */
function fixedCost(withBaseline: boolean): FixedCostResult {
  const rows: FixedCostRow[] = [
    // stat: this build 50/60/40 ms against 100 ms each round → 0.5, 0.6, 0.4: median 0.5 (met).
    row('stat', 'this', true, ok(50, 60, 40)),
    row('stat', 'this', false, ok(20, 20, 20)),
    // get: 90 ms against 100 ms → 0.9 (missed).
    row('get', 'this', true, ok(90, 90, 90)),
    row('get', 'this', false, ok(45, 45, 45)),
    row('node', undefined, true, ok(52, 50, 55)),
    row('node', undefined, false, ok(17, 18, 16)),
  ];
  if (withBaseline)
    rows.push(
      row('stat', 'baseline', true, ok(100, 100, 100)),
      row('stat', 'baseline', false, ok(40, 40, 40)),
      row('get', 'baseline', true, ok(100, 100, 100)),
      row('get', 'baseline', false, ok(50, 50, 50)),
    );
  const summarized = summarizeFixedCost(rows);
  return {
    caFile: '/etc/ssl/certs/ca-certificates.crt',
    caCertificates: 144,
    ferry: '/build/ferry.js',
    ferryServer: '/build/ferry-server.js',
    ...(withBaseline
      ? { baseline: { ferry: '/old/ferry.js', ferryServer: '/old/ferry-server.js' } }
      : { ratioNotMeasured: 'no baseline build given (--baseline-ferry PATH)' }),
    runs: 3,
    warmup: 1,
    ...summarized,
  };
}

/** A `--fixed-cost` run: that row alone. */
function fixedCostRun(f: FixedCostResult): BenchResult {
  const { help: _help, ...options } = parseBenchArgs(['--fixed-cost', '--runs', '3']);
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
    loopback: [],
    scenarios: [],
    fixedCost: f,
    targets: [],
    failures: [],
    durationSeconds: 5,
  };
  result.targets = targetChecks(result);
  return result;
}

describe('bench fixed-cost row', () => {
  it('pairs each run of this build with the baseline run of the same round, and skips failed runs', () => {
    const { rows, ratios } = summarizeFixedCost([
      row('stat', 'this', true, [
        { wallMs: 50, ok: true },
        { wallMs: 10, ok: false, error: 'exit 8' },
        { wallMs: 80, ok: true },
        { wallMs: 30, ok: true },
      ]),
      row('stat', 'baseline', true, [
        { wallMs: 100, ok: true },
        { wallMs: 100, ok: true },
        { wallMs: 5000, ok: false, error: 'timed out' },
        { wallMs: 100, ok: true },
      ]),
    ]);
    // Medians of the successful runs only: 30/50/80 → 50; 100/100/100 → 100.
    expect(rows.find((r) => r.build === 'this')?.wallMs).toMatchObject({
      median: 50,
      min: 30,
      max: 80,
      n: 3,
    });
    expect(rows.find((r) => r.build === 'baseline')?.wallMs).toMatchObject({ median: 100, n: 3 });
    // Rounds 1 and 4 have both: 0.5 and 0.3.
    expect(ratios).toEqual([
      {
        command: 'stat',
        caCerts: true,
        ratio: expect.objectContaining({ median: 0.4, min: 0.3, max: 0.5, n: 2 }),
      },
    ]);
  });

  it('judges this build against ≤ 0.50× the baseline in the bench’s own environment (with the CA file)', () => {
    const result = fixedCostRun(fixedCost(true));
    const checks = result.targets.filter((t) => t.name.startsWith('fixed cost'));
    expect(checks.map((t) => [t.value, t.met])).toEqual([
      [0.5, true],
      [0.9, false],
    ]);
    const lines = renderMarkdown(result).split('\n');
    // The CA file's cost is the difference of the medians; the ratios without it are shown beside.
    expect(lines).toContain('| ferry stat | this build | 50 (40–60) | 20 | 30 |');
    expect(lines).toContain('| node -e 0 |  | 52 (50–55) | 17 (16–18) | 35 |');
    expect(lines.find((l) => l.startsWith('| ferry stat | 0.50'))).toBe(
      '| ferry stat | 0.50 (0.40–0.60) | 0.50 | ✓ |',
    );
    expect(lines.find((l) => l.startsWith('| ferry get, 1 byte | 0.90'))).toBe(
      '| ferry get, 1 byte | 0.90 | 0.90 | ✗ |',
    );
    expect(verdictLine(result)).toBe(
      "verdict: fixed cost: ferry stat 50 ms, 1-byte get 90 ms; 0.50x / 0.90x the baseline's (target 0.50x: 1 of 2 met)",
    );
  });

  it('shows the figures without a baseline and says the ratio was not measured', () => {
    const result = fixedCostRun(fixedCost(false));
    const md = renderMarkdown(result);
    expect(md).toContain('| ferry get, 1 byte | this build | 90 | 45 | 45 |');
    expect(md).toContain('this ÷ baseline: not measured (no baseline build given (--baseline-ferry PATH)).');
    expect(md).not.toContain('## Loopback');
    expect(result.targets.filter((t) => t.name.startsWith('fixed cost')).map((t) => t.met)).toEqual([
      undefined,
      undefined,
    ]);
    expect(targetsVerdict(result)).toContain('not measured: fixed cost: ferry stat');
    expect(verdictLine(result)).toBe(
      'verdict: fixed cost: ferry stat 50 ms, 1-byte get 90 ms; ratio to a baseline not measured',
    );
  });

  it('judges the only environment there is when NODE_EXTRA_CA_CERTS is not set', () => {
    const f = fixedCost(true);
    const { caFile: _ca, caCertificates: _n, ...rest } = f;
    const noCa: FixedCostResult = {
      ...rest,
      ...summarizeFixedCost(f.rows.filter((r) => !r.caCerts)),
    };
    const result = fixedCostRun(noCa);
    // stat 20 vs 40 → 0.5; get 45 vs 50 → 0.9.
    expect(result.targets.filter((t) => t.name.startsWith('fixed cost')).map((t) => t.value)).toEqual([
      0.5, 0.9,
    ]);
    const md = renderMarkdown(result);
    expect(md).toContain('| ferry stat | this build | 20 |');
    expect(md).toContain('NODE_EXTRA_CA_CERTS was not set: one environment only.');
  });
});

describe('bench fixed-cost arguments', () => {
  it('--fixed-cost runs that row alone; --full includes it unless --skip-fixed-cost', () => {
    const alone = parseBenchArgs(['--fixed-cost']);
    expect(alone).toMatchObject({
      mode: 'fixed-cost',
      fixedCost: true,
      peers: [],
      trees: false,
      memory: false,
      busy: false,
      seedCompat: false,
      scenarios: [],
      skipAlgorithms: true,
      skipCrypto: true,
    });
    expect(parseBenchArgs([]).fixedCost).toBe(false);
    expect(parseBenchArgs(['--full']).fixedCost).toBe(true);
    expect(parseBenchArgs(['--full', '--skip-fixed-cost']).fixedCost).toBe(false);
    expect(parseBenchArgs(['--full', '--fixed-cost']).mode).toBe('full');
    expect(
      parseBenchArgs([
        '--fixed-cost',
        '--baseline-ferry',
        'old/ferry.js',
        '--baseline-ferry-server',
        'old/s.js',
      ]),
    ).toMatchObject({ baselineFerry: 'old/ferry.js', baselineServer: 'old/s.js' });
  });

  it('refuses a baseline server without its client, and other rows beside --fixed-cost alone', () => {
    expect(() => parseBenchArgs(['--fixed-cost', '--baseline-ferry-server', 's.js'])).toThrow(
      /--baseline-ferry-server needs --baseline-ferry/,
    );
    expect(() => parseBenchArgs(['--fixed-cost', '--quick'])).toThrow(/exclude each other/);
    expect(() => parseBenchArgs(['--fixed-cost', '--trees'])).toThrow(/leave out --trees/);
    expect(() => parseBenchArgs(['--fixed-cost', '--save-reference'])).toThrow(/no reference/);
  });
});
