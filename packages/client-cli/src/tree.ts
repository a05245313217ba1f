/**
 * Recursive transfers: `put -r LOCALDIR [REMOTEDIR]` and `get -r REMOTEDIR [LOCALDIR]`, placed by
 * scp's rules (into an existing directory as a subdirectory, else as the new name). One session
 * carries the whole tree: directories first (empty ones too), then small files in batches (one
 * request, one bundle and one commit for up to MAX_BATCH_FILES files) and larger files one transfer
 * each, several batches and files in flight at once. Every file is verified by its SHA-256 and
 * appears only when complete; a failure on one file is reported on its own line and the rest goes
 * on; `--resume` skips what is already there (same size and SHA-256) and continues partial files.
 */
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { FerryError, MAX_BATCH_FILES, MAX_CONTROL_BYTES, type WalkEntry } from '@ferry/protocol';
import { LocalDiskStorage, sha256File } from '@ferry/storage';
import type { BatchFile, FerryClient, FetchedFile, TransferOptions, TransferProgress } from './client.js';
import type { CommandContext } from './commands.js';
import { describeError, ReportedError } from './errors.js';
import { scanLocal } from './local-tree.js';
import { formatBytes, formatDuration, formatRate } from './output.js';
import { TreeProgress } from './progress.js';
import { stateDir } from './state-dir.js';

/** Files up to this size travel in batches; larger ones have a transfer each. */
export const SMALL_FILE_BYTES = 256 * 1024;
/** A batch holds at most this many bytes of files (the protocol allows MAX_BATCH_BYTES). */
export const BATCH_BYTES = 1024 * 1024;
/** Room for a batch's file list in its request (a control message is at most MAX_CONTROL_BYTES). */
const BATCH_REQUEST_BYTES = MAX_CONTROL_BYTES - 1024;
/** Batches in flight at once, and large files (the server allows 16 transfers per session). */
const BATCHES_IN_FLIGHT = 8;
const FILES_IN_FLIGHT = 4;
/** Directory requests in flight at once. */
const MKDIRS_IN_FLIGHT = 32;

export interface TreeFlags {
  force: boolean;
  resume: boolean;
  /** Keep permission bits (-p); modification times are always kept. */
  preserve: boolean;
  /** Follow symbolic links that stay inside the local tree (put -r). */
  followLinks: boolean;
}

/** Where a file of the tree comes from and goes to. */
interface TreeFile {
  rel: string;
  remote: string;
  local: string;
  size: number;
}

/** Errors after which nothing more of the tree can move in this session: they end the whole run. */
const SESSION_ERRORS = new Set([
  'ECANCELED',
  'ECONNRESET',
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ETIMEDOUT',
  'EPROTO',
  'EVERSION',
  'EINTERNAL',
]);

/**
 * The outcome of a tree transfer, file by file: events, one error line per failed file, one display
 * for the whole tree, and the summary.
 */
class TreeRun {
  readonly progress: TreeProgress;
  readonly started = performance.now();
  files = 0;
  bytes = 0;
  placed = 0;
  skipped = 0;
  failed = 0;
  /** Directories that could not be made or read (their files fail on their own too). */
  otherFailures = 0;
  moved = 0;
  first: { code: string; exitCode: number } | undefined;
  /** Set when the session failed or the user canceled: nothing more is started. */
  fatal: unknown;

  constructor(
    private readonly ctx: CommandContext,
    private readonly op: 'get' | 'put',
    private readonly top: { remote: string; local: string },
    /** The command's arguments as typed (the same command continues the tree; '' = left out). */
    private readonly typed: { remote: string; local: string },
  ) {
    this.progress = new TreeProgress(ctx.out, op, op === 'put' ? top.local : top.remote);
  }

  get stopped(): boolean {
    return this.fatal !== undefined || this.ctx.signal?.aborted === true;
  }

