export {
  type BeginWriteOptions,
  DEFAULT_LIST_LIMIT,
  type ListOptions,
  type ListPage,
  LocalDiskStorage,
  type LocalDiskStorageOptions,
  MAX_LIST_LIMIT,
  type StorageEntry,
} from './local-disk.js';
export { type ClientPath, parseClientPath, showPath } from './paths.js';
