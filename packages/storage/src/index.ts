/**
 * @ferry/storage: where ferry's files live. The `Storage` interface is everything a server needs of a
 * store (stat, paged list, reads at block offsets, resumable uploads committed atomically with a
 * verified SHA-256, rename, delete, mkdir, rmdir, paged walks of a tree, small files written and read
 * whole, expiry of abandoned uploads); `LocalDiskStorage` is the
 * embedded store, confined to one directory. Fault injection for tests: `@ferry/storage/testing`.
 */
export { FileError, type FileErrorCode, isFileError, systemCode, toFileError } from './errors.js';
export { readFilesThroughReads, writeFilesThroughUploads } from './generic.js';
export {
  describeFileType,
  LocalFile,
  type OpenFileOptions,
  requireRegularFile,
  sha256File,
} from './local/file.js';
export type { FileSystem } from './local/fs.js';
export { LocalDiskStorage, type LocalDiskStorageOptions } from './local/local-disk.js';
export { DEFAULT_PERSIST_EVERY_BYTES, DEFAULT_PERSIST_EVERY_MS, LocalUpload } from './local/upload.js';
export { type ClientPath, isPartialName, PARTIAL_PREFIX, parseClientPath, showPath } from './paths.js';
export {
  type CommitOptions,
  type CommitResult,
  DEFAULT_LIST_LIMIT,
  type FileContent,
  type ListOptions,
  type ListPage,
  MAX_LIST_LIMIT,
  type ProgressCallback,
  type ReadableFile,
  type Storage,
  type Upload,
  type UploadOptions,
  type WalkOptions,
  type WalkPage,
  type WholeFile,
} from './storage.js';
