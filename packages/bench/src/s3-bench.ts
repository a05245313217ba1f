/**
 * `pnpm bench -- --storage s3`: what ferry's path costs on an object store. One run moves the file
 * (the seed's 56 MiB by default) up and down in three ways, interleaved so that the machine's load
 * falls on all of them alike:
 *
 * - `sdk`: the AWS SDK's own multipart upload (lib-storage, 8 MiB parts, 4 at once) and a GetObject
 *   download, to and from the same Ceph RGW: what S3 itself takes;
 * - `ferry-s3`: ferry's client through ferry-server serving a bucket of that RGW;
 * - `ferry-local`: the same through ferry-server serving a local directory.
 *
 * Each is a process of its own, timed from start to exit, and every file that comes back is checked
 * by SHA-256. The result gives medians and the ratios ferry-s3 / sdk and ferry-s3 / ferry-local; with
 * --memory also the peak RSS of a server on RGW during a put of --memory-size (1 GiB).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchOptions } from './args.js';
import { type CephGateway, CephStartFailure, startCephGateway } from './ceph.js';
import {
  BenchError,
  locateBins,
  makeWorkspace,
  type RunningServer,
  removeQuietly,
  runClient,
  sha256File,
  startServer,
  stopServer,
  writeRandomFile,
} from './ferry.js';
import { spawnMeasured, tail } from './processes.js';
import { SDK_PART_SIZE, SDK_QUEUE_SIZE } from './s3-sdk-cli.js';

const SDK_CLI = fileURLToPath(new URL('./s3-sdk-cli.js', import.meta.url));
const BUCKET = 'ferry-bench';

export type S3Way = 'sdk' | 'ferry-s3' | 'ferry-local';
export const S3_WAYS: readonly S3Way[] = ['sdk', 'ferry-s3', 'ferry-local'];

export interface S3BenchResult {
  kind: 's3';
  date: string;
  sizeBytes: number;
  runs: number;
  endpoint: string;
  sdk: { partSize: number; queueSize: number };
  /** Seconds of every run, by way and direction. */
  seconds: Record<S3Way, { put: number[]; get: number[] }>;
  /** MB/s (10^6 bytes per second) of the median run. */
  medianMBps: Record<S3Way, { put: number; get: number }>;
  ratios: { s3OverSdk: { put: number; get: number }; s3OverLocal: { put: number; get: number } };
  /** Peak RSS of a ferry-server on RGW during one put of memorySizeBytes (with --memory). */
  memory?: { sizeBytes: number; serverPeakRssBytes: number; seconds: number };
  loadAverage: number[];
  failures: string[];
}

