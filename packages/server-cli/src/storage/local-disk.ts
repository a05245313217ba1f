import { createHash } from 'node:crypto';
import { constants, type Dirent, type Stats } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import {
  FileBlockSource,
  FileError,
  type FileSystem,
  isPartialName,
  PartialFile,
  systemCode,
  toFileError,
  withFileSystem,
} from '@ferry/transport';
import { type ClientPath, parseClientPath, showPath } from './paths.js';

export interface StorageEntry {
  name: string;
  type: 'file' | 'dir' | 'other';
  size: number;
  mtimeMs: number;
}

export interface ListOptions {
  /** Opaque cursor from a previous page's `next`. */
  cursor?: string;
  /** Most entries per page (1..10000; default 256). */
  limit?: number;
  /** Stop before the page's entries, as JSON, would exceed this many bytes (fits a datagram). */
  maxBytes?: number;
}

export interface ListPage {
  entries: StorageEntry[];
  /** Cursor of the next page; absent on the last page. */
  next?: string;
}

export interface BeginWriteOptions {
  size: number;
  blockSize: number;
  /** Replace an existing file (checked now and again at commit). */
  overwrite: boolean;
  /** Reuse an earlier interrupted partial of the same path, size and identity. */
  resume: boolean;
  /** Who or what is writing (e.g. key name + size): partials are only resumed for the same identity. */
  identity: string;
}

export interface LocalDiskStorageOptions {
  /** Replacement file-system calls (fault injection in tests). */
  fs?: Partial<FileSystem>;
  /** Clock for partial-file timestamps (ms since the epoch). */
  now?: () => number;
  /** Passed to partial files: how often they persist progress. */
  persistEveryBytes?: number;
  persistEveryMs?: number;
  /** Check free space before accepting a put (default true). */
  checkSpace?: boolean;
}

export const DEFAULT_LIST_LIMIT = 256;
export const MAX_LIST_LIMIT = 10_000;
const MAX_SWEEP_DEPTH = 64;

/**
 * The server's files: everything confined to one root directory.
 *
 * Confinement has two layers. Syntax: client paths are relative, with no '..', '.', empty segments,
 * NUL or backslash (parseClientPath). File system: every path is resolved with realpath and must stay
 * under the root's realpath, so symlinks that lead out are refused; files are opened with O_NOFOLLOW
 * on their resolved path, and the open descriptor is checked again (via /proc/self/fd, else by
 * comparing inodes) so a symlink swapped in between the check and the open is caught. Writes are
 * re-checked just before the final rename (the directory must be the same inode, still inside).
 *
 * Race accepted: between that last check and rename() a local user with write access to the root can
 * still swap a directory for a symlink; closing it needs openat/renameat, which Node does not offer.
 * Clients of ferry cannot create symlinks, so only local users could attempt it.
 *
 * Every failure is a FileError with a code from the protocol's error table and a message naming the
 * client's path (never the server's absolute paths).
 */
export class LocalDiskStorage {
  /** The root's real path. */
  readonly root: string;
  readonly #fs: FileSystem;
  readonly #options: LocalDiskStorageOptions;
  // Partials being written now, shared by all transfers so two never write one partial.
  readonly #inUse = new Set<string>();

  private constructor(root: string, options: LocalDiskStorageOptions) {
    this.root = root;
    this.#fs = withFileSystem(options.fs);
    this.#options = options;
  }

  /** Opens storage rooted at `root`, which must be an existing directory. */
  static async open(root: string, options: LocalDiskStorageOptions = {}): Promise<LocalDiskStorage> {
    const fs = withFileSystem(options.fs);
    let real: string;
    let stats: Stats;
    try {
      real = await fs.realpath(root);
      stats = await fs.stat(real);
    } catch (error) {
      throw toFileError(error, `serving ${root}`);
    }
    if (!stats.isDirectory()) throw new FileError('ENOTDIR', `serving ${root}: not a directory`);
    return new LocalDiskStorage(real, options);
  }

  /** Syntax check of a client path (see parseClientPath); throws EINVAL / ENAMETOOLONG. */
  resolve(relPath: string): ClientPath & { abs: string } {
    const path = parseClientPath(relPath);
    return { ...path, abs: join(this.root, ...path.segments) };
  }

