import { LARGE_TREE_TARGET, PEER_TARGET_RATIO, TREE_TARGET_RATIO } from './args.js';
import {
  type BenchResult,
  CEILING_TARGET,
  type DirectionSummary,
  type ImpairedDirection,
  LARGE_PEER_TARGET_RATIO,
  type PeerResult,
  type TreeResult,
} from './bench.js';
import { FIXED_COST_TARGET_RATIO, type FixedCostResult, type FixedCostRow } from './fixed-cost.js';
import { describeLink } from './scenarios.js';
import type { SeedCompatResult } from './seed-compat.js';
import type { Summary } from './summary.js';

const MiB = 1024 * 1024;

export function formatFileSize(n: number): string {
  if (n >= MiB && n % MiB === 0)
    return n >= 1024 * MiB && n % (1024 * MiB) === 0 ? `${n / 1024 / MiB} GiB` : `${n / MiB} MiB`;
  return `${(n / 1e6).toFixed(1)} MB`;
}

/** A factor with two significant digits, fewer decimals as it grows: 0.54, 5.1, 74, 153. */
export function formatFactor(x: number): string {
  return Math.abs(x) >= 10 ? x.toFixed(0) : x.toPrecision(2);
}

/** "153 (148–160)": median, then min–max when there is more than one run. */
export function formatSummary(
  s: Summary | undefined,
  digits: number | ((x: number) => string),
  scale = 1,
): string {
  if (!s) return '–';
  const f = (x: number) => (typeof digits === 'number' ? (x * scale).toFixed(digits) : digits(x * scale));
  return s.n > 1 && s.min !== s.max ? `${f(s.median)} (${f(s.min)}–${f(s.max)})` : f(s.median);
}

function table(header: string[], rows: string[][]): string {
  const align = header.map((_, i) => (i === 0 ? ':--' : '--:'));
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(align), ...rows.map(line)].join('\n');
}

function failed(d: DirectionSummary): string | undefined {
  const bad = d.runs.filter((r) => !r.ok);
  if (bad.length === 0) return undefined;
  return bad.some((r) => r.failure === 'integrity') ? '**SHA-256 MISMATCH**' : `**${bad.length} failed**`;
}

function loopbackRows(result: BenchResult): string[][] {
  const rows: string[][] = [];
  for (const c of result.loopback) {
    for (const op of ['put', 'get'] as const) {
      const d = c[op];
      const bad = failed(d);
      rows.push([
        op === 'put' ? `${c.label}${c.note ? ` — ${c.note}` : ''}` : '',
        op,
        formatFileSize(c.fileBytes),
        formatSummary(d.wallSeconds, 2),
        c.fileBytes === result.seed.fileBytes ? '' : formatSummary(d.secondsPerSeedFile, 2),
        bad && !d.mbps ? bad : `${formatSummary(d.mbps, 1)}${bad ? ` ${bad}` : ''}`,
        formatSummary(d.speedup, formatFactor),
        formatSummary(d.transferMbps, 1),
        formatSummary(d.clientCpuSeconds, 2),
        formatSummary(d.clientPeakRssBytes, 0, 1e-6),
        formatSummary(d.serverCpuSeconds, 2),
        formatSummary(d.serverPeakRssBytes, 0, 1e-6),
      ]);
    }
  }
  return rows;
}

function pct(s: Summary | undefined, digits = 0): string {
  return formatSummary(s, digits, 100);
}

function scenarioRows(result: BenchResult): string[][] {
  const rows: string[][] = [];
  for (const s of result.scenarios) {
    for (const op of ['put', 'get'] as const) {
      const d: ImpairedDirection = s[op];
      const bad = failed(d);
      const target =
        s.target === undefined
          ? ''
          : `≥ ${(s.target * 100).toFixed(0)} %${
              d.fraction ? (d.fraction.median >= s.target ? ' ✓' : ' ✗') : ''
            }`;
      const conditions = [
        s.loss > 0 ? `${+(s.loss * 100).toFixed(2)} % loss` : s.burstLoss ? '' : 'no loss',
        s.burstLoss ? 'bursty loss' : '',
        s.jitterMs ? `±${s.jitterMs} ms jitter` : '',
        s.reorder ? `${s.reorder * 100} % reorder` : '',
        s.duplicate ? `${s.duplicate * 100} % dup` : '',
      ]
        .filter(Boolean)
        .join(', ');
      rows.push([
        op === 'put' ? s.name : '',
        op === 'put' ? `${describeLink(s)}, ${conditions}` : '',
        op === 'put' ? formatFileSize(s.fileBytes) : '',
        op,
        formatSummary(d.wallSeconds, 1),
        bad && !d.goodputMbitps ? bad : `${formatSummary(d.goodputMbitps, 1)}${bad ? ` ${bad}` : ''}`,
        pct(d.fraction),
        pct(d.steadyFraction),
        op === 'put' ? `${(s.ceiling * 100).toFixed(0)} %` : '',
        `${pct(d.retransmitFraction, 1)}${d.retransmitSource === 'proxy count' ? '*' : ''}`,
        pct(d.wireOverhead, 1),
        pct(d.dataLossObserved, 1),
        [d.clientCpuLoad, d.serverCpuLoad, d.proxyCpuLoad]
          .map((x) => (x ? x.median.toFixed(2) : '–'))
          .join(' / '),
        op === 'put' && s.proxyCapacity ? `${(s.proxyCapacity.fraction * 100).toFixed(0)} %` : '',
        target,
      ]);
    }
  }
  return rows;
}

