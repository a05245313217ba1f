import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { CryptoError } from './errors.js';
import { checkKey, type FernetKey, keyFromBytes } from './key.js';

const HASH_BYTES = 32;

// HKDF (RFC 5869) over HMAC-SHA256, written out rather than node's hkdfSync because hkdfSync caps
// `info` at 1024 bytes, and the session-key info carries a caller-chosen context (e.g. a transcript).

/** HKDF-Extract: PRK = HMAC-SHA256(salt, ikm). An empty salt means 32 zero bytes (RFC 5869 §2.2). */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Buffer {
  const key = salt.length === 0 ? Buffer.alloc(HASH_BYTES) : salt;
  return createHmac('sha256', key).update(ikm).digest();
}

/** HKDF-Expand: the first `length` bytes of T(1) || T(2) || ..., T(i) = HMAC(prk, T(i-1) || info || i). */
export function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 0 || length > 255 * HASH_BYTES) {
    throw new RangeError(`hkdfExpand: length must be 0..${255 * HASH_BYTES}, got ${length}`);
  }
  const okm = Buffer.alloc(Math.ceil(length / HASH_BYTES) * HASH_BYTES);
  let previous: Buffer = Buffer.alloc(0);
  for (let i = 1; (i - 1) * HASH_BYTES < length; i++) {
    previous = createHmac('sha256', prk).update(previous).update(info).update(Uint8Array.of(i)).digest();
    okm.set(previous, (i - 1) * HASH_BYTES);
  }
  return okm.subarray(0, length);
}

/** HKDF-SHA256 (RFC 5869): Expand(Extract(salt, ikm), info, length). */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Buffer {
  return hkdfExpand(hkdfExtract(salt, ikm), info, length);
}

export interface SessionKeyInput {
  /** The pre-shared key: binds the session to key holders, on top of the ephemeral X25519 secret. */
  readonly psk: FernetKey;
  /** X25519 shared secret, 32 bytes. */
  readonly sharedSecret: Uint8Array;
  readonly clientNonce: Uint8Array;
  readonly serverNonce: Uint8Array;
  /** Bytes both sides agree on (e.g. the handshake transcript), bound into the keys via HKDF info. */
  readonly context: Uint8Array;
}

export interface SessionKeys {
  readonly clientToServer: FernetKey;
  readonly serverToClient: FernetKey;
}

const SESSION_INFO_LABEL = Buffer.from('ferry v1 session keys', 'utf8');
const MIN_NONCE_BYTES = 16;

/**
 * One Fernet key per direction, so a packet reflected back to its sender never authenticates.
 * prk = Extract(salt = clientNonce || serverNonce, ikm = sharedSecret || psk.signingKey || psk.encryptionKey);
 * okm = Expand(prk, "ferry v1 session keys" || context, 64); c2s = okm[0..32), s2c = okm[32..64).
 */
export function deriveSessionKeys(input: SessionKeyInput): SessionKeys {
  checkKey(input.psk);
  if (input.sharedSecret.length !== 32) {
    throw new CryptoError(
      'EINVALIDKEY',
      `the X25519 shared secret must be 32 bytes, got ${input.sharedSecret.length}`,
    );
  }
  if (input.clientNonce.length < MIN_NONCE_BYTES || input.serverNonce.length < MIN_NONCE_BYTES) {
    throw new RangeError(`deriveSessionKeys: nonces must be at least ${MIN_NONCE_BYTES} bytes`);
  }
  const salt = Buffer.concat([input.clientNonce, input.serverNonce]);
  const ikm = Buffer.concat([input.sharedSecret, input.psk.signingKey, input.psk.encryptionKey]);
  const okm = hkdfSha256(ikm, salt, Buffer.concat([SESSION_INFO_LABEL, input.context]), 64);
  const keys = {
    clientToServer: keyFromBytes(okm.subarray(0, 32)),
    serverToClient: keyFromBytes(okm.subarray(32, 64)),
  };
  // Intermediate copies of secret material are wiped; the returned keys hold their own copies.
  ikm.fill(0);
  okm.fill(0);
  return keys;
}

/** An ephemeral X25519 key pair; `publicKey` is the 32-byte raw form that goes on the wire. */
export interface X25519KeyPair {
  readonly publicKey: Buffer;
  readonly privateKey: KeyObject;
}

// DER wrappers that turn raw 32-byte X25519 keys into SPKI / PKCS#8 (RFC 8410), which node:crypto imports.
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X25519_BYTES = 32;

export function generateX25519(): X25519KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return { publicKey: rawPublicKey(publicKey), privateKey };
}

/** The key pair for a given 32-byte private scalar: for test vectors and deterministic simulations. */
export function x25519KeyPairFromPrivate(rawPrivateKey: Uint8Array): X25519KeyPair {
  if (rawPrivateKey.length !== X25519_BYTES) {
    throw new CryptoError('EINVALIDKEY', `an X25519 private key is 32 bytes, got ${rawPrivateKey.length}`);
  }
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, rawPrivateKey]),
    format: 'der',
    type: 'pkcs8',
  });
  return { publicKey: rawPublicKey(createPublicKey(privateKey)), privateKey };
}

/**
 * X25519(privateKey, peerPublicKey): 32 bytes. EINVALIDKEY if the peer key is not 32 bytes or is a
 * low-order point (all-zero result), which would let a peer force a known shared secret.
 */
export function x25519SharedSecret(privateKey: KeyObject, peerPublicKey: Uint8Array): Buffer {
  if (peerPublicKey.length !== X25519_BYTES) {
    throw new CryptoError('EINVALIDKEY', `an X25519 public key is 32 bytes, got ${peerPublicKey.length}`);
  }
  let secret: Buffer;
  try {
    const publicKey = createPublicKey({
      key: Buffer.concat([SPKI_PREFIX, peerPublicKey]),
      format: 'der',
      type: 'spki',
    });
    secret = diffieHellman({ privateKey, publicKey });
  } catch (cause) {
    // OpenSSL itself refuses an all-zero result; report it like the explicit check below.
    throw new CryptoError(
      'EINVALIDKEY',
      'X25519 with the peer public key failed (a low-order or invalid point)',
      {
        cause,
      },
    );
  }
  let bits = 0;
  for (const byte of secret) bits |= byte;
  if (bits === 0) {
    throw new CryptoError(
      'EINVALIDKEY',
      'X25519 gave an all-zero shared secret (peer sent a low-order point)',
    );
  }
  return secret;
}

function rawPublicKey(publicKey: KeyObject): Buffer {
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(SPKI_PREFIX.length));
}
