/**
 * The remote commands themselves (get, put, list, rename, delete, stat), run against one
 * FerryClient by both the one-shot subcommands and the shell. Each failed file is reported on its
 * own line; the command then throws a ReportedError carrying the exit code.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { flagOption, stringOption, usageError } from '@ferry/cli-kit';
import type { Entry } from '@ferry/protocol';
import { FerryError, MAX_PATH_BYTES } from '@ferry/protocol';
import type { FerryClient, TransferResult } from './client.js';
import type { CommandName } from './command-table.js';
import { describeError, ReportedError } from './errors.js';
import { expand, expandLocal, hasGlob, unescapeGlob } from './glob.js';
import { formatBytes, formatDuration, formatRate, formatTime, type Output } from './output.js';
import { ProgressView } from './progress.js';
import type { TreeFlags } from './tree.js';

export interface CommandFlags {
  force: boolean;
  resume: boolean;
  dir?: string | undefined;
  /** get/put -r, list -R: a whole tree. */
  recursive?: boolean;
  /** get/put -p: keep permission bits. */
  preserve?: boolean;
  /** put -r -L: follow links that stay inside the tree. */
  followLinks?: boolean;
  /** mkdir -p. */
  parents?: boolean;
}

/** The flags of one command, from its parsed options (the one-shot command and the shell alike). */
export function commandFlags(options: Record<string, unknown>): CommandFlags {
  return {
    force: flagOption(options, 'force'),
    resume: flagOption(options, 'resume'),
    dir: stringOption(options, 'dir', '-d'),
    recursive: flagOption(options, 'recursive'),
    preserve: flagOption(options, 'preserve'),
    followLinks: flagOption(options, 'followLinks'),
    parents: flagOption(options, 'parents'),
  };
}

