import {
  type Cipher,
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  type Decipher,
  type KeyObject,
  timingSafeEqual,
} from 'node:crypto';
import { CryptoError } from './errors.js';
import { checkKey, type FernetKey, parseKey } from './key.js';
import { fillRandomFromPool } from './random.js';

// Token layout (Fernet spec): version 0x80 | timestamp u64 BE seconds | IV 16 | AES-128-CBC ciphertext | HMAC 32.
const VERSION = 0x80;
const TIMESTAMP_OFFSET = 1;
const IV_OFFSET = 9;
const CIPHERTEXT_OFFSET = 25;
const BLOCK = 16;
const MAC_BYTES = 32;
const TWO_POW_32 = 2 ** 32;

/** Bytes a token adds besides the padded ciphertext: version 1 + timestamp 8 + IV 16 + HMAC 32. */
export const FERNET_OVERHEAD = 57;
/** The shortest possible token: the overhead plus one ciphertext block (empty plaintext). */
export const MIN_TOKEN_LENGTH = FERNET_OVERHEAD + BLOCK;
/**
 * `sealv` gathers only parts at least this long: below it, copying the part costs less than the two
 * extra cipher calls and buffers (measured: sealv is 5-11 % faster at 16 KiB and 64 KiB, up to
 * 15 % slower at 1-8 KiB).
 */
export const GATHER_MIN_BYTES = 16384;
/** How far in the future a token's timestamp may lie when a ttl is checked (the spec's and Python's 60 s). */
export const MAX_CLOCK_SKEW = 60;

/** Length of the binary token for an `n`-byte plaintext: PKCS7 always adds 1..16 bytes. */
export function sealedLength(plaintextLength: number): number {
  if (!Number.isSafeInteger(plaintextLength) || plaintextLength < 0) {
    throw new RangeError(`sealedLength: invalid plaintext length ${plaintextLength}`);
  }
  return FERNET_OVERHEAD + BLOCK * (Math.floor(plaintextLength / BLOCK) + 1);
}

/** The largest plaintext whose binary token fits in `tokenBytes` (-1 if none does). */
export function maxPlaintextLength(tokenBytes: number): number {
  if (!Number.isSafeInteger(tokenBytes) || tokenBytes < 0) {
    throw new RangeError(`maxPlaintextLength: invalid token length ${tokenBytes}`);
  }
  if (tokenBytes < MIN_TOKEN_LENGTH) return -1;
  return Math.floor((tokenBytes - FERNET_OVERHEAD) / BLOCK) * BLOCK - 1;
}

/**
 * The timestamp (unix seconds) a token claims. Unauthenticated: use it only to route or log, never
 * to decide whether to trust the token. EBADTOKEN if the bytes cannot be a token.
 */
export function tokenTimestamp(token: Uint8Array): number {
  if (token.length < MIN_TOKEN_LENGTH) throw tokenError(TOO_SHORT);
  if (token[0] !== VERSION) throw tokenError(BAD_VERSION);
  return readTimestamp(token);
}

export interface SealOptions {
  /** Unix time in seconds (fractions are dropped); defaults to the system clock. */
  readonly now?: number;
  /** A fixed 16-byte IV, for test vectors only; by default a fresh random IV. */
  readonly iv?: Uint8Array;
  /** Zero-filled bytes reserved before the token, for a cleartext prefix written by the caller. */
  readonly headroom?: number;
  /**
   * `sealv` only: where the bulk ciphertext goes (used when it is at least as long as the largest
   * part), a buffer the caller reuses once the datagram has left. Without it, the bulk is the
   * cipher's own output, a new buffer per token.
   */
  readonly bulkInto?: Buffer;
}

export interface OpenOptions {
  /** Maximum age in seconds; when given, tokens older than this or more than 60 s in the future fail with EEXPIRED. */
  readonly ttl?: number;
  /** Unix time in seconds (fractions are dropped); defaults to the system clock. */
  readonly now?: number;
}

/** Why a token was refused; internal, mapped to a code and a message only when an error is thrown. */
type Failure = number;
const TOO_SHORT: Failure = 0;
const BAD_VERSION: Failure = 1;
const BAD_LENGTH: Failure = 2;
const BAD_MAC: Failure = 3;
const BAD_PADDING: Failure = 4;
const EXPIRED: Failure = 5;
const FUTURE: Failure = 6;
const BAD_BASE64: Failure = 7;

