/**
 * The fixed cost of a command: whole `ferry stat` and `ferry get` (of a 1-byte file) processes, timed
 * from spawn to exit against a server started once, so nearly all of what is measured is Node's
 * start-up, loading the CLI, the handshake and the request round trips. With a baseline build
 * (--baseline-ferry) both clients run in turn, round by round, and each pair gives a ratio. Every
 * command runs as a user's shell runs it (through the client's launcher where the build has one) and
 * also without NODE_EXTRA_CA_CERTS (what the CA file costs), and `node -e 0` with and without it is
 * the floor no Node program goes below.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  type Bins,
  checkBins,
  type RunningServer,
  startServer,
  stopServer,
  type Workspace,
} from './ferry.js';
import { applyChildPriority, tail } from './processes.js';
import { type Summary, summarize } from './summary.js';

/**
 * How a user's shell runs a client: through the package's launcher when the build has one (bin/ferry
 * beside bin/ferry.js, a /bin/sh script that starts Node without NODE_EXTRA_CA_CERTS), else the bin
 * with Node.
 */
export function clientCommand(ferry: string): { file: string; args: string[] } {
  const launcher = ferry.endsWith('.js') ? ferry.slice(0, -3) : undefined;
  if (launcher !== undefined) {
    try {
      accessSync(launcher, constants.X_OK);
      return { file: launcher, args: [] };
    } catch {
      // No launcher in this build.
    }
  }
  return { file: process.execPath, args: [ferry] };
}

/** The issue's target: each command at most half of the baseline build's wall time. */
export const FIXED_COST_TARGET_RATIO = 0.5;

export type FixedCostCommand = 'stat' | 'get' | 'node';
export type FixedCostBuild = 'this' | 'baseline';

/** One process, spawn to exit. */
export interface FixedCostRun {
  wallMs: number;
  ok: boolean;
  error?: string;
}

/** One command of one build in one environment, all its measured runs (in round order). */
export interface FixedCostRow {
  command: FixedCostCommand;
  /** Which client ran it; absent for `node -e 0`. */
  build?: FixedCostBuild;
  /** Whether NODE_EXTRA_CA_CERTS was in the process's environment. */
  caCerts: boolean;
  runs: FixedCostRun[];
  /** Median and spread of the runs that succeeded. */
  wallMs?: Summary;
}

/** This build's wall time / the baseline's, paired by round, for one command and environment. */
export interface FixedCostRatio {
  command: 'stat' | 'get';
  caCerts: boolean;
  ratio?: Summary;
}

export interface FixedCostResult {
  /** The file NODE_EXTRA_CA_CERTS named in the bench's environment; absent when it was not set. */
  caFile?: string;
  /** Certificates in that file (PEM blocks), for the reader's idea of its size. */
  caCertificates?: number;
  ferry: string;
  ferryServer: string;
  /** The baseline client, and the server it talked to (its own, or this build's). */
  baseline?: { ferry: string; ferryServer: string };
  /** Why no ratio was measured (no --baseline-ferry, or the baseline failed to start). */
  ratioNotMeasured?: string;
  runs: number;
  warmup: number;
  rows: FixedCostRow[];
  ratios: FixedCostRatio[];
}

/** The file every get fetches and stat describes. */
const ONE_BYTE_NAME = 'one-byte.bin';
const ONE_BYTE = Buffer.from('x');

function okWalls(runs: readonly FixedCostRun[]): number[] {
  return runs.filter((r) => r.ok).map((r) => r.wallMs);
}

/**
 * The row summaries and the paired ratios: for each round where both builds succeeded, this build's
 * wall time / the baseline's (the same command, the same environment, run right after each other).
 */
