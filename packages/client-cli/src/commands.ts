/**
 * The remote commands themselves (get, put, list, rename, delete, stat), run against one
 * FerryClient by both the one-shot subcommands and the shell. Each failed file is reported on its
 * own line; the command then throws a ReportedError carrying the exit code.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { usageError } from '@ferry/cli-kit';
import type { Entry } from '@ferry/protocol';
import { FerryError, MAX_PATH_BYTES } from '@ferry/protocol';
import type { FerryClient, TransferResult } from './client.js';
import type { CommandName } from './command-table.js';
import { describeError, ReportedError } from './errors.js';
import { formatBytes, formatDuration, formatRate, formatTime, type Output } from './output.js';
import { ProgressView } from './progress.js';

export interface CommandFlags {
  force: boolean;
  resume: boolean;
  dir?: string | undefined;
}

export interface TransferJob {
  op: 'get' | 'put';
  remote: string;
  local: string;
}

export interface CommandContext {
  client: FerryClient;
  out: Output;
  flags: CommandFlags;
  /** Cancels the running transfers (Ctrl-C). */
  signal?: AbortSignal;
  /** Asks a yes/no question; only the shell on a terminal offers one. */
  ask?: (question: string, defaultYes: boolean) => Promise<boolean>;
  /** Whether to resume a transfer the flags did not say to resume (the shell asks). */
  offerResume?: (job: TransferJob) => Promise<boolean>;
  /** Told about each transfer's end, so the shell can offer to resume what was interrupted. */
  transferEnded?: (job: TransferJob, error: unknown) => void;
  /** Told about each listing, for completion of remote names. */
  listed?: (dir: string, entries: readonly Entry[]) => void;
  /** What to do to continue an interrupted transfer, for the error line. */
  resumeHint: (job: TransferJob) => string;
}

/** Transfers running at once in a multi-file get or put (the protocol allows 4 flows). */
const PARALLEL_TRANSFERS = 4;
/** Errors after which the same command with --resume continues rather than restarts. */
const RESUMABLE = new Set([
  'ECANCELED',
  'ETIMEDOUT',
  'ECONNRESET',
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'EIO',
  'ENOSPC',
  'EFILECHANGED',
]);

export async function runCommand(
  name: CommandName,
  ctx: CommandContext,
  args: readonly string[],
): Promise<void> {
  switch (name) {
    case 'get':
      return transferAll(ctx, await planGet(args, ctx.flags.dir));
    case 'put':
      return transferAll(
        ctx,
        await planPut(args, ctx.flags.dir, (path) => isRemoteDirectory(ctx.client, path)),
      );
    case 'list':
      return list(ctx, args);
    case 'rename':
      return rename(ctx, args);
    case 'delete':
      return forEachName(ctx, 'delete', args, async (path) => {
        await ctx.client.delete(path);
        ctx.out.event({ type: 'done', op: 'delete', remote: path });
        ctx.out.done(`deleted ${path}`);
      });
    case 'stat':
      return forEachName(ctx, 'stat', args, async (path) => {
        const entry = await ctx.client.stat(path);
        ctx.out.event({ type: 'entry', ...entryFields(entry, path) });
        ctx.out.event({ type: 'done', op: 'stat', remote: path });
        ctx.out.result(describeEntry(ctx.out, path, entry));
      });
  }
}

/**
 * A remote path as the protocol can carry it; otherwise an error in words a person can act on
 * (the request's own check would say `schema: path: must be 1..4096 bytes of UTF-8`).
 */
export function checkRemotePath(path: string): string {
  const bytes = Buffer.byteLength(path, 'utf8');
  if (bytes > MAX_PATH_BYTES) {
    throw new FerryError('ENAMETOOLONG', `a path is at most ${MAX_PATH_BYTES} bytes; this one has ${bytes}`);
  }
  if (path.includes('\0')) throw new FerryError('EINVAL', 'a path cannot contain a NUL character');
  return path;
}

/** The last component of a remote path ("a/b.txt" -> "b.txt"). */
export function remoteBase(remote: string): string {
  const parts = remote.split('/').filter((p) => p !== '' && p !== '.');
  const last = parts.at(-1);
  if (last === undefined || last === '..')
    throw usageError(`cannot tell a file name from ${JSON.stringify(remote)}`);
  return last;
}

/** A remote path inside a remote directory ('' or '.' is the root). */
export function remoteJoin(dir: string, name: string): string {
  const trimmed = dir.replace(/\/+$/, '');
  return trimmed === '' || trimmed === '.' ? name : `${trimmed}/${name}`;
}

