import { constants, type Dirent, type Stats } from 'node:fs';
import { type Entry, MODE_MASK } from '@ferry/protocol';
import { checkUploadSize } from '../block-checks.js';
import { decodeCursor, encodeCursor, pageLimit } from '../cursor.js';
import { FileError, systemCode, toFileError } from '../errors.js';
import { type ClientPath, isPartialName, PARTIAL_PREFIX, parseClientPath, showPath } from '../paths.js';
import type {
  FileContent,
  ListOptions,
  ListPage,
  Storage,
  UploadOptions,
  WalkOptions,
  WalkPage,
  WholeFile,
} from '../storage.js';
import { Beneath, Dir, escapes, ignoreMissing } from './beneath.js';
import { LocalFile } from './file.js';
import { type FileSystem, withFileSystem } from './fs.js';
import { placeNoReplace } from './place.js';
import { type SpaceClaim, SpaceLedger } from './space.js';
import { sweepPartials } from './sweep.js';
import { LocalUpload } from './upload.js';
import { decodeWalkCursor, ListingCache, walkPage } from './walk.js';
import {
  type OpenedWhole,
  readWholeFiles,
  type WholeFileInDir,
  type WholeFileToRead,
  writeWholeFiles,
} from './whole-files.js';
import { WholeFileWriter } from './whole-files-writer.js';

export interface LocalDiskStorageOptions {
  /** Replacement file-system calls (fault injection in tests; see `@ferry/storage/testing`). */
  fs?: Partial<FileSystem>;
  /** Clock for partial-file timestamps (ms since the epoch). */
  now?: () => number;
  /** Passed to uploads: how often they persist progress. */
  persistEveryBytes?: number;
  persistEveryMs?: number;
  /** Refuse an upload up front (ENOSPC) when the space it still needs is not free (default true). */
  checkSpace?: boolean;
  /**
   * Serve even where names cannot be reached through directory descriptors (no /proc/self/fd): a local
   * user swapping directories for symlinks could then redirect operations (see docs/SECURITY.md).
   */
  allowPathRaces?: boolean;
}

/** Directory levels the expiry sweep descends below the root. */
const MAX_SWEEP_DEPTH = 64;

/**
 * The files of one local directory, the root: ferry's embedded store.
 *
 * Confinement: client paths are checked for syntax (parseClientPath: relative, no '..', '.', empty
 * names, NUL or backslash), then resolved one component at a time below the root held open, each
 * opened through its parent's descriptor with O_NOFOLLOW; symbolic links are followed only by
 * resolving their targets the same way, and only while they stay below the root (see Beneath). Every
 * operation then acts on a name in a directory held open, through /proc/self/fd (Linux), so a local
 * user swapping directories for symlinks during a request can change which directory inside the root
 * it reaches, never make it reach outside. Before anything is created, moved or removed, the
 * directory is checked to still be below the root (a local user may have moved it out).
 *
 * Every failure is a FileError with a code from the protocol's error table and a message naming the
 * client's path (never the server's own paths).
 */
export class LocalDiskStorage implements Storage {
  /** The root's real path. */
  readonly root: string;
  readonly location: string;
  /** The root held open; replaced if the directory is removed and made again (see #refresh). */
  #dir: Dir;
  #beneath: Beneath;
  /** Roots replaced while uploads may still use them; closed with the store. */
  readonly #retired: Dir[] = [];
  readonly #fs: FileSystem;
  readonly #options: LocalDiskStorageOptions;
  /** Partials being written now, shared by all uploads so two never write one partial. */
  readonly #inUse = new Set<string>();
  readonly #space = new SpaceLedger();
  #sweeping: Promise<string[]> | undefined;
  /** When this store was opened: a whole-file temp from before is an orphan of another process. */
  readonly #openedAt = Date.now();
  readonly #listings = new ListingCache();
  /** Writes batches of small files on their own thread; not with injected faults (tests). */
  readonly #writer: WholeFileWriter | undefined;

