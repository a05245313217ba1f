import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { MAX_WALK_CURSOR_LENGTH, MAX_WALK_DEPTH, MODE_MASK, type WalkEntry } from '@ferry/protocol';
import { FileError } from '../errors.js';
import { isPartialName, showPath } from '../paths.js';
import type { WalkPage } from '../storage.js';
import { type Dir, ignoreMissing } from './beneath.js';
import type { FileSystem } from './fs.js';

/**
 * The walk of a local directory tree, one page at a time, with no state kept between pages: the
 * cursor names the last path returned, and the next page finds its way back to it, directory by
 * directory. Directories are opened one below the other through their descriptors, never through a
 * symbolic link (a link is an entry of type 'link'), so a walk stays inside the directory it started
 * in and cannot loop; MAX_WALK_DEPTH bounds how deep it goes.
 */

/** A directory being listed: its names in order and the position of the next one. */
interface Frame {
  dir: Dir;
  /** Its path relative to the walked directory ('' for that directory). */
  rel: string;
  depth: number;
  names: string[];
  next: number;
}

/**
 * Sorted listings of directories seen recently, by identity and change time: a directory of 100,000
 * names is read once for the whole walk rather than once per page. A listing is reused only while the
 * directory's modification and change times are the same.
 */
export class ListingCache {
  readonly #entries = new Map<string, string[]>();

  constructor(private readonly capacity = 16) {}

  async names(fs: FileSystem, dir: Dir): Promise<string[]> {
    const stats = await dir.handle.stat();
    const key = `${stats.dev}:${stats.ino}:${stats.mtimeMs}:${stats.ctimeMs}`;
    const cached = this.#entries.get(key);
    if (cached !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, cached);
      return cached;
    }
    const names = (await fs.readdir(dir.self())).filter((n) => !isPartialName(n)).sort(byCodeUnit);
    this.#entries.set(key, names);
    if (this.#entries.size > this.capacity) this.#entries.delete(this.#entries.keys().next().value!);
    return names;
  }
}

export interface WalkRequest {
  fs: FileSystem;
  listings: ListingCache;
  /** The walked directory, held open by the caller (not closed here). */
  top: Dir;
  /** Its client path, for cursors and messages. */
  topRel: string;
  after: WalkCursor | undefined;
  limit: number;
  maxBytes: number | undefined;
}

export interface WalkCursor {
  /** The last path returned. */
  path: string;
  /** Whether it was a directory the walk was about to descend into. */
  descend: boolean;
}

const CURSOR_VERSION = 1;

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export async function walkPage(request: WalkRequest): Promise<WalkPage> {
  const { top, topRel } = request;
  const at: Lister = { fs: request.fs, listings: request.listings };
  const stack: Frame[] = [];
  const entries: WalkEntry[] = [];
  try {
    await resume(at, top, request.after, stack);
    let bytes = 2; // the entries' brackets
    let last: WalkCursor | undefined;
    while (stack.length > 0 && entries.length < request.limit) {
      const frame = stack[stack.length - 1]!;
      if (frame.next >= frame.names.length) {
        stack.pop();
        if (frame.dir !== top) await frame.dir.close();
        continue;
      }
      const name = frame.names[frame.next]!;
      const path = frame.rel === '' ? name : `${frame.rel}/${name}`;
      // Synchronous: a page is a few hundred lstat calls, each a few microseconds, where a round trip
      // through the thread pool per call made a page of a 10,000-file tree cost milliseconds.
      const stats = lstatIfThere(at.fs, frame.dir.at(name));
      if (stats === undefined) {
        frame.next++; // removed since it was listed
        continue;
      }
      const entry = toWalkEntry(path, stats);
      const size = Buffer.byteLength(JSON.stringify(entry)) + 1;
      if (request.maxBytes !== undefined && entries.length > 0) {
        const cursor = encodeWalkCursor(topRel, { path, descend: true }).length + 12; // ,"next":"…"
        if (bytes + size + cursor > request.maxBytes) break;
      }
      frame.next++;
      bytes += size;
      entries.push(entry);
      last = { path, descend: false };
      if (entry.type !== 'dir') continue;
      if (frame.depth + 1 >= MAX_WALK_DEPTH) {
        throw new FileError(
          'ETOOBIG',
          `${showPath(path)}: the tree goes on more than ${MAX_WALK_DEPTH} directory levels deep; ferry walks no deeper`,
        );
      }
      const child = await openListed(at, frame.dir, name, path, frame.depth + 1);
      if (child !== undefined) {
        stack.push(child);
        last.descend = true;
      }
    }
    const more = stack.some((frame) => frame.next < frame.names.length);
    const page: WalkPage = { entries };
    if (more && last !== undefined) page.next = encodeWalkCursor(topRel, last);
    return page;
  } finally {
    for (const frame of stack) if (frame.dir !== top) await frame.dir.close();
  }
}