export function summarizeFixedCost(rows: FixedCostRow[]): { rows: FixedCostRow[]; ratios: FixedCostRatio[] } {
  const summarized = rows.map((row) => {
    const { wallMs: _old, ...rest } = row;
    const wallMs = summarize(okWalls(row.runs));
    return wallMs ? { ...rest, wallMs } : rest;
  });
  const ratios: FixedCostRatio[] = [];
  for (const row of summarized) {
    if (row.build !== 'this' || row.command === 'node') continue;
    const base = summarized.find(
      (r) => r.build === 'baseline' && r.command === row.command && r.caCerts === row.caCerts,
    );
    if (!base) continue;
    const pairs: number[] = [];
    row.runs.forEach((run, i) => {
      const other = base.runs[i];
      if (run.ok && other?.ok && other.wallMs > 0) pairs.push(run.wallMs / other.wallMs);
    });
    const ratio = summarize(pairs);
    ratios.push({ command: row.command, caCerts: row.caCerts, ...(ratio ? { ratio } : {}) });
  }
  return { rows: summarized, ratios };
}

/** Runs one process to its exit, timed from spawn to its exit event. */
function timeProcess(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  timeoutMs: number,
): Promise<{ wallMs: number; code: number | null; output: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(command, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    applyChildPriority(child.pid);
    let output = '';
    const keep = (d: Buffer) => {
      output = (output + d.toString()).slice(-8000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    let wallMs = 0;
    child.on('exit', () => {
      wallMs = performance.now() - started;
    });
    child.on('error', (error) => {
      output += `\n${error.message}`;
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ wallMs: wallMs || performance.now() - started, code, output, timedOut });
    });
  });
}

function countCertificates(text: string): number {
  return text.split('-----BEGIN CERTIFICATE-----').length - 1;
}

export interface FixedCostOptions {
  runs: number;
  warmup: number;
  /** The baseline build's client; undefined: no ratio. */
  baselineFerry: string | undefined;
  /** The baseline build's server (for a client whose protocol this build's server no longer speaks). */
  baselineServer: string | undefined;
  /** Called with every failed run (label: why). */
  fail: (line: string) => void;
}

/**
 * Starts this build's server (and the baseline's, if given) once, then runs warm-up and measured
 * rounds: per round each command of each build in each environment, in turn, then `node -e 0`.
 */
