import { createHash, randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { MAX_FILE_SIZE, MODE_MASK } from '@ferry/protocol';
import { FileError, systemCode, toFileError } from '../errors.js';
import { PARTIAL_PREFIX, showPath } from '../paths.js';
import type { FileContent, WholeFile } from '../storage.js';
import type { Dir } from './beneath.js';
import { describeFileType } from './file.js';
import type { FileSystem } from './fs.js';
import { placeNoReplaceSync } from './place.js';

/**
 * Small files written and read whole, a batch at a time, in one directory held open: the fast path
 * of tree transfers, where a file costs a handful of system calls rather than an upload's partial
 * file, sidecar and fsyncs.
 */

/**
 * Files handled one after another with synchronous system calls, this many bytes at a time, then the
 * event loop is let run (the session's packets, other sessions) before the next slice: a slice takes
 * a millisecond or two, and no round trip through the thread pool is paid per system call.
 */
const SLICE_BYTES = 256 * 1024;
const SLICE_FILES = 16;

const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | constants.O_NOFOLLOW;

/** Lets the event loop run between slices. */
const breathe = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Calls `step(i)` for each index below `count`, letting the event loop run after each slice. */
async function inSlices(
  count: number,
  sizeOf: (i: number) => number,
  step: (i: number) => void,
): Promise<void> {
  let bytes = 0;
  let files = 0;
  for (let i = 0; i < count; i++) {
    step(i);
    bytes += sizeOf(i);
    if (++files >= SLICE_FILES || bytes >= SLICE_BYTES) {
      files = 0;
      bytes = 0;
      await breathe();
    }
  }
}

export interface WholeFileInDir {
  /** The file's name in the directory. */
  name: string;
  file: WholeFile;
}

/** What writing needs of a directory: a path that reaches a name in it (see Dir.at). */
export interface DirAt {
  at(name: string): string;
}

/**
 * Writes each file into `dir` (see Storage.writeFiles): verified, then written to a hidden temporary
 * name and linked (or, with overwrite, renamed) into place. Returns one result per file.
 */
export async function writeWholeFiles(
  fs: FileSystem,
  dir: Dir,
  files: readonly WholeFileInDir[],
  overwrite: boolean,
): Promise<Array<FileError | undefined>> {
  const results: Array<FileError | undefined> = new Array(files.length).fill(undefined);
  await inSlices(
    files.length,
    (i) => files[i]!.file.data.length,
    (i) => {
      const { name, file } = files[i]!;
      try {
        writeWholeFileSync(fs, dir, name, file, overwrite);
      } catch (error) {
        results[i] = toFileError(error, `writing ${showPath(file.path)}`);
      }
    },
  );
  return results;
}

/**
 * Writes one whole file into `dir` with synchronous calls: verified, written to a hidden temporary
 * name, then linked (or, with overwrite, renamed) into place. Throws why it could not.
 */
export function writeWholeFileSync(
  fs: FileSystem,
  dir: DirAt,
  name: string,
  file: WholeFile,
  overwrite: boolean,
): void {
  const what = showPath(file.path);
  const actual = createHash('sha256').update(file.data).digest('hex');
  if (actual !== file.sha256) {
    throw new FileError(
      'EINTEGRITY',
      `${what} failed verification: SHA-256 of the received data is ${actual}, the sender's is ${file.sha256}; nothing was written, transfer it again`,
    );
  }
  // Without overwrite, link() refuses any existing name by itself; a replacement must not hit a
  // directory or a special file, so that is looked at first.
  if (overwrite) {
    const existing = lstatOrUndefined(fs, dir.at(name));
    if (existing?.isDirectory()) throw new FileError('EISDIR', `${what} is a directory`);
    if (existing !== undefined && !existing.isFile() && !existing.isSymbolicLink()) {
      throw new FileError('EINVAL', `${what} is a special file; ferry does not replace it`);
    }
  }
  const temp = temporaryName();
  let fd: number | undefined = fs.openSync(dir.at(temp), WRITE_FLAGS, 0o666);
  try {
    let done = 0;
    while (done < file.data.length) {
      const written = fs.writeSync(fd, file.data, done, file.data.length - done, done);
      if (written <= 0) throw Object.assign(new Error('the disk wrote nothing'), { code: 'EIO' });
      done += written;
    }
    if (file.mode !== undefined) fs.fchmodSync(fd, file.mode & MODE_MASK);
    if (file.mtimeMs !== undefined) fs.futimesSync(fd, file.mtimeMs / 1000, file.mtimeMs / 1000);
    fs.closeSync(fd);
    fd = undefined;
    if (overwrite) {
      fs.renameSync(dir.at(temp), dir.at(name));
    } else if (placeNoReplaceSync(fs, dir.at(temp), dir.at(name)) === 'linked') {
      fs.unlinkSync(dir.at(temp));
    }
  } catch (error) {
    if (fd !== undefined) closeQuietly(fs, fd);
    try {
      fs.unlinkSync(dir.at(temp));
    } catch {
      // already gone (placed by rename), or never made
    }
    const code = systemCode(error);
    if (code === 'EEXIST') {
      const existing = lstatOrUndefined(fs, dir.at(name));
      if (existing?.isDirectory()) throw new FileError('EISDIR', `${what} is a directory`);
      throw new FileError('EEXIST', `${what} already exists (ask to overwrite to replace it)`);
    }
    if (code === 'EISDIR') throw new FileError('EISDIR', `${what} is a directory`);
    throw error;
  }
}

/** A random prefix per process, then a counter: unique partial names without 16 random bytes per file. */
const TEMP_BASE = randomBytes(8).toString('hex');
let tempCounter = 0;

/** Names of whole files being written (never resumed: the expiry sweep removes orphans at once). */
export const WHOLE_FILE_TEMP_PREFIX = `${PARTIAL_PREFIX}whole-`;

function temporaryName(): string {
  tempCounter = (tempCounter + 1) % 0x1_0000_0000;
  return `${WHOLE_FILE_TEMP_PREFIX}${TEMP_BASE}${tempCounter.toString(16).padStart(16, '0')}`;
}

function lstatOrUndefined(fs: FileSystem, path: string): Stats | undefined {
  try {
    return fs.lstatSync(path);
  } catch (error) {
    if (systemCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

function closeQuietly(fs: FileSystem, fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // nothing more to do with it
  }
}

/** A file of `dir` to read whole, and how to open it when it is a symbolic link (the store follows it, confined). */
export interface WholeFileToRead {
  name: string;
  path: string;
  throughLink: () => Promise<OpenedWhole>;
}

/** A file opened for reading whole: its size now, then its content (EFILECHANGED if it changed). */
export interface OpenedWhole {
  size: number;
  read(): Promise<FileContent>;
  close(): Promise<void>;
}

/**
 * Reads each file of `dir` whole (see Storage.readFiles), while the total stays within `budget.left`
 * bytes (which it lowers), files taken in order: all are opened, then given their share of the
 * budget in order, then read. Returns one result per file.
 */
export async function readWholeFiles(
  fs: FileSystem,
  dir: Dir,
  files: readonly WholeFileToRead[],
  budget: { left: number },
): Promise<Array<FileContent | FileError>> {
  const results: Array<FileContent | FileError> = new Array(files.length);
  const opened: Array<OpenedWhole | undefined> = new Array(files.length);
  try {
    const linked: number[] = [];
    await inSlices(
      files.length,
      () => 0,
      (i) => {
        const f = files[i]!;
        try {
          opened[i] = openWhole(fs, dir, f);
        } catch (error) {
          if (systemCode(error) === 'ELOOP') linked.push(i);
          else results[i] = toFileError(error, `reading ${showPath(f.path)}`);
        }
      },
    );
    // A name that is a symbolic link is followed the ordinary way (confined to the store).
    for (const i of linked) {
      try {
        opened[i] = await files[i]!.throughLink();
      } catch (error) {
        results[i] = toFileError(error, `reading ${showPath(files[i]!.path)}`);
      }
    }
    for (let i = 0; i < files.length; i++) {
      const file = opened[i];
      if (file === undefined) continue;
      if (file.size > budget.left) {
        results[i] = tooBig(files[i]!.path, file.size);
        opened[i] = undefined;
        await file.close();
      } else {
        budget.left -= file.size;
      }
    }
    let slice = 0;
    for (let i = 0; i < files.length; i++) {
      const file = opened[i];
      if (file === undefined) continue;
      try {
        results[i] = await file.read();
      } catch (error) {
        results[i] = toFileError(error, `reading ${showPath(files[i]!.path)}`);
      }
      slice += file.size;
      if (slice >= SLICE_BYTES) {
        slice = 0;
        await breathe();
      }
    }
  } finally {
    for (const file of opened) await file?.close();
  }
  return results;
}

/** Opens a regular file of `dir` to read whole; throws ELOOP (as the system does) for a symbolic link. */
function openWhole(fs: FileSystem, dir: Dir, f: WholeFileToRead): OpenedWhole {
  const fd = fs.openSync(dir.at(f.name), READ_FLAGS);
  let stats: Stats;
  try {
    stats = fs.fstatSync(fd);
    if (stats.isDirectory()) throw new FileError('EISDIR', `${showPath(f.path)} is a directory, not a file`);
    if (!stats.isFile()) {
      throw new FileError(
        'EINVAL',
        `${showPath(f.path)} is a ${describeFileType(stats)}; only regular files can be transferred`,
      );
    }
    if (stats.size > MAX_FILE_SIZE) throw tooBig(f.path, stats.size);
  } catch (error) {
    closeQuietly(fs, fd);
    throw error;
  }
  let closed = false;
  return {
    size: stats.size,
    read: async () => {
      const data = Buffer.allocUnsafe(stats.size);
      let done = 0;
      while (done < data.length) {
        const read = fs.readSync(fd, data, done, data.length - done, done);
        if (read === 0) break;
        done += read;
      }
      // A file being written meanwhile is reported, not sent half old, half new.
      const after = fs.fstatSync(fd);
      if (done !== data.length || after.size !== stats.size || after.mtimeMs !== stats.mtimeMs) {
        throw new FileError('EFILECHANGED', `${showPath(f.path)} changed while it was read; try again`);
      }
      return { data, mtimeMs: stats.mtimeMs, mode: stats.mode & MODE_MASK };
    },
    close: async () => {
      if (closed) return;
      closed = true;
      closeQuietly(fs, fd);
    },
  };
}

function tooBig(path: string, size: number): FileError {
  return new FileError('ETOOBIG', `${showPath(path)} (${size} bytes) does not fit in this batch`);
}