/** The whole report for people: markdown tables and a few lines of explanation. */
export function renderMarkdown(result: BenchResult): string {
  const m = result.machine;
  const out: string[] = [];
  out.push(
    `# ferry bench — ${result.date}${result.options.quick ? ' (--quick: a smoke test, not a measurement)' : ''}`,
  );
  out.push('');
  out.push(
    `${m.os} ${m.release} ${m.arch}, ${m.cpuCount} × ${m.cpuModel}, ${(m.memoryBytes / 2 ** 30).toFixed(0)} GiB, ` +
      `node ${m.node}${m.commit ? `, commit ${m.commit}` : ''}. Client and server are separate processes on this machine.`,
  );
  // Only the start counts: by the end the bench's own processes are in the average.
  const busy = m.loadAverageStart;
  out.push('');
  out.push(
    `1-minute load average before the bench: ${m.loadAverageStart.toFixed(2)} (at the end, its own processes included: ${(m.loadAverageEnd ?? Number.NaN).toFixed(2)}).` +
      (busy > m.cpuCount * 0.5
        ? ' **Warning: the machine was busy with other work; these figures are low and noisy.**'
        : '') +
      (result.options.priority !== undefined
        ? ` Client, server, proxy and bench ran at nice ${result.options.priority}.`
        : ''),
  );
  if (result.loopback.length > 0) out.push('', ...loopbackSection(result));
  const peers = result.peers ?? [];
  if (peers.length > 0) out.push('', ...peersSection(result, peers));
  if (result.seedCompat) out.push('', ...seedCompatSection(result.seedCompat));
  for (const tree of result.trees ?? []) out.push('', ...treeSection(result, tree));
  if (result.scenarios.length > 0) {
    out.push('');
    out.push('## Impaired links (through the impairment proxy, a separate process)');
    out.push('');
    out.push(
      table(
        [
          'scenario',
          'link (each direction)',
          'file',
          'op',
          'seconds',
          'goodput Mbit/s',
          '% of link',
          'steady % of link',
          'framing ceiling',
          'retransmitted',
          'wire overhead',
          'data dropped',
          'CPU load client / server / proxy',
          'proxy alone',
          'target',
        ],
        scenarioRows(result),
      ),
    );
    out.push('');
    out.push(
      'goodput: file bits over the client’s transfer time. % of link: goodput / link rate (the rate counts ' +
        'UDP payload bytes). steady: the same between the progress events at 25 % and 90 % of the file (no ' +
        'handshake, start-up probing or tail). framing ceiling: block / datagram bytes, the best a link counting datagram bytes ' +
        'allows. retransmitted: blocks sent again / blocks sent (client stats for put; * = from the proxy’s ' +
        'datagram count for get). wire overhead: bytes the sender put on the link / file bytes − 1. data dropped: ' +
        'datagrams the link dropped (loss + full queue) / offered, data direction. Queue: one bandwidth-delay product, tail drop. ' +
        'CPU load: CPU seconds per wall second of each process (1.00 = one core busy). proxy alone: paced plain UDP ' +
        'through the same link without loss, as a share of the link: what the proxy itself carries on this machine.',
    );
  }
  if (result.crypto) {
    out.push('');
    out.push('## Crypto, one core (MB/s of plaintext)');
    out.push('');
    const rows: string[][] = [];
    const sizes = [...new Set(result.crypto.rows.map((r) => r.sizeBytes))];
    for (const size of sizes) {
      const ours = result.crypto.rows.find(
        (r) => r.sizeBytes === size && r.implementation === '@ferry/crypto',
      );
      const npm = result.crypto.rows.find((r) => r.sizeBytes === size && r.implementation === 'fernet (npm)');
      const f = (x: number | undefined) => (x === undefined ? '–' : x >= 10 ? x.toFixed(0) : x.toFixed(2));
      rows.push([
        `${size / 1024} KiB`,
        f(ours?.sealMBps),
        f(ours?.openMBps),
        f(npm?.sealMBps),
        f(npm?.openMBps),
        ours && npm
          ? `${(ours.sealMBps / npm.sealMBps).toFixed(0)}× / ${(ours.openMBps / npm.openMBps).toFixed(0)}×`
          : '–',
      ]);
    }
    out.push(
      table(
        [
          'plaintext',
          '@ferry/crypto seal',
          '@ferry/crypto open',
          `fernet ${result.crypto.fernetNpmVersion ?? ''} encode`,
          `fernet ${result.crypto.fernetNpmVersion ?? ''} decode`,
          'ferry / fernet',
        ],
        rows,
      ),
    );
    out.push('');
    out.push(result.crypto.note);
  }
  if (result.large) {
    out.push('');
    out.push(...largeSection(result.large));
  } else if (result.memory) {
    out.push('');
    out.push(`## Memory: ${formatFileSize(result.memory.fileBytes)} each way, default settings`);
    out.push('');
    const rows = (['put', 'get'] as const).map((op) => {
      const d = result.memory![op];
      return [
        op,
        failed(d) ?? formatSummary(d.mbps, 1),
        formatSummary(d.clientPeakRssBytes, 0, 1e-6),
        formatSummary(d.serverPeakRssBytes, 0, 1e-6),
      ];
    });
    out.push(table(['op', 'MB/s', 'client peak RSS MB', 'server peak RSS MB'], rows));
  }
  if (result.busy) {
    out.push('');
    out.push(...busySection(result.busy));
  }
  if (result.fixedCost) out.push('', ...fixedCostSection(result.fixedCost));
  if (result.targets.length > 0) {
    out.push('');
    out.push('## Targets (medians; reported, not asserted)');
    out.push('');
    out.push(
      table(
        ['what', 'target', 'measured', 'met'],
        result.targets.map((t) => [
          t.name,
          t.target,
          formatTargetValue(t),
          t.met === undefined ? '–' : t.met ? '✓' : '✗',
        ]),
      ),
    );
    out.push('');
    out.push(targetsVerdict(result));
  }
  out.push('');
  if (result.failures.length > 0) {
    out.push(`## FAILURES (${result.failures.length})`);
    out.push('');
    for (const f of result.failures) out.push(`- ${f.replace(/\n/g, '\n  ')}`);
  } else {
    out.push(`Every transfer verified by SHA-256. Total bench time ${result.durationSeconds.toFixed(0)} s.`);
  }
  return `${out.join('\n')}\n`;
}

