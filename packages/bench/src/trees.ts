/**
 * Directory trees: `ferry put -r` / `get -r` beside `scp -r` and `rsync -a` (over the throwaway sshd)
 * on a tree of many small files, and a tree of a few large files beside ferry's own single-file
 * transfer of the same bytes. Each command is timed from spawn to exit; the tree that arrived is
 * checked file by file against the source (a manifest of paths and SHA-256s) and then removed.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { removeQuietly, startServer, stopServer, type Workspace } from './ferry.js';
import { type SshClientConfig, sshOptions } from './peers/sshd.js';
import { rshCommand, runTimed } from './peers/tools.js';
import { spawnMeasured, tail } from './processes.js';
import type { TransferRecord } from './transfer.js';

export interface TreeSpec {
  id: string;
  directories: number;
  filesPerDirectory: number;
  /** File sizes are spread evenly over [minBytes, maxBytes]. */
  minBytes: number;
  maxBytes: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** The issue's tree of many small files: 10,000 files of 1–8 KiB in 100 directories. */
export const SMALL_FILES_TREE: TreeSpec = {
  id: 'small-files',
  directories: 100,
  filesPerDirectory: 100,
  minBytes: KiB,
  maxBytes: 8 * KiB,
};

/** The issue's tree of large files: 20 files of 20 MiB. */
export const LARGE_FILES_TREE: TreeSpec = {
  id: 'large-files',
  directories: 1,
  filesPerDirectory: 20,
  minBytes: 20 * MiB,
  maxBytes: 20 * MiB,
};

export interface TreeSource {
  spec: TreeSpec;
  /** The tree's top directory (its name is the tree's name on the other side). */
  path: string;
  name: string;
  files: number;
  bytes: number;
  /** SHA-256 of the sorted list of (path, SHA-256 of the file): equal for equal trees. */
  manifest: string;
}

/** "10,000 files of 1–8 KiB in 100 directories", "20 files of 20 MiB". */
export function describeTree(spec: TreeSpec): string {
  const size = (n: number): string => (n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`);
  const files = (spec.directories * spec.filesPerDirectory).toLocaleString('en-US');
  const sizes =
    spec.minBytes === spec.maxBytes
      ? size(spec.minBytes)
      : `${size(spec.minBytes).replace(/ .*/, '')}–${size(spec.maxBytes)}`;
  return `${files} files of ${sizes}${spec.directories > 1 ? ` in ${spec.directories} directories` : ''}`;
}

/** Writes the tree (random contents, sizes spread evenly, the same each time). */
export function writeTree(parent: string, spec: TreeSpec): TreeSource {
  const name = `tree-${spec.id}`;
  const top = join(parent, name);
  let bytes = 0;
  let n = 0;
  const count = spec.directories * spec.filesPerDirectory;
  const buffer = Buffer.allocUnsafe(Math.min(spec.maxBytes, 4 * MiB));
  for (let d = 0; d < spec.directories; d++) {
    const dir = join(top, `dir-${String(d).padStart(3, '0')}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < spec.filesPerDirectory; f++, n++) {
      const size = spec.minBytes + Math.floor(((spec.maxBytes - spec.minBytes) * n) / Math.max(1, count - 1));
      const chunks: Buffer[] = [];
      for (let left = size; left > 0; left -= buffer.length) {
        const part = Buffer.from(randomFillSync(buffer.subarray(0, Math.min(left, buffer.length))));
        chunks.push(part);
      }
      writeFileSync(join(dir, `file-${String(f).padStart(4, '0')}.bin`), Buffer.concat(chunks));
      bytes += size;
    }
  }
  return { spec, path: top, name, files: count, bytes, manifest: treeManifest(top) };
}

/** The manifest of the tree at `top`: every regular file's path and SHA-256, sorted, hashed. */
export function treeManifest(top: string): string {
  const lines: string[] = [];
  const visit = (dir: string, rel: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const r = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) visit(path, r);
      else if (entry.isFile())
        lines.push(`${r}\0${createHash('sha256').update(readFileSync(path)).digest('hex')}`);
      else lines.push(`${r}\0${entry.isSymbolicLink() ? 'link' : 'other'}`);
    }
  };
  visit(top, '');
  lines.sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

export type TreeTool = 'ferry' | 'scp' | 'rsync';

/** Checks the tree that arrived at `arrived`, then removes it (also after a failure: space on disk). */
async function verifyTree(record: TransferRecord, source: TreeSource, arrived: string, what: string) {
  let manifest: string;
  try {
    manifest = treeManifest(arrived);
  } catch (error) {
    manifest = `unreadable (${(error as Error).message})`;
  }
  if (manifest !== source.manifest) {
    record.failure = 'integrity';
    record.error = `TREE MISMATCH on ${what}: the tree that arrived differs from the source (manifest ${manifest}, expected ${source.manifest})`;
  } else {
    record.ok = true;
  }
  await rm(arrived, { recursive: true, force: true });
  return record;
}

