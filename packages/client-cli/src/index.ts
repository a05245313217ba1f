/**
 * @ferry/client-cli: the FerryClient library (get, put, list, stat, rename, delete over one ferry
 * session; with a server of protocol version 2 also mkdir, rmdir, walk, hash and batches of small
 * files) and the `ferry` command.
 */
export {
  type BatchFile,
  type BatchOptions,
  type BatchOutcome,
  defaultTargetName,
  FerryClient,
  type FerryClientOptions,
  type FetchedFile,
  type TransferOptions,
  type TransferProgress,
  type TransferResult,
} from './client.js';