/** The loopback table of ferry's configurations, and what its columns mean. */
function loopbackSection(result: BenchResult): string[] {
  const out: string[] = [];
  out.push(
    `## Loopback (127.0.0.1), ${result.options.runs} run(s) each way after ${result.options.warmup} warm-up; median (min–max)`,
  );
  out.push('');
  out.push(
    table(
      [
        'configuration',
        'op',
        'file',
        'seconds',
        `s per ${formatFileSize(result.seed.fileBytes)}`,
        'MB/s',
        `× seed (${result.seed.mbps} MB/s)`,
        'transfer MB/s',
        'client CPU s',
        'client peak RSS MB',
        'server CPU s',
        'server peak RSS MB',
      ],
      loopbackRows(result),
    ),
  );
  out.push('');
  out.push(
    'seconds and MB/s (10^6 bytes/s): the client process from start to exit (start-up, handshake, ' +
      `transfer, verification), as a person waits for it. s per ${formatFileSize(result.seed.fileBytes)}: the seconds of a ` +
      'smaller file scaled to the seed’s. transfer MB/s: the client’s own timing of the ' +
      'transfer alone. CPU s: user + system. Server figures are per run (a fresh server each run, start-up CPU excluded).',
  );
  return out;
}

const FIXED_COST_COMMANDS = {
  stat: 'ferry stat',
  get: 'ferry get, 1 byte',
  node: 'node -e 0',
} as const;

