/**
 * Drives the real ferry bins as separate processes: keygen, a server per measured run, put and get
 * clients, and the impairment proxy between them. Every transfer is verified by SHA-256 here,
 * independently of what the bins say.
 */
import { execFile } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, existsSync, realpathSync } from 'node:fs';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  cpuSecondsSoFar,
  type MeasuredProcess,
  type ProcessResult,
  type ProcessUsage,
  spawnMeasured,
  stopProcess,
  tail,
  waitForLine,
} from './processes.js';

const execFileAsync = promisify(execFile);

export interface Bins {
  ferry: string;
  server: string;
  proxy: string;
}

/** The bins of the workspace packages (or the paths given), checked to exist and to run. */
export function locateBins(overrides: { ferry?: string | undefined; server?: string | undefined }): Bins {
  const require = createRequire(import.meta.url);
  const packageBin = (pkg: string, bin: string): string => {
    try {
      return join(dirname(realpathSync(require.resolve(`${pkg}/package.json`))), 'bin', bin);
    } catch {
      // Not linked (e.g. a partial install): fall back to the monorepo layout.
      const here = dirname(fileURLToPath(import.meta.url));
      return resolve(here, '../..', pkg.replace('@ferry/', ''), 'bin', bin);
    }
  };
  return {
    ferry: resolve(overrides.ferry ?? packageBin('@ferry/client-cli', 'ferry.js')),
    server: resolve(overrides.server ?? packageBin('@ferry/server-cli', 'ferry-server.js')),
    proxy: fileURLToPath(new URL('./proxy-cli.js', import.meta.url)),
  };
}

export class BenchError extends Error {}

/** Fails with a message that says what to build when a bin is missing or does not start. */
export async function checkBins(bins: Bins): Promise<void> {
  for (const [name, path] of [
    ['ferry', bins.ferry],
    ['ferry-server', bins.server],
  ] as const) {
    if (!existsSync(path)) {
      throw new BenchError(
        `${name} not found at ${path}: build the CLIs first (pnpm turbo run build --filter=@ferry/bench...)`,
      );
    }
    try {
      await execFileAsync(process.execPath, [path, '--help'], { timeout: 20_000 });
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      throw new BenchError(
        `${name} (${path}) does not run: ${tail(e.stderr || e.message, 4)}\n` +
          'build the CLIs first (pnpm turbo run build --filter=@ferry/bench...)',
      );
    }
  }
}

/** Writes `size` random bytes to path; returns the file's SHA-256 (hex). */
export async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(Math.min(size, 4 * 1024 * 1024));
  const file = await open(path, 'w');
  try {
    for (let left = size; left > 0; ) {
      const n = Math.min(left, chunk.length);
      const piece = chunk.subarray(0, n);
      randomFillSync(piece);
      hash.update(piece);
      await file.write(piece, 0, n);
      left -= n;
    }
  } finally {
    await file.close();
  }
  return hash.digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Runs `ferry keygen FILE` (the real bin). */
export async function keygen(bins: Bins, file: string): Promise<void> {
  try {
    await execFileAsync(process.execPath, [bins.ferry, 'keygen', file], { timeout: 20_000 });
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new BenchError(`ferry keygen ${file} failed: ${tail(e.stderr || e.message, 4)}`);
  }
  if (!existsSync(file)) throw new BenchError(`ferry keygen ${file} exited 0 but wrote no file`);
}

export interface ProcessFigures {
  /** user + system CPU seconds. */
  cpuSeconds: number;
  userSeconds: number;
  systemSeconds: number;
  peakRssBytes: number;
}

function figures(usage: ProcessUsage | undefined, baselineCpu = 0): ProcessFigures | undefined {
  if (!usage) return undefined;
  const cpu = usage.userSeconds + usage.systemSeconds;
  return {
    cpuSeconds: Math.max(0, cpu - baselineCpu),
    userSeconds: usage.userSeconds,
    systemSeconds: usage.systemSeconds,
    peakRssBytes: usage.maxRssBytes,
  };
}

export interface Workspace {
  dir: string;
  keyFile: string;
  root: string;
  clientDir: string;
  usageDir: string;
  bins: Bins;
  /** Environment for the bins (GLIBC_TUNABLES etc. when asked). */
  env: NodeJS.ProcessEnv;
  cpuProfDir: string | undefined;
  log: (line: string) => void;
}