  /** One page of a directory, sorted by name (UTF-16 code units), partial files never shown. */
  async list(dir: string, options: ListOptions = {}): Promise<ListPage> {
    const path = this.resolve(dir);
    const limit = options.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new FileError('EINVAL', `list limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
    }
    const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor, path.rel);
    return this.#guard(`listing ${showPath(path.rel)}`, async () => {
      const real = await this.#realInside(path);
      const stats = await this.#fs.stat(real);
      if (!stats.isDirectory()) throw new FileError('ENOTDIR', `${showPath(path.rel)} is not a directory`);
      const names = (await this.#fs.readdir(real))
        .filter((name) => !isPartialName(name) && (after === undefined || name > after))
        .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const entries: StorageEntry[] = [];
      let bytes = 2;
      let last: string | undefined;
      let index = 0;
      for (; index < names.length && entries.length < limit; index++) {
        const name = names[index]!;
        const entry = await this.#entry(join(real, name), name);
        if (entry === undefined) {
          last = name; // Vanished since readdir: skip it.
          continue;
        }
        const size = Buffer.byteLength(JSON.stringify(entry)) + 1;
        if (options.maxBytes !== undefined && entries.length > 0 && bytes + size > options.maxBytes) break;
        bytes += size;
        entries.push(entry);
        last = name;
      }
      const page: ListPage = { entries };
      if (index < names.length && last !== undefined) page.next = encodeCursor(path.rel, last);
      return page;
    });
  }

  /** The entry of a file or directory ('' = the root, with name ''). Symlinks inside the root are followed. */
  async stat(relPath: string): Promise<StorageEntry> {
    const path = this.resolve(relPath);
    return this.#guard(`stat ${showPath(path.rel)}`, async () => {
      const real = await this.#realInside(path);
      const stats = await this.#fs.lstat(real);
      return toEntry(path.segments.at(-1) ?? '', stats);
    });
  }

  /**
   * Opens a regular file for a get. EISDIR for a directory, EINVAL for a special file or a path that
   * leads out of the root, ENOENT if missing.
   */
  async openRead(relPath: string): Promise<FileBlockSource> {
    const path = this.resolve(relPath);
    if (path.segments.length === 0) throw new FileError('EISDIR', 'the root directory is not a file');
    return this.#guard(`opening ${showPath(path.rel)}`, async () => {
      const real = await this.#realInside(path);
      const source = await FileBlockSource.open(real, {
        noFollow: true,
        fs: this.#options.fs,
        displayName: showPath(path.rel),
      });
      try {
        await this.#checkDescriptor(source, path);
      } catch (error) {
        await source.close().catch(() => {});
        throw error;
      }
      return source;
    });
  }

  /**
   * Starts a put: a PartialFile next to the target, committed later with a SHA-256. EEXIST up front
   * if the target exists and !overwrite, EISDIR if it is a directory, EINVAL for a special file,
   * ENOENT / ENOTDIR if its directory does not exist or is not one.
   */
  async beginWrite(relPath: string, options: BeginWriteOptions): Promise<PartialFile> {
    const path = this.resolve(relPath);
    const name = path.segments.at(-1);
    if (name === undefined) throw new FileError('EISDIR', 'the root directory cannot be written as a file');
    return this.#guard(`writing ${showPath(path.rel)}`, async () => {
      const { realDir, dirStats } = await this.#parentInside(path);
      const finalPath = join(realDir, name);
      await this.#checkTarget(finalPath, path.rel, options.overwrite);
      return PartialFile.open({
        finalPath,
        size: options.size,
        blockSize: options.blockSize,
        identity: options.identity,
        resume: options.resume,
        fs: this.#options.fs,
        now: this.#options.now,
        persistEveryBytes: this.#options.persistEveryBytes,
        persistEveryMs: this.#options.persistEveryMs,
        checkSpace: this.#options.checkSpace,
        displayName: showPath(path.rel),
        inUse: this.#inUse,
        verifyTarget: () =>
          this.#guard(`writing ${showPath(path.rel)}`, () => this.#verifyDir(realDir, dirStats, path)),
      });
    });
  }

  /**
   * Renames a file, symlink or directory inside the root. EEXIST if `to` exists and !overwrite;
   * a directory is never replaced (EISDIR); special files are refused (EINVAL). Without overwrite,
   * files move by link + unlink so an existing name is never replaced, even by a race; directories
   * move by check + rename (the race is accepted: nothing is lost, a name created in the window is
   * replaced only if it is an empty directory).
   */
  async rename(from: string, to: string, options: { overwrite: boolean }): Promise<void> {
    const src = this.resolve(from);
    const dst = this.resolve(to);
    const srcName = src.segments.at(-1);
    const dstName = dst.segments.at(-1);
    if (srcName === undefined || dstName === undefined) {
      throw new FileError('EINVAL', 'the root directory cannot be renamed or replaced');
    }
    await this.#guard(`renaming ${showPath(src.rel)} to ${showPath(dst.rel)}`, async () => {
      const { realDir: srcDir } = await this.#parentInside(src);
      const { realDir: dstDir } = await this.#parentInside(dst);
      const srcPath = join(srcDir, srcName);
      const dstPath = join(dstDir, dstName);
      const srcStats = await this.#lstatOrMissing(srcPath, src.rel);
      if (!srcStats.isFile() && !srcStats.isDirectory() && !srcStats.isSymbolicLink()) {
        throw new FileError('EINVAL', `${showPath(src.rel)} is a special file; ferry does not move it`);
      }
      if (srcPath === dstPath) return;
      const dstStats = await this.#fs.lstat(dstPath).catch(ignoreMissing);
      if (dstStats !== undefined) {
        if (dstStats.isDirectory()) {
          throw new FileError('EISDIR', `${showPath(dst.rel)} is a directory; it is not replaced`);
        }
        if (!options.overwrite) {
          throw new FileError(
            'EEXIST',
            `${showPath(dst.rel)} already exists (ask to overwrite to replace it)`,
          );
        }
        if (!dstStats.isFile() && !dstStats.isSymbolicLink()) {
          throw new FileError('EINVAL', `${showPath(dst.rel)} is a special file; ferry does not replace it`);
        }
        if (srcStats.isDirectory()) {
          throw new FileError('ENOTDIR', `${showPath(dst.rel)} is a file; a directory cannot replace it`);
        }
      }
      try {
        if (options.overwrite || srcStats.isDirectory()) {
          await this.#fs.rename(srcPath, dstPath);
        } else {
          await this.#moveNoReplace(srcPath, dstPath, dst.rel);
        }
      } catch (error) {
        throw await this.#explain(error, `renaming ${showPath(src.rel)} to ${showPath(dst.rel)}`);
      }
      await syncDirectory(this.#fs, dstDir);
      if (srcDir !== dstDir) await syncDirectory(this.#fs, srcDir);
    });
  }

  /** Deletes a file (or a symlink itself). Directories are refused (EISDIR): ferry deletes files only. */
  async delete(relPath: string): Promise<void> {
    const path = this.resolve(relPath);
    const name = path.segments.at(-1);
    if (name === undefined) throw new FileError('EISDIR', 'the root directory cannot be deleted');
    await this.#guard(`deleting ${showPath(path.rel)}`, async () => {
      const { realDir } = await this.#parentInside(path);
      const target = join(realDir, name);
      const stats = await this.#lstatOrMissing(target, path.rel);
      if (stats.isDirectory()) {
        throw new FileError('EISDIR', `${showPath(path.rel)} is a directory; ferry deletes files only`);
      }
      if (!stats.isFile() && !stats.isSymbolicLink()) {
        throw new FileError('EINVAL', `${showPath(path.rel)} is a special file; ferry does not delete it`);
      }
      await this.#fs.unlink(target);
      await syncDirectory(this.#fs, realDir);
    });
  }

  /**
   * Removes partial files not updated for maxAgeMs anywhere under the root (symlinked directories are
   * not followed; partials being written now are kept). Returns their paths relative to the root.
   */
  async sweepPartials(maxAgeMs: number, now: number = (this.#options.now ?? Date.now)()): Promise<string[]> {
    return this.#guard('removing expired partial files', async () => {
      const removed: string[] = [];
      const queue: Array<{ dir: string; depth: number }> = [{ dir: this.root, depth: 0 }];
      while (queue.length > 0) {
        const { dir, depth } = queue.shift()!;
        let entries: Dirent[];
        try {
          entries = await this.#fs.readdir(dir, { withFileTypes: true });
        } catch (error) {
          if (dir === this.root) throw error;
          continue; // A subdirectory that vanished or cannot be read: nothing to sweep there.
        }
        if (entries.some((entry) => isPartialName(entry.name))) {
          const gone = await PartialFile.sweep(dir, maxAgeMs, now, {
            fs: this.#options.fs,
            inUse: this.#inUse,
          });
          for (const path of gone) removed.push(relative(this.root, path));
        }
        if (depth < MAX_SWEEP_DEPTH) {
          for (const entry of entries) {
            if (entry.isDirectory()) queue.push({ dir: join(dir, entry.name), depth: depth + 1 });
          }
        }
      }
      return removed;
    });
  }

  // ---- confinement ----

  #inside(real: string): boolean {
    const rel = relative(this.root, real);
    return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
  }

  /** realpath of an existing path, which must stay inside the root. */
  async #realInside(path: ClientPath & { abs: string }): Promise<string> {
    let real: string;
    try {
      real = await this.#fs.realpath(path.abs);
    } catch (error) {
      throw await this.#explain(error, showPath(path.rel));
    }
    if (!this.#inside(real)) throw escapes(path.rel);
    return real;
  }

  /** The real directory that holds `path` (inside the root) and its stats. */
  async #parentInside(path: ClientPath & { abs: string }): Promise<{ realDir: string; dirStats: Stats }> {
    const parentSegments = path.segments.slice(0, -1);
    const parent = {
      rel: parentSegments.join('/'),
      segments: parentSegments,
      abs: join(this.root, ...parentSegments),
    };
    const realDir = await this.#realInside(parent);
    const dirStats = await this.#fs.stat(realDir);
    if (!dirStats.isDirectory()) throw new FileError('ENOTDIR', `${showPath(parent.rel)} is not a directory`);
    return { realDir, dirStats };
  }

  // The target of a put: a directory, a special file or a symlink out of the root is never replaced.
  async #checkTarget(finalPath: string, rel: string, overwrite: boolean): Promise<void> {
    const stats = await this.#fs.lstat(finalPath).catch(ignoreMissing);
    if (stats === undefined) return;
    let target = stats;
    if (stats.isSymbolicLink()) {
      const real = await this.#fs.realpath(finalPath).catch(ignoreMissing);
      if (real !== undefined && !this.#inside(real)) throw escapes(rel);
      target = real === undefined ? stats : await this.#fs.stat(real);
    }
    if (target.isDirectory()) throw new FileError('EISDIR', `${showPath(rel)} is a directory`);
    if (!target.isFile() && !target.isSymbolicLink()) {
      throw new FileError('EINVAL', `${showPath(rel)} is a special file; ferry does not replace it`);
    }
    if (!overwrite)
      throw new FileError('EEXIST', `${showPath(rel)} already exists (ask to overwrite to replace it)`);
  }

  // After open: the descriptor must be the file we checked, still inside the root.
  async #checkDescriptor(source: FileBlockSource, path: ClientPath & { abs: string }): Promise<void> {
    const opened = await this.#fs.readlink(`/proc/self/fd/${source.fd}`).catch(() => undefined);
    if (opened !== undefined) {
      if (!this.#inside(opened.replace(/ \(deleted\)$/, ''))) throw escapes(path.rel);
      return;
    }
    // No /proc: the path must still lead (inside the root) to the inode we hold.
    const real = await this.#realInside(path);
    const stats = await this.#fs.stat(real);
    if (stats.ino !== source.ino || stats.dev !== source.dev) {
      throw new FileError('EINVAL', `${showPath(path.rel)} was replaced while being opened; try again`);
    }
  }

  async #verifyDir(realDir: string, before: Stats, path: ClientPath): Promise<void> {
    const parentRel = path.segments.slice(0, -1).join('/');
    const real = await this.#fs.realpath(realDir).catch(ignoreMissing);
    const now = real === undefined ? undefined : await this.#fs.stat(real).catch(ignoreMissing);
    if (real === undefined || now === undefined) {
      throw new FileError('ENOENT', `${showPath(parentRel)} was removed during the transfer`);
    }
    if (real !== realDir || !this.#inside(real) || now.ino !== before.ino || now.dev !== before.dev) {
      throw new FileError(
        'EINVAL',
        `${showPath(parentRel)} was moved or replaced during the transfer; the file was not saved`,
      );
    }
  }

  async #moveNoReplace(srcPath: string, dstPath: string, dstRel: string): Promise<void> {
    try {
      await this.#fs.link(srcPath, dstPath);
    } catch (error) {
      const code = systemCode(error);
      if (code === 'EEXIST') {
        throw new FileError('EEXIST', `${showPath(dstRel)} already exists (ask to overwrite to replace it)`);
      }
      if (
        code !== 'EPERM' &&
        code !== 'ENOTSUP' &&
        code !== 'EOPNOTSUPP' &&
        code !== 'ENOSYS' &&
        code !== 'EMLINK'
      ) {
        throw error;
      }
      // No hard links on this file system: check, then rename (race accepted).
      if ((await this.#fs.lstat(dstPath).catch(ignoreMissing)) !== undefined) {
        throw new FileError('EEXIST', `${showPath(dstRel)} already exists (ask to overwrite to replace it)`);
      }
      await this.#fs.rename(srcPath, dstPath);
      return;
    }
    await this.#fs.unlink(srcPath);
  }

  async #entry(fullPath: string, name: string): Promise<StorageEntry | undefined> {
    const stats = await this.#fs.lstat(fullPath).catch(ignoreMissing);
    if (stats === undefined) return undefined;
    if (!stats.isSymbolicLink()) return toEntry(name, stats);
    // A symlink is shown as what it leads to, if that is inside the root; otherwise as 'other'.
    const real = await this.#fs.realpath(fullPath).catch(() => undefined);
    const target =
      real !== undefined && this.#inside(real) ? await this.#fs.stat(real).catch(() => undefined) : undefined;
    if (target === undefined) return { name, type: 'other', size: 0, mtimeMs: stats.mtimeMs };
    return toEntry(name, target);
  }

  async #lstatOrMissing(path: string, rel: string): Promise<Stats> {
    try {
      return await this.#fs.lstat(path);
    } catch (error) {
      throw await this.#explain(error, showPath(rel));
    }
  }

  /** Runs an operation; any system error becomes a FileError that says whether the root itself is gone. */
  async #guard<T>(what: string, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw await this.#explain(error, what);
    }
  }

  async #explain(error: unknown, what: string): Promise<FileError> {
    if (error instanceof FileError) return error;
    const code = systemCode(error);
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EPERM' || code === 'ENOTDIR') {
      const rootProblem = await this.#rootProblem();
      if (rootProblem !== undefined) return rootProblem;
    }
    return toFileError(error, what);
  }

  /** Undefined while the root is a readable directory; otherwise the error that explains it. */
  async #rootProblem(): Promise<FileError | undefined> {
    try {
      const stats = await this.#fs.stat(this.root);
      if (!stats.isDirectory()) {
        return new FileError(
          'ENOENT',
          'the served directory is no longer a directory; the server needs restarting',
        );
      }
      await this.#fs.readdir(this.root);
      return undefined;
    } catch (error) {
      const code = systemCode(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        return new FileError('ENOENT', 'the served directory no longer exists; the server needs restarting', {
          cause: error,
        });
      }
      if (code === 'EACCES' || code === 'EPERM') {
        return new FileError(
          'EACCES',
          'the served directory cannot be read by the server (permission denied)',
          {
            cause: error,
          },
        );
      }
      return undefined;
    }
  }
}

function toEntry(name: string, stats: Stats): StorageEntry {
  const type = stats.isFile() ? 'file' : stats.isDirectory() ? 'dir' : 'other';
  // mtimeMs exactly as the file system reports it (fractional), equal to what a get reports for resume.
  return { name, type, size: type === 'file' ? stats.size : 0, mtimeMs: stats.mtimeMs };
}

function escapes(rel: string): FileError {
  return new FileError('EINVAL', `${showPath(rel)} leads outside the served directory`);
}

function ignoreMissing(error: unknown): undefined {
  if (systemCode(error) === 'ENOENT') return undefined;
  throw error;
}

/**
 * A list cursor: version byte, the first 8 bytes of SHA-256 of the directory's client path (so a
 * cursor only continues the listing it came from), then the UTF-8 name to continue after. Its
 * base64url form stays within MAX_CURSOR_LENGTH for any name (at most 255 bytes), however deep
 * the directory.
 */
function encodeCursor(dir: string, after: string): string {
  return Buffer.concat([Buffer.from([1]), dirTag(dir), Buffer.from(after, 'utf8')]).toString('base64url');
}

function dirTag(dir: string): Buffer {
  return createHash('sha256').update(dir, 'utf8').digest().subarray(0, 8);
}

function decodeCursor(cursor: string, dir: string): string {
  const raw = Buffer.from(cursor, 'base64url');
  if (raw.length > 9 && raw[0] === 1 && raw.subarray(1, 9).equals(dirTag(dir))) {
    return raw.subarray(9).toString('utf8');
  }
  throw new FileError('EINVAL', 'invalid list cursor (it belongs to another listing, or was altered)');
}

async function syncDirectory(fs: FileSystem, dir: string): Promise<void> {
  const handle = await fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY).catch(() => undefined);
  if (handle === undefined) return;
  await handle.sync().catch(() => {});
  await handle.close().catch(() => {});
}
