import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { FileError, systemCode, toFileError } from '../errors.js';
import { isPartialName, showPath } from '../paths.js';
import type { FileSystem } from './fs.js';

const DIRECTORY_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
/** Symbolic links followed while resolving one path (Linux's own limit, MAXSYMLINKS). */
const MAX_SYMLINKS = 40;
/** Levels climbed when checking that a directory is still below the root. */
const MAX_DEPTH = 4096;

/**
 * A directory held open. Names in it are reached as `/proc/self/fd/N/NAME` (Linux): the kernel goes
 * from the descriptor straight to the directory it holds, whatever has happened to the path since,
 * and then looks up NAME in it — what openat(2), renameat(2) and friends do, which Node does not
 * offer. Where /proc is missing, `at()` falls back to the path the directory was opened by.
 */
export class Dir {
  constructor(
    readonly handle: FileHandle,
    /** The path it was opened by (for the fallback only; never shown to clients). */
    readonly path: string,
    readonly dev: number,
    readonly ino: number,
    /** The directory's owner (uid). */
    readonly uid: number,
    readonly viaDescriptor: boolean,
    /** False for a directory someone else owns (the root): close() leaves it open. */
    private readonly owned: boolean,
    /** Shared by the owner and every borrower: once the owner closed the handle, nobody uses it. */
    private readonly state: { closed: boolean } = { closed: false },
  ) {}

  /** A path that reaches `name` in this directory. */
  at(name: string): string {
    return this.viaDescriptor ? `${this.self()}/${name}` : join(this.self(), name);
  }

  /** A path that reaches this directory itself. */
  self(): string {
    // A descriptor number is reused once closed: a path through a closed one could reach anything.
    if (this.state.closed) {
      throw new FileError('EIO', 'the store was closed while an operation was still using it');
    }
    return this.viaDescriptor ? `/proc/self/fd/${this.handle.fd}` : this.path;
  }

  /** A key for the directory that does not depend on its path. */
  get key(): string {
    return `${this.dev}:${this.ino}`;
  }

  /** The same directory, for someone else to use and close() without closing it for its owner. */
  borrow(): Dir {
    return new Dir(
      this.handle,
      this.path,
      this.dev,
      this.ino,
      this.uid,
      this.viaDescriptor,
      false,
      this.state,
    );
  }

  sameAs(other: Dir): boolean {
    return this.dev === other.dev && this.ino === other.ino;
  }

  async close(): Promise<void> {
    if (!this.owned || this.state.closed) return;
    this.state.closed = true;
    await this.handle.close().catch(() => {});
  }

  /**
   * Opens `path` as a directory: through symbolic links (a user's own directories), unless `noFollow`
   * says its last component must not be one.
   */
  static async open(
    fs: FileSystem,
    path: string,
    options: { owned: boolean; noFollow?: boolean },
  ): Promise<Dir> {
    const handle = await fs.open(
      path,
      options.noFollow ? DIRECTORY_FLAGS : constants.O_RDONLY | constants.O_DIRECTORY,
    );
    try {
      const stats = await handle.stat();
      return new Dir(handle, path, stats.dev, stats.ino, stats.uid, await descriptorPaths(fs), options.owned);
    } catch (error) {
      await handle.close().catch(() => {});
      throw error;
    }
  }

  /** Opens the directory `name` in this one, never through a symbolic link; undefined if `name` is one. */
  async openChild(fs: FileSystem, name: string): Promise<Dir | 'symlink'> {
    let handle: FileHandle;
    try {
      handle = await fs.open(this.at(name), DIRECTORY_FLAGS);
    } catch (error) {
      const code = systemCode(error);
      // O_NOFOLLOW with O_DIRECTORY fails with ELOOP or ENOTDIR on a symlink: tell them apart.
      if (code !== 'ELOOP' && code !== 'ENOTDIR') throw error;
      const stats = await fs.lstat(this.at(name));
      if (stats.isSymbolicLink()) return 'symlink';
      throw error;
    }
    try {
      const stats = await handle.stat();
      return new Dir(
        handle,
        join(this.path, name),
        stats.dev,
        stats.ino,
        stats.uid,
        this.viaDescriptor,
        true,
      );
    } catch (error) {
      await handle.close().catch(() => {});
      throw error;
    }
  }
}

/** Whether descriptor paths work, checked once per process (per file-system stand-in, for tests). */
const descriptorPathsWork = new WeakMap<FileSystem, Promise<boolean>>();

/**
 * Whether `/proc/self/fd/N/NAME` reaches NAME inside the directory open as descriptor N: checked by
 * opening a directory and comparing what the /proc path leads to with the descriptor.
 */
export function descriptorPaths(fs: FileSystem): Promise<boolean> {
  let known = descriptorPathsWork.get(fs);
  if (known === undefined) {
    known = (async () => {
      let handle: FileHandle | undefined;
      try {
        handle = await fs.open('/', constants.O_RDONLY | constants.O_DIRECTORY);
        const [direct, viaProc] = await Promise.all([handle.stat(), fs.stat(`/proc/self/fd/${handle.fd}/.`)]);
        return direct.dev === viaProc.dev && direct.ino === viaProc.ino;
      } catch {
        return false;
      } finally {
        await handle?.close().catch(() => {});
      }
    })();
    descriptorPathsWork.set(fs, known);
  }
  return known;
}

/** Where a path ends up: a directory held open and a name in it, or (name undefined) that directory itself. */
export interface Located {
  dir: Dir;
  name: string | undefined;
}