  /** Starts the display; without totals (a walk still streaming in), they come with grow(). */
  start(files: number | undefined, bytes: number | undefined): void {
    this.files = files ?? 0;
    this.bytes = bytes ?? 0;
    this.ctx.out.event({
      type: 'start',
      op: this.op,
      tree: true,
      remote: this.top.remote,
      local: this.top.local,
      ...(files !== undefined ? { files } : {}),
      ...(bytes !== undefined ? { size: bytes } : {}),
    });
    this.progress.start(this.files, this.bytes);
  }

  /** More files found (a page of the walk). */
  grow(files: number, bytes: number): void {
    this.files += files;
    this.bytes += bytes;
    this.progress.grow(files, bytes);
  }

  done(file: TreeFile, how: { sha256?: string; skipped?: boolean; transferred?: number }): void {
    this.progress.fileDone();
    if (how.skipped === true) this.skipped++;
    else this.placed++;
    this.moved += how.transferred ?? (how.skipped === true ? 0 : file.size);
    this.ctx.out.event({
      type: 'done',
      op: this.op,
      remote: file.remote,
      local: file.local,
      bytes: file.size,
      ...(how.sha256 !== undefined ? { sha256: how.sha256 } : {}),
      ...(how.skipped === true ? { skipped: true } : {}),
    });
  }

  /** A file (or directory) failed; a failure of the session itself stops the run instead. */
  fail(what: { remote: string; local: string }, error: unknown, counts = true): void {
    if (this.isFatal(error)) {
      this.fatal ??= error;
      return;
    }
    if (counts) {
      this.progress.fileDone();
      this.failed++;
    } else {
      this.otherFailures++;
    }
    const report = describeError(error);
    this.first ??= report;
    const name = this.op === 'get' ? what.remote : what.local;
    this.ctx.out.error(report.code, `${this.op} ${name}: ${withoutName(report.message, name)}`, {
      op: this.op,
      remote: what.remote,
      local: what.local,
    });
  }

  private isFatal(error: unknown): boolean {
    if (this.ctx.signal?.aborted === true) return true;
    const code = (error as { code?: unknown })?.code;
    return (typeof code === 'string' && SESSION_ERRORS.has(code)) || this.ctx.client.closed;
  }

  /** Ends the display; prints the summary; throws ReportedError if anything failed. */
  finish(): void {
    this.progress.stop();
    if (this.fatal === undefined && this.ctx.signal?.aborted === true) {
      this.fatal = new FerryError('ECANCELED', 'canceled');
    }
    const { out } = this.ctx;
    const seconds = (performance.now() - this.started) / 1000;
    const notStarted = this.files - this.placed - this.skipped - this.failed;
    out.event({
      type: 'summary',
      op: this.op,
      remote: this.top.remote,
      local: this.top.local,
      files: this.files,
      placed: this.placed,
      skipped: this.skipped,
      failed: this.failed,
      directoriesFailed: this.otherFailures,
      notStarted,
      bytes: this.bytes,
      transferred: this.moved,
      seconds: Math.round(seconds * 1e6) / 1e6,
    });
    if (this.fatal !== undefined) {
      const report = describeError(this.fatal);
      const hint = `; ${this.ctx.resumeHint({ op: this.op, ...this.typed, recursive: true })}`;
      out.error(
        report.code,
        `${this.op} -r ${this.op === 'get' ? this.top.remote : this.top.local}: ${report.message} after ${this.placed + this.skipped} of ${this.files} files${hint}`,
        { op: this.op, remote: this.top.remote, local: this.top.local },
      );
      throw new ReportedError(report.code, report.exitCode);
    }
    const rate = seconds > 0 && this.moved > 0 ? `, ${formatRate(this.moved / seconds)}` : '';
    const already = this.skipped > 0 ? `, ${this.skipped} already there` : '';
    const [from, to] =
      this.op === 'put' ? [this.top.local, this.top.remote] : [this.top.remote, this.top.local];
    if (this.first === undefined) {
      out.done(
        `${this.op === 'put' ? 'sent' : 'received'} ${from} -> ${to || '.'}: ${this.files} file(s), ${formatBytes(this.bytes)} in ${formatDuration(seconds)}${rate}${already}`,
      );
      return;
    }
    const directories =
      this.otherFailures > 0
        ? `, ${this.otherFailures} director${this.otherFailures === 1 ? 'y' : 'ies'} failed`
        : '';
    out.tell(
      `${this.failed} of ${this.files} files failed${directories}${this.placed > 0 ? `, ${this.placed} ${this.op === 'put' ? 'sent' : 'received'}` : ''}${already}`,
    );
    throw new ReportedError(this.first.code, this.first.exitCode);
  }
}

