/**
 * The seed's client against two servers, side by side on the same machine and file: ferry-server
 * --seed-compat, and a reimplementation of the seed's own server (python/seed_reference_server.py,
 * written from the description of its wire format: the seed's code is not in this repository). The
 * client is ferry's seed-protocol test client (tests/e2e/test/seed-compat/seed_client.py, the
 * end-to-end tests' copy), one Python process per transfer; every file that arrives is checked by
 * SHA-256.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { link, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { DirectionSummary } from './bench.js';
import { removeQuietly, sha256File, type Workspace } from './ferry.js';
import { applyChildPriority, tail } from './processes.js';
import { type Summary, summarize } from './summary.js';
import type { SourceFile, TransferRecord } from './transfer.js';

export const REFERENCE_SERVER = fileURLToPath(new URL('../python/seed_reference_server.py', import.meta.url));

export type SeedServerKind = 'reference' | 'ferry';

export interface SeedCompatResult {
  fileBytes: number;
  /** Why the comparison did not run (no python3, no cryptography, no test client); absent when it ran. */
  notRun?: string;
  /** The seed's server as reimplemented for the bench: the baseline. */
  reference: { put: DirectionSummary; get: DirectionSummary };
  /** ferry-server --seed-compat --seed-compat-rw. */
  ferry: { put: DirectionSummary; get: DirectionSummary };
  /**
   * ferry's speed / the reference's: the reference's transfer seconds / ferry's in the same round,
   * for every round where both verified.
   */
  ratio: { put?: Summary; get?: Summary };
}

/** The seed-protocol test client of the end-to-end tests (@ferry/e2e-tests), or undefined. */
export function locateSeedClient(): string | undefined {
  const require = createRequire(import.meta.url);
  let packageDir: string;
  try {
    packageDir = dirname(realpathSync(require.resolve('@ferry/e2e-tests/package.json')));
  } catch {
    packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../..', 'tests', 'e2e');
  }
  const path = join(packageDir, 'test', 'seed-compat', 'seed_client.py');
  return existsSync(path) ? path : undefined;
}

/** Why the seed's client cannot run here, or undefined. */
export function seedCompatUnavailable(): string | undefined {
  const probe = spawnSync('python3', ['-c', 'import cryptography.fernet'], { encoding: 'utf8' });
  if (probe.error) return 'python3 not runnable';
  if (probe.status !== 0) return 'python3 has no cryptography module (pip install cryptography)';
  if (locateSeedClient() === undefined) return 'the seed test client (tests/e2e/test/seed-compat) is missing';
  return undefined;
}

let runCounter = 0;

/** Starts a process and resolves with the first stdout line `accept` takes, or rejects. */
function startAndWait(
  command: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  accept: (line: string) => number | undefined,
  what: string,
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  applyChildPriority(child.pid);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-8000);
  });
  return new Promise((resolvePort, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what}: not listening within 20 s: ${tail(stderr)}`));
    }, 20_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const port = accept(line);
      if (port === undefined) return;
      clearTimeout(timer);
      resolvePort({ child, port });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}) before listening: ${tail(stderr)}`));
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await closed;
  clearTimeout(timer);
}

function startReference(root: string, env: NodeJS.ProcessEnv) {
  return startAndWait(
    'python3',
    [REFERENCE_SERVER, '0', '--host', '127.0.0.1'],
    root,
    env,
    (line) => {
      const match = /^listening on [\d.]+:(\d+)$/.exec(line.trim());
      return match ? Number(match[1]) : undefined;
    },
    "the seed's server (reimplemented)",
  );
}