/** get REMOTE [LOCAL] | get A B C -d DIR: where each remote file goes here. */
export async function planGet(args: readonly string[], dir: string | undefined): Promise<TransferJob[]> {
  if (args.length === 0) throw usageError('get: which file? usage: get NAME [LOCAL], or get A B C -d DIR');
  if (dir !== undefined) {
    await requireLocalDirectory(dir);
    return args.map((remote) => ({
      op: 'get',
      remote: checkRemotePath(remote),
      local: join(dir, remoteBase(remote)),
    }));
  }
  if (args.length > 2) {
    throw usageError('get: to fetch several files give the local directory with -d DIR (get A B C -d DIR)');
  }
  const remote = checkRemotePath(args[0]!);
  let local = args[1] ?? remoteBase(remote);
  if (args[1] !== undefined && (local.endsWith('/') || (await isDirectory(local)))) {
    local = join(local, remoteBase(remote));
  }
  return [{ op: 'get', remote, local }];
}

/**
 * put LOCAL [REMOTE] | put A B C -d DIR: where each local file goes on the server. A REMOTE that is a
 * directory there (`isRemoteDirectory`) receives the file under its own name, as with scp.
 */
export async function planPut(
  args: readonly string[],
  dir: string | undefined,
  isRemoteDirectory: (path: string) => Promise<boolean> = async () => false,
): Promise<TransferJob[]> {
  if (args.length === 0) throw usageError('put: which file? usage: put FILE [REMOTE], or put A B C -d DIR');
  if (dir !== undefined) {
    return args.map((local) => ({
      op: 'put',
      local,
      remote: checkRemotePath(remoteJoin(dir, localBase(local))),
    }));
  }
  if (args.length > 2) {
    throw usageError('put: to send several files give the remote directory with -d DIR (put A B C -d DIR)');
  }
  const local = args[0]!;
  let remote = checkRemotePath(args[1] ?? localBase(local));
  if (args[1] !== undefined && (remote.endsWith('/') || (await isRemoteDirectory(remote)))) {
    remote = remoteJoin(remote, localBase(local));
  }
  return [{ op: 'put', local, remote: checkRemotePath(remote) }];
}

/** True if `path` is a directory on the server; anything else (missing, refused) is left to the put. */
async function isRemoteDirectory(client: FerryClient, path: string): Promise<boolean> {
  return client.stat(path).then(
    (entry) => entry.type === 'dir',
    () => false,
  );
}

function localBase(path: string): string {
  const base = basename(path);
  if (base === '' || base === '.' || base === '..') {
    throw usageError(`cannot tell a file name from ${JSON.stringify(path)}`);
  }
  return base;
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

async function requireLocalDirectory(dir: string): Promise<void> {
  const s = await stat(dir).catch(() => undefined);
  if (s === undefined) throw new FerryError('ENOENT', `local directory ${dir} does not exist`);
  if (!s.isDirectory()) throw new FerryError('ENOTDIR', `${dir} is not a directory`);
}

/** Runs the jobs, a few at a time, each with its own progress; reports every failure. */
async function transferAll(ctx: CommandContext, jobs: TransferJob[]): Promise<void> {
  const view = new ProgressView(ctx.out);
  const finished: string[] = [];
  const failures: { job: TransferJob; error: unknown }[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length && ctx.signal?.aborted !== true) {
      const job = jobs[next++]!;
      try {
        const line = await transferOne(ctx, view, job);
        if (line !== undefined) finished.push(line);
        ctx.transferEnded?.(job, undefined);
      } catch (error) {
        failures.push({ job, error });
        ctx.transferEnded?.(job, error);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(PARALLEL_TRANSFERS, jobs.length) }, worker));
  } finally {
    view.stop();
  }
  for (const line of finished) ctx.out.done(line);
  if (failures.length === 0) return;
  let first: { code: string; exitCode: number } | undefined;
  for (const { job, error } of failures) {
    const report = describeError(error);
    first ??= report;
    const hint = RESUMABLE.has(report.code) ? `; ${ctx.resumeHint(job)}` : '';
    const name = job.op === 'get' ? job.remote : job.local;
    ctx.out.error(report.code, `${job.op} ${name}: ${withoutName(report.message, name)}${hint}`, {
      op: job.op,
      remote: job.remote,
      local: job.local,
    });
    if (report.bug && ctx.out.env.FERRY_DEBUG === '1' && error instanceof Error) {
      ctx.out.stderr.write(`${error.stack}\n`);
    }
  }
  const skipped = jobs.length - finished.length - failures.length;
  if (jobs.length > 1) {
    ctx.out.note(
      `${failures.length} of ${jobs.length} transfers failed${skipped > 0 ? `, ${skipped} not started` : ''}`,
    );
  }
  throw new ReportedError(first!.code, first!.exitCode);
}

