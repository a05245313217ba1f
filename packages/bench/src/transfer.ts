import { link } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type ProcessFigures,
  type ProgressSample,
  removeQuietly,
  runClient,
  sha256File,
  startProxy,
  startServer,
  stopProxy,
  stopServer,
  type Workspace,
} from './ferry.js';
import { tail } from './processes.js';

export interface SourceFile {
  path: string;
  size: number;
  sha256: string;
  /** Its name inside the server root (hard-linked there for gets). */
  remote: string;
}

export interface TransferSpec {
  op: 'put' | 'get';
  source: SourceFile;
  blockSize?: number | undefined;
  window?: number | undefined;
  /** Environment of client and server (default: the workspace's). */
  env?: NodeJS.ProcessEnv | undefined;
  /** proxy-cli link arguments: the transfer goes through an impairment proxy. */
  proxyArgs?: string[] | undefined;
  seed?: number | undefined;
  timeoutMs: number;
}

export interface ProxyFigures {
  /** Datagrams and bytes the sender of the data offered to the link (client->server for put). */
  dataDirection: { offered: number; bytesOffered: number; lost: number; queueDrops: number };
  ackDirection: { offered: number; bytesOffered: number; lost: number; queueDrops: number };
  peakQueueBytes: number;
  /** CPU seconds (user + system) of the proxy process over its life. */
  cpuSeconds?: number;
  raw: Record<string, unknown>;
}

export interface TransferRecord {
  op: 'put' | 'get';
  bytes: number;
  ok: boolean;
  /** 'failed' (exit status, timeout, no done event) or 'integrity' (SHA-256 mismatch). */
  failure?: 'failed' | 'integrity';
  error?: string;
  /** Process start to exit: what a person waits for. */
  wallSeconds: number;
  /** The client's own figure for the transfer (its done event), if it gave one. */
  transferSeconds?: number;
  /**
   * Bytes/s between the progress events at about 25 % and 90 % of the file: the steady state,
   * without handshake, start-up probing and the tail. Needs the client's --json progress events.
   */
  steadyBytesPerSecond?: number;
  client?: ProcessFigures;
  server?: ProcessFigures;
  clientStats?: Record<string, unknown>;
  /** The server's transport counters for the session (its session-closed event), if it reported them. */
  serverStats?: Record<string, unknown>;
  sha256: string;
  proxy?: ProxyFigures;
  command: string[];
}

let runCounter = 0;

/** Hard-links (or copies) the source into the server root under its remote name, once. */
export async function placeInRoot(ws: Workspace, source: SourceFile): Promise<void> {
  const target = join(ws.root, source.remote);
  await removeQuietly(target);
  await link(source.path, target);
}

/**
 * One measured transfer: a fresh ferry-server (so its peak RSS and CPU belong to this run), an
 * optional impairment proxy in front of it, one client process; then both files' SHA-256.
 */