/** ms: whole, with the spread when there is one. */
function formatMs(row: FixedCostRow | undefined): string {
  if (!row) return '–';
  const bad = row.runs.filter((r) => !r.ok).length;
  return `${formatSummary(row.wallMs, 0)}${bad > 0 ? ` **${bad} failed**` : ''}`;
}

/** The fixed-cost row: each command per build and environment, the CA file's share, and the ratios. */
function fixedCostSection(f: FixedCostResult): string[] {
  const withCa = f.caFile !== undefined;
  const out = [
    `## Fixed cost per command: whole processes, spawn to exit, ${f.runs} run(s) each after ${f.warmup} warm-up; median (min–max) ms`,
    '',
  ];
  const rows: string[][] = [];
  const find = (command: FixedCostRow['command'], build: FixedCostRow['build'], caCerts: boolean) =>
    f.rows.find((r) => r.command === command && r.build === build && r.caCerts === caCerts);
  const keys: [FixedCostRow['command'], FixedCostRow['build']][] = [];
  for (const command of ['stat', 'get'] as const) {
    keys.push([command, 'this']);
    if (f.baseline) keys.push([command, 'baseline']);
  }
  keys.push(['node', undefined]);
  for (const [command, build] of keys) {
    const name = [
      FIXED_COST_COMMANDS[command],
      build === undefined ? '' : build === 'this' ? 'this build' : 'baseline',
    ];
    if (!withCa) {
      rows.push([...name, formatMs(find(command, build, false))]);
      continue;
    }
    const a = find(command, build, true);
    const b = find(command, build, false);
    const cost = a?.wallMs && b?.wallMs ? (a.wallMs.median - b.wallMs.median).toFixed(0) : '–';
    rows.push([...name, formatMs(a), formatMs(b), cost]);
  }
  out.push(
    table(
      withCa
        ? ['command', 'build', 'with NODE_EXTRA_CA_CERTS', 'without', 'the CA file costs (ms, medians)']
        : ['command', 'build', 'ms'],
      rows,
    ),
  );
  out.push('');
  if (f.baseline) {
    const ratioRows = (['stat', 'get'] as const).map((command) => {
      const ratio = (caCerts: boolean) =>
        f.ratios.find((r) => r.command === command && r.caCerts === caCerts)?.ratio;
      const judged = ratio(withCa);
      const mark = judged ? (judged.median <= FIXED_COST_TARGET_RATIO ? '✓' : '✗') : '–';
      return withCa
        ? [FIXED_COST_COMMANDS[command], formatSummary(ratio(true), 2), formatSummary(ratio(false), 2), mark]
        : [FIXED_COST_COMMANDS[command], formatSummary(ratio(false), 2), mark];
    });
    const target = `≤ ${FIXED_COST_TARGET_RATIO.toFixed(2)}×`;
    out.push(
      table(
        withCa
          ? ['command', 'this ÷ baseline (paired runs)', 'without NODE_EXTRA_CA_CERTS', target]
          : ['command', 'this ÷ baseline (paired runs)', target],
        ratioRows,
      ),
    );
    out.push('');
  } else {
    out.push(`this ÷ baseline: not measured (${f.ratioNotMeasured ?? 'no baseline build'}).`);
    out.push('');
  }
  out.push(
    'One ferry-server per build serves a 1-byte file for the whole row; each command is a fresh `node BIN …` ' +
      'process, timed by the bench from spawn to exit: Node start-up, loading the CLI, handshake, request. ' +
      'Each round runs every command of every build in turn, in both environments, then `node -e 0` (the floor ' +
      'of any Node program). ferry’s code cache lives in a cache directory of the bench’s, filled by the warm-up. ' +
      (withCa
        ? `NODE_EXTRA_CA_CERTS=${f.caFile}${f.caCertificates !== undefined ? ` (${f.caCertificates} certificates)` : ''} is the bench’s own environment; “without” removes it. `
        : 'NODE_EXTRA_CA_CERTS was not set: one environment only. ') +
      'this ÷ baseline: per round, this build’s wall time / the baseline’s; the target is judged in the bench’s own environment. ' +
      `this build: ${f.ferry} (server ${f.ferryServer})` +
      (f.baseline ? `; baseline: ${f.baseline.ferry} (server ${f.baseline.ferryServer}).` : '.'),
  );
  return out;
}

