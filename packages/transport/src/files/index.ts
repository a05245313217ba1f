export {
  DEFAULT_HASH_AHEAD_BYTES,
  PrefixHasher,
  type PrefixHasherOptions,
  type ProgressCallback,
} from './block-io.js';
export { FileError, type FileErrorCode, isFileError, systemCode, toFileError } from './errors.js';
export { failPartialWritesAfter, faultyFileSystem, type HandleOverrides, systemError } from './faults.js';
export { type FileSystem, nodeFileSystem, withFileSystem } from './fs.js';
export {
  type CommitOptions,
  type CommitResult,
  DEFAULT_PERSIST_EVERY_BYTES,
  DEFAULT_PERSIST_EVERY_MS,
  isPartialName,
  PARTIAL_PREFIX,
  PartialFile,
  type PartialFileOptions,
} from './partial.js';
export {
  describeFileType,
  FileBlockSource,
  type OpenSourceOptions,
  requireRegularFile,
  sha256File,
} from './source.js';