const FAILURE_MESSAGES: readonly string[] = [
  `token is too short to be a Fernet token (under ${MIN_TOKEN_LENGTH} bytes)`,
  'token has an unknown version byte (Fernet tokens start with 0x80)',
  'token ciphertext length is not a multiple of 16 bytes',
  'token failed authentication: it was sealed with a different key, or altered',
  'token has invalid padding',
  'token has expired (older than the allowed ttl)',
  `token timestamp is more than ${MAX_CLOCK_SKEW} s in the future; check the clocks of both machines`,
  'token is not valid base64url',
];

function tokenError(failure: Failure): CryptoError {
  const code = failure === EXPIRED || failure === FUTURE ? 'EEXPIRED' : 'EBADTOKEN';
  return new CryptoError(code, FAILURE_MESSAGES[failure] ?? 'invalid token');
}

/**
 * Fernet (github.com/fernet/spec) on node:crypto. `encrypt`/`decrypt` use the base64url text token;
 * `seal`/`open` use the same token as raw bytes (ferry's wire form). Interoperates with Python's
 * `cryptography.fernet` for binary payloads.
 */
export class Fernet {
  // KeyObjects are imported once here, so each token does not re-import raw key bytes.
  readonly #signingKey: KeyObject;
  readonly #encryptionKey: KeyObject;
  // One long-lived CBC stream per direction instead of a cipher object per token: creating the
  // cipher cost about as much as encrypting a 1200-byte token. See `chainedCbc` below for why this
  // gives exactly the per-token CBC output.
  #cipher!: Cipher;
  #decipher!: Decipher;
  /** The last ciphertext block the long-lived cipher/decipher processed: its current CBC chaining value. */
  readonly #encryptChain = Buffer.alloc(BLOCK);
  readonly #decryptChain = Buffer.alloc(BLOCK);

  constructor(key: FernetKey | string) {
    const parsed = typeof key === 'string' ? parseKey(key) : key;
    checkKey(parsed);
    this.#signingKey = createSecretKey(parsed.signingKey);
    this.#encryptionKey = createSecretKey(parsed.encryptionKey);
    this.#resetCipher();
    this.#resetDecipher();
  }

  /** Encrypts to a padded base64url token, byte-for-byte what Python's `Fernet.encrypt` would produce. */
  encrypt(plaintext: Uint8Array | string, opts?: { now?: number; iv?: Uint8Array }): string {
    const bytes = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
    const text = this.seal(bytes, opts).toString('base64url');
    return text + '='.repeat((4 - (text.length % 4)) % 4);
  }

  /** Decrypts a base64url token (padded or not). EBADTOKEN / EEXPIRED. */
  decrypt(token: string, opts?: OpenOptions): Buffer {
    const bytes = decodeTokenText(token);
    if (typeof bytes === 'number') throw tokenError(bytes);
    return this.open(bytes, opts);
  }

