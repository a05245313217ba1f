import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';

/**
 * The file-system calls the local store makes. Production code uses node:fs/promises; tests pass a
 * `Partial<FileSystem>` whose members replace the real ones (e.g. an `open` whose handles fail writes
 * with ENOSPC after N bytes), so faults are simulated without a full disk.
 */
export interface FileSystem {
  open: typeof fsp.open;
  access: typeof fsp.access;
  mkdir: typeof fsp.mkdir;
  rmdir: typeof fsp.rmdir;
  rename: typeof fsp.rename;
  link: typeof fsp.link;
  unlink: typeof fsp.unlink;
  stat: typeof fsp.stat;
  lstat: typeof fsp.lstat;
  realpath: typeof fsp.realpath;
  readFile: typeof fsp.readFile;
  readdir: typeof fsp.readdir;
  statfs: typeof fsp.statfs;
  utimes: typeof fsp.utimes;
  readlink: typeof fsp.readlink;
  /**
   * Synchronous calls, for small files moved whole a batch at a time (see whole-files.ts): a few
   * system calls each without a round trip through the I/O thread pool, which measured several times
   * faster for thousands of small files.
   */
  openSync: typeof fs.openSync;
  closeSync: typeof fs.closeSync;
  writeSync: (fd: number, buffer: Buffer, offset: number, length: number, position: number) => number;
  readSync: (fd: number, buffer: Buffer, offset: number, length: number, position: number) => number;
  fstatSync: (fd: number) => fs.Stats;
  fchmodSync: typeof fs.fchmodSync;
  futimesSync: typeof fs.futimesSync;
  linkSync: typeof fs.linkSync;
  unlinkSync: typeof fs.unlinkSync;
  renameSync: typeof fs.renameSync;
  lstatSync: (path: string) => fs.Stats;
}

export const nodeFileSystem: FileSystem = {
  open: fsp.open,
  access: fsp.access,
  mkdir: fsp.mkdir,
  rmdir: fsp.rmdir,
  rename: fsp.rename,
  link: fsp.link,
  unlink: fsp.unlink,
  stat: fsp.stat,
  lstat: fsp.lstat,
  realpath: fsp.realpath,
  readFile: fsp.readFile,
  readdir: fsp.readdir,
  statfs: fsp.statfs,
  utimes: fsp.utimes,
  readlink: fsp.readlink,
  openSync: fs.openSync,
  closeSync: fs.closeSync,
  writeSync: (fd, buffer, offset, length, position) => fs.writeSync(fd, buffer, offset, length, position),
  readSync: (fd, buffer, offset, length, position) => fs.readSync(fd, buffer, offset, length, position),
  fstatSync: (fd) => fs.fstatSync(fd),
  fchmodSync: fs.fchmodSync,
  futimesSync: fs.futimesSync,
  linkSync: fs.linkSync,
  unlinkSync: fs.unlinkSync,
  renameSync: fs.renameSync,
  lstatSync: (path) => fs.lstatSync(path),
};

export function withFileSystem(overrides: Partial<FileSystem> | undefined): FileSystem {
  return overrides === undefined ? nodeFileSystem : { ...nodeFileSystem, ...overrides };
}
