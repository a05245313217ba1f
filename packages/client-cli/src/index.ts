/**
 * @ferry/client-cli: the FerryClient library (get, put, list, stat, rename, delete over one ferry
 * session) and the `ferry` command.
 */
export {
  defaultTargetName,
  FerryClient,
  type FerryClientOptions,
  type TransferOptions,
  type TransferProgress,
  type TransferResult,
} from './client.js';