  /**
   * Seals the concatenation of `parts` into a binary token at offset `headroom` of one new buffer.
   * One output allocation: the plaintext is padded in place in the output and encrypted from there.
   */
  seal(parts: Uint8Array | readonly Uint8Array[], opts?: SealOptions): Buffer {
    const headroom = headroomOf(opts);
    let plaintextLength = 0;
    if (parts instanceof Uint8Array) plaintextLength = parts.length;
    else for (const part of parts) plaintextLength += part.length;
    const ciphertextLength = BLOCK * (Math.floor(plaintextLength / BLOCK) + 1);

    const start = headroom;
    const ivStart = start + IV_OFFSET;
    const ciphertextStart = start + CIPHERTEXT_OFFSET;
    const macStart = ciphertextStart + ciphertextLength;
    const out = Buffer.allocUnsafe(macStart + MAC_BYTES);
    writeTokenHead(out, headroom, opts);

    // Gather the parts and the PKCS7 padding where the ciphertext goes, then encrypt that region in
    // one call (no padding by OpenSSL): fewer allocations than one cipher.update per part.
    let offset = ciphertextStart;
    if (parts instanceof Uint8Array) {
      out.set(parts, offset);
      offset += parts.length;
    } else {
      for (const part of parts) {
        out.set(part, offset);
        offset += part.length;
      }
    }
    out.fill(macStart - offset, offset, macStart);
    // Re-aim the running CBC stream at this token's IV: its first block gets IV ^ chain folded in.
    const chain = this.#encryptChain;
    for (let i = 0; i < BLOCK; i++) out[ciphertextStart + i]! ^= out[ivStart + i]! ^ chain[i]!;
    const ciphertext = this.#encrypt(out.subarray(ciphertextStart, macStart));
    out.set(ciphertext, ciphertextStart);
    chain.set(ciphertext.subarray(ciphertextLength - BLOCK));

    const mac = createHmac('sha256', this.#signingKey).update(out.subarray(start, macStart)).digest();
    out.set(mac, macStart);
    return out;
  }

  /**
   * Like `seal`, but returns the token as a list of buffers to send with one gathering write
   * (`socket.send(list)`): `[headroom + token head, bulk ciphertext, tail ciphertext + HMAC]`. The
   * bulk of the largest part is encrypted straight from the caller's buffer into the cipher's own
   * output, so a large block is neither copied into a token buffer nor copied out of the cipher's
   * result: one allocation and no copy per packet instead of two of each (with `bulkInto`, into
   * that buffer instead). The concatenation is byte-for-byte what `seal` returns; small plaintexts
   * (below `GATHER_MIN_BYTES`) come back as one buffer from `seal`. The parts are not modified.
   */
  sealv(parts: readonly Uint8Array[], opts?: SealOptions): Buffer[] {
    let bulkIndex = -1;
    let plaintextLength = 0;
    for (let i = 0; i < parts.length; i++) {
      const n = parts[i]!.length;
      plaintextLength += n;
      if (bulkIndex < 0 || n > parts[bulkIndex]!.length) bulkIndex = i;
    }
    if (bulkIndex < 0 || parts[bulkIndex]!.length < GATHER_MIN_BYTES) return [this.seal(parts, opts)];
    const headroom = headroomOf(opts);
    const bulk = parts[bulkIndex]!;
    let before = 0;
    for (let i = 0; i < bulkIndex; i++) before += parts[i]!.length;
    // head: everything before the bulk part plus the first bytes of the bulk, to a whole number of
    // blocks (at least one: the first block takes the IV fold-in and must not be the caller's bytes).
    let lead = (BLOCK - (before % BLOCK)) % BLOCK;
    if (before + lead === 0) lead = BLOCK;
    const headPlain = before + lead;
    // middle: whole blocks straight from the bulk part; tail: the rest of it, the parts after it,
    // and the padding.
    const middle = Math.floor((bulk.length - lead) / BLOCK) * BLOCK;
    const ciphertextLength = BLOCK * (Math.floor(plaintextLength / BLOCK) + 1);
    const tailPlain = ciphertextLength - headPlain - middle;

    const start = headroom;
    const ivStart = start + IV_OFFSET;
    const ciphertextStart = start + CIPHERTEXT_OFFSET;
    const head = Buffer.allocUnsafe(ciphertextStart + headPlain);
    writeTokenHead(head, headroom, opts);
    let offset = ciphertextStart;
    for (let i = 0; i < bulkIndex; i++) {
      head.set(parts[i]!, offset);
      offset += parts[i]!.length;
    }
    head.set(bulk.subarray(0, lead), offset);

    const tail = Buffer.allocUnsafe(tailPlain + MAC_BYTES);
    offset = 0;
    tail.set(bulk.subarray(lead + middle), offset);
    offset += bulk.length - lead - middle;
    for (let i = bulkIndex + 1; i < parts.length; i++) {
      tail.set(parts[i]!, offset);
      offset += parts[i]!.length;
    }
    tail.fill(tailPlain - offset, offset, tailPlain);

    const chain = this.#encryptChain;
    for (let i = 0; i < BLOCK; i++) head[ciphertextStart + i]! ^= head[ivStart + i]! ^ chain[i]!;
    const headCiphertext = this.#encrypt(head.subarray(ciphertextStart));
    const into = opts?.bulkInto;
    const middleCiphertext =
      into !== undefined && into.length >= middle
        ? this.#encryptInto(bulk.subarray(lead, lead + middle), into)
        : this.#encrypt(bulk.subarray(lead, lead + middle));
    const tailCiphertext = this.#encrypt(tail.subarray(0, tailPlain));
    head.set(headCiphertext, ciphertextStart);
    tail.set(tailCiphertext, 0);
    chain.set(tail.subarray(tailPlain - BLOCK, tailPlain));

    const mac = createHmac('sha256', this.#signingKey)
      .update(head.subarray(start))
      .update(middleCiphertext)
      .update(tail.subarray(0, tailPlain))
      .digest();
    tail.set(mac, tailPlain);
    return middle === 0 ? [head, tail] : [head, middleCiphertext, tail];
  }

  /**
   * Verifies (HMAC, constant time, before anything is decrypted) and decrypts a binary token.
   * `token` may be a view into a larger datagram; the result is a new buffer the caller owns.
   */
  open(token: Uint8Array, opts?: OpenOptions): Buffer {
    const result = this.#open(token, opts);
    if (typeof result === 'number') throw tokenError(result);
    return result;
  }

  /**
   * Like `open`, but returns the error code instead of throwing: for receive paths that drop bad
   * datagrams at line rate, where building an Error (and its stack) per forged packet is wasted work.
   */
  tryOpen(token: Uint8Array, opts?: OpenOptions): Buffer | 'EBADTOKEN' | 'EEXPIRED' {
    const result = this.#open(token, opts);
    if (typeof result !== 'number') return result;
    return result === EXPIRED || result === FUTURE ? 'EEXPIRED' : 'EBADTOKEN';
  }

  /** The running CBC stream over whole blocks; any failure restarts it (its chaining value is lost). */
  #encrypt(blocks: Uint8Array): Buffer {
    let ciphertext: Buffer;
    try {
      ciphertext = this.#cipher.update(blocks);
    } catch (error) {
      this.#resetCipher();
      throw error;
    }
    if (ciphertext.length !== blocks.length) {
      this.#resetCipher();
      throw new Error('seal: cipher returned an unexpected length');
    }
    return ciphertext;
  }

  /**
   * Like #encrypt, into the start of `into` (a view of it is returned). The ciphertext comes out of
   * the cipher as a latin1 string, held in V8's heap and collected with it: a Buffer from the cipher
   * is memory of the C allocator that stays until the next scavenge (up to 32 MiB of them between
   * two), and leaves that allocator's heap grown and fragmented after a transfer (measured: 30-40 MB
   * of a server's RSS never given back). The price is young-generation collections: the strings fill
   * it, a 56 MiB get ran 23 scavenges instead of 6 (10-20 % more of the server's CPU, measured).
   */
  #encryptInto(blocks: Uint8Array, into: Buffer): Buffer {
    let ciphertext: string;
    try {
      ciphertext = this.#cipher.update(blocks, undefined, 'latin1');
    } catch (error) {
      this.#resetCipher();
      throw error;
    }
    if (ciphertext.length !== blocks.length) {
      this.#resetCipher();
      throw new Error('seal: cipher returned an unexpected length');
    }
    into.write(ciphertext, 0, 'latin1');
    return into.subarray(0, blocks.length);
  }