/** One get or put; returns the line to print when it succeeded, undefined when the user skipped it. */
async function transferOne(
  ctx: CommandContext,
  view: ProgressView,
  job: TransferJob,
): Promise<string | undefined> {
  const { client, out, flags } = ctx;
  let overwrite = flags.force;
  let size = 0;
  if (job.op === 'put') {
    const s = await stat(job.local).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') throw new FerryError('ENOENT', `no such local file: ${job.local}`);
      throw error;
    });
    if (s.isDirectory()) {
      throw new FerryError(
        'EISDIR',
        `${job.local} is a directory; ferry sends files (put A B C -d DIR for several)`,
      );
    }
    if (!s.isFile()) throw new FerryError('EINVAL', `${job.local} is not a regular file`);
    size = s.size;
  } else if (!overwrite) {
    const s = await stat(job.local).catch(() => undefined);
    if (s?.isDirectory()) throw new FerryError('EISDIR', `${job.local} is a directory`);
    if (s !== undefined) {
      if (ctx.ask === undefined || !(await ctx.ask(`${job.local} exists here; overwrite it?`, false))) {
        if (ctx.ask !== undefined) return undefined;
        throw new FerryError('EEXIST', `${job.local} already exists here; use --force to overwrite it`);
      }
      overwrite = true;
    }
  }
  const resume = flags.resume || ((await ctx.offerResume?.(job)) ?? false);
  // Ctrl-C at a question cancels; starting afresh would throw away what an interrupted run kept.
  if (ctx.signal?.aborted) throw new FerryError('ECANCELED', 'canceled');

  let started = false;
  const start = (bytes: number): void => {
    if (started) return;
    started = true;
    size = bytes;
    out.event({ type: 'start', op: job.op, remote: job.remote, local: job.local, size: bytes });
  };
  if (job.op === 'put') start(size);
  const handle = view.start({ op: job.op, remote: job.remote, local: job.local, size });
  const run = (overwriteNow: boolean, resumeNow: boolean): Promise<TransferResult> => {
    const options = {
      overwrite: overwriteNow,
      resume: resumeNow,
      onProgress: (p: { phase: 'hashing' | 'transferring' | 'verifying'; bytes: number; size: number }) => {
        start(p.size);
        handle.update(p);
      },
      ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}),
    };
    return job.op === 'get'
      ? client.get(job.remote, job.local, options)
      : client.put(job.local, job.remote, options);
  };
  let result: TransferResult;
  try {
    try {
      result = await run(overwrite, resume);
    } catch (error) {
      // The server refused to replace its file: on a terminal, ask, and send only what is missing.
      if (
        !(error instanceof FerryError && error.code === 'EEXIST' && job.op === 'put' && ctx.ask !== undefined)
      ) {
        throw error;
      }
      if (
        !(await ctx.ask(`${job.remote} exists on the server; overwrite it?`, false)) ||
        ctx.signal?.aborted
      ) {
        handle.end(false);
        return undefined;
      }
      result = await run(true, true);
    }
  } catch (error) {
    handle.end(false);
    throw error;
  }
  start(result.size);
  handle.end(true);
  out.event({
    type: 'done',
    op: job.op,
    remote: job.remote,
    local: job.local,
    bytes: result.size,
    transferred: result.bytesTransferred,
    seconds: round(result.seconds),
    sha256: result.sha256,
    resumedBytes: result.resumedBytes,
    stats: result.stats,
  });
  const rate =
    result.seconds > 0 && result.bytesTransferred > 0
      ? `, ${formatRate(result.bytesTransferred / result.seconds)}`
      : '';
  const resumed = result.resumedBytes > 0 ? `, resumed after ${formatBytes(result.resumedBytes)}` : '';
  const summary = `${formatBytes(result.size)} in ${formatDuration(result.seconds)}${rate}${resumed}`;
  return job.op === 'get'
    ? `received ${job.remote} -> ${job.local} (${summary})`
    : `sent ${job.local} -> ${job.remote} (${summary})`;
}

function round(seconds: number): number {
  return Math.round(seconds * 1e6) / 1e6;
}