/**
 * Rebuilds the stack of directories a walk was in after `after`: each directory of its path opened
 * and positioned after the name that leads on; a directory gone (or replaced by a link) meanwhile is
 * simply not there any more, and the walk goes on after it.
 */
async function resume(at: Lister, top: Dir, after: WalkCursor | undefined, stack: Frame[]): Promise<void> {
  stack.push({ dir: top, rel: '', depth: 0, names: await at.listings.names(at.fs, top), next: 0 });
  if (after === undefined) return;
  const segments = after.path.split('/');
  for (let i = 0; i < segments.length; i++) {
    const frame = stack[stack.length - 1]!;
    const name = segments[i]!;
    frame.next = firstAfter(frame.names, name);
    const lastSegment = i === segments.length - 1;
    if (lastSegment && !after.descend) return;
    // Descend into `name`: it was a directory the walk had entered (or was about to).
    if (frame.names[frame.next - 1] !== name || frame.depth + 1 >= MAX_WALK_DEPTH) return;
    const rel = segments.slice(0, i + 1).join('/');
    const child = await openListed(at, frame.dir, name, rel, frame.depth + 1);
    if (child === undefined) return;
    stack.push(child);
  }
}

function lstatIfThere(fs: FileSystem, path: string): Stats | undefined {
  try {
    return fs.lstatSync(path);
  } catch (error) {
    return ignoreMissing(error);
  }
}

/** Index of the first name after `name` in sorted `names`. */
function firstAfter(names: readonly string[], name: string): number {
  let lo = 0;
  let hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (byCodeUnit(names[mid]!, name) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The directory `name` in `dir` as a frame; undefined if it is gone or no longer a directory. */
interface Lister {
  fs: FileSystem;
  listings: ListingCache;
}

async function openListed(
  at: Lister,
  dir: Dir,
  name: string,
  rel: string,
  depth: number,
): Promise<Frame | undefined> {
  const child = await dir.openChild(at.fs, name).catch(() => undefined);
  if (child === undefined || child === 'symlink') return undefined;
  try {
    return { dir: child, rel, depth, names: await at.listings.names(at.fs, child), next: 0 };
  } catch (error) {
    await child.close();
    throw error;
  }
}

function toWalkEntry(path: string, stats: Stats): WalkEntry {
  const type = stats.isFile()
    ? 'file'
    : stats.isDirectory()
      ? 'dir'
      : stats.isSymbolicLink()
        ? 'link'
        : 'other';
  return {
    path,
    type,
    size: type === 'file' ? stats.size : 0,
    mtimeMs: stats.mtimeMs,
    mode: stats.mode & MODE_MASK,
  };
}

/**
 * A walk cursor: version byte, the first 8 bytes of SHA-256 of the walked directory's client path (a
 * cursor continues only the walk it came from), a flag byte (1: descend into the last path), then
 * the last path in UTF-8. At most 10 + 4096 bytes: within MAX_WALK_CURSOR_LENGTH as base64url.
 */
export function encodeWalkCursor(topRel: string, cursor: WalkCursor): string {
  const text = Buffer.concat([
    Buffer.from([CURSOR_VERSION]),
    walkTag(topRel),
    Buffer.from([cursor.descend ? 1 : 0]),
    Buffer.from(cursor.path, 'utf8'),
  ]).toString('base64url');
  if (text.length > MAX_WALK_CURSOR_LENGTH) throw new Error('walk cursor over its limit (a bug)');
  return text;
}

export function decodeWalkCursor(text: string, topRel: string): WalkCursor {
  const raw = Buffer.from(text, 'base64url');
  if (
    raw.length > 10 &&
    raw[0] === CURSOR_VERSION &&
    raw.subarray(1, 9).equals(walkTag(topRel)) &&
    (raw[9] === 0 || raw[9] === 1)
  ) {
    const path = raw.subarray(10).toString('utf8');
    if (path !== '' && !path.split('/').some((s) => s === '' || s === '.' || s === '..')) {
      return { path, descend: raw[9] === 1 };
    }
  }
  throw new FileError('EINVAL', 'invalid walk cursor (it belongs to another walk, or was altered)');
}

function walkTag(topRel: string): Buffer {
  return createHash('sha256').update('walk\0').update(topRel, 'utf8').digest().subarray(0, 8);
}