/** The Ceph RGW to use: FERRY_CEPH=DIR's, or a throwaway cluster started now (stopped after). */
async function startGateway(
  tmpDir: string,
  log: (line: string) => void,
): Promise<{ endpoint: string; env: NodeJS.ProcessEnv; stop(): Promise<void> }> {
  let gateway: CephGateway;
  try {
    gateway = await startCephGateway({
      reuse: process.env.FERRY_CEPH,
      dirPrefix: join(tmpDir, 'ceph-'),
      bucket: BUCKET,
      onStart: () =>
        log('s3: starting a throwaway Ceph cluster (monitor, memstore OSD, RADOS Gateway) on 127.0.0.1'),
    });
  } catch (error) {
    if (error instanceof CephStartFailure) {
      throw new BenchError(`the Ceph cluster did not start: ${tail(error.detail, 6)}`);
    }
    throw error;
  }
  return {
    endpoint: gateway.endpoint,
    env: {
      AWS_ACCESS_KEY_ID: gateway.accessKeyId,
      AWS_SECRET_ACCESS_KEY: gateway.secretAccessKey,
      AWS_REGION: gateway.region,
      S3_ENDPOINT: gateway.endpoint,
      S3_BUCKET: gateway.bucket,
    },
    stop: () => gateway.stop(),
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export async function runS3Bench(input: {
  options: BenchOptions;
  tmpDir: string;
  log: (line: string) => void;
}): Promise<S3BenchResult> {
  const { options, tmpDir, log } = input;
  const bins = locateBins({ ferry: options.ferryBin, server: options.serverBin });
  const ws = await makeWorkspace(tmpDir, bins, options.cpuProf, log);
  const gateway = await startGateway(tmpDir, log);
  const s3Env = { ...ws.env, ...gateway.env };
  const s3Args = (prefix: string) => [
    '--storage',
    `s3://${BUCKET}/${prefix}`,
    '--s3-endpoint',
    gateway.endpoint,
    '--s3-force-path-style',
  ];
  const failures: string[] = [];
  const seconds: S3BenchResult['seconds'] = {
    sdk: { put: [], get: [] },
    'ferry-s3': { put: [], get: [] },
    'ferry-local': { put: [], get: [] },
  };
  const servers: RunningServer[] = [];
  try {
    const source = join(ws.clientDir, 'source.bin');
    log(`s3: writing a ${options.size}-byte file`);
    const digest = await writeRandomFile(source, options.size);
    const onS3 = await startServer(ws, s3Env, s3Args('bench'));
    const onDisk = await startServer(ws);
    servers.push(onS3, onDisk);
    const back = join(ws.clientDir, 'back.bin');
    const check = async (what: string, ok: boolean, stderr: string): Promise<boolean> => {
      if (!ok) {
        failures.push(`${what}: ${tail(stderr, 3)}`);
        return false;
      }
      if (what.endsWith('get')) {
        const got = await sha256File(back);
        await removeQuietly(back);
        if (got !== digest) {
          failures.push(`${what}: SHA-256 MISMATCH`);
          return false;
        }
      }
      return true;
    };
    const timeFerry = async (way: S3Way, server: RunningServer, op: 'put' | 'get'): Promise<void> => {
      const paths: [string, string] = op === 'put' ? [source, 'source.bin'] : ['source.bin', back];
      const r = await runClient(ws, op, server.port, paths, { timeoutMs: 600_000 });
      if (await check(`${way} ${op}`, r.result.code === 0, r.result.stderr)) {
        seconds[way][op].push(r.result.wallSeconds);
      }
    };
    const timeSdk = async (op: 'put' | 'get'): Promise<void> => {
      const args = op === 'put' ? ['put', source, 'sdk/source.bin'] : ['get', 'sdk/source.bin', back];
      const proc = spawnMeasured(SDK_CLI, args, {
        usageFile: join(ws.usageDir, `sdk-${op}-${Date.now()}.json`),
        env: s3Env,
        timeoutMs: 600_000,
      });
      const r = await proc.exited;
      if (await check(`sdk ${op}`, r.code === 0, r.stderr)) seconds.sdk[op].push(r.wallSeconds);
    };
    const ways: Record<S3Way, (op: 'put' | 'get') => Promise<void>> = {
      sdk: timeSdk,
      'ferry-s3': (op) => timeFerry('ferry-s3', onS3, op),
      'ferry-local': (op) => timeFerry('ferry-local', onDisk, op),
    };
    for (let i = -options.warmup; i < options.runs; i++) {
      // Each run starts with another way, so none always goes first on a warm or a cold machine.
      const order = S3_WAYS.map((_, k) => S3_WAYS[(k + Math.max(0, i)) % S3_WAYS.length]!);
      for (const way of order) {
        for (const op of ['put', 'get'] as const) {
          const before = { put: seconds[way].put.length, get: seconds[way].get.length };
          await ways[way](op);
          // Warm-up runs are not counted.
          if (i < 0) seconds[way][op].length = before[op];
        }
      }
      if (i >= 0) log(`s3: run ${i + 1} of ${options.runs} done`);
    }
    let memory: S3BenchResult['memory'];
    if (options.memory) {
      log(`s3: a ${options.memorySize}-byte put through a server on RGW, for its peak RSS`);
      const big = join(ws.clientDir, 'memory.bin');
      await writeRandomFile(big, options.memorySize);
      const server = await startServer(ws, s3Env, s3Args('memory'));
      const r = await runClient(ws, 'put', server.port, [big, 'memory.bin'], { timeoutMs: 1_200_000 });
      const stopped = await stopServer(server);
      await removeQuietly(big);
      if (r.result.code !== 0) failures.push(`memory put: ${tail(r.result.stderr, 3)}`);
      else if (stopped.figures !== undefined) {
        memory = {
          sizeBytes: options.memorySize,
          serverPeakRssBytes: stopped.figures.peakRssBytes,
          seconds: r.result.wallSeconds,
        };
      }
    }
    const mbps = (way: S3Way, op: 'put' | 'get'): number =>
      seconds[way][op].length === 0 ? 0 : options.size / 1e6 / median(seconds[way][op]);
    const medianMBps = Object.fromEntries(
      S3_WAYS.map((way) => [way, { put: mbps(way, 'put'), get: mbps(way, 'get') }]),
    ) as S3BenchResult['medianMBps'];
    const ratio = (a: number, b: number): number => (b > 0 ? a / b : 0);
    return {
      kind: 's3',
      date: new Date().toISOString(),
      sizeBytes: options.size,
      runs: options.runs,
      endpoint: gateway.endpoint,
      sdk: { partSize: SDK_PART_SIZE, queueSize: SDK_QUEUE_SIZE },
      seconds,
      medianMBps,
      ratios: {
        s3OverSdk: {
          put: ratio(medianMBps['ferry-s3'].put, medianMBps.sdk.put),
          get: ratio(medianMBps['ferry-s3'].get, medianMBps.sdk.get),
        },
        s3OverLocal: {
          put: ratio(medianMBps['ferry-s3'].put, medianMBps['ferry-local'].put),
          get: ratio(medianMBps['ferry-s3'].get, medianMBps['ferry-local'].get),
        },
      },
      ...(memory !== undefined ? { memory } : {}),
      loadAverage: (await import('node:os')).loadavg(),
      failures,
    };
  } finally {
    for (const server of servers) await stopServer(server).catch(() => {});
    await gateway.stop();
  }
}

/** The result as a markdown table and the two ratios the target is about. */
export function renderS3Markdown(result: S3BenchResult): string {
  const mb = (n: number) => (n > 0 ? n.toFixed(1) : 'failed');
  const pct = (n: number) => `${(n * 100).toFixed(0)} %`;
  const rows = S3_WAYS.map((way) => {
    const label =
      way === 'sdk'
        ? `AWS SDK to RGW (multipart, ${result.sdk.partSize / 1024 / 1024} MiB parts × ${result.sdk.queueSize})`
        : way === 'ferry-s3'
          ? 'ferry, server on RGW'
          : 'ferry, server on local disk';
    return `| ${label} | ${mb(result.medianMBps[way].put)} | ${mb(result.medianMBps[way].get)} |`;
  });
  const lines = [
    `${(result.sizeBytes / 1024 / 1024).toFixed(0)} MiB, median of ${result.runs} interleaved runs, MB/s from process start to exit (load average ${result.loadAverage.map((n) => n.toFixed(1)).join(' ')})`,
    '',
    '| way | put MB/s | get MB/s |',
    '| --- | ---: | ---: |',
    ...rows,
    '',
    `ferry on RGW / the SDK on RGW: put ${pct(result.ratios.s3OverSdk.put)}, get ${pct(result.ratios.s3OverSdk.get)} (target ≥ 70 %)`,
    `ferry on RGW / ferry on local disk: put ${pct(result.ratios.s3OverLocal.put)}, get ${pct(result.ratios.s3OverLocal.get)}`,
  ];
  if (result.memory !== undefined) {
    lines.push(
      `server peak RSS during a ${(result.memory.sizeBytes / 1024 / 1024).toFixed(0)} MiB put to RGW: ${(result.memory.serverPeakRssBytes / 1e6).toFixed(0)} MB (target ≤ 200 MB)`,
    );
  }
  return `${lines.join('\n')}\n`;
}
