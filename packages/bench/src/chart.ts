/**
 * A hand-written SVG of a result: loopback throughput per configuration (block size, window) beside
 * the seed's figure, and goodput per impairment scenario as a share of the link rate.
 */
import type { BenchResult } from './bench.js';
import { formatFileSize } from './report.js';
import { describeLink } from './scenarios.js';

const WIDTH = 1140;
const LABEL_WIDTH = 330;
const PLOT_WIDTH = 470;
const BAR = 16;
const GAP = 4;
const GROUP_GAP = 14;
const COLOURS = { put: '#2f6db5', get: '#e0892b', seed: '#8a8a8a', track: '#e9edf2', target: '#c62828' };
const FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"';

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function text(x: number, y: number, content: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(content)}</text>`;
}

/** A round axis maximum and step above `max`: 1, 2 or 5 times a power of ten. */
export function niceAxis(max: number, ticks = 5): { max: number; step: number } {
  if (!(max > 0)) return { max: 1, step: 0.2 };
  const raw = max / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  return { max: Math.ceil(max / step) * step, step };
}

interface Bar {
  label: string;
  sublabel?: string;
  op: 'put' | 'get' | 'seed';
  value: number | undefined;
  min?: number;
  max?: number;
  valueText: string;
  failed?: boolean;
}

function legend(x: number, y: number): string {
  const items: [string, string][] = [
    ['put (client → server)', COLOURS.put],
    ['get (server → client)', COLOURS.get],
  ];
  return items
    .map(
      ([label, colour], i) =>
        `<rect x="${x + i * 200}" y="${y - 11}" width="14" height="14" fill="${colour}"/>` +
        text(x + i * 200 + 20, y, label, 'font-size="13" fill="#333"'),
    )
    .join('');
}

function throughputPanel(result: BenchResult, top: number): { svg: string; height: number } {
  const parts: string[] = [];
  const groups: Bar[][] = [];
  for (const c of result.loopback) {
    groups.push(
      (['put', 'get'] as const).map((op) => {
        const s = c[op].mbps;
        const bar: Bar = {
          label: op === 'put' ? c.label : '',
          op,
          value: s?.median,
          valueText: s ? `${s.median.toFixed(s.median >= 100 ? 0 : 1)} MB/s` : 'failed',
          failed: !c[op].ok,
        };
        if (op === 'put')
          bar.sublabel = `${formatFileSize(c.fileBytes)}${c.window === 1 ? ', stop-and-wait' : ''}`;
        if (s && s.n > 1) {
          bar.min = s.min;
          bar.max = s.max;
        }
        return bar;
      }),
    );
  }
  for (const p of result.peers ?? []) {
    groups.push(
      (['put', 'get'] as const).map((op) => {
        const s = p[op].mbps;
        const bar: Bar = {
          label: op === 'put' ? p.tool : '',
          op,
          value: p.notRun === undefined ? s?.median : undefined,
          valueText:
            p.notRun !== undefined
              ? `not run: ${p.notRun}`
              : s
                ? `${s.median.toFixed(s.median >= 100 ? 0 : 1)} MB/s`
                : 'failed',
          failed: p.notRun === undefined && !p[op].ok,
        };
        if (op === 'put') bar.sublabel = `${formatFileSize(p.fileBytes)}, over sshd on 127.0.0.1`;
        if (p.notRun === undefined && s && s.n > 1) {
          bar.min = s.min;
          bar.max = s.max;
        }
        return bar;
      }),
    );
  }
  groups.push([
    {
      label: 'seed (published)',
      sublabel: 'Python, stop-and-wait',
      op: 'seed',
      value: result.seed.mbps,
      valueText: `${result.seed.mbps} MB/s`,
    },
  ]);
  const all = groups.flat();
  const largest = Math.max(150, ...all.map((b) => b.max ?? b.value ?? 0));
  const axis = niceAxis(largest * 1.05);
  const x0 = LABEL_WIDTH;
  const scale = (v: number) => x0 + (v / axis.max) * PLOT_WIDTH;
  parts.push(
    text(
      20,
      top + 22,
      'Loopback throughput by configuration and beside scp / sftp (median, MB/s = 10^6 bytes/s)',
      'font-size="17" font-weight="bold" fill="#111"',
    ),
  );
  parts.push(
    text(
      20,
      top + 42,
      `${result.options.runs} run(s) each way; whiskers: min–max; client process wall time, both processes on this machine`,
      'font-size="12" fill="#555"',
    ),
  );
  parts.push(legend(x0, top + 66));
  const plotTop = top + 84;
  let y = plotTop;
  const rowsSvg: string[] = [];
  for (const group of groups) {
    for (const bar of group) {
      if (bar.label)
        rowsSvg.push(text(x0 - 10, y + 12, bar.label, 'font-size="13" text-anchor="end" fill="#111"'));
      if (bar.sublabel)
        rowsSvg.push(
          text(x0 - 10, y + 12 + 15, bar.sublabel, 'font-size="11" text-anchor="end" fill="#666"'),
        );
      if (bar.value !== undefined) {
        const w = Math.max(1, scale(bar.value) - x0);
        rowsSvg.push(
          `<rect x="${x0}" y="${y}" width="${w.toFixed(1)}" height="${BAR}" fill="${COLOURS[bar.op]}"/>`,
        );
        if (bar.min !== undefined && bar.max !== undefined) {
          const a = scale(bar.min);
          const b = scale(bar.max);
          const mid = y + BAR / 2;
          rowsSvg.push(
            `<path d="M${a.toFixed(1)} ${mid}H${b.toFixed(1)}M${a.toFixed(1)} ${mid - 4}V${mid + 4}M${b.toFixed(1)} ${mid - 4}V${mid + 4}" stroke="#222" stroke-width="1.2" fill="none"/>`,
          );
        }
      }
      const end = bar.value !== undefined ? Math.max(scale(bar.max ?? bar.value), scale(bar.value)) : x0;
      rowsSvg.push(
        text(
          end + 6,
          y + 12.5,
          bar.failed ? `${bar.valueText} (FAILED RUNS)` : bar.valueText,
          `font-size="12" fill="${bar.failed ? COLOURS.target : '#222'}"`,
        ),
      );
      y += BAR + GAP;
    }
    y += GROUP_GAP;
  }
  const plotBottom = y - GROUP_GAP;
  // Grid and axis first, so bars draw over them.
  const grid: string[] = [];
  for (let v = 0; v <= axis.max + 1e-9; v += axis.step) {
    const x = scale(v);
    grid.push(
      `<line x1="${x.toFixed(1)}" y1="${plotTop - 4}" x2="${x.toFixed(1)}" y2="${plotBottom}" stroke="#ddd"/>`,
    );
    grid.push(
      text(x, plotBottom + 16, String(+v.toFixed(6)), 'font-size="11" text-anchor="middle" fill="#555"'),
    );
  }
  for (const [value, label] of [
    [150, 'target 150 (default)'],
    [50, 'target 50 (1200-byte blocks)'],
  ] as const) {
    if (value > axis.max) continue;
    const x = scale(value);
    grid.push(
      `<line x1="${x.toFixed(1)}" y1="${plotTop - 4}" x2="${x.toFixed(1)}" y2="${plotBottom}" stroke="${COLOURS.target}" stroke-dasharray="5 4" stroke-width="1.3"/>`,
    );
    grid.push(text(x + 3, plotTop - 6, label, `font-size="11" fill="${COLOURS.target}"`));
  }
  grid.push(
    text(x0 + PLOT_WIDTH / 2, plotBottom + 34, 'MB/s', 'font-size="12" text-anchor="middle" fill="#333"'),
  );
  parts.push(...grid, ...rowsSvg);
  return { svg: parts.join('\n'), height: plotBottom + 44 - top };
}

function formatRate(bits: number): string {
  return bits >= 1e9 ? `${+(bits / 1e9).toFixed(2)} Gbit/s` : `${+(bits / 1e6).toFixed(1)} Mbit/s`;
}

function scenarioPanel(result: BenchResult, top: number): { svg: string; height: number } {
  const parts: string[] = [];
  const x0 = LABEL_WIDTH;
  const scale = (fraction: number) => x0 + Math.min(1, Math.max(0, fraction)) * PLOT_WIDTH;
  parts.push(
    text(
      20,
      top + 22,
      'Goodput on impaired links, as a share of the link rate (median)',
      'font-size="17" font-weight="bold" fill="#111"',
    ),
  );
  parts.push(
    text(
      20,
      top + 42,
      'grey track = link rate (100 %); black tick = framing ceiling (block / datagram bytes); red tick = target; dotted = plain UDP through the proxy alone',
      'font-size="12" fill="#555"',
    ),
  );
  parts.push(legend(x0, top + 66));
  const plotTop = top + 84;
  let y = plotTop;
  const rows: string[] = [];
  for (const s of result.scenarios) {
    const conditions = [
      s.loss > 0 ? `${+(s.loss * 100).toFixed(2)} % loss` : s.burstLoss ? '' : 'no loss',
      s.burstLoss ? 'bursty loss' : '',
      s.jitterMs ? `±${s.jitterMs} ms jitter` : '',
      s.reorder ? 'reorder' : '',
      s.duplicate ? 'duplication' : '',
    ]
      .filter(Boolean)
      .join(', ');
    for (const op of ['put', 'get'] as const) {
      const d = s[op];
      if (op === 'put') {
        rows.push(text(x0 - 10, y + 12, s.name, 'font-size="13" text-anchor="end" fill="#111"'));
        rows.push(text(x0 - 10, y + 26, describeLink(s), 'font-size="11" text-anchor="end" fill="#666"'));
        rows.push(text(x0 - 10, y + 39, conditions, 'font-size="11" text-anchor="end" fill="#666"'));
      }
      rows.push(`<rect x="${x0}" y="${y}" width="${PLOT_WIDTH}" height="${BAR}" fill="${COLOURS.track}"/>`);
      const f = d.fraction?.median;
      if (f !== undefined) {
        rows.push(
          `<rect x="${x0}" y="${y}" width="${Math.max(1, scale(f) - x0).toFixed(1)}" height="${BAR}" fill="${COLOURS[op]}"/>`,
        );
      }
      const cx = scale(s.ceiling);
      rows.push(
        `<line x1="${cx.toFixed(1)}" y1="${y - 2}" x2="${cx.toFixed(1)}" y2="${y + BAR + 2}" stroke="#111" stroke-width="2"/>`,
      );
      if (s.proxyCapacity && op === 'put') {
        const px = scale(s.proxyCapacity.fraction);
        rows.push(
          `<line x1="${px.toFixed(1)}" y1="${y - 3}" x2="${px.toFixed(1)}" y2="${y + 2 * BAR + GAP + 3}" stroke="#777" stroke-width="2" stroke-dasharray="3 2"/>`,
        );
      }
      if (s.target !== undefined) {
        const tx = scale(s.target);
        rows.push(
          `<line x1="${tx.toFixed(1)}" y1="${y - 2}" x2="${tx.toFixed(1)}" y2="${y + BAR + 2}" stroke="${COLOURS.target}" stroke-width="2.5"/>`,
        );
      }
      const label =
        f !== undefined && d.goodputMbitps
          ? `${(f * 100).toFixed(0)} %${
              d.steadyFraction ? ` (steady ${(d.steadyFraction.median * 100).toFixed(0)} %)` : ''
            } — ${d.goodputMbitps.median.toFixed(1)} of ${formatRate(s.rateBitsPerSecond)}`
          : 'failed';
      rows.push(
        text(x0 + PLOT_WIDTH + 8, y + 12.5, label, `font-size="12" fill="${d.ok ? '#222' : COLOURS.target}"`),
      );
      y += BAR + GAP;
    }
    y += GROUP_GAP;
  }
  const plotBottom = y - GROUP_GAP;
  const grid: string[] = [];
  for (let p = 0; p <= 100; p += 20) {
    const x = scale(p / 100);
    grid.push(
      `<line x1="${x.toFixed(1)}" y1="${plotTop - 4}" x2="${x.toFixed(1)}" y2="${plotBottom}" stroke="#ddd"/>`,
    );
    grid.push(text(x, plotBottom + 16, `${p} %`, 'font-size="11" text-anchor="middle" fill="#555"'));
  }
  parts.push(...grid, ...rows);
  return { svg: parts.join('\n'), height: plotBottom + 30 - top };
}

/** The chart as a standalone SVG document. */
/** Whether a result has anything to draw: throughput or scenarios (a --fixed-cost run alone has neither). */
export function hasChart(result: BenchResult): boolean {
  return result.loopback.length > 0 || (result.peers ?? []).length > 0 || result.scenarios.length > 0;
}

export function renderSvg(result: BenchResult): string {
  const m = result.machine;
  const header = [
    text(20, 30, 'ferry bench', 'font-size="22" font-weight="bold" fill="#111"'),
    text(
      20,
      50,
      `${result.date.slice(0, 16).replace('T', ' ')} UTC · ${m.cpuCount} × ${m.cpuModel} · node ${m.node}${m.commit ? ` · ${m.commit}` : ''}${result.options.quick ? ' · --quick (smoke test)' : ''}${
        m.loadAverageStart > m.cpuCount * 0.5
          ? ` · MACHINE BUSY (load ${m.loadAverageStart.toFixed(1)}): figures low and noisy`
          : ''
      }`,
      'font-size="12" fill="#555"',
    ),
  ];
  const panels: string[] = [];
  let top = 64;
  const throughput = throughputPanel(result, top);
  panels.push(throughput.svg);
  top += throughput.height + 10;
  if (result.scenarios.length > 0) {
    const scenarios = scenarioPanel(result, top);
    panels.push(scenarios.svg);
    top += scenarios.height + 10;
  }
  const height = Math.ceil(top + 10);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ${FONT}>`,
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    ...header,
    ...panels,
    '</svg>',
    '',
  ].join('\n');
}