  #resetCipher(): void {
    this.#encryptChain.fill(0);
    this.#cipher = createCipheriv('aes-128-cbc', this.#encryptionKey, this.#encryptChain);
    this.#cipher.setAutoPadding(false);
  }

  #resetDecipher(): void {
    this.#decryptChain.fill(0);
    this.#decipher = createDecipheriv('aes-128-cbc', this.#encryptionKey, this.#decryptChain);
    this.#decipher.setAutoPadding(false);
  }

  #open(token: Uint8Array, opts: OpenOptions | undefined): Buffer | Failure {
    const ttl = opts?.ttl;
    if (ttl !== undefined && !(Number.isFinite(ttl) && ttl >= 0)) {
      throw new RangeError(`open: invalid ttl ${ttl}`);
    }
    const now = ttl === undefined ? 0 : unixSeconds(opts?.now);

    const length = token.length;
    if (length < MIN_TOKEN_LENGTH) return TOO_SHORT;
    if (token[0] !== VERSION) return BAD_VERSION;
    if ((length - FERNET_OVERHEAD) % BLOCK !== 0) return BAD_LENGTH;

    const macStart = length - MAC_BYTES;
    const mac = createHmac('sha256', this.#signingKey).update(token.subarray(0, macStart)).digest();
    if (!timingSafeEqual(mac, token.subarray(macStart))) return BAD_MAC;

    // Time is judged only for authentic tokens, so EEXPIRED always means "genuine but stale".
    if (ttl !== undefined) {
      const timestamp = readTimestamp(token);
      if (timestamp + ttl < now) return EXPIRED;
      if (now + MAX_CLOCK_SKEW < timestamp) return FUTURE;
    }

    const ciphertextLength = macStart - CIPHERTEXT_OFFSET;
    let padded: Buffer;
    try {
      padded = this.#decipher.update(token.subarray(CIPHERTEXT_OFFSET, macStart));
    } catch (error) {
      this.#resetDecipher(); // the chaining value is unknown now; start a fresh stream
      throw error;
    }
    if (padded.length !== ciphertextLength) {
      this.#resetDecipher();
      throw new Error('open: decipher returned an unexpected length');
    }
    // The running stream XORed the first block with the previous token's last block; swap in this IV.
    const chain = this.#decryptChain;
    for (let i = 0; i < BLOCK; i++) padded[i]! ^= chain[i]! ^ token[IV_OFFSET + i]!;
    chain.set(token.subarray(macStart - BLOCK, macStart));
    // Padding is checked here rather than by OpenSSL (which would throw per bad token, and needs final()).
    const padLength = padded[padded.length - 1] ?? 0;
    if (padLength < 1 || padLength > BLOCK || padLength > padded.length) return BAD_PADDING;
    for (let i = padded.length - padLength; i < padded.length; i++) {
      if (padded[i] !== padLength) return BAD_PADDING;
    }
    return padded.subarray(0, padded.length - padLength);
  }
}