export async function makeWorkspace(
  dir: string,
  bins: Bins,
  cpuProfDir: string | undefined,
  log: (line: string) => void,
): Promise<Workspace> {
  const ws: Workspace = {
    dir,
    keyFile: join(dir, 'key'),
    root: join(dir, 'server-root'),
    clientDir: join(dir, 'client'),
    usageDir: join(dir, 'usage'),
    bins,
    env: cleanEnv(),
    cpuProfDir,
    log,
  };
  await Promise.all([mkdir(ws.root), mkdir(ws.clientDir), mkdir(ws.usageDir)]);
  if (cpuProfDir) await mkdir(cpuProfDir, { recursive: true });
  await keygen(bins, ws.keyFile);
  return ws;
}

/**
 * The bins' environment: the bench's own, less what would change what is measured behind its
 * back (malloc tunables are a configuration of their own; profiling goes through --cpu-prof).
 */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.GLIBC_TUNABLES;
  delete env.NODE_OPTIONS;
  return env;
}

let usageCounter = 0;

function nodeArgsFor(ws: Workspace, label: string): string[] {
  if (!ws.cpuProfDir) return [];
  return [
    '--cpu-prof',
    '--cpu-prof-dir',
    ws.cpuProfDir,
    '--cpu-prof-name',
    `${label}-${Date.now()}.cpuprofile`,
  ];
}

export interface RunningServer {
  proc: MeasuredProcess;
  port: number;
  /** CPU seconds used before it was listening (start-up), subtracted from its figure. */
  baselineCpu: number;
  events: Record<string, unknown>[];
}

/**
 * Where a process runs and the address it uses: 127.0.0.1 on this machine by default, or an address
 * inside a network namespace (`wrap` = `ip netns exec NAME`).
 */
export interface Placement {
  host: string;
  wrap?: readonly string[];
}

export const LOOPBACK: Placement = { host: '127.0.0.1' };

/**
 * Starts ferry-server at `at` (ephemeral port) with --json; resolves once it listens. It serves the
 * workspace's root unless `served` says otherwise (e.g. --storage s3://… and its options).
 */
export async function startServer(
  ws: Workspace,
  env: NodeJS.ProcessEnv = ws.env,
  served: readonly string[] = ['--root', ws.root],
  at: Placement = LOOPBACK,
): Promise<RunningServer> {
  const usageFile = join(ws.usageDir, `server-${++usageCounter}.json`);
  const proc = spawnMeasured(
    ws.bins.server,
    ['0', ...served, '--key', ws.keyFile, '--host', at.host, '--json'],
    { usageFile, env, nodeArgs: nodeArgsFor(ws, 'server'), ...(at.wrap ? { wrap: at.wrap } : {}) },
  );
  const events: Record<string, unknown>[] = [];
  proc.onLine((line) => {
    const event = parseJsonLine(line);
    if (event) events.push(event);
  });
  const port = await waitForLine(
    proc,
    (line) => {
      const event = parseJsonLine(line);
      if (event?.type === 'listening' && typeof event.port === 'number') return event.port;
      // Tolerate a text start-up line: "... listening on 127.0.0.1:PORT".
      const match = /listening\b.*?:(\d+)\s*$/i.exec(line);
      return match ? Number(match[1]) : undefined;
    },
    20_000,
    'ferry-server',
  );
  return { proc, port, baselineCpu: cpuSecondsSoFar(proc.pid) ?? 0, events };
}

export interface StoppedServer {
  result: ProcessResult;
  figures: ProcessFigures | undefined;
}

export async function stopServer(server: RunningServer): Promise<StoppedServer> {
  const result = await stopProcess(server.proc);
  return { result, figures: figures(result.usage, server.baselineCpu) };
}