  private constructor(root: string, dir: Dir, fs: FileSystem, options: LocalDiskStorageOptions) {
    this.root = root;
    this.location = root;
    this.#dir = dir;
    this.#fs = fs;
    this.#options = options;
    this.#beneath = new Beneath(dir, root, fs);
    this.#writer = options.fs === undefined ? new WholeFileWriter() : undefined;
  }

  /** Opens the store rooted at `root`, which must be an existing directory (a symlink to one is fine). */
  static async open(root: string, options: LocalDiskStorageOptions = {}): Promise<LocalDiskStorage> {
    const fs = withFileSystem(options.fs);
    let real: string;
    let dir: Dir;
    try {
      real = await fs.realpath(root);
      dir = await Dir.open(fs, real, { owned: true });
    } catch (error) {
      if (systemCode(error) === 'ENOTDIR') {
        throw new FileError('ENOTDIR', `serving ${root}: not a directory`, { cause: error });
      }
      throw toFileError(error, `serving ${root}`);
    }
    if (!dir.viaDescriptor && options.allowPathRaces !== true) {
      await dir.close();
      throw new FileError(
        'EINVAL',
        `serving ${root}: this system cannot reach files through directory descriptors (/proc/self/fd), so a local user swapping directories for symbolic links could redirect ferry outside the directory; to serve it anyway, allow it explicitly (ferry-server --allow-path-races; see docs/SECURITY.md)`,
      );
    }
    return new LocalDiskStorage(real, dir, fs, options);
  }

  async writable(): Promise<boolean> {
    try {
      await this.#fs.access(this.#dir.self(), constants.W_OK);
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.#writer?.close();
    await this.#dir.close();
    for (const dir of this.#retired.splice(0)) await dir.close();
  }

  /**
   * A served directory that was removed is not coming back through the descriptor held: if a directory
   * exists at its path again, serve that one from now on (the root is the path the server was given).
   */
  async #refresh(): Promise<void> {
    const stats = await this.#dir.handle.stat().catch(() => undefined);
    if (stats === undefined || stats.nlink > 0) return;
    // Never through a symlink, and only a directory of the same owner: whoever can write the root's
    // parent must not be able to point the server at another directory by removing the root.
    const again = await Dir.open(this.#fs, this.root, { owned: true, noFollow: true }).catch(() => undefined);
    if (again === undefined) return;
    if (again.uid !== this.#dir.uid) {
      await again.close();
      return;
    }
    this.#retired.push(this.#dir);
    this.#dir = again;
    this.#beneath = new Beneath(again, this.root, this.#fs);
  }

  /** Syntax check of a client path (see parseClientPath); throws EINVAL / ENAMETOOLONG. */
  resolve(relPath: string): ClientPath {
    return parseClientPath(relPath);
  }

  /** The entry of a file or directory ('' = the root, with name ''). Symlinks inside the root are followed. */
  async stat(relPath: string): Promise<Entry> {
    const path = parseClientPath(relPath);
    return this.#guard(`stat ${showPath(path.rel)}`, async () => {
      const stats = await this.#statFollowing(path);
      if (stats === undefined)
        throw new FileError('ENOENT', `${showPath(path.rel)}: no such file or directory`);
      return toEntry(path.segments.at(-1) ?? '', stats);
    });
  }

