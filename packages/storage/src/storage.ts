import type { BlockRange, Entry, WalkEntry } from '@ferry/protocol';
import type { FileError } from './errors.js';

/**
 * What a ferry server needs of a store of files. Paths are client paths: relative, '/'-separated, no
 * '.', '..' or empty names ('' is the root); every implementation refuses anything else with EINVAL and
 * never touches anything outside its root (a directory, or a bucket prefix). Every failure is a
 * FileError whose code is in the protocol's error table.
 *
 * A put goes into a resumable upload: blocks are written at their offsets in any order, the upload says
 * which ranges it holds (also after a restart, or on another server sharing the store), and commit()
 * verifies the whole file's SHA-256 before the file appears under its name, atomically.
 */
export interface Storage {
  /** Where the files are, for logs: a directory, or a URL such as s3://bucket/prefix. */
  readonly location: string;
  /** Whether the store accepts writes (a read-only directory or bucket says false). */
  writable(): Promise<boolean>;
  stat(path: string): Promise<Entry>;
  /** One page of a directory, sorted by name; partial uploads are never listed. */
  list(dir: string, options?: ListOptions): Promise<ListPage>;
  /** Opens a regular file for reading at block offsets. */
  openRead(path: string): Promise<ReadableFile>;
  /** Starts (or, with `resume`, continues) the upload of a file to `path`. */
  beginUpload(path: string, options: UploadOptions): Promise<Upload>;
  /** Renames a file or directory; never replaces an existing name unless `overwrite`. */
  rename(from: string, to: string, options: { overwrite: boolean }): Promise<void>;
  /** Deletes a file (or a symbolic link itself); directories are refused (EISDIR). */
  delete(path: string): Promise<void>;
  /**
   * Creates a directory; with `parents`, missing parents too and an existing directory is fine (a file
   * in the way is EEXIST). `mode`: its permission bits (0..0o777), exactly; default as the store does.
   */
  mkdir(path: string, options?: { parents?: boolean; mode?: number }): Promise<void>;
  /**
   * Removes an empty directory. ENOTEMPTY if anything is listed in it, ENOTDIR for a file (or a
   * symbolic link), ENOENT if missing, EINVAL for the root. Uploads in progress in it (never listed)
   * do not count as contents: an abandoned one goes with the directory, one being written is EBUSY.
   */
  rmdir(path: string): Promise<void>;
  /**
   * One page of everything below the directory `dir` ('' = the root), never `dir` itself: paths
   * relative to `dir`, in pre-order (a directory comes before what is inside it), siblings in a
   * stable order (LocalDiskStorage: as list() sorts names; a store keyed by whole paths may use its
   * key order, where `a/…` can come after `a-b`). Symbolic links are entries of type 'link' and never followed, so a
   * walk cannot loop or leave the store; uploads in progress are never listed. A directory more than
   * MAX_WALK_DEPTH levels below `dir` fails the walk with ETOOBIG. The `next` cursor (at most
   * MAX_WALK_CURSOR_LENGTH characters of base64url) continues after the page's last entry, also after
   * a restart; entries added or removed meanwhile may or may not be seen, nothing is seen twice.
   * ENOENT / ENOTDIR if `dir` is not a directory; EINVAL for a cursor of another walk.
   */
  walk(dir: string, options?: WalkOptions): Promise<WalkPage>;
  /**
   * Stores small files whole (a batch of a tree transfer): each is checked against its SHA-256
   * (EINTEGRITY), never replaces an existing name unless `overwrite` (EEXIST; a directory never:
   * EISDIR), and appears whole or not at all. Unlike a committed upload it need not be durable before
   * it appears (a resume compares size and SHA-256, so a file lost to a crash is sent again). Its
   * parent directory must exist. One result per file, in order: undefined once it is in place, else
   * why not; the batch as a whole does not fail for one file.
   */
  writeFiles(
    files: readonly WholeFile[],
    options: { overwrite: boolean },
  ): Promise<Array<FileError | undefined>>;
  /**
   * Reads small regular files whole (a batch of a tree transfer), at most `maxBytes` in all: a file
   * that would go over is ETOOBIG, and reading goes on with the next. One result per path, in order:
   * the file, or why not (ENOENT, EISDIR, EINVAL for a special file or a link out of the store …).
   */
  readFiles(paths: readonly string[], options: { maxBytes: number }): Promise<Array<FileContent | FileError>>;
  /** Removes uploads not updated for `maxAgeMs`; returns what was removed (store-specific names). */
  sweepUploads(maxAgeMs: number, now?: number): Promise<string[]>;
  /** Releases what the store holds open (descriptors, connections). */
  close(): Promise<void>;
}