function startFerry(ws: Workspace, root: string) {
  return startAndWait(
    process.execPath,
    [
      ws.bins.server,
      '0',
      '--root',
      root,
      '--key',
      ws.keyFile,
      '--host',
      '127.0.0.1',
      '--json',
      '--seed-compat',
      '0',
      '--seed-compat-rw',
    ],
    root,
    ws.env,
    (line) => {
      if (!line.startsWith('{')) return undefined;
      const event = JSON.parse(line) as { type?: string; port?: number };
      return event.type === 'seed-compat-listening' ? event.port : undefined;
    },
    'ferry-server --seed-compat',
  );
}

/** One transfer of the test client against a fresh server of `kind`; verified by SHA-256. */
export async function runSeedTransfer(
  ws: Workspace,
  kind: SeedServerKind,
  op: 'put' | 'get',
  source: SourceFile,
  timeoutMs: number,
): Promise<TransferRecord> {
  const clientScript = locateSeedClient()!;
  const dir = join(ws.dir, 'seed-compat', `${kind}-${op}-${++runCounter}`);
  const root = join(dir, 'root');
  const clientDir = join(dir, 'client');
  await mkdir(root, { recursive: true });
  await mkdir(clientDir, { recursive: true });
  const name = op === 'get' ? 'seed.bin' : 'up.bin';
  await link(source.path, join(op === 'get' ? root : clientDir, name));
  const arrived =
    op === 'get'
      ? join(clientDir, `received_${name}`)
      : join(root, kind === 'reference' ? `send_${name}` : name);
  const command = ['python3', 'seed_client.py', '127.0.0.1', 'PORT', `<<< "${op} ${name}"`];
  const record: TransferRecord = {
    op,
    bytes: source.size,
    ok: false,
    wallSeconds: 0,
    sha256: source.sha256,
    command,
  };
  let server: { child: ChildProcess; port: number } | undefined;
  try {
    server = kind === 'reference' ? await startReference(root, ws.env) : await startFerry(ws, root);
    const started = performance.now();
    const client = spawn(
      'python3',
      [clientScript, '127.0.0.1', String(server.port), '--json', '--timeout', '30'],
      {
        cwd: clientDir,
        env: ws.env,
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    applyChildPriority(client.pid);
    let stdout = '';
    let stderr = '';
    client.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    client.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-8000);
    });
    const timer = setTimeout(() => client.kill('SIGKILL'), timeoutMs);
    const code = await new Promise<number | null>((r) => {
      client.on('close', (c) => r(c));
      client.stdin.end(`${op} ${name}\n`);
    });
    clearTimeout(timer);
    record.wallSeconds = (performance.now() - started) / 1000;
    const line = stdout.split('\n').find((l) => l.startsWith('{'));
    const result =
      line === undefined ? undefined : (JSON.parse(line) as { seconds?: number; error?: string });
    if (typeof result?.seconds === 'number') record.transferSeconds = result.seconds;
    if (code !== 0 || result === undefined || result.error !== undefined) {
      record.failure = 'failed';
      record.error = `the seed client exited ${code}: ${result?.error ?? tail(stderr || stdout)}`;
      return record;
    }
    const sha256 = await sha256File(arrived).catch(() => undefined);
    if (sha256 !== source.sha256) {
      record.failure = 'integrity';
      record.error = `SHA-256 MISMATCH: ${arrived} is ${sha256 ?? 'missing'}, expected ${source.sha256}`;
      return record;
    }
    record.ok = true;
    return record;
  } catch (error) {
    record.failure = 'failed';
    record.error = (error as Error).message;
    return record;
  } finally {
    if (server !== undefined) await stop(server.child);
    await removeQuietly(dir);
  }
}

/** ferry's speed over the reference's, per round: the reference's transfer seconds / ferry's. */
export function pairedRatios(reference: TransferRecord[], ferry: TransferRecord[]): Summary | undefined {
  const ratios: number[] = [];
  reference.forEach((r, i) => {
    const f = ferry[i];
    if (r.ok && f?.ok && r.transferSeconds && f.transferSeconds)
      ratios.push(r.transferSeconds / f.transferSeconds);
  });
  return summarize(ratios);
}