  /** One page of a directory, sorted by name (UTF-16 code units), partial files never shown. */
  async list(dirPath: string, options: ListOptions = {}): Promise<ListPage> {
    const path = parseClientPath(dirPath);
    const limit = pageLimit(options.limit, 'list');
    const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor, path.rel);
    return this.#guard(`listing ${showPath(path.rel)}`, async () => {
      const dir = await this.#openDir(path);
      try {
        const all = await this.#fs.readdir(dir.self());
        // A directory removed while held still lists (as empty): say it is gone instead.
        if (all.length === 0 && (await dir.handle.stat()).nlink === 0) {
          throw Object.assign(new Error('the directory was removed'), { code: 'ENOENT' });
        }
        const names = all
          .filter((name) => !isPartialName(name) && (after === undefined || name > after))
          .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        const entries: Entry[] = [];
        let bytes = 2;
        let last: string | undefined;
        let index = 0;
        for (; index < names.length && entries.length < limit; index++) {
          const name = names[index]!;
          const entry = await this.#entry(dir, path, name);
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
      } finally {
        await dir.close();
      }
    });
  }

  /**
   * Opens a regular file for a get. EISDIR for a directory, EINVAL for a special file or a path that
   * leads out of the root, ENOENT if missing.
   */
  async openRead(relPath: string): Promise<LocalFile> {
    const path = parseClientPath(relPath);
    if (path.segments.length === 0) throw new FileError('EISDIR', 'the root directory is not a file');
    return this.#guard(`opening ${showPath(path.rel)}`, async () => {
      const { dir, name } = await this.#beneath.locate(path.segments, path.rel, true);
      try {
        if (name === undefined)
          throw new FileError('EISDIR', `${showPath(path.rel)} is a directory, not a file`);
        const file = await LocalFile.openAt(this.#fs, dir, name, showPath(path.rel), () =>
          this.#statFollowing(path).catch(() => undefined),
        );
        try {
          await this.#beneath.requireInside(dir, path.rel);
        } catch (error) {
          await file.close().catch(() => {});
          throw error;
        }
        return file;
      } finally {
        await dir.close();
      }
    });
  }

  /**
   * Starts a put: an upload next to the target, committed later with a SHA-256. EEXIST up front if
   * the target exists and !overwrite, EISDIR if it is a directory, EINVAL for a special file, ENOENT /
   * ENOTDIR if its directory does not exist or is not one, ENOSPC if the space it needs is not free.
   */
  async beginUpload(relPath: string, options: UploadOptions): Promise<LocalUpload> {
    const path = parseClientPath(relPath);
    const name = path.segments.at(-1);
    if (name === undefined) throw new FileError('EISDIR', 'the root directory cannot be written as a file');
    const what = showPath(path.rel);
    checkUploadSize(options.size, options.blockSize, what);
    return this.#guard(`writing ${what}`, async () => {
      const dir = await this.#openDir(parentOf(path));
      let available: number | undefined;
      try {
        await this.#checkTarget(dir, name, path, options.overwrite);
        await this.#beneath.requireInside(dir, path.rel);
        if (this.#options.checkSpace !== false) available = await this.#available(dir);
      } catch (error) {
        await dir.close();
        throw error;
      }
      let claim: SpaceClaim | undefined;
      const upload = await LocalUpload.open({
        fs: this.#fs,
        dir,
        name,
        size: options.size,
        blockSize: options.blockSize,
        identity: options.identity,
        resume: options.resume,
        now: this.#options.now,
        persistEveryBytes: this.#options.persistEveryBytes,
        persistEveryMs: this.#options.persistEveryMs,
        inUse: this.#inUse,
        displayName: what,
        beforePlace: () => this.#beneath.requireInside(dir, path.rel),
        onStored: (bytes) => claim?.stored(bytes),
        onEnd: () => claim?.release(),
      });
      if (available !== undefined) {
        const held = Math.min(options.size, upload.have().count * options.blockSize);
        try {
          claim = this.#space.claim(dir.dev, options.size - held, available, what);
        } catch (error) {
          await upload.abort({ keep: upload.resumed });
          throw error;
        }
      }
      return upload;
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
    const src = parseClientPath(from);
    const dst = parseClientPath(to);
    const srcName = src.segments.at(-1);
    const dstName = dst.segments.at(-1);
    if (srcName === undefined || dstName === undefined) {
      throw new FileError('EINVAL', 'the root directory cannot be renamed or replaced');
    }
    await this.#guard(`renaming ${showPath(src.rel)} to ${showPath(dst.rel)}`, async () => {
      const srcDir = await this.#openDir(parentOf(src));
      let dstDir: Dir | undefined;
      try {
        dstDir = await this.#openDir(parentOf(dst));
        const srcStats = await this.#lstatExisting(srcDir, srcName, src);
        if (!srcStats.isFile() && !srcStats.isDirectory() && !srcStats.isSymbolicLink()) {
          throw new FileError('EINVAL', `${showPath(src.rel)} is a special file; ferry does not move it`);
        }
        if (srcDir.sameAs(dstDir) && srcName === dstName) return;
        const dstStats = await this.#fs.lstat(dstDir.at(dstName)).catch(ignoreMissing);
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
            throw new FileError(
              'EINVAL',
              `${showPath(dst.rel)} is a special file; ferry does not replace it`,
            );
          }
          if (srcStats.isDirectory()) {
            throw new FileError('ENOTDIR', `${showPath(dst.rel)} is a file; a directory cannot replace it`);
          }
        }
        await this.#beneath.requireInside(srcDir, src.rel);
        await this.#beneath.requireInside(dstDir, dst.rel);
        const source = srcDir.at(srcName);
        const target = dstDir.at(dstName);
        try {
          if (options.overwrite || srcStats.isDirectory()) {
            await this.#fs.rename(source, target);
          } else if ((await placeNoReplace(this.#fs, source, target)) === 'linked') {
            await this.#fs.unlink(source);
          }
        } catch (error) {
          if (systemCode(error) === 'EEXIST') {
            throw new FileError(
              'EEXIST',
              `${showPath(dst.rel)} already exists (ask to overwrite to replace it)`,
            );
          }
          throw error;
        }
        await dstDir.handle.sync().catch(() => {});
        if (!srcDir.sameAs(dstDir)) await srcDir.handle.sync().catch(() => {});
      } finally {
        await srcDir.close();
        await dstDir?.close();
      }
    });
  }

  /** Deletes a file (or a symlink itself). Directories are refused (EISDIR): ferry deletes files only. */
  async delete(relPath: string): Promise<void> {
    const path = parseClientPath(relPath);
    const name = path.segments.at(-1);
    if (name === undefined) throw new FileError('EISDIR', 'the root directory cannot be deleted');
    await this.#guard(`deleting ${showPath(path.rel)}`, async () => {
      const dir = await this.#openDir(parentOf(path));
      try {
        const stats = await this.#lstatExisting(dir, name, path);
        if (stats.isDirectory()) {
          throw new FileError('EISDIR', `${showPath(path.rel)} is a directory; ferry deletes files only`);
        }
        if (!stats.isFile() && !stats.isSymbolicLink()) {
          throw new FileError('EINVAL', `${showPath(path.rel)} is a special file; ferry does not delete it`);
        }
        await this.#beneath.requireInside(dir, path.rel);
        await this.#fs.unlink(dir.at(name));
        await dir.handle.sync().catch(() => {});
      } finally {
        await dir.close();
      }
    });
  }

  /**
   * Creates a directory. EEXIST if the name exists; ENOENT if its parent does not. With `parents`,
   * missing parents are created too and an existing directory is not an error (a file is: EEXIST).
   */
  async mkdir(relPath: string, options: { parents?: boolean; mode?: number } = {}): Promise<void> {
    const path = parseClientPath(relPath);
    await this.#guard(`creating ${showPath(path.rel)}`, async () => {
      if (options.parents !== true) {
        const name = path.segments.at(-1);
        if (name === undefined) throw new FileError('EEXIST', 'the root directory already exists');
        const dir = await this.#openDir(parentOf(path));
        try {
          await this.#beneath.requireInside(dir, path.rel);
          await this.#fs.mkdir(dir.at(name), 0o777);
          if (options.mode !== undefined) await this.#chmodChild(dir, name, options.mode);
          await dir.handle.sync().catch(() => {});
        } catch (error) {
          if (systemCode(error) === 'EEXIST') {
            throw new FileError('EEXIST', `${showPath(path.rel)} already exists`, { cause: error });
          }
          throw error;
        } finally {
          await dir.close();
        }
        return;
      }
      let dir = this.#dir.borrow();
      try {
        for (let i = 0; i < path.segments.length; i++) {
          const segment = path.segments[i]!;
          const prefix = {
            rel: path.segments.slice(0, i + 1).join('/'),
            segments: path.segments.slice(0, i + 1),
          };
          let next = await dir.openChild(this.#fs, segment).catch(async (error: unknown) => {
            if (systemCode(error) !== 'ENOENT') throw error;
            await this.#beneath.requireInside(dir, prefix.rel);
            let made = true;
            await this.#fs.mkdir(dir.at(segment), 0o777).catch((error: unknown) => {
              if (systemCode(error) !== 'EEXIST') throw error;
              made = false;
            });
            await dir.handle.sync().catch(() => {});
            const child = await dir.openChild(this.#fs, segment);
            // The mode is for the directory asked for, when this call made it (not its parents).
            if (
              made &&
              options.mode !== undefined &&
              i === path.segments.length - 1 &&
              child instanceof Dir
            ) {
              await child.handle.chmod(options.mode & MODE_MASK);
            }
            return child;
          });
          if (next === 'symlink') next = await this.#openDir(prefix);
          await dir.close();
          dir = next;
        }
      } catch (error) {
        if (systemCode(error) === 'ENOTDIR') {
          throw new FileError('EEXIST', `${showPath(path.rel)}: a file is in the way of a directory`, {
            cause: error,
          });
        }
        throw error;
      } finally {
        await dir.close();
      }
    });
  }

  /** Sets the permission bits of the directory `name` in `dir`, through a descriptor (never a link). */
  async #chmodChild(dir: Dir, name: string, mode: number): Promise<void> {
    const child = await dir.openChild(this.#fs, name);
    if (child === 'symlink') return;
    try {
      await child.handle.chmod(mode & MODE_MASK);
    } finally {
      await child.close();
    }
  }

  /**
   * Removes an empty directory (see Storage.rmdir). Partial files of abandoned uploads in it go with
   * it; a partial being written now makes it EBUSY.
   */
  async rmdir(relPath: string): Promise<void> {
    const path = parseClientPath(relPath);
    const name = path.segments.at(-1);
    if (name === undefined) throw new FileError('EINVAL', 'the root directory cannot be removed');
    await this.#guard(`removing ${showPath(path.rel)}`, async () => {
      const dir = await this.#openDir(parentOf(path));
      try {
        const stats = await this.#lstatExisting(dir, name, path);
        if (stats.isSymbolicLink()) {
          throw new FileError('ENOTDIR', `${showPath(path.rel)} is a symbolic link, not a directory`);
        }
        if (!stats.isDirectory()) throw new FileError('ENOTDIR', `${showPath(path.rel)} is not a directory`);
        await this.#beneath.requireInside(dir, path.rel);
        const child = await dir.openChild(this.#fs, name);
        if (child === 'symlink') {
          throw new FileError('ENOTDIR', `${showPath(path.rel)} is a symbolic link, not a directory`);
        }
        try {
          const names = await this.#fs.readdir(child.self());
          if (names.some((n) => !isPartialName(n))) {
            throw new FileError('ENOTEMPTY', `${showPath(path.rel)}: the directory is not empty`);
          }
          for (const partial of names) {
            if (this.#inUse.has(`${child.key}/${partial.slice(0, PARTIAL_BASE_LENGTH)}`)) {
              throw new FileError('EBUSY', `${showPath(path.rel)}: a file is being uploaded into it`);
            }
          }
          for (const partial of names) await this.#fs.unlink(child.at(partial)).catch(ignoreMissing);
        } finally {
          await child.close();
        }
        await this.#fs.rmdir(dir.at(name));
        await dir.handle.sync().catch(() => {});
      } finally {
        await dir.close();
      }
    });
  }

  /** One page of the tree below `dirPath` (see Storage.walk). */
  async walk(dirPath: string, options: WalkOptions = {}): Promise<WalkPage> {
    const path = parseClientPath(dirPath);
    const limit = pageLimit(options.limit, 'list');
    const after = options.cursor === undefined ? undefined : decodeWalkCursor(options.cursor, path.rel);
    return this.#guard(`walking ${showPath(path.rel)}`, async () => {
      const top = await this.#openDir(path);
      try {
        return await walkPage({
          fs: this.#fs,
          listings: this.#listings,
          top,
          topRel: path.rel,
          after,
          limit,
          maxBytes: options.maxBytes,
        });
      } finally {
        await top.close();
      }
    });
  }

  /**
   * Stores small files whole (see Storage.writeFiles), a directory at a time: each directory is
   * opened once and checked once to be below the root, then its files are written into it.
   */
  async writeFiles(
    files: readonly WholeFile[],
    options: { overwrite: boolean },
  ): Promise<Array<FileError | undefined>> {
    const results: Array<FileError | undefined> = new Array(files.length).fill(undefined);
    const paths = files.map((f) => f.path);
    await this.#byDirectory(paths, results, ['writing into', 'writing'], async (dir, group) => {
      await this.#beneath.requireInside(dir, group.dir.rel);
      const inDir: WholeFileInDir[] = group.members.map((m) => ({ name: m.name, file: files[m.index]! }));
      return this.#writer?.available
        ? this.#writer.write(dir, inDir, options.overwrite)
        : writeWholeFiles(this.#fs, dir, inDir, options.overwrite);
    });
    return results;
  }

  /** Reads small files whole (see Storage.readFiles), a directory at a time. */
  async readFiles(
    paths: readonly string[],
    options: { maxBytes: number },
  ): Promise<Array<FileContent | FileError>> {
    const results: Array<FileContent | FileError> = new Array(paths.length);
    const budget = { left: options.maxBytes };
    await this.#byDirectory(paths, results, ['reading in', 'reading'], (dir, group) => {
      const toRead: WholeFileToRead[] = group.members.map((m) => ({
        name: m.name,
        path: m.rel,
        throughLink: () => this.#openThroughLink(m.rel),
      }));
      return readWholeFiles(this.#fs, dir, toRead, budget);
    });
    return results;
  }

  /** A file reached through a symbolic link inside the root, opened the ordinary way, to be read whole. */
  async #openThroughLink(relPath: string): Promise<OpenedWhole> {
    const file = await this.openRead(relPath);
    return {
      size: file.size,
      read: async () => {
        const data = Buffer.allocUnsafe(file.size);
        const blockSize = 1024 * 1024;
        for (let i = 0; i * blockSize < file.size; i++) {
          const block = await file.read(i, blockSize);
          block.copy(data, i * blockSize);
          file.release(block);
        }
        await file.sha256(); // EFILECHANGED if it changed while read
        return { data, mtimeMs: file.mtimeMs, mode: file.mode };
      },
      close: () => file.close(),
    };
  }

  /**
   * Runs `run` once per directory of `paths` (in order of first appearance) with the directory held
   * open, and puts what it returns for each of that directory's files at the file's index in
   * `results`. A path that is not valid gets its error there and no run; a run that fails gives its
   * error to every file of its directory. `verbs` name what is done to a directory and to a file.
   */
  async #byDirectory<R>(
    paths: readonly string[],
    results: Array<R | FileError>,
    verbs: [dir: string, file: string],
    run: (dir: Dir, group: DirectoryGroup) => Promise<readonly R[]>,
  ): Promise<void> {
    const groups = new Map<string, DirectoryGroup>();
    paths.forEach((rel, index) => {
      let path: ClientPath;
      try {
        path = parseClientPath(rel);
      } catch (error) {
        results[index] = error as FileError;
        return;
      }
      const name = path.segments.at(-1);
      if (name === undefined) {
        results[index] = new FileError('EISDIR', 'the root directory is not a file');
        return;
      }
      const dir = parentOf(path);
      let group = groups.get(dir.rel);
      if (group === undefined) {
        group = { dir, members: [] };
        groups.set(dir.rel, group);
      }
      group.members.push({ index, name, rel: path.rel });
    });
    for (const group of groups.values()) {
      await this.#guard(`${verbs[0]} ${showPath(group.dir.rel)}`, async () => {
        const dir = await this.#openDir(group.dir);
        try {
          const done = await run(dir, group);
          done.forEach((result, i) => {
            results[group.members[i]!.index] = result;
          });
        } finally {
          await dir.close();
        }
      }).catch((error: unknown) => {
        for (const m of group.members)
          results[m.index] = toFileError(error, `${verbs[1]} ${showPath(m.rel)}`);
      });
    }
  }

  /**
   * Removes partial files not updated for maxAgeMs anywhere under the root (symlinked directories are
   * not followed; partials being written now are kept). Returns their paths relative to the root.
   */
  async sweepUploads(maxAgeMs: number, now: number = (this.#options.now ?? Date.now)()): Promise<string[]> {
    // One sweep at a time: a slow one (a huge tree) is not joined by the next timer's.
    this.#sweeping ??= this.#guard('removing expired partial files', async () => {
      if ((await this.#dir.handle.stat()).nlink === 0) {
        throw Object.assign(new Error('the served directory was removed'), { code: 'ENOENT' });
      }
      const removed: string[] = [];
      await this.#sweepTree(this.#dir.borrow(), '', 0, maxAgeMs, now, removed);
      return removed;
    }).finally(() => {
      this.#sweeping = undefined;
    });
    return this.#sweeping;
  }

  /**
   * Sweeps `dir` and, depth first, the directories below it (symlinks never followed): at most one
   * directory per level is open at a time. A subdirectory that vanished or cannot be read is skipped.
   */
  async #sweepTree(
    dir: Dir,
    prefix: string,
    depth: number,
    maxAgeMs: number,
    now: number,
    removed: string[],
  ) {
    let entries: Dirent[];
    try {
      entries = await this.#fs.readdir(dir.self(), { withFileTypes: true });
    } catch (error) {
      if (depth === 0) throw error;
      return;
    }
    const names = entries.filter((entry) => isPartialName(entry.name)).map((entry) => entry.name);
    if (names.length > 0) {
      for (const name of await sweepPartials(
        this.#fs,
        dir,
        names,
        maxAgeMs,
        now,
        this.#inUse,
        this.#openedAt,
      )) {
        removed.push(prefix + name);
      }
    }
    if (depth >= MAX_SWEEP_DEPTH) return;
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const child = await dir.openChild(this.#fs, entry.name).catch(() => undefined);
      if (!(child instanceof Dir)) continue;
      try {
        await this.#sweepTree(child, `${prefix}${entry.name}/`, depth + 1, maxAgeMs, now, removed);
      } finally {
        await child.close();
      }
    }
  }

  // ---- internals ----

  /** The directory a client path names, held open (symlinks inside the root followed). */
  async #openDir(path: ClientPath): Promise<Dir> {
    try {
      return await this.#beneath.openDir(path.segments, path.rel);
    } catch (error) {
      if (error instanceof FileError && error.code === 'ENOTDIR' && (await this.#isNonDirectory(path))) {
        throw new FileError('ENOTDIR', `${showPath(path.rel)} is not a directory`, { cause: error });
      }
      throw error;
    }
  }

  async #isNonDirectory(path: ClientPath): Promise<boolean> {
    const stats = await this.#statFollowing(path).catch(() => undefined);
    return stats !== undefined && !stats.isDirectory();
  }

  /** What a client path leads to, symlinks inside the root followed; undefined if nothing is there. */
  async #statFollowing(path: ClientPath): Promise<Stats | undefined> {
    if (path.segments.length === 0) return this.#dir.handle.stat();
    const { dir, name } = await this.#beneath.locate(path.segments, path.rel, true);
    try {
      if (name === undefined) return await dir.handle.stat();
      return await this.#fs.lstat(dir.at(name)).catch(ignoreMissing);
    } finally {
      await dir.close();
    }
  }

  async #lstatExisting(dir: Dir, name: string, path: ClientPath): Promise<Stats> {
    const stats = await this.#fs.lstat(dir.at(name)).catch(ignoreMissing);
    if (stats === undefined)
      throw new FileError('ENOENT', `${showPath(path.rel)}: no such file or directory`);
    return stats;
  }

  // The target of a put: a directory, a special file or a symlink out of the root is never replaced.
  async #checkTarget(dir: Dir, name: string, path: ClientPath, overwrite: boolean): Promise<void> {
    const stats = await this.#fs.lstat(dir.at(name)).catch(ignoreMissing);
    if (stats === undefined) return;
    let target: Stats | undefined = stats;
    if (stats.isSymbolicLink()) {
      target = await this.#statFollowing(path).catch((error: unknown) => {
        if (error instanceof FileError && error.code === 'EINVAL') throw escapes(path.rel);
        return undefined; // a dangling link: replaced like a file
      });
    }
    if (target?.isDirectory()) throw new FileError('EISDIR', `${showPath(path.rel)} is a directory`);
    if (target !== undefined && !target.isFile() && !target.isSymbolicLink()) {
      throw new FileError('EINVAL', `${showPath(path.rel)} is a special file; ferry does not replace it`);
    }
    if (!overwrite) {
      throw new FileError('EEXIST', `${showPath(path.rel)} already exists (ask to overwrite to replace it)`);
    }
  }

  /** Bytes free for this user in the file system of `dir`; Infinity where it cannot be told. */
  async #available(dir: Dir): Promise<number> {
    try {
      const stats = await this.#fs.statfs(dir.self());
      return Number(stats.bavail) * Number(stats.bsize);
    } catch {
      return Number.POSITIVE_INFINITY; // No statfs (or not permitted): the writes themselves will tell.
    }
  }

  /** A listed name's entry: a symlink is shown as what it leads to inside the root, else as 'other'. */
  async #entry(dir: Dir, parent: ClientPath, name: string): Promise<Entry | undefined> {
    const stats = await this.#fs.lstat(dir.at(name)).catch(ignoreMissing);
    if (stats === undefined) return undefined;
    if (!stats.isSymbolicLink()) return toEntry(name, stats);
    const path = {
      rel: parent.rel === '' ? name : `${parent.rel}/${name}`,
      segments: [...parent.segments, name],
    };
    const target = await this.#statFollowing(path).catch(() => undefined);
    if (target === undefined) return { name, type: 'other', size: 0, mtimeMs: stats.mtimeMs };
    return toEntry(name, target);
  }

  /** Runs an operation; any system error becomes a FileError that says whether the root itself is gone. */
  async #guard<T>(what: string, operation: () => Promise<T>): Promise<T> {
    try {
      await this.#refresh();
      return await operation();
    } catch (error) {
      throw await this.#explain(error, what);
    }
  }

  async #explain(error: unknown, what: string): Promise<FileError> {
    const code = error instanceof FileError ? error.code : systemCode(error);
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EPERM' || code === 'ENOTDIR') {
      const rootProblem = await this.#rootProblem();
      if (rootProblem !== undefined) return rootProblem;
    }
    return toFileError(error, what);
  }

  /** Undefined while the root is a readable directory; otherwise the error that explains it. */
  async #rootProblem(): Promise<FileError | undefined> {
    try {
      const stats = await this.#dir.handle.stat();
      if (stats.nlink === 0) {
        return new FileError('ENOENT', 'the served directory no longer exists; the server needs restarting');
      }
      // Whether it can still be read, without reading it (a root of millions of names is slow to list).
      await this.#fs.access(this.#dir.self(), constants.R_OK | constants.X_OK);
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

/** The files of one directory that a batch names, with their places in the batch. */
interface DirectoryGroup {
  dir: ClientPath;
  members: Array<{ index: number; name: string; rel: string }>;
}

/** A partial's name without a suffix: the prefix and 32 hex digits (the in-use key). */
const PARTIAL_BASE_LENGTH = PARTIAL_PREFIX.length + 32;

function parentOf(path: ClientPath): ClientPath {
  const segments = path.segments.slice(0, -1);
  return { rel: segments.join('/'), segments };
}

function toEntry(name: string, stats: Stats): Entry {
  const type = stats.isFile() ? 'file' : stats.isDirectory() ? 'dir' : 'other';
  // mtimeMs exactly as the file system reports it (fractional), equal to what a get reports for resume.
  return { name, type, size: type === 'file' ? stats.size : 0, mtimeMs: stats.mtimeMs };
}