export interface ListOptions {
  /** Opaque cursor from a previous page's `next`. */
  cursor?: string;
  /** Most entries per page (1..MAX_LIST_LIMIT; default DEFAULT_LIST_LIMIT). */
  limit?: number;
  /** Stop before the page's entries, as JSON, would exceed this many bytes (so it fits a message). */
  maxBytes?: number;
}

export interface ListPage {
  entries: Entry[];
  /** Cursor of the next page; absent on the last page. */
  next?: string;
}

export const DEFAULT_LIST_LIMIT = 256;
export const MAX_LIST_LIMIT = 10_000;

export interface WalkOptions {
  /** Opaque cursor from a previous page's `next` (of a walk of the same directory). */
  cursor?: string;
  /** Most entries per page (1..MAX_LIST_LIMIT; default DEFAULT_LIST_LIMIT). */
  limit?: number;
  /** Stop before the page's entries and its `next` cursor, as JSON, would exceed this many bytes. */
  maxBytes?: number;
}

export interface WalkPage {
  entries: WalkEntry[];
  /** Cursor of the next page; absent on the last page. */
  next?: string;
}

/** A file written whole by writeFiles. */
export interface WholeFile {
  path: string;
  data: Buffer;
  /** SHA-256 (hex) the data must have. */
  sha256: string;
  /** Modification time to give it (ms since the epoch). */
  mtimeMs?: number;
  /** Permission bits to give it (0..0o777), exactly. */
  mode?: number;
}

/** A file read whole by readFiles. */
export interface FileContent {
  data: Buffer;
  mtimeMs: number;
  /** Permission bits (0..0o777), where the store has them. */
  mode?: number;
}

export type ProgressCallback = (doneBytes: number, totalBytes: number) => void;

/**
 * A file opened for reading: the transport's block source. Size and modification time are those seen
 * at open; `sha256()` hashes what was read and fails with EFILECHANGED if the file changed meanwhile.
 */
export interface ReadableFile {
  readonly size: number;
  readonly mtimeMs: number;
  /** Permission bits (0..0o777), where the store has them. */
  readonly mode?: number;
  /** Block `index` (blocks of `blockSize` bytes; the last may be shorter). Never modify it. */
  read(index: number, blockSize: number): Promise<Buffer>;
  /** Gives back a buffer read() returned, once it is no longer used, so its memory can be reused. */
  release(data: Buffer): void;
  /** SHA-256 (hex) of the whole file; EFILECHANGED if it changed since it was opened. */
  sha256(onProgress?: ProgressCallback): Promise<string>;
  close(): Promise<void>;
}

export interface UploadOptions {
  size: number;
  blockSize: number;
  /** Replace an existing file (checked now and again at commit). */
  overwrite: boolean;
  /** Continue an earlier interrupted upload of the same path, size and identity, if there is one. */
  resume: boolean;
  /** Who or what is writing (e.g. key name, source name, size, mtime): uploads resume only for the same. */
  identity: string;
}

export interface CommitOptions {
  /** Expected SHA-256 of the whole file, 64 hex digits. */
  sha256: string;
  /** Replace an existing file (never a directory). */
  overwrite: boolean;
  /** Modification time to give the file (ms since the epoch). */
  mtimeMs?: number;
  /** Permission bits to give the file (0..0o777), exactly. */
  mode?: number;
  /** Progress of the final hashing of bytes not hashed while they arrived. */
  onProgress?: ProgressCallback;
}

export interface CommitResult {
  size: number;
  sha256: string;
}

/**
 * An upload in progress: the transport's block sink. write() resolves once the block is stored (a
 * failure, such as ENOSPC, rejects it: no block of a failed write is held); held() reports what is
 * stored; commit()
 * verifies and places the file; abort() ends it, keeping what is held for a resume or discarding it.
 */
export interface Upload {
  readonly size: number;
  readonly blockSize: number;
  readonly blockCount: number;
  /** True when an earlier upload was found and its blocks kept. */
  readonly resumed: boolean;
  /** Ranges of blocks stored so far, in order. */
  held(): BlockRange[];
  write(index: number, data: Buffer): Promise<void>;
  /** Makes what is held durable, so that a crash loses nothing held now. */
  persist(): Promise<void>;
  /**
   * Verifies and places the file. EINVAL if blocks are missing; EINTEGRITY (the upload is discarded)
   * if the SHA-256 differs; EEXIST (the upload is kept) if the name exists and !overwrite.
   */
  commit(options: CommitOptions): Promise<CommitResult>;
  /** Ends the upload without committing; never throws. `keep`: leave it for a resume (if it holds anything). */
  abort(options: { keep: boolean }): Promise<void>;
}
