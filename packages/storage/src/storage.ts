import type { BlockRange, Entry } from '@ferry/protocol';

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
  /** Creates a directory; with `parents`, missing parents too and an existing directory is fine. */
  mkdir(path: string, options?: { parents?: boolean }): Promise<void>;
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

export type ProgressCallback = (doneBytes: number, totalBytes: number) => void;

/**
 * A file opened for reading: the transport's block source. Size and modification time are those seen
 * at open; `sha256()` hashes what was read and fails with EFILECHANGED if the file changed meanwhile.
 */
export interface ReadableFile {
  readonly size: number;
  readonly mtimeMs: number;
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
