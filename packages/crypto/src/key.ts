import { createHash, randomBytes } from 'node:crypto';
import { CryptoError } from './errors.js';

/** A Fernet key: 16-byte HMAC-SHA256 signing key and 16-byte AES-128 encryption key. */
export interface FernetKey {
  readonly signingKey: Buffer;
  readonly encryptionKey: Buffer;
}

const KEY_BYTES = 32;
const HALF = 16;
// 32 bytes = 43 base64url characters (the last one carries 2 unused bits) + one '=' of padding.
const KEY_TEXT = /^[A-Za-z0-9_-]{43}=?$/;

/** A fresh random key as 44-character padded base64url, the form Python's `Fernet.generate_key()` writes. */
export function generateKey(): string {
  return encodeKeyBytes(randomBytes(KEY_BYTES));
}

/**
 * Parses key text: surrounding whitespace is ignored; base64url with or without its '=' padding.
 * Anything else (standard base64 '+' '/', wrong length, non-canonical last character) is EINVALIDKEY.
 */
export function parseKey(text: string): FernetKey {
  if (typeof text !== 'string') {
    throw new CryptoError('EINVALIDKEY', 'a ferry key must be given as text');
  }
  const trimmed = text.trim();
  // Re-encoding catches non-canonical text (stray bits in the last character) that Buffer.from would
  // silently accept, so that one key has exactly one spelling.
  const bytes = KEY_TEXT.test(trimmed) ? Buffer.from(trimmed, 'base64url') : undefined;
  if (
    bytes === undefined ||
    bytes.length !== KEY_BYTES ||
    bytes.toString('base64url') !== trimmed.slice(0, 43)
  ) {
    throw new CryptoError(
      'EINVALIDKEY',
      'not a valid ferry key: expected 32 bytes as base64url (44 characters ending in "=", as `ferry keygen` writes)',
    );
  }
  return keyFromBytes(bytes);
}

/** The canonical 44-character text form of a key (round-trips through `parseKey`). */
export function formatKey(key: FernetKey): string {
  checkKey(key);
  return encodeKeyBytes(Buffer.concat([key.signingKey, key.encryptionKey]));
}

/**
 * A short, stable id for logs and `ferry key id`-style output: 8 hex characters of
 * SHA-256("ferry key id" || key). One-way, and too short to help anyone guess the key.
 */
export function keyFingerprint(key: FernetKey): string {
  checkKey(key);
  return createHash('sha256')
    .update('ferry key id')
    .update(key.signingKey)
    .update(key.encryptionKey)
    .digest('hex')
    .slice(0, 8);
}

/** Builds a key from 32 raw bytes (signing 16 || encryption 16); the bytes are copied. */
export function keyFromBytes(bytes: Uint8Array): FernetKey {
  if (bytes.length !== KEY_BYTES) {
    throw new CryptoError('EINVALIDKEY', `a ferry key is ${KEY_BYTES} bytes, got ${bytes.length}`);
  }
  // Fresh, unpooled buffers: key material should not share an allocation slab with unrelated data.
  const signingKey = Buffer.allocUnsafeSlow(HALF);
  const encryptionKey = Buffer.allocUnsafeSlow(HALF);
  signingKey.set(bytes.subarray(0, HALF));
  encryptionKey.set(bytes.subarray(HALF, KEY_BYTES));
  return Object.freeze({ signingKey, encryptionKey });
}

/** Throws EINVALIDKEY unless `key` has two 16-byte halves (guards hand-built key objects). */
export function checkKey(key: FernetKey): void {
  if (
    key === null ||
    typeof key !== 'object' ||
    !(key.signingKey instanceof Uint8Array) ||
    !(key.encryptionKey instanceof Uint8Array) ||
    key.signingKey.length !== HALF ||
    key.encryptionKey.length !== HALF
  ) {
    throw new CryptoError(
      'EINVALIDKEY',
      'a ferry key needs a 16-byte signingKey and a 16-byte encryptionKey',
    );
  }
}

function encodeKeyBytes(bytes: Buffer): string {
  return `${bytes.toString('base64url')}=`;
}
