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
};

export function withFileSystem(overrides: Partial<FileSystem> | undefined): FileSystem {
  return overrides === undefined ? nodeFileSystem : { ...nodeFileSystem, ...overrides };
}