export interface TransferJob {
  op: 'get' | 'put';
  remote: string;
  local: string;
  /** A whole tree (-r). */
  recursive?: boolean;
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
      if (ctx.flags.recursive === true) return getRecursive(ctx, args);
      return transferAll(ctx, await planGetPatterns(ctx, args));
    case 'put':
      if (ctx.flags.recursive === true) return putRecursive(ctx, args);
      return transferAll(ctx, await planPutPatterns(ctx, args));
    case 'list':
      if (ctx.flags.recursive === true) return listRecursive(ctx, args);
      return list(ctx, args);
    case 'rename':
      return rename(ctx, args);
    case 'delete':
      return forEachName(
        ctx,
        'delete',
        args,
        async (path) => {
          await ctx.client.delete(path);
          ctx.out.event({ type: 'done', op: 'delete', remote: path });
          ctx.out.done(`deleted ${path}`);
        },
        (pattern) => expandRemote(ctx.client, pattern),
      );
    case 'mkdir':
      return forEachName(ctx, 'mkdir', args, async (path) => {
        await ctx.client.mkdir(path, { parents: ctx.flags.parents ?? false });
        ctx.out.event({ type: 'done', op: 'mkdir', remote: path });
        ctx.out.done(`made directory ${path}`);
      });
    case 'rmdir':
      return forEachName(ctx, 'rmdir', args, async (path) => {
        await ctx.client.rmdir(path);
        ctx.out.event({ type: 'done', op: 'rmdir', remote: path });
        ctx.out.done(`removed directory ${path}`);
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

/** A remote pattern's matches (see glob.ts), or undefined when `pattern` has no magic. */
async function expandRemote(client: FerryClient, pattern: string): Promise<string[] | undefined> {
  const matches = await expand(
    pattern,
    async (dir) => (await client.list(dir)).map((e) => ({ name: e.name, dir: e.type === 'dir' })),
    remoteJoin,
  );
  if (matches === undefined) return undefined;
  if (matches.length === 0) throw new FerryError('ENOENT', `nothing on the server matches ${pattern}`);
  return matches.map((m) => m.path);
}

/** Each argument, with remote patterns expanded; plain names as they are (escapes removed). */
async function expandRemoteAll(client: FerryClient, args: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const arg of args) out.push(...((await expandRemote(client, arg)) ?? [unescapeGlob(arg)]));
  return out;
}

/** Each argument, with local patterns expanded. */
async function expandLocalAll(args: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const arg of args) out.push(...(await expandLocal(arg)));
  return out;
}

/**
 * get SOURCE [LOCAL] with patterns: a pattern in SOURCE fetches every match into LOCAL (a directory;
 * default here), as `-d LOCAL` would; with -d every argument may be a pattern.
 */
async function planGetPatterns(ctx: CommandContext, args: readonly string[]): Promise<TransferJob[]> {
  if (ctx.flags.dir !== undefined) return planGet(await expandRemoteAll(ctx.client, args), ctx.flags.dir);
  const [source, target] = args;
  if (source !== undefined && args.length <= 2 && hasGlob(source)) {
    return planGet((await expandRemote(ctx.client, source))!, target ?? '.');
  }
  return planGet(
    args.map((a, i) => (i === 0 ? unescapeGlob(a) : a)),
    undefined,
  );
}

/** put SOURCE [REMOTE] with patterns: a local pattern sends every match into REMOTE (default: the root). */
async function planPutPatterns(ctx: CommandContext, args: readonly string[]): Promise<TransferJob[]> {
  const isDir = (path: string): Promise<boolean> => isRemoteDirectory(ctx.client, path);
  if (ctx.flags.dir !== undefined) return planPut(await expandLocalAll(args), ctx.flags.dir, isDir);
  const [source, target] = args;
  if (source !== undefined && args.length <= 2 && hasGlob(source)) {
    return planPut(await expandLocal(source), target ?? '', isDir);
  }
  return planPut(
    args.map((a, i) => (i === 0 ? unescapeGlob(a) : a)),
    undefined,
    isDir,
  );
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

/** The flags of a tree transfer. */
function treeFlags(ctx: CommandContext): TreeFlags {
  return {
    force: ctx.flags.force,
    resume: ctx.flags.resume,
    preserve: ctx.flags.preserve ?? false,
    followLinks: ctx.flags.followLinks ?? false,
  };
}

/**
 * Runs one tree transfer per source; each reports on its own, and a failed one does not stop the
 * next. The exit code is the first failure's.
 */
async function eachTree(
  sources: readonly string[],
  transfer: (source: string) => Promise<void>,
): Promise<void> {
  let first: ReportedError | undefined;
  for (const source of sources) {
    try {
      await transfer(source);
    } catch (error) {
      if (!(error instanceof ReportedError) || sources.length === 1) throw error;
      first ??= error;
    }
  }
  if (first !== undefined) throw first;
}

/** get -r REMOTEDIR [LOCALDIR]; with a pattern or -d, each matching directory into LOCALDIR. */
async function getRecursive(ctx: CommandContext, args: readonly string[]): Promise<void> {
  // Trees are loaded when used: the commands on single files start without them.
  const { getTree } = await import('./tree.js');
  const flags = treeFlags(ctx);
  const usage = 'get -r: usage: get -r REMOTEDIR [LOCALDIR], or get -r A B C -d LOCALDIR';
  if (args.length === 0) throw usageError(usage);
  if (ctx.flags.dir !== undefined) {
    await requireLocalDirectory(ctx.flags.dir);
    const into = `${ctx.flags.dir.replace(/\/+$/, '')}/`;
    return eachTree(await expandRemoteAll(ctx.client, args), (source) => getTree(ctx, source, into, flags));
  }
  if (args.length > 2) throw usageError(usage);
  const [source, target] = args as [string, string | undefined];
  const matches = await expandRemote(ctx.client, source);
  if (matches === undefined) return getTree(ctx, checkRemotePath(unescapeGlob(source)), target, flags);
  const into = target ?? '.';
  await requireLocalDirectory(into);
  return eachTree(matches, (match) => getTree(ctx, match, `${into.replace(/\/+$/, '')}/`, flags));
}

/** put -r LOCALDIR [REMOTEDIR]; with a pattern or -d, each matching directory into REMOTEDIR. */
async function putRecursive(ctx: CommandContext, args: readonly string[]): Promise<void> {
  const { putTree } = await import('./tree.js');
  const flags = treeFlags(ctx);
  const usage = 'put -r: usage: put -r LOCALDIR [REMOTEDIR], or put -r A B C -d REMOTEDIR';
  if (args.length === 0) throw usageError(usage);
  if (ctx.flags.dir !== undefined) {
    const into = `${checkRemotePath(ctx.flags.dir).replace(/\/+$/, '')}/`;
    return eachTree(await expandLocalAll(args), (source) => putTree(ctx, source, into, flags));
  }
  if (args.length > 2) throw usageError(usage);
  const [source, target] = args as [string, string | undefined];
  const sources = await expandLocal(source);
  if (target !== undefined) checkRemotePath(target);
  if (sources.length === 1 && !hasGlob(source)) return putTree(ctx, sources[0]!, target, flags);
  const into = target === undefined ? undefined : `${target.replace(/\/+$/, '')}/`;
  return eachTree(sources, (match) => putTree(ctx, match, into, flags));
}

/** list -R: everything below DIR, printed page by page as the walk streams in. */
async function listRecursive(ctx: CommandContext, args: readonly string[]): Promise<void> {
  if (args.length > 1) throw usageError('list -R: give at most one directory');
  const dir = checkRemotePath(args[0] ?? '').replace(/\/+$/, '');
  const { out } = ctx;
  let count = 0;
  const marks = new Set<string>();
  for await (const page of ctx.client.walk(dir)) {
    for (const entry of page) {
      count++;
      const path = remoteJoin(dir, entry.path);
      out.event({
        type: 'entry',
        name: entry.path.split('/').at(-1),
        path,
        kind: entry.type,
        size: entry.size,
        mtimeMs: entry.mtimeMs,
        ...(entry.mode !== undefined ? { mode: entry.mode } : {}),
      });
      if (out.json) continue;
      const size = entry.type === 'file' ? formatBytes(entry.size) : '-';
      const mark =
        entry.type === 'dir' ? '/' : entry.type === 'link' ? '@' : entry.type === 'other' ? '?' : '';
      if (mark === '@' || mark === '?') marks.add(mark);
      const name = entry.type === 'dir' ? out.styleOut(['bold', 'blue'], `${path}/`) : `${path}${mark}`;
      out.result(`${size.padStart(9)}  ${formatTime(entry.mtimeMs)}  ${name}`);
    }
  }
  out.event({ type: 'done', op: 'list', remote: dir, count, recursive: true });
  if (out.json) return;
  if (count === 0) out.note(dir === '' ? '(no files)' : `(no files in ${dir})`);
  if (marks.has('@')) out.note('(name@ = a symbolic link on the server; get -r does not follow it)');
  if (marks.has('?')) out.note(`(name? = ${NOT_SERVED})`);
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

/**
 * Runs `action` on each name (each match of a pattern, with `expand`); reports each failure and goes
 * on, like rm and stat do.
 */
async function forEachName(
  ctx: CommandContext,
  op: string,
  patterns: readonly string[],
  action: (name: string) => Promise<void>,
  expand?: (pattern: string) => Promise<string[] | undefined>,
): Promise<void> {
  if (patterns.length === 0) throw usageError(`${op}: which file? usage: ${op} NAME`);
  if (patterns.length === 1 && (expand === undefined || !hasGlob(patterns[0]!))) {
    return action(checkRemotePath(expand === undefined ? patterns[0]! : unescapeGlob(patterns[0]!)));
  }
  let first: { code: string; exitCode: number } | undefined;
  const report = (name: string, error: unknown): void => {
    const r = describeError(error);
    first ??= r;
    ctx.out.error(r.code, `${op} ${name}: ${withoutName(r.message, name)}`, { op, remote: name });
  };
  for (const pattern of patterns) {
    let names: string[];
    try {
      names = (await expand?.(pattern)) ?? [expand === undefined ? pattern : unescapeGlob(pattern)];
    } catch (error) {
      report(pattern, error);
      continue;
    }
    for (const name of names) {
      try {
        await action(checkRemotePath(name));
      } catch (error) {
        report(name, error);
      }
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