function formatTargetValue(t: BenchResult['targets'][number]): string {
  if (t.value === undefined) return '–';
  if (t.unit === '×') return `${t.value.toFixed(2)}×`;
  if (t.unit === 'timeouts') return `${t.value} ${t.value === 1 ? 'timeout' : 'timeouts'}`;
  return `${t.value.toFixed(t.unit === '%' ? 0 : 1)} ${t.unit}`;
}

/** One line under the targets table: how many were met, and which were missed (with the figure). */
export function targetsVerdict(result: BenchResult): string {
  const measured = result.targets.filter((t) => t.met !== undefined);
  const missed = measured.filter((t) => !t.met);
  const unmeasured = result.targets.filter((t) => t.met === undefined);
  const parts = [`**${measured.length - missed.length} of ${result.targets.length} targets met**`];
  if (missed.length > 0)
    parts.push(`missed: ${missed.map((t) => `${t.name} (${formatTargetValue(t)})`).join('; ')}`);
  if (unmeasured.length > 0) parts.push(`not measured: ${unmeasured.map((t) => t.name).join('; ')}`);
  return `${parts.join('. ')}.`;
}

function peersSection(result: BenchResult, peers: readonly PeerResult[]): string[] {
  const ferry = result.loopback.find((c) => c.id === 'default');
  const rows: string[][] = [];
  for (const op of ['put', 'get'] as const) {
    if (ferry) {
      const d = ferry[op];
      const bad = failed(d);
      rows.push([
        'ferry',
        op,
        formatFileSize(ferry.fileBytes),
        formatSummary(d.wallSeconds, 2),
        bad && !d.mbps ? bad : `${formatSummary(d.mbps, 1)}${bad ? ` ${bad}` : ''}`,
        formatSummary(d.speedup, formatFactor),
        '',
        '',
      ]);
    }
    for (const p of peers) {
      if (p.notRun !== undefined) {
        rows.push([p.tool, op, formatFileSize(p.fileBytes), `not run: ${p.notRun}`, '–', '–', '–', '']);
        continue;
      }
      const d = p[op];
      const bad = failed(d);
      const ratio = d.ferryRatio;
      rows.push([
        p.tool,
        op,
        formatFileSize(p.fileBytes),
        formatSummary(d.wallSeconds, 2),
        bad && !d.mbps ? bad : `${formatSummary(d.mbps, 1)}${bad ? ` ${bad}` : ''}`,
        formatSummary(d.speedup, formatFactor),
        formatSummary(ratio, 2),
        ratio ? (ratio.median >= PEER_TARGET_RATIO ? '✓' : '✗') : '–',
      ]);
    }
  }
  const versions = [...new Set(peers.flatMap((p) => (p.version ? [p.version] : [])))];
  return [
    `## Peers: the same file over a throwaway sshd on 127.0.0.1, runs interleaved with ferry's; median (min–max)`,
    '',
    table(
      [
        'tool',
        'op',
        'file',
        'seconds',
        'MB/s',
        '× seed',
        'ferry’s speed ÷ tool’s (paired runs)',
        `ferry ≥ ${PEER_TARGET_RATIO}×`,
      ],
      rows,
    ),
    '',
    'Each tool runs as a user runs it (one process per transfer, default ciphers and options, a throwaway ' +
      'ed25519 key; scp from OpenSSH 9.0 on speaks the SFTP protocol), timed from spawn to exit like ' +
      'ferry, and every file that arrived is checked by SHA-256. Each round runs ferry, then each tool, ' +
      'put then get, so load drift hits all alike; ferry ÷ tool: the tool’s seconds / ferry’s in the ' +
      `same round (above 1: ferry is faster), median (min–max) over the rounds.${
        versions.length > 0 ? ` Versions: ${versions.join('; ')}.` : ''
      }`,
  ];
}