/**
 * Resolves client paths below a root directory held open, one component at a time, each opened
 * through the directory before it with O_NOFOLLOW. A symbolic link met on the way is read and its
 * target resolved the same way, from the link's directory, with '..' handled here (never by the
 * kernel) so that it can never climb above the root; a target that would is refused. A directory
 * swapped for a link (or back) while a path is resolved changes which directory is reached, never
 * whether it is below the root.
 */
export class Beneath {
  constructor(
    readonly root: Dir,
    /** The root's real path: absolute symlink targets inside it are followed. */
    readonly rootReal: string,
    private readonly fs: FileSystem,
  ) {}

  /**
   * The directory holding the last component of `segments` (links among the directories followed)
   * and that component's name; with `followLast`, a link in the last place is followed too. The caller
   * closes `dir` (closing the root is a no-op). One directory is held open at a time, whatever the
   * depth: a '..' in a link's target walks again from the root along the names that led here.
   */
  async locate(segments: readonly string[], rel: string, followLast: boolean): Promise<Located> {
    let dir = this.root.borrow();
    const names: string[] = []; // the directories below the root that `dir` was reached by
    const queue = [...segments];
    let links = 0;
    let found = false;
    const expand = async (name: string): Promise<void> => {
      if (++links > MAX_SYMLINKS) {
        throw new FileError('EINVAL', `${showPath(rel)}: too many symbolic links`);
      }
      const target = await this.fs.readlink(dir.at(name));
      if (isAbsolute(target)) {
        const inside = relative(this.rootReal, target);
        if (inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside)) throw escapes(rel);
        await dir.close();
        dir = this.root.borrow();
        names.length = 0;
        queue.unshift(...inside.split(sep));
      } else {
        queue.unshift(...target.split('/'));
      }
    };
    try {
      while (queue.length > 0) {
        const name = queue.shift()!;
        if (name === '' || name === '.') continue;
        if (name === '..') {
          if (names.length === 0) throw escapes(rel);
          names.pop();
          await dir.close();
          dir = this.root.borrow();
          dir = await this.#walk(dir, names, rel);
          continue;
        }
        // A link may not lead to ferry's own partial files, which no client path may name.
        if (links > 0 && isPartialName(name)) {
          throw new FileError('EINVAL', `${showPath(rel)} leads to a file reserved for uploads`);
        }
        if (queue.length === 0) {
          if (followLast) {
            const stats = await this.fs.lstat(dir.at(name)).catch(ignoreMissing);
            if (stats?.isSymbolicLink()) {
              await expand(name);
              continue;
            }
          }
          found = true;
          return { dir, name };
        }
        const child = await dir.openChild(this.fs, name);
        if (child === 'symlink') {
          await expand(name);
        } else {
          await dir.close();
          dir = child;
          names.push(name);
        }
      }
      found = true;
      return { dir, name: undefined };
    } catch (error) {
      throw toFileError(error, showPath(rel));
    } finally {
      if (!found) await dir.close();
    }
  }

  /** Walks from `dir` down `names`, each a directory (a link met now means it changed meanwhile). */
  async #walk(dir: Dir, names: readonly string[], rel: string): Promise<Dir> {
    for (const name of names) {
      let child: Dir | 'symlink';
      try {
        child = await dir.openChild(this.fs, name);
      } finally {
        await dir.close(); // the parent: one directory held at a time
      }
      if (child === 'symlink') {
        throw new FileError('EINVAL', `${showPath(rel)} changed while it was being resolved; try again`);
      }
      dir = child;
    }
    return dir;
  }

  /** The directory `segments` names (links followed), held open; ENOTDIR if it is something else. */
  async openDir(segments: readonly string[], rel: string): Promise<Dir> {
    const { dir, name } = await this.locate(segments, rel, true);
    if (name === undefined) return dir;
    try {
      const child = await dir.openChild(this.fs, name);
      if (child === 'symlink') {
        throw new FileError('EINVAL', `${showPath(rel)} was replaced while being opened; try again`);
      }
      return child;
    } catch (error) {
      throw toFileError(error, showPath(rel));
    } finally {
      await dir.close();
    }
  }

  /**
   * Whether `dir` is (still) below the root: climbs '..' from it until it meets the root. A local user
   * could have moved the directory out of the served tree since it was opened.
   */
  async contains(dir: Dir): Promise<boolean> {
    if (dir.sameAs(this.root)) return true;
    if (!dir.viaDescriptor) return true; // No way to climb from a descriptor; see docs/SECURITY.md.
    let path = dir.self();
    let held: FileHandle | undefined;
    let last: { dev: number; ino: number } = dir;
    try {
      for (let depth = 0; depth < MAX_DEPTH; depth++) {
        const parent = await this.fs.open(`${path}/..`, constants.O_RDONLY | constants.O_DIRECTORY);
        await held?.close().catch(() => {});
        held = parent;
        path = `/proc/self/fd/${parent.fd}`;
        const stats = await parent.stat();
        if (stats.dev === this.root.dev && stats.ino === this.root.ino) return true;
        if (stats.dev === last.dev && stats.ino === last.ino) return false; // '/' is its own parent
        last = stats;
      }
      return false;
    } finally {
      await held?.close().catch(() => {});
    }
  }

  /** Throws EINVAL unless `dir` is still below the root (see contains()). */
  async requireInside(dir: Dir, rel: string): Promise<void> {
    if (!(await this.contains(dir))) {
      throw new FileError(
        'EINVAL',
        `${showPath(rel)}: its directory was moved out of the served directory; nothing was changed`,
      );
    }
  }
}

export function escapes(rel: string): FileError {
  return new FileError('EINVAL', `${showPath(rel)} leads outside the served directory`);
}

export function ignoreMissing(error: unknown): undefined {
  if (systemCode(error) === 'ENOENT') return undefined;
  throw error;
}