export async function runTransfer(ws: Workspace, spec: TransferSpec): Promise<TransferRecord> {
  const n = ++runCounter;
  const remote = spec.op === 'put' ? `put-${n}.bin` : spec.source.remote;
  const local = spec.op === 'put' ? spec.source.path : join(ws.clientDir, `get-${n}.bin`);
  const written = spec.op === 'put' ? join(ws.root, remote) : local;
  const server = await startServer(ws, spec.env ?? ws.env);
  let proxy: Awaited<ReturnType<typeof startProxy>> | undefined;
  try {
    if (spec.proxyArgs) proxy = await startProxy(ws, server.port, spec.proxyArgs, spec.seed ?? n);
  } catch (error) {
    await stopServer(server);
    throw error;
  }
  const port = proxy ? proxy.port : server.port;
  const paths: [string, string] = spec.op === 'put' ? [local, remote] : [remote, local];
  const client = await runClient(ws, spec.op, port, paths, {
    blockSize: spec.blockSize,
    window: spec.window,
    env: spec.env,
    timeoutMs: spec.timeoutMs,
  });
  const proxyStopped = proxy ? await stopProxy(proxy) : undefined;
  const serverStopped = await stopServer(server);

  const record: TransferRecord = {
    op: spec.op,
    bytes: spec.source.size,
    ok: false,
    wallSeconds: client.result.wallSeconds,
    sha256: spec.source.sha256,
    command: ['ferry', ...client.args],
  };
  if (client.figures) record.client = client.figures;
  const steady = steadyRate(client.progress, spec.source.size);
  if (steady !== undefined) record.steadyBytesPerSecond = steady;
  if (serverStopped.figures) record.server = serverStopped.figures;
  const closed = server.events.find((e) => e.type === 'session-closed');
  if (closed?.stats && typeof closed.stats === 'object')
    record.serverStats = closed.stats as Record<string, unknown>;
  const done = client.done;
  if (done) {
    if (typeof done.seconds === 'number') record.transferSeconds = done.seconds;
    if (done.stats && typeof done.stats === 'object')
      record.clientStats = done.stats as Record<string, unknown>;
  }
  if (proxyStopped?.stats) {
    record.proxy = proxyFigures(proxyStopped.stats, spec.op);
    const usage = proxyStopped.result.usage;
    if (usage) record.proxy.cpuSeconds = usage.userSeconds + usage.systemSeconds;
  }

  const what = `${spec.op} of ${spec.source.size} bytes`;
  if (client.result.code !== 0 || client.result.timedOut) {
    record.failure = 'failed';
    const why = client.result.timedOut
      ? `timed out after ${(spec.timeoutMs / 1000).toFixed(0)} s`
      : `exit ${client.result.code ?? client.result.signal}`;
    record.error = `${what} failed (${why}): ${tail(client.result.stderr || client.result.stdout, 6)}`;
  } else if (!done) {
    record.failure = 'failed';
    record.error = `${what}: exit 0 but no {"type":"done"} event on stdout`;
  } else {
    const reported = typeof done.sha256 === 'string' ? done.sha256 : undefined;
    return verifyAndClean(record, written, what, { sha256: reported });
  }
  return record;
}

/**
 * Hashes the file that arrived and compares it with the source (and with the hash the client
 * reported, for a client that reports one); marks the record ok or failed. A verified file is removed; a
 * failed run's file stays in the temp directory (see --keep) for a look.
 */
export async function verifyAndClean(
  record: TransferRecord,
  written: string,
  what: string,
  clientReport: { sha256: string | undefined } | undefined,
): Promise<TransferRecord> {
  const actual = await sha256File(written).catch((e: Error) => `unreadable (${e.message})`);
  const expected = record.sha256;
  const reported = clientReport?.sha256;
  if (actual !== expected || (reported !== undefined && reported !== expected)) {
    record.failure = 'integrity';
    record.error =
      `SHA-256 MISMATCH on ${what}: expected ${expected}, file has ${actual}` +
      (clientReport ? `, client reported ${reported ?? 'nothing'}` : '');
  } else {
    record.ok = true;
    await removeQuietly(written);
  }
  return record;
}

/** Rate between the first sample at >= 25 % and the last at <= 90 % of the file, if they span >= 0.5 s. */
export function steadyRate(samples: readonly ProgressSample[], size: number): number | undefined {
  const from = samples.find((p) => p.bytes >= size * 0.25);
  const to = samples.findLast((p) => p.bytes <= size * 0.9);
  if (!from || !to || to.atMs - from.atMs < 500 || to.bytes <= from.bytes) return undefined;
  return ((to.bytes - from.bytes) * 1000) / (to.atMs - from.atMs);
}

function num(value: unknown): number {
  return typeof value === 'number' ? value : 0;
}

function direction(raw: unknown): ProxyFigures['dataDirection'] & { peak: number } {
  const d = (raw ?? {}) as Record<string, unknown>;
  const dropped = (d.dropped ?? {}) as Record<string, unknown>;
  return {
    offered: num(d.offered),
    bytesOffered: num(d.bytesOffered),
    lost: num(dropped.loss),
    queueDrops: num(dropped.queue),
    peak: num(d.peakQueueBytes),
  };
}

function proxyFigures(stats: Record<string, unknown>, op: 'put' | 'get'): ProxyFigures {
  const up = direction(stats.upstream);
  const down = direction(stats.downstream);
  const [data, ack] = op === 'put' ? [up, down] : [down, up];
  const strip = ({ peak: _, ...rest }: typeof up) => rest;
  return {
    dataDirection: strip(data),
    ackDirection: strip(ack),
    peakQueueBytes: Math.max(up.peak, down.peak),
    raw: stats,
  };
}
