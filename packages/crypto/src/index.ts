export { CryptoError, type CryptoErrorCode, isCryptoError } from './errors.js';
export {
  FERNET_OVERHEAD,
  Fernet,
  GATHER_MIN_BYTES,
  MAX_CLOCK_SKEW,
  MIN_TOKEN_LENGTH,
  maxPlaintextLength,
  type OpenOptions,
  type SealOptions,
  sealedLength,
  tokenTimestamp,
} from './fernet.js';
export { type FernetKey, formatKey, generateKey, keyFingerprint, keyFromBytes, parseKey } from './key.js';
export { defaultKeyPath, keyFromEnv, readKeyFile, writeNewKeyFile } from './keyfile.js';
export { randomBytesPooled } from './random.js';
export {
  deriveSessionKeys,
  generateX25519,
  hkdfExpand,
  hkdfExtract,
  hkdfSha256,
  type SessionKeyInput,
  type SessionKeys,
  type X25519KeyPair,
  x25519KeyPairFromPrivate,
  x25519SharedSecret,
} from './session.js';