function withoutName(message: string, name: string): string {
  for (const mention of [JSON.stringify(name), name]) {
    if (message.startsWith(`${mention}: `)) return message.slice(mention.length + 2);
    if (message.startsWith(`${mention} `)) return message.slice(mention.length + 1);
  }
  return message;
}

/** Runs `jobs`, `limit` at a time, until done or the run stops. */
async function runJobs(run: TreeRun, jobs: ReadonlyArray<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length && !run.stopped) await jobs[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
}

/** Jobs that arrive while others run (a walk streaming in); `close()` once no more will come. */
class JobQueue {
  readonly #jobs: Array<() => Promise<void>> = [];
  #closed = false;
  #wake: (() => void) | undefined;

  push(job: () => Promise<void>): void {
    this.#jobs.push(job);
    this.#wake?.();
  }

  close(): void {
    this.#closed = true;
    this.#wake?.();
  }

  /** The next job, waiting for one; undefined once the queue is closed and empty. */
  async next(): Promise<(() => Promise<void>) | undefined> {
    for (;;) {
      const job = this.#jobs.shift();
      if (job !== undefined || this.#closed) return job;
      await new Promise<void>((resolve) => {
        const previous = this.#wake;
        this.#wake = () => {
          this.#wake = undefined;
          previous?.();
          resolve();
        };
      });
    }
  }
}