async function list(ctx: CommandContext, args: readonly string[]): Promise<void> {
  if (args.length > 1) throw usageError('list: give at most one directory');
  const dir = checkRemotePath(args[0] ?? '');
  const entries = [...(await ctx.client.list(dir))].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
  ctx.listed?.(dir, entries);
  const { out } = ctx;
  for (const entry of entries)
    out.event({ type: 'entry', ...entryFields(entry, remoteJoin(dir, entry.name)) });
  out.event({ type: 'done', op: 'list', remote: dir, count: entries.length });
  if (out.json) return;
  if (entries.length === 0) {
    out.note(dir === '' ? '(no files)' : `(no files in ${dir})`);
    return;
  }
  const sizes = entries.map((e) => (e.type === 'file' ? formatBytes(e.size) : '-'));
  const width = Math.max(...sizes.map((s) => s.length));
  entries.forEach((entry, i) => {
    const name =
      entry.type === 'dir'
        ? out.styleOut(['bold', 'blue'], `${entry.name}/`)
        : entry.type === 'other'
          ? `${entry.name}?`
          : entry.name;
    out.result(`${sizes[i]!.padStart(width)}  ${formatTime(entry.mtimeMs)}  ${name}`);
  });
  if (entries.some((e) => e.type === 'other')) out.note(`(name? = ${NOT_SERVED})`);
}

/** What an entry of kind 'other' is: the server lists it but never opens it. */
const NOT_SERVED = 'not served: a special file, or a link leading out of the served directory';

function entryFields(entry: Entry, path: string): Record<string, unknown> {
  return { name: entry.name, path, kind: entry.type, size: entry.size, mtimeMs: entry.mtimeMs };
}

function describeEntry(out: Output, path: string, entry: Entry): string {
  const kind = entry.type === 'dir' ? 'directory' : entry.type === 'file' ? 'file' : NOT_SERVED;
  const size = entry.type === 'file' ? `, ${formatBytes(entry.size)} (${entry.size} bytes)` : '';
  return `${out.styleOut('bold', path)}: ${kind}${size}, modified ${formatTime(entry.mtimeMs)}`;
}

async function rename(ctx: CommandContext, args: readonly string[]): Promise<void> {
  if (args.length !== 2) throw usageError('rename: usage: rename OLD NEW');
  const [from, to] = (args as [string, string]).map(checkRemotePath) as [string, string];
  let overwrite = ctx.flags.force;
  try {
    await ctx.client.rename(from, to, { overwrite });
  } catch (error) {
    if (!(error instanceof FerryError && error.code === 'EEXIST' && !overwrite && ctx.ask !== undefined))
      throw error;
    if (!(await ctx.ask(`${to} exists on the server; replace it?`, false))) return;
    overwrite = true;
    await ctx.client.rename(from, to, { overwrite });
  }
  ctx.out.event({ type: 'done', op: 'rename', from, to });
  ctx.out.done(`renamed ${from} -> ${to}`);
}

/**
 * `message` without a leading mention of `name` (`"a.txt": no such file` -> `no such file`), for a
 * line that already starts with the name (`get a.txt: …`).
 */
export function withoutName(message: string, name: string): string {
  for (const mention of [JSON.stringify(name), name]) {
    if (message.startsWith(`${mention}: `)) return message.slice(mention.length + 2);
    if (message.startsWith(`${mention} `)) return message.slice(mention.length + 1);
  }
  return message;
}

/** Runs `action` on each name; reports each failure and goes on, like rm and stat do. */
async function forEachName(
  ctx: CommandContext,
  op: string,
  names: readonly string[],
  action: (name: string) => Promise<void>,
): Promise<void> {
  if (names.length === 0) throw usageError(`${op}: which file? usage: ${op} NAME`);
  if (names.length === 1) return action(checkRemotePath(names[0]!));
  let first: { code: string; exitCode: number } | undefined;
  for (const name of names) {
    try {
      await action(checkRemotePath(name));
    } catch (error) {
      const report = describeError(error);
      first ??= report;
      ctx.out.error(report.code, `${op} ${name}: ${withoutName(report.message, name)}`, { op, remote: name });
    }
  }
  if (first !== undefined) throw new ReportedError(first.code, first.exitCode);
}

/** Local names for completion of `put`: entries of the directory part of `partial`. */
export async function localNames(partial: string): Promise<string[]> {
  const slash = partial.lastIndexOf('/');
  const dir = slash < 0 ? '.' : partial.slice(0, slash + 1) || '/';
  const prefix = slash < 0 ? '' : partial.slice(0, slash + 1);
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => !e.name.startsWith('.ferry-partial-'))
    .map((e) => `${prefix}${e.name}${e.isDirectory() ? '/' : ''}`);
}