function largeSection(large: NonNullable<BenchResult['large']>): string[] {
  const rows: string[][] = [];
  for (const op of ['put', 'get'] as const) {
    const d = large[op];
    const bad = failed(d);
    const fraction = d.ceilingFraction;
    const scp = large.scp.notRun === undefined ? large.scp[op] : undefined;
    const ratio = scp?.ferryRatio;
    rows.push([
      op,
      bad && !d.transferMbps ? bad : `${formatSummary(d.transferMbps, 1)}${bad ? ` ${bad}` : ''}`,
      formatSummary(d.wallSeconds, 2),
      fraction
        ? `${formatSummary(fraction, 0, 100)} %${fraction.median >= CEILING_TARGET ? ' ✓' : ' ✗'}`
        : '–',
      large.scp.notRun !== undefined ? `not run: ${large.scp.notRun}` : formatSummary(scp?.mbps, 1),
      ratio ? `${formatSummary(ratio, 2)}${ratio.median >= LARGE_PEER_TARGET_RATIO ? ' ✓' : ' ✗'}` : '–',
      formatSummary(d.clientPeakRssBytes, 0, 1e-6),
      formatSummary(d.serverPeakRssBytes, 0, 1e-6),
    ]);
  }
  return [
    `## Large file: ${formatFileSize(large.fileBytes)} each way, ferry beside scp and the one-core ceiling`,
    '',
    table(
      [
        'op',
        'ferry transfer MB/s',
        'ferry seconds',
        `of the ceiling (≥ ${CEILING_TARGET * 100} %)`,
        'scp MB/s',
        `ferry ÷ scp (≥ ${LARGE_PEER_TARGET_RATIO}×)`,
        'client peak RSS MB',
        'server peak RSS MB',
      ],
      rows,
    ),
    '',
    `The ceiling: 64,512-byte blocks sealed into Fernet tokens as DATA packets and hashed with SHA-256, in ` +
      `one loop on one core (the least a sender does per byte besides reading and sending), for 1 s right ` +
      `before each ferry run: ${formatSummary(large.ceilingMbps, 0)} MB/s. ferry's transfer MB/s is its own ` +
      'timing of the transfer (request to verified end); ferry ÷ scp compares whole commands (spawn to ' +
      'exit), runs interleaved.',
  ];
}

function busySection(busy: NonNullable<BenchResult['busy']>): string[] {
  const rows: string[][] = [];
  for (const op of ['put', 'get'] as const) {
    const d = busy.ferry[op];
    const bad = failed(d);
    const timeouts = busy.rtoCount[op];
    rows.push([
      'ferry',
      op,
      formatSummary(d.wallSeconds, 2),
      bad && !d.mbps ? bad : `${formatSummary(d.mbps, 1)}${bad ? ` ${bad}` : ''}`,
      '',
      timeouts === undefined ? '–' : `${timeouts}${timeouts === 0 ? ' ✓' : ' ✗'}`,
    ]);
    for (const p of busy.peers) {
      if (p.notRun !== undefined) {
        rows.push([p.tool, op, `not run: ${p.notRun}`, '–', '–', '']);
        continue;
      }
      const pd = p[op];
      const ratio = pd.ferryRatio;
      rows.push([
        p.tool,
        op,
        formatSummary(pd.wallSeconds, 2),
        failed(pd) ?? formatSummary(pd.mbps, 1),
        ratio ? `${formatSummary(ratio, 2)}${ratio.median >= 1 ? ' ✓' : ' ✗'}` : '–',
        '',
      ]);
    }
  }
  return [
    `## Busy machine: ${busy.hogs} CPU-bound processes beside ${formatFileSize(busy.fileBytes)} transfers; median (min–max)`,
    '',
    table(['tool', 'op', 'seconds', 'MB/s', 'ferry ÷ tool (≥ 1×)', 'ferry timeouts (0)'], rows),
    '',
    `${busy.hogs} processes each run an endless loop, at the priority of the transfers, from the first run ` +
      'to the last, then are killed. ferry timeouts: retransmission (probe) timeouts of client and server, ' +
      "summed over the measured runs (from each side's session counters): on loopback nothing is lost, " +
      'so each one is a peer that was only descheduled.',
  ];
}

function seedCompatSection(s: SeedCompatResult): string[] {
  const head = `## The seed's client: ferry-server --seed-compat beside the seed's server (reimplemented), ${formatFileSize(s.fileBytes)}; median (min–max)`;
  if (s.notRun !== undefined) return [head, '', `Not run: ${s.notRun}.`];
  const rows: string[][] = [];
  for (const op of ['put', 'get'] as const) {
    for (const [server, d] of [
      ["the seed's server (reimplemented)", s.reference[op]],
      ['ferry-server --seed-compat', s.ferry[op]],
    ] as const) {
      const bad = failed(d);
      const ferry = server.startsWith('ferry');
      const ratio = s.ratio[op];
      rows.push([
        server,
        op,
        bad && !d.transferMbps ? bad : `${formatSummary(d.transferMbps, 1)}${bad ? ` ${bad}` : ''}`,
        formatSummary(d.wallSeconds, 2),
        ferry ? formatSummary(ratio, 2) : '',
        ferry ? (ratio ? (ratio.median >= 1 ? '✓' : '✗') : '–') : '',
      ]);
    }
  }
  return [
    head,
    '',
    table(
      ['server', 'op', 'MB/s', 'client process s', 'ferry ÷ seed server (paired runs)', 'ferry ≥ 1×'],
      rows,
    ),
    '',
    "The client is ferry's test client of the seed's protocol (Python, `cryptography`'s Fernet, the seed's key, " +
      "stop-and-wait, one process per transfer), the same for both servers. The seed's code is not in this " +
      'repository: its server is reimplemented from the description of its wire format ' +
      '(packages/bench/python/seed_reference_server.py). MB/s: the client’s own timing of the transfer; client ' +
      'process s: its start to exit. Each round runs both servers, put then get, a fresh server each run; ' +
      'ferry ÷ seed server: the seed server’s transfer seconds / ferry’s in the same round.',
  ];
}