/*
 * chainedCbc — why one long-lived CBC stream gives the same bytes as a fresh cipher per token.
 * CBC encrypts C[i] = E(P[i] ^ C[i-1]) with C[-1] = IV. A stream that last emitted block X computes
 * E(P ^ X) for the next input block P. Feeding P[0] ^ IV ^ X yields E(P[0] ^ IV) = C[0], the token's
 * true first block; later blocks chain on C[0], C[1], ... as usual. Decryption mirrors it:
 * P[i] = D(C[i]) ^ C[i-1]; the stream returns D(C[0]) ^ X, so XOR with X ^ IV gives P[0]. With
 * padding disabled OpenSSL holds nothing back between updates, and final() is never called.
 */

function headroomOf(opts: SealOptions | undefined): number {
  const headroom = opts?.headroom ?? 0;
  if (!Number.isSafeInteger(headroom) || headroom < 0) {
    throw new RangeError(`seal: invalid headroom ${headroom}`);
  }
  return headroom;
}

/** Zeroes the headroom and writes version, timestamp and IV of a token starting at `start`. */
function writeTokenHead(out: Buffer, start: number, opts: SealOptions | undefined): void {
  const timestamp = unixSeconds(opts?.now);
  if (start > 0) out.fill(0, 0, start);
  out[start] = VERSION;
  out.writeUInt32BE(Math.floor(timestamp / TWO_POW_32), start + TIMESTAMP_OFFSET);
  out.writeUInt32BE(timestamp >>> 0, start + TIMESTAMP_OFFSET + 4);
  const iv = opts?.iv;
  if (iv === undefined) fillRandomFromPool(out, start + IV_OFFSET, BLOCK);
  else if (iv.length === BLOCK) out.set(iv, start + IV_OFFSET);
  else throw new RangeError(`seal: the IV must be ${BLOCK} bytes, got ${iv.length}`);
}

function readTimestamp(token: Uint8Array): number {
  const t = TIMESTAMP_OFFSET;
  const high = ((token[t]! << 24) | (token[t + 1]! << 16) | (token[t + 2]! << 8) | token[t + 3]!) >>> 0;
  const low = ((token[t + 4]! << 24) | (token[t + 5]! << 16) | (token[t + 6]! << 8) | token[t + 7]!) >>> 0;
  return high * TWO_POW_32 + low;
}

function unixSeconds(now: number | undefined): number {
  if (now === undefined) return Math.floor(Date.now() / 1000);
  if (!(Number.isFinite(now) && now >= 0 && now <= Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`invalid time ${now}: expected unix seconds`);
  }
  return Math.floor(now);
}

// Strict base64url: Buffer.from(..., 'base64url') skips characters outside the alphabet, which
// would let garbage around a token pass unnoticed.
const TOKEN_TEXT = /^[A-Za-z0-9_-]*={0,2}$/;

function decodeTokenText(token: string): Uint8Array | Failure {
  if (typeof token !== 'string' || !TOKEN_TEXT.test(token)) return BAD_BASE64;
  const unpadded = token.replace(/=+$/, '');
  const padded = unpadded.length !== token.length;
  if (unpadded.length % 4 === 1 || (padded && token.length % 4 !== 0)) return BAD_BASE64;
  const bytes = Buffer.from(unpadded, 'base64url');
  // Non-zero unused bits in the last character would give a second spelling of the same token.
  if (bytes.toString('base64url') !== unpadded) return BAD_BASE64;
  return bytes;
}