function parseJsonLine(line: string): Record<string, unknown> | undefined {
  const text = line.trim();
  if (!text.startsWith('{')) return undefined;
  try {
    const value = JSON.parse(text) as unknown;
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export interface ClientOptions {
  blockSize?: number | undefined;
  window?: number | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  timeoutMs: number;
  /** The server's address (default 127.0.0.1). */
  serverHost?: string | undefined;
  /** Runs the client elsewhere (a network namespace: `ip netns exec NAME`). */
  wrap?: readonly string[] | undefined;
}

/** A `progress` event of the transfer phase, stamped when the bench read it (ms, performance.now()). */
export interface ProgressSample {
  atMs: number;
  bytes: number;
}

export interface ClientRun {
  result: ProcessResult;
  done: Record<string, unknown> | undefined;
  progress: ProgressSample[];
  figures: ProcessFigures | undefined;
  args: string[];
}

/** Runs one `ferry put|get` with --json and returns its exit, its done event and its figures. */
export async function runClient(
  ws: Workspace,
  op: 'put' | 'get',
  port: number,
  paths: [string, string],
  options: ClientOptions,
): Promise<ClientRun> {
  const host = options.serverHost ?? '127.0.0.1';
  const args = [op, `${host}:${port}`, ...paths, '--key', ws.keyFile, '--json', '--force'];
  if (options.blockSize !== undefined) args.push('--block-size', String(options.blockSize));
  if (options.window !== undefined) args.push('--window', String(options.window));
  const usageFile = join(ws.usageDir, `client-${++usageCounter}.json`);
  const proc = spawnMeasured(ws.bins.ferry, args, {
    usageFile,
    env: options.env ?? ws.env,
    nodeArgs: nodeArgsFor(ws, `client-${op}`),
    timeoutMs: options.timeoutMs,
    ...(options.wrap ? { wrap: options.wrap } : {}),
  });
  const progress: ProgressSample[] = [];
  proc.onLine((line) => {
    if (!line.includes('"progress"')) return;
    const event = parseJsonLine(line);
    if (event?.type === 'progress' && event.phase === 'transferring' && typeof event.bytes === 'number') {
      progress.push({ atMs: performance.now(), bytes: event.bytes });
    }
  });
  const result = await proc.exited;
  let done: Record<string, unknown> | undefined;
  for (const line of result.stdout.split('\n')) {
    const event = parseJsonLine(line);
    if (event?.type === 'done') done = event;
  }
  return { result, done, progress, figures: figures(result.usage), args };
}

export interface RunningProxy {
  proc: MeasuredProcess;
  port: number;
  finalStats: Promise<Record<string, unknown> | undefined>;
}

/** Starts proxy-cli towards the server; resolves once it listens. */
export async function startProxy(ws: Workspace, targetPort: number, linkArgs: string[], seed: number) {
  const usageFile = join(ws.usageDir, `proxy-${++usageCounter}.json`);
  const proc = spawnMeasured(
    ws.bins.proxy,
    ['--target', `127.0.0.1:${targetPort}`, '--listen', '127.0.0.1:0', '--seed', String(seed), ...linkArgs],
    { usageFile, env: ws.env },
  );
  let last: Record<string, unknown> | undefined;
  let resolveFinal: (v: Record<string, unknown> | undefined) => void = () => {};
  const finalStats = new Promise<Record<string, unknown> | undefined>((r) => (resolveFinal = r));
  proc.onLine((line) => {
    const event = parseJsonLine(line);
    if (event?.type === 'stats') last = event;
    if (event?.type === 'stats' && event.final === true) resolveFinal(event);
  });
  void proc.exited.then(() => resolveFinal(last));
  const port = await waitForLine(
    proc,
    (line) => {
      const event = parseJsonLine(line);
      return event?.type === 'listening' && typeof event.port === 'number' ? event.port : undefined;
    },
    20_000,
    'impairment proxy',
  );
  const running: RunningProxy = { proc, port, finalStats };
  return running;
}

export async function stopProxy(proxy: RunningProxy): Promise<{
  result: ProcessResult;
  stats: Record<string, unknown> | undefined;
}> {
  const result = await stopProcess(proxy.proc);
  return { result, stats: await proxy.finalStats };
}

export async function removeQuietly(path: string): Promise<void> {
  await rm(path, { force: true, recursive: true }).catch(() => {});
}

export async function fileSize(path: string): Promise<number | undefined> {
  return stat(path).then(
    (s) => s.size,
    () => undefined,
  );
}