function treeSection(result: BenchResult, tree: TreeResult): string[] {
  const rows: string[][] = [];
  const oneFileRow = tree.contenders.some((c) => c.tool === 'ferry, one file');
  for (const op of ['put', 'get'] as const) {
    for (const c of tree.contenders) {
      const name =
        c.tool === 'ferry'
          ? `ferry ${op} -r`
          : c.tool === 'scp'
            ? 'scp -r'
            : c.tool === 'rsync'
              ? 'rsync -a'
              : c.tool;
      if (c.notRun !== undefined) {
        rows.push([name, op, `not run: ${c.notRun}`, '–', '–', '–', '–', '–', '']);
        continue;
      }
      const d = c[op];
      const bad = failed(d);
      const filesPerSecond =
        d.wallSeconds && c.tool !== 'ferry, one file' ? (tree.files / d.wallSeconds.median).toFixed(0) : '';
      const ratio = d.ferryRatio;
      const min = c.tool === 'ferry, one file' ? LARGE_TREE_TARGET : TREE_TARGET_RATIO;
      rows.push([
        name,
        op,
        formatSummary(d.wallSeconds, 2),
        bad && !d.mbps ? bad : `${formatSummary(d.mbps, 1)}${bad ? ` ${bad}` : ''}`,
        filesPerSecond,
        c.tool === 'ferry' ? formatSummary(d.clientPeakRssBytes, 0, 1e-6) : '',
        c.tool === 'ferry' ? formatSummary(d.serverPeakRssBytes, 0, 1e-6) : '',
        c.tool === 'ferry' ? '' : formatSummary(ratio, 2),
        c.tool === 'ferry' || !ratio ? '' : ratio.median >= min ? '✓' : '✗',
      ]);
    }
  }
  const versions = [...new Set(tree.contenders.flatMap((c) => (c.version ? [c.version] : [])))];
  return [
    `## Tree: ${tree.label} (${formatFileSize(tree.bytes)}), ${result.options.treeRuns} run(s) each way after ${result.options.warmup} warm-up, interleaved; median (min–max)`,
    '',
    table(
      [
        'command',
        'op',
        'seconds',
        'MB/s',
        'files/s',
        'client peak RSS MB',
        'server peak RSS MB',
        oneFileRow ? 'ferry -r’s speed ÷ its (paired runs)' : 'ferry’s speed ÷ tool’s (paired runs)',
        oneFileRow ? `≥ ${LARGE_TREE_TARGET}×` : `ferry ≥ ${TREE_TARGET_RATIO}×`,
      ],
      rows,
    ),
    '',
    oneFileRow
      ? 'ferry put -r / get -r of the tree beside ferry moving the same bytes as one file (a fresh server each run); ' +
        'the ratio is the file’s seconds / the tree’s in the same round (the target: within 10 % of the single-file speed). ' +
        'Every file that arrived is checked against the source.'
      : 'Whole commands, timed from spawn to exit: `ferry put -r HOST TREE DEST` / `ferry get -r HOST TREE DEST` (a fresh ' +
        'server each run), `scp -q -r TREE host:DIR/` and `rsync -a TREE host:DIR/` (and back) over the throwaway sshd. ' +
        'Every file that arrived is checked against the source (paths and SHA-256), then the copy is removed. ' +
        `ferry ÷ tool: the tool’s seconds / ferry’s in the same round.${versions.length > 0 ? ` Versions: ${versions.join('; ')}.` : ''}`,
  ];
}

/**
 * The run in one line: ferry against the seed's published figure, and against each peer that ran,
 * e.g. "verdict: ferry put 75x / get 73x the seed's 1.86 MB/s; 1.21x / 0.95x scp's speed, ...".
 */