/** Runs the queue's jobs, `limit` at a time, until it is closed and empty or the run stops. */
async function runQueue(run: TreeRun, queue: JobQueue, limit: number): Promise<void> {
  const worker = async (): Promise<void> => {
    while (!run.stopped) {
      const job = await queue.next();
      if (job === undefined) return;
      await job();
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

/**
 * Groups small files into batches as they come: at most MAX_BATCH_FILES files and BATCH_BYTES bytes
 * each, with a file list that fits one request (`entryBytes`: the JSON size of a file's entry in it).
 */
class Batcher<T extends { size: number }> {
  #current: T[] = [];
  #bytes = 0;
  #json = 0;

  constructor(
    private readonly entryBytes: (f: T) => number,
    private readonly emit: (batch: T[]) => void,
  ) {}

  add(file: T): void {
    const entry = this.entryBytes(file) + 1;
    if (
      this.#current.length > 0 &&
      (this.#current.length >= MAX_BATCH_FILES ||
        this.#bytes + file.size > BATCH_BYTES ||
        this.#json + entry > BATCH_REQUEST_BYTES)
    ) {
      this.flush();
    }
    this.#current.push(file);
    this.#bytes += file.size;
    this.#json += entry;
  }

  flush(): void {
    if (this.#current.length > 0) this.emit(this.#current);
    this.#current = [];
    this.#bytes = 0;
    this.#json = 0;
  }
}

/** The batches of `files` (see Batcher), at once. */
function batchesOf<T extends { size: number }>(files: readonly T[], entryBytes: (f: T) => number): T[][] {
  const batches: T[][] = [];
  const batcher = new Batcher(entryBytes, (batch) => batches.push(batch));
  for (const file of files) batcher.add(file);
  batcher.flush();
  return batches;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A remote path inside a remote directory ('' is the root). */
function remoteJoin(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/**
 * Where an interrupted tree went, so that the same command with --resume continues it there: scp's
 * rule sends `put -r photos album` to `album` when it does not exist and to `album/photos` once it
 * does, which a second run would otherwise get wrong. One small file per interrupted tree in
 * `$XDG_STATE_HOME/ferry/trees` (default ~/.local/state), removed when the tree completes.
 */
class PlacementRecord {
  readonly #path: string;

  constructor(env: NodeJS.ProcessEnv, key: string) {
    const name = createHash('sha256').update(key).digest('hex').slice(0, 32);
    this.#path = join(stateDir(env), 'trees', `${name}.json`);
  }

  async read(): Promise<string | undefined> {
    try {
      const value = JSON.parse(await readFile(this.#path, 'utf8')) as { target?: unknown };
      return typeof value.target === 'string' ? value.target : undefined;
    } catch {
      return undefined;
    }
  }

  async write(target: string): Promise<void> {
    try {
      await mkdir(dirname(this.#path), { recursive: true, mode: 0o700 });
      await writeFile(this.#path, `${JSON.stringify({ target })}\n`, { mode: 0o600 });
    } catch {
      // Only a convenience for --resume: never fail a transfer over it.
    }
  }

  async remove(): Promise<void> {
    await rm(this.#path, { force: true }).catch(() => {});
  }
}

/** Keeps `read`'s deltas flowing into the tree's byte count (progress callbacks give totals). */
function byteCounter(run: TreeRun): (total: number) => void {
  let last = 0;
  return (total) => {
    if (total > last) run.progress.addBytes(total - last);
    last = Math.max(last, total);
  };
}

/** The options of a large file's own transfer (put or get), its bytes counted as they move. */
function largeTransferOptions(
  ctx: CommandContext,
  flags: TreeFlags,
  count: (total: number) => void,
): TransferOptions {
  return {
    overwrite: flags.force,
    resume: flags.resume,
    preserveMode: flags.preserve,
    onProgress: (p: TransferProgress) => {
      if (p.phase === 'transferring') count(p.bytes);
    },
    ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}),
  };
}

/**
 * Whether the remote file and the local file at `localPath` have the same SHA-256 (a resumed tree's
 * file that an earlier run moved whole); if so it is done, skipped, and its bytes counted.
 */
async function skipIfIdentical(
  run: TreeRun,
  ctx: CommandContext,
  f: TreeFile,
  localPath: string,
  count: (total: number) => void,
): Promise<boolean> {
  const [remote, local] = await Promise.all([ctx.client.hash(f.remote), sha256File(localPath)]);
  if (remote.sha256 !== local) return false;
  count(f.size);
  run.done(f, { sha256: local, skipped: true });
  return true;
}

// ---- put -r ---------------------------------------------------------------------------------------

export async function putTree(
  ctx: CommandContext,
  localTop: string,
  remoteArg: string | undefined,
  flags: TreeFlags,
): Promise<void> {
  const { client, out } = ctx;
  client.requireTrees('put -r');
  const top = await stat(localTop).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new FerryError('ENOENT', `no such local directory: ${localTop}`);
    throw error;
  });
  if (!top.isDirectory()) {
    throw new FerryError('ENOTDIR', `${localTop} is not a directory (put without -r sends a file)`);
  }
  const record = new PlacementRecord(
    out.env,
    `put\0${client.remoteAddress}\0${resolve(localTop)}\0${remoteArg ?? ''}`,
  );
  const target = await placeRemote(
    client,
    localTop,
    remoteArg,
    flags.resume ? await record.read() : undefined,
  );
  const tree = scanLocal(localTop, { followLinks: flags.followLinks });
  for (const { rel, why } of tree.skipped) {
    out.warn(`skipped ${join(localTop, rel)}: ${why}`, { op: 'put', local: join(localTop, rel) });
  }
  const run = new TreeRun(
    ctx,
    'put',
    { remote: target, local: localTop },
    { remote: remoteArg ?? '', local: localTop },
  );
  const files: Array<TreeFile & { path: string; mtimeMs: number; mode: number }> = tree.files.map((f) => ({
    rel: f.rel,
    remote: remoteJoin(target, f.rel),
    local: join(localTop, f.rel),
    path: f.path,
    size: f.size,
    mtimeMs: f.mtimeMs,
    mode: f.mode,
  }));
  run.start(
    files.length,
    files.reduce((n, f) => n + f.size, 0),
  );
  try {
    for (const { rel, error } of tree.unreadable) {
      run.fail({ remote: remoteJoin(target, rel), local: join(localTop, rel) }, error, false);
    }
    await makeRemoteDir(client, target, flags.preserve ? top.mode & 0o777 : undefined);
    await record.write(target);
    await makeRemoteDirs(run, client, target, tree.dirs, flags.preserve);
    if (!run.stopped) {
      const small = files.filter((f) => f.size <= SMALL_FILE_BYTES);
      const large = files.filter((f) => f.size > SMALL_FILE_BYTES);
      const batches = batchesOf(
        small,
        (f) => Buffer.byteLength(JSON.stringify({ path: f.remote })) + 150,
      ).map((batch) => () => putBatch(run, ctx, batch, flags));
      const singles = large.map((f) => () => putLarge(run, ctx, f, flags));
      await Promise.all([runJobs(run, batches, BATCHES_IN_FLIGHT), runJobs(run, singles, FILES_IN_FLIGHT)]);
    }
  } catch (error) {
    run.fatal ??= error;
  }
  if (run.fatal === undefined && run.first === undefined) await record.remove();
  run.finish();
}

/** scp's rule: into an existing directory as a subdirectory, else as the new name. */
async function placeRemote(
  client: FerryClient,
  localTop: string,
  remoteArg: string | undefined,
  recorded: string | undefined,
): Promise<string> {
  if (recorded !== undefined) return recorded;
  const name = basename(resolve(localTop));
  if (remoteArg === undefined || remoteArg === '' || remoteArg === '.') return name;
  const trimmed = remoteArg.replace(/\/+$/, '');
  if (remoteArg.endsWith('/')) return remoteJoin(trimmed, name);
  const entry = await client.stat(trimmed).catch(() => undefined);
  return entry?.type === 'dir' ? remoteJoin(trimmed, name) : trimmed;
}

/** Creates the tree's top directory on the server; an existing directory is fine (merge). */
async function makeRemoteDir(client: FerryClient, path: string, mode: number | undefined): Promise<void> {
  try {
    await client.mkdir(path, { parents: false, ...(mode !== undefined ? { mode } : {}) });
  } catch (error) {
    if (!(error instanceof FerryError && error.code === 'EEXIST')) throw error;
    const entry = await client.stat(path);
    if (entry.type !== 'dir')
      throw new FerryError('EEXIST', `${path} exists on the server and is not a directory`);
  }
}

/** Every directory of the tree, a level at a time (a parent exists before its children ask for it). */
async function makeRemoteDirs(
  run: TreeRun,
  client: FerryClient,
  target: string,
  dirs: ReadonlyArray<{ rel: string; mode: number }>,
  preserve: boolean,
): Promise<void> {
  const levels = new Map<number, Array<{ rel: string; mode: number }>>();
  for (const dir of dirs) {
    const depth = dir.rel.split('/').length;
    levels.set(depth, [...(levels.get(depth) ?? []), dir]);
  }
  for (const depth of [...levels.keys()].sort((a, b) => a - b)) {
    const level = levels.get(depth)!;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < level.length && !run.stopped) {
        const dir = level[next++]!;
        const remote = remoteJoin(target, dir.rel);
        await client
          .mkdir(remote, { parents: true, ...(preserve ? { mode: dir.mode } : {}) })
          .catch((error: unknown) => run.fail({ remote, local: dir.rel }, error, false));
      }
    };
    await Promise.all(Array.from({ length: Math.min(MKDIRS_IN_FLIGHT, level.length) }, worker));
  }
}

async function putBatch(
  run: TreeRun,
  ctx: CommandContext,
  batch: ReadonlyArray<TreeFile & { path: string; mtimeMs: number; mode: number }>,
  flags: TreeFlags,
): Promise<void> {
  const ready: Array<{ file: TreeFile; batchFile: BatchFile }> = [];
  for (const f of batch) {
    try {
      // Small files, read whole at once: no round trip through the thread pool per file.
      const data = readFileSync(f.path);
      ready.push({
        file: { ...f, size: data.length },
        batchFile: {
          path: f.remote,
          data,
          sha256: sha256(data),
          mtimeMs: f.mtimeMs,
          ...(flags.preserve ? { mode: f.mode } : {}),
        },
      });
    } catch (error) {
      run.fail(f, localError(error, f.local));
    }
  }
  if (ready.length === 0) return;
  const count = byteCounter(run);
  try {
    const outcomes = await ctx.client.putFiles(
      ready.map((r) => r.batchFile),
      {
        overwrite: flags.force,
        skipIdentical: flags.resume,
        onBytes: count,
        ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}),
      },
    );
    outcomes.forEach((outcome, i) => {
      const { file, batchFile } = ready[i]!;
      if (outcome.kind === 'failed') run.fail(file, outcome.error);
      else {
        // What was skipped moved no bytes, but it is done: the display counts it.
        if (outcome.kind === 'skipped') run.progress.addBytes(file.size);
        run.done(file, { sha256: batchFile.sha256, skipped: outcome.kind === 'skipped' });
      }
    });
  } catch (error) {
    for (const { file } of ready) {
      run.fail(file, error);
      if (run.stopped) break;
    }
  }
}

async function putLarge(
  run: TreeRun,
  ctx: CommandContext,
  f: TreeFile & { path: string },
  flags: TreeFlags,
): Promise<void> {
  const count = byteCounter(run);
  try {
    const result = await ctx.client.put(f.path, f.remote, largeTransferOptions(ctx, flags, count));
    count(f.size);
    run.done(f, { sha256: result.sha256, transferred: result.bytesTransferred });
  } catch (error) {
    // Resuming a tree: a file already there whole is what an earlier run sent.
    if (flags.resume && error instanceof FerryError && error.code === 'EEXIST') {
      try {
        if (await skipIfIdentical(run, ctx, f, f.path, count)) return;
      } catch (compareError) {
        run.fail(f, compareError);
        return;
      }
    }
    run.fail(f, error);
  }
}

/** A local file error, named by the path the user knows. */
function localError(error: unknown, local: string): unknown {
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') return new FerryError('ENOENT', `${local}: vanished since the tree was scanned`);
  if (code === 'EACCES' || code === 'EPERM') return new FerryError('EACCES', `${local}: permission denied`);
  if (code === 'EISDIR') return new FerryError('EISDIR', `${local} is a directory`);
  return error;
}

// ---- get -r ---------------------------------------------------------------------------------------

export async function getTree(
  ctx: CommandContext,
  remoteTop: string,
  localArg: string | undefined,
  flags: TreeFlags,
): Promise<void> {
  const { client, out } = ctx;
  client.requireTrees('get -r');
  const source = remoteTop.replace(/\/+$/, '').replace(/^\.$/, '');
  const entry = await client.stat(source);
  if (entry.type !== 'dir') {
    throw new FerryError(
      'ENOTDIR',
      `${source} is not a directory on the server (get without -r fetches a file)`,
    );
  }
  const record = new PlacementRecord(
    out.env,
    `get\0${client.remoteAddress}\0${source}\0${resolve(localArg ?? '.')}`,
  );
  const localTop = flags.resume
    ? ((await record.read()) ?? placeLocal(source, localArg))
    : placeLocal(source, localArg);
  const run = new TreeRun(
    ctx,
    'get',
    { remote: source, local: localTop },
    { remote: remoteTop, local: localArg ?? '' },
  );
  // The walk streams in while the first batches already move: totals grow page by page.
  run.start(undefined, undefined);
  const dirs: WalkEntry[] = [];
  const batches = new JobQueue();
  const singles = new JobQueue();
  let store: LocalDiskStorage | undefined;
  try {
    makeLocalDir(localTop);
    await record.write(localTop);
    store = await LocalDiskStorage.open(localTop, { allowPathRaces: true });
    const local = store;
    const batcher = new Batcher<TreeFile & { entry: WalkEntry }>(
      (f) => Buffer.byteLength(JSON.stringify({ path: f.remote })) + 90,
      (batch) => batches.push(() => getBatch(run, ctx, local, batch, flags)),
    );
    const walk = (async () => {
      try {
        for await (const page of client.walk(source)) {
          if (run.stopped) break;
          let files = 0;
          let bytes = 0;
          for (const e of page) {
            const remote = remoteJoin(source, e.path);
            const path = join(localTop, ...e.path.split('/'));
            if (e.type === 'dir') {
              // Pre-order: its parent was made already.
              dirs.push(e);
              try {
                mkdirSync(path, { recursive: true });
              } catch (error) {
                run.fail({ remote, local: path }, error, false);
              }
            } else if (e.type === 'file') {
              const file = { rel: e.path, remote, local: path, size: e.size, entry: e };
              files++;
              bytes += e.size;
              if (e.size <= SMALL_FILE_BYTES) batcher.add(file);
              else singles.push(() => getLarge(run, ctx, file, flags));
            } else {
              const what =
                e.type === 'link'
                  ? 'a symbolic link on the server, not followed'
                  : 'a special file, not sent';
              out.warn(`skipped ${remote}: ${what}`, { op: 'get', remote });
            }
          }
          run.grow(files, bytes);
        }
        batcher.flush();
      } catch (error) {
        run.fatal ??= error;
      } finally {
        batches.close();
        singles.close();
      }
    })();
    await Promise.all([
      walk,
      runQueue(run, batches, BATCHES_IN_FLIGHT),
      runQueue(run, singles, FILES_IN_FLIGHT),
    ]);
    if (run.fatal === undefined && !run.stopped) {
      if (flags.preserve) keepDirectoryAttributes(localTop, dirs);
      if (run.first === undefined) {
        // Whole-file writes interrupted by a kill leave hidden temporary files; a complete tree needs none.
        await store.sweepUploads(0).catch(() => []);
        await record.remove();
      }
    }
  } catch (error) {
    run.fatal ??= error;
  } finally {
    await store?.close();
  }
  run.finish();
}

/** scp's rule, here: into an existing local directory as a subdirectory, else as the new name. */
function placeLocal(source: string, localArg: string | undefined): string {
  const name = source === '' ? undefined : source.split('/').at(-1);
  const dir = localArg ?? '.';
  const isDir = (() => {
    try {
      return statSync(dir).isDirectory();
    } catch {
      return false;
    }
  })();
  if (name === undefined) return dir; // the served root has no name: its contents go into LOCALDIR
  if (isDir || localArg === undefined || localArg.endsWith('/')) return join(dir, name);
  return localArg;
}

function makeLocalDir(path: string): void {
  try {
    mkdirSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw localError(error, path);
    if (!statSync(path).isDirectory())
      throw new FerryError('EEXIST', `${path} exists and is not a directory`);
  }
}

/** -p: directories get their modes and times once their contents are in (deepest first). */
function keepDirectoryAttributes(localTop: string, dirs: readonly WalkEntry[]): void {
  for (const dir of [...dirs].reverse()) {
    const path = join(localTop, ...dir.path.split('/'));
    try {
      if (dir.mode !== undefined) chmodSync(path, dir.mode);
      utimesSync(path, dir.mtimeMs / 1000, dir.mtimeMs / 1000);
    } catch {
      // A directory that could not be made was reported already.
    }
  }
}

async function getBatch(
  run: TreeRun,
  ctx: CommandContext,
  store: LocalDiskStorage,
  batch: ReadonlyArray<TreeFile & { entry: WalkEntry }>,
  flags: TreeFlags,
): Promise<void> {
  // What is here already: with --resume, its SHA-256 lets the server skip an identical file; without
  // --force, anything else here is not replaced (said before a byte moves).
  const asks: Array<{ file: TreeFile & { entry: WalkEntry }; sha256?: string }> = [];
  for (const file of batch) {
    const here = lstatOrUndefined(file.local);
    if (here === undefined || flags.force) {
      asks.push({ file });
      continue;
    }
    if (here.isDirectory()) {
      run.fail(file, new FerryError('EISDIR', `${file.local} is a directory here`));
      continue;
    }
    if (flags.resume && here.isFile() && here.size === file.size) {
      try {
        asks.push({ file, sha256: sha256(readFileSync(file.local)) });
        continue;
      } catch {
        // unreadable here: the write below says why
      }
    }
    run.fail(
      file,
      new FerryError(
        'EEXIST',
        `${file.local} already exists here with other contents; use --force to overwrite it`,
      ),
    );
  }
  if (asks.length === 0) return;
  const count = byteCounter(run);
  let fetched: FetchedFile[];
  try {
    fetched = await ctx.client.getFiles(
      asks.map((a) => ({ path: a.file.remote, ...(a.sha256 !== undefined ? { sha256: a.sha256 } : {}) })),
      { onBytes: count, ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}) },
    );
  } catch (error) {
    for (const { file } of asks) {
      run.fail(file, error);
      if (run.stopped) break;
    }
    return;
  }
  const writes: Array<{ file: TreeFile; sha256: string; index: number }> = [];
  const toWrite = [];
  for (const [i, result] of fetched.entries()) {
    const { file } = asks[i]!;
    if (result.kind === 'failed') run.fail(file, result.error);
    else if (result.kind === 'same') {
      run.progress.addBytes(file.size);
      run.done(file, { sha256: asks[i]!.sha256!, skipped: true });
    } else {
      writes.push({ file, sha256: result.sha256, index: toWrite.length });
      toWrite.push({
        path: file.rel,
        data: result.data,
        sha256: result.sha256,
        mtimeMs: result.mtimeMs,
        ...(flags.preserve && result.mode !== undefined ? { mode: result.mode } : {}),
      });
    }
  }
  if (toWrite.length === 0) return;
  const results = await store.writeFiles(toWrite, { overwrite: flags.force });
  for (const { file, sha256: digest, index } of writes) {
    const error = results[index];
    if (error !== undefined) run.fail(file, localWriteError(error, file.local));
    else run.done(file, { sha256: digest });
  }
}

async function getLarge(
  run: TreeRun,
  ctx: CommandContext,
  f: TreeFile & { entry: WalkEntry },
  flags: TreeFlags,
): Promise<void> {
  const count = byteCounter(run);
  const here = lstatOrUndefined(f.local);
  try {
    if (here !== undefined && !flags.force) {
      if (flags.resume && here.isFile() && here.size === f.size) {
        if (await skipIfIdentical(run, ctx, f, f.local, count)) return;
      }
      throw new FerryError(
        'EEXIST',
        `${f.local} already exists here with other contents; use --force to overwrite it`,
      );
    }
    const result = await ctx.client.get(f.remote, f.local, largeTransferOptions(ctx, flags, count));
    count(f.size);
    run.done(f, { sha256: result.sha256, transferred: result.bytesTransferred });
  } catch (error) {
    run.fail(f, error);
  }
}

function lstatOrUndefined(path: string): ReturnType<typeof lstatSync> | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/** A local store's error names the file by its client path ("a/b.txt"); say the local path instead. */
function localWriteError(error: FerryError, local: string): FerryError {
  const message = error.message.replace(/^(writing )?"[^"]*"(:)? ?/, '');
  return new FerryError(error.code, `${local}: ${message}`, { cause: error });
}
