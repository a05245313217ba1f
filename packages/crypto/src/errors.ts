/**
 * Stable error codes of @ferry/crypto. Callers branch on `code`, never on the message; the message
 * says what happened and what to do about it.
 * - EINVALIDKEY: a key (Fernet key, X25519 public key, shared secret) is malformed or unusable.
 * - EBADTOKEN: a token is malformed or not authentic (wrong key, tampered, truncated).
 * - EEXPIRED: a token is authentic but outside its time window (older than the TTL, or more than
 *   60 s in the future: clock skew).
 * - EKEYFILE: a key file is missing or cannot be read or written.
 * - EKEYEXISTS: refusing to overwrite an existing key file.
 */
export type CryptoErrorCode = 'EINVALIDKEY' | 'EBADTOKEN' | 'EEXPIRED' | 'EKEYFILE' | 'EKEYEXISTS';

export class CryptoError extends Error {
  readonly code: CryptoErrorCode;

  constructor(code: CryptoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CryptoError';
    this.code = code;
  }
}

export function isCryptoError(error: unknown, code?: CryptoErrorCode): error is CryptoError {
  return error instanceof CryptoError && (code === undefined || error.code === code);
}