function baseRecord(
  op: 'put' | 'get',
  source: TreeSource,
  wallSeconds: number,
  command: string[],
): TransferRecord {
  return { op, bytes: source.bytes, ok: false, wallSeconds, sha256: source.manifest, command };
}

let runCounter = 0;

/**
 * One `ferry put -r` or `get -r` of the tree: a fresh server (its peak RSS belongs to this run), one
 * client process, then the tree that arrived checked and removed. A get fetches the copy the server
 * root holds (placed once by `placeTreeInRoot`).
 */
export async function runFerryTree(
  ws: Workspace,
  op: 'put' | 'get',
  source: TreeSource,
  timeoutMs: number,
): Promise<TransferRecord> {
  const n = ++runCounter;
  const server = await startServer(ws);
  const target = op === 'put' ? `put-${n}` : join(ws.clientDir, `get-${n}`);
  const args =
    op === 'put'
      ? ['put', '-r', `127.0.0.1:${server.port}`, source.path, target]
      : ['get', '-r', `127.0.0.1:${server.port}`, source.name, target];
  args.push('--key', ws.keyFile, '--json');
  const proc = spawnMeasured(ws.bins.ferry, args, {
    usageFile: join(ws.usageDir, `tree-client-${n}.json`),
    env: ws.env,
    timeoutMs,
  });
  const result = await proc.exited;
  const stopped = await stopServer(server);
  const record = baseRecord(op, source, result.wallSeconds, ['ferry', ...args]);
  if (result.usage) {
    record.client = {
      cpuSeconds: result.usage.userSeconds + result.usage.systemSeconds,
      userSeconds: result.usage.userSeconds,
      systemSeconds: result.usage.systemSeconds,
      peakRssBytes: result.usage.maxRssBytes,
    };
  }
  if (stopped.figures) record.server = stopped.figures;
  const summary = result.stdout
    .split('\n')
    .filter((l) => l.startsWith('{"type":"summary"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)[0];
  if (typeof summary?.seconds === 'number') record.transferSeconds = summary.seconds;
  const what = `ferry ${op} -r of ${source.files} files`;
  const arrived = op === 'put' ? join(ws.root, target) : target;
  if (result.code !== 0 || result.timedOut) {
    record.failure = 'failed';
    record.error = `${what} failed (${result.timedOut ? 'timed out' : `exit ${result.code ?? result.signal}`}): ${tail(result.stderr, 6)}`;
    await removeQuietly(arrived);
    return record;
  }
  return verifyTree(record, source, arrived, what);
}

/** Puts the source tree into the server root once, for the gets (a plain copy, not through ferry). */
export async function placeTreeInRoot(ws: Workspace, source: TreeSource): Promise<void> {
  await removeQuietly(join(ws.root, source.name));
  copyTree(source.path, join(ws.root, source.name));
}

function copyTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    if (entry.isDirectory()) copyTree(join(from, entry.name), join(to, entry.name));
    else writeFileSync(join(to, entry.name), readFileSync(join(from, entry.name)));
  }
}

/**
 * One `scp -r` or `rsync -a` of the tree over the throwaway sshd, as a user runs them: into a fresh
 * directory on the other side (the tree lands inside it under its own name). A get fetches the
 * copy in `remoteCopy`.
 */
export async function runPeerTree(
  tool: 'scp' | 'rsync',
  op: 'put' | 'get',
  source: TreeSource,
  client: SshClientConfig,
  dirs: { remoteDir: string; localDir: string; remoteCopy: string },
  timeoutMs: number,
): Promise<TransferRecord> {
  const n = ++runCounter;
  const into = join(op === 'put' ? dirs.remoteDir : dirs.localDir, `${tool}-${op}-${n}`);
  await mkdir(into, { recursive: true });
  const remote = (path: string) => `${client.host}:${path}`;
  const [from, to] = op === 'put' ? [source.path, `${remote(into)}/`] : [remote(dirs.remoteCopy), `${into}/`];
  const args =
    tool === 'scp'
      ? ['-q', '-r', ...sshOptions(client), '-P', String(client.port), from, to]
      : ['-a', '-s', '-e', rshCommand(client), from, to];
  const exit = await runTimed({ file: tool, args }, timeoutMs);
  const record = baseRecord(op, source, exit.wallSeconds, [tool, ...args]);
  const what = `${tool} ${op} of ${source.files} files`;
  const arrived = join(into, op === 'put' ? source.name : dirs.remoteCopy.split('/').pop()!);
  if (exit.code !== 0 || exit.timedOut) {
    record.failure = 'failed';
    record.error = `${what} failed (${exit.timedOut ? 'timed out' : `exit ${exit.code ?? exit.signal}`}): ${tail(exit.stderr || exit.stdout, 6)}`;
    await removeQuietly(into);
    return record;
  }
  await verifyTree(record, source, arrived, what);
  await removeQuietly(into);
  return record;
}
