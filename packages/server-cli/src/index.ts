/**
 * @ferry/server-cli: the FerryServer library (serve one directory to key holders over ferry's
 * transport) and the `ferry-server` command.
 */

export { KeysFileError, parseKeysFile, readKeysFile, type ServerKey } from './keys.js';
export {
  DEFAULT_PARTIAL_TTL_MS,
  FerryServer,
  type FerryServerOptions,
  MAX_TRANSFERS_PER_SESSION,
  type ServerLogEvent,
} from './server.js';