export async function runFixedCost(ws: Workspace, options: FixedCostOptions): Promise<FixedCostResult> {
  const caFile = ws.env.NODE_EXTRA_CA_CERTS || undefined;
  // ferry keeps V8's code cache in the user's cache directory: the bench's own, filled by the warm-up,
  // so both builds start as a user's second run does, and the user's cache is left alone.
  const cacheHome = join(ws.dir, 'fixed-cost-cache');
  const asIs: NodeJS.ProcessEnv = { ...ws.env, XDG_CACHE_HOME: cacheHome };
  const withoutCa: NodeJS.ProcessEnv = { ...asIs };
  delete withoutCa.NODE_EXTRA_CA_CERTS;
  const environments = caFile !== undefined ? [true, false] : [false];
  const envFor = (caCerts: boolean) => (caCerts ? asIs : withoutCa);

  const result: FixedCostResult = {
    ...(caFile !== undefined ? { caFile } : {}),
    ferry: ws.bins.ferry,
    ferryServer: ws.bins.server,
    runs: options.runs,
    warmup: options.warmup,
    rows: [],
    ratios: [],
  };
  if (caFile !== undefined) {
    const text = await readFile(caFile, 'utf8').catch(() => undefined);
    if (text !== undefined) result.caCertificates = countCertificates(text);
  }

  const servers: RunningServer[] = [];
  const clients: { build: FixedCostBuild; ferry: string; port: number }[] = [];
  const rootFor = async (name: string) => {
    const root = join(ws.dir, name);
    await rm(root, { recursive: true, force: true });
    await mkdir(root, { recursive: true });
    await writeFile(join(root, ONE_BYTE_NAME), ONE_BYTE);
    return root;
  };
  try {
    const server = await startServer(ws, ws.env, ['--root', await rootFor('fixed-cost-root')]);
    servers.push(server);
    clients.push({ build: 'this', ferry: ws.bins.ferry, port: server.port });
    if (options.baselineFerry === undefined) {
      result.ratioNotMeasured = 'no baseline build given (--baseline-ferry PATH)';
    } else {
      try {
        const baselineBins: Bins = {
          ...ws.bins,
          // Absolute, as --ferry is: the clients run in the workspace's client directory.
          ferry: resolve(options.baselineFerry),
          server: options.baselineServer !== undefined ? resolve(options.baselineServer) : ws.bins.server,
        };
        await checkBins(baselineBins);
        let port = server.port;
        if (options.baselineServer !== undefined) {
          const own = await startServer({ ...ws, bins: baselineBins }, ws.env, [
            '--root',
            await rootFor('fixed-cost-baseline-root'),
          ]);
          servers.push(own);
          port = own.port;
        }
        clients.push({ build: 'baseline', ferry: baselineBins.ferry, port });
        result.baseline = { ferry: baselineBins.ferry, ferryServer: baselineBins.server };
      } catch (error) {
        const why = `the baseline build did not start: ${(error as Error).message.split('\n')[0]}`;
        options.fail(`fixed cost: ${why}`);
        result.ratioNotMeasured = why;
      }
    }

    const rows: FixedCostRow[] = [];
    const rowFor = (command: FixedCostCommand, build: FixedCostBuild | undefined, caCerts: boolean) => {
      let row = rows.find((r) => r.command === command && r.build === build && r.caCerts === caCerts);
      if (!row) {
        row = { command, ...(build ? { build } : {}), caCerts, runs: [] };
        rows.push(row);
      }
      return row;
    };
    let n = 0;
    const runFerry = async (
      client: (typeof clients)[number],
      command: 'stat' | 'get',
      caCerts: boolean,
    ): Promise<FixedCostRun> => {
      const local = join(ws.clientDir, `fixed-cost-${++n}.bin`);
      const address = `127.0.0.1:${client.port}`;
      const run = clientCommand(client.ferry);
      const args =
        command === 'stat'
          ? [...run.args, 'stat', address, ONE_BYTE_NAME, '--key', ws.keyFile]
          : [...run.args, 'get', address, ONE_BYTE_NAME, local, '--key', ws.keyFile];
      const p = await timeProcess(run.file, args, envFor(caCerts), ws.clientDir, 30_000);
      const label = `fixed cost: ${client.build === 'this' ? '' : 'baseline '}ferry ${command}${caCerts ? '' : ' without NODE_EXTRA_CA_CERTS'}`;
      let error: string | undefined;
      if (p.timedOut) error = `${label}: timed out after 30 s`;
      else if (p.code !== 0) error = `${label}: exit ${p.code}: ${tail(p.output, 4)}`;
      else if (command === 'get') {
        const got = await readFile(local).catch(() => undefined);
        if (!got?.equals(ONE_BYTE)) error = `${label}: exit 0 but the 1-byte file did not arrive intact`;
        await rm(local, { force: true });
      }
      return error === undefined ? { wallMs: p.wallMs, ok: true } : { wallMs: p.wallMs, ok: false, error };
    };
    const runNode = async (caCerts: boolean): Promise<FixedCostRun> => {
      const p = await timeProcess(process.execPath, ['-e', '0'], envFor(caCerts), ws.clientDir, 30_000);
      return p.code === 0
        ? { wallMs: p.wallMs, ok: true }
        : { wallMs: p.wallMs, ok: false, error: `node -e 0: exit ${p.code}: ${tail(p.output, 4)}` };
    };

    for (let round = -options.warmup; round < options.runs; round++) {
      const measured = round >= 0;
      const keep = (row: FixedCostRow, run: FixedCostRun) => {
        if (!run.ok) options.fail(`${run.error}${measured ? ` (run ${round + 1})` : ' (warm-up)'}`);
        if (measured) row.runs.push(run);
      };
      for (const command of ['stat', 'get'] as const)
        for (const caCerts of environments)
          for (const client of clients)
            keep(rowFor(command, client.build, caCerts), await runFerry(client, command, caCerts));
      for (const caCerts of environments) keep(rowFor('node', undefined, caCerts), await runNode(caCerts));
    }
    const { rows: summarized, ratios } = summarizeFixedCost(rows);
    result.rows = summarized;
    result.ratios = ratios;
  } finally {
    for (const server of servers) await stopServer(server);
  }
  return result;
}
