import { createHash, randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { MAX_FILE_SIZE, MODE_MASK } from '@ferry/protocol';
import { FileError, systemCode, toFileError } from '../errors.js';
import { PARTIAL_PREFIX, showPath } from '../paths.js';
import type { FileContent, WholeFile } from '../storage.js';
import { type Dir, ignoreMissing } from './beneath.js';
import { describeFileType } from './file.js';
import type { FileSystem } from './fs.js';
import { placeNoReplace } from './place.js';

/**
 * Small files written and read whole, a batch at a time, in one directory held open: the fast path
 * of tree transfers, where a file costs a handful of system calls rather than an upload's partial
 * file, sidecar and fsyncs.
 */

/** Files of a batch handled at once (the I/O thread pool runs 4 by default; a few more keep it fed). */
const CONCURRENCY = 8;

const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | constants.O_NOFOLLOW;

/** Runs `task` for each index below `count`, `limit` at a time. */
export async function eachLimited(
  count: number,
  limit: number,
  task: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
}

export interface WholeFileInDir {
  /** The file's name in the directory. */
  name: string;
  file: WholeFile;
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
  await eachLimited(files.length, CONCURRENCY, async (i) => {
    const { name, file } = files[i]!;
    try {
      await writeOne(fs, dir, name, file, overwrite);
    } catch (error) {
      results[i] = toFileError(error, `writing ${showPath(file.path)}`);
    }
  });
  return results;
}

async function writeOne(
  fs: FileSystem,
  dir: Dir,
  name: string,
  file: WholeFile,
  overwrite: boolean,
): Promise<void> {
  const what = showPath(file.path);
  const actual = createHash('sha256').update(file.data).digest('hex');
  if (actual !== file.sha256) {
    throw new FileError(
      'EINTEGRITY',
      `${what} failed verification: SHA-256 of the received data is ${actual}, the sender's is ${file.sha256}; nothing was written, transfer it again`,
    );
  }
  const existing = await fs.lstat(dir.at(name)).catch(ignoreMissing);
  if (existing !== undefined) {
    if (existing.isDirectory()) throw new FileError('EISDIR', `${what} is a directory`);
    if (!existing.isFile() && !existing.isSymbolicLink()) {
      throw new FileError('EINVAL', `${what} is a special file; ferry does not replace it`);
    }
    if (!overwrite) {
      throw new FileError('EEXIST', `${what} already exists (ask to overwrite to replace it)`);
    }
  }
  const temp = PARTIAL_PREFIX + randomBytes(16).toString('hex');
  let handle: FileHandle | undefined = await fs.open(dir.at(temp), WRITE_FLAGS, 0o666);
  try {
    let done = 0;
    while (done < file.data.length) {
      const { bytesWritten } = await handle.write(file.data, done, file.data.length - done, done);
      if (bytesWritten <= 0) throw Object.assign(new Error('the disk wrote nothing'), { code: 'EIO' });
      done += bytesWritten;
    }
    if (file.mode !== undefined) await handle.chmod(file.mode & MODE_MASK);
    if (file.mtimeMs !== undefined) await handle.utimes(file.mtimeMs / 1000, file.mtimeMs / 1000);
    await handle.close();
    handle = undefined;
    if (overwrite) {
      await fs.rename(dir.at(temp), dir.at(name));
    } else if ((await placeNoReplace(fs, dir.at(temp), dir.at(name))) === 'linked') {
      await fs.unlink(dir.at(temp)).catch(() => {});
    }
  } catch (error) {
    await handle?.close().catch(() => {});
    await fs.unlink(dir.at(temp)).catch(() => {});
    if (systemCode(error) === 'EEXIST') {
      throw new FileError('EEXIST', `${what} already exists (ask to overwrite to replace it)`);
    }
    if (systemCode(error) === 'EISDIR') throw new FileError('EISDIR', `${what} is a directory`);
    throw error;
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
 * budget in order, then read, several at a time. Returns one result per file.
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
    await eachLimited(files.length, CONCURRENCY, async (i) => {
      const f = files[i]!;
      try {
        opened[i] = await openWhole(fs, dir, f);
      } catch (error) {
        results[i] = toFileError(error, `reading ${showPath(f.path)}`);
      }
    });
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
    await eachLimited(files.length, CONCURRENCY, async (i) => {
      const file = opened[i];
      if (file === undefined) return;
      try {
        results[i] = await file.read();
      } catch (error) {
        results[i] = toFileError(error, `reading ${showPath(files[i]!.path)}`);
      }
    });
  } finally {
    for (const file of opened) await file?.close();
  }
  return results;
}

async function openWhole(fs: FileSystem, dir: Dir, f: WholeFileToRead): Promise<OpenedWhole> {
  let handle: FileHandle;
  try {
    handle = await fs.open(dir.at(f.name), READ_FLAGS);
  } catch (error) {
    if (systemCode(error) === 'ELOOP') return f.throughLink();
    throw error;
  }
  let stats: Stats;
  try {
    stats = await handle.stat();
    if (stats.isDirectory()) throw new FileError('EISDIR', `${showPath(f.path)} is a directory, not a file`);
    if (!stats.isFile()) {
      throw new FileError(
        'EINVAL',
        `${showPath(f.path)} is a ${describeFileType(stats)}; only regular files can be transferred`,
      );
    }
    if (stats.size > MAX_FILE_SIZE) throw tooBig(f.path, stats.size);
  } catch (error) {
    await handle.close().catch(() => {});
    throw error;
  }
  let closed = false;
  return {
    size: stats.size,
    read: async () => {
      const data = Buffer.allocUnsafe(stats.size);
      let done = 0;
      while (done < data.length) {
        const { bytesRead } = await handle.read(data, done, data.length - done, done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      // A file being written meanwhile is reported, not sent half old, half new.
      const after = await handle.stat();
      if (done !== data.length || after.size !== stats.size || after.mtimeMs !== stats.mtimeMs) {
        throw new FileError('EFILECHANGED', `${showPath(f.path)} changed while it was read; try again`);
      }
      return { data, mtimeMs: stats.mtimeMs, mode: stats.mode & MODE_MASK };
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await handle.close().catch(() => {});
    },
  };
}

function tooBig(path: string, size: number): FileError {
  return new FileError('ETOOBIG', `${showPath(path)} (${size} bytes) does not fit in this batch`);
}