export function verdictLine(result: BenchResult): string {
  const def = result.loopback.find((c) => c.id === 'default');
  const factor = (x: number | undefined) => (x === undefined ? 'FAILED' : `${formatFactor(x)}x`);
  const parts: string[] = [];
  if (def)
    parts.push(
      `ferry put ${factor(def.put.speedup?.median)} / get ${factor(def.get.speedup?.median)} the seed's ` +
        `${result.seed.mbps} MB/s (56 MB in 30 s)`,
    );
  else if (result.fixedCost === undefined) parts.push('ferry not run');
  const peers = result.peers ?? [];
  const ran = peers.filter((p) => p.notRun === undefined);
  const ratio = (x: number | undefined) => (x === undefined ? 'FAILED' : `${x.toFixed(2)}x`);
  if (ran.length > 0) {
    const met = ran
      .flatMap((p) => [p.put, p.get])
      .filter((d) => (d.ferryRatio?.median ?? 0) >= PEER_TARGET_RATIO);
    parts.push(
      `${ran
        .map(
          (p, i) =>
            `${ratio(p.put.ferryRatio?.median)} / ${ratio(p.get.ferryRatio?.median)} ${p.tool}'s${i === 0 ? ' speed' : ''}`,
        )
        .join(', ')} (target ${PEER_TARGET_RATIO}x: ${met.length} of ${ran.length * 2} met)`,
    );
  }
  for (const tree of result.trees ?? []) {
    const ran = tree.contenders.filter((c) => c.tool !== 'ferry' && c.notRun === undefined);
    if (ran.length === 0) continue;
    const against = (tool: string) =>
      tool === 'scp'
        ? "scp -r's speed"
        : tool === 'rsync'
          ? "rsync -a's speed"
          : 'the speed of one file of the same bytes';
    parts.push(
      `tree of ${tree.files.toLocaleString('en-US')} files: ferry -r ${ran
        .map(
          (c) => `${ratio(c.put.ferryRatio?.median)} / ${ratio(c.get.ferryRatio?.median)} ${against(c.tool)}`,
        )
        .join(', ')}`,
    );
  }
  const notRun = peers.filter((p) => p.notRun !== undefined);
  if (notRun.length > 0) {
    const reasons = [...new Set(notRun.map((p) => p.notRun))];
    parts.push(`${notRun.map((p) => p.tool).join(' and ')} not run (${reasons.join('; ')})`);
  }
  const seedCompat = result.seedCompat;
  if (seedCompat !== undefined) {
    parts.push(
      seedCompat.notRun !== undefined
        ? `the seed's client not run (${seedCompat.notRun})`
        : `the seed's client: ferry --seed-compat ${ratio(seedCompat.ratio.put?.median)} / ${ratio(seedCompat.ratio.get?.median)} the seed server's speed`,
    );
  }
  const fixed = result.fixedCost;
  if (fixed !== undefined) parts.push(fixedCostVerdict(fixed));
  if (result.failures.length > 0) parts.push(`${result.failures.length} transfer(s) FAILED`);
  return `verdict${result.options.quick ? ' (--quick smoke test, not a measurement)' : ''}: ${parts.join('; ')}`;
}

/** e.g. "fixed cost: ferry stat 108 ms, 1-byte get 121 ms; 0.97x / 0.95x the baseline's (target 0.50x: 0 of 2 met)". */
function fixedCostVerdict(f: FixedCostResult): string {
  const caCerts = f.caFile !== undefined;
  const ms = (command: 'stat' | 'get') => {
    const m = f.rows.find(
      (r) => r.command === command && r.build === 'this' && r.caCerts === caCerts,
    )?.wallMs;
    return m ? `${m.median.toFixed(0)} ms` : 'FAILED';
  };
  const head = `fixed cost: ferry stat ${ms('stat')}, 1-byte get ${ms('get')}`;
  if (!f.baseline) return `${head}; ratio to a baseline not measured`;
  const ratios = (['stat', 'get'] as const).map(
    (command) => f.ratios.find((r) => r.command === command && r.caCerts === caCerts)?.ratio?.median,
  );
  const met = ratios.filter((r) => r !== undefined && r <= FIXED_COST_TARGET_RATIO).length;
  const text = ratios.map((r) => (r === undefined ? 'FAILED' : `${r.toFixed(2)}x`)).join(' / ');
  return `${head}; ${text} the baseline's (target ${FIXED_COST_TARGET_RATIO.toFixed(2)}x: ${met} of 2 met)`;
}
