import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CryptoError,
  FERNET_OVERHEAD,
  Fernet,
  formatKey,
  generateKey,
  keyFingerprint,
  keyFromBytes,
  MIN_TOKEN_LENGTH,
  maxPlaintextLength,
  parseKey,
  randomBytesPooled,
  sealedLength,
  tokenTimestamp,
} from '../src/index.js';
import { expectCryptoError } from './errors.js';

const NOW = 1_700_000_000;

describe('keys', () => {
  it('generateKey makes 44-character padded base64url keys that parse back', () => {
    const text = generateKey();
    expect(text).toMatch(/^[A-Za-z0-9_-]{43}=$/);
    expect(formatKey(parseKey(text))).toBe(text);
    expect(generateKey()).not.toBe(text);
  });

  it('parseKey accepts surrounding whitespace and a missing padding character', () => {
    const text = generateKey();
    const key = parseKey(text);
    expect(parseKey(`  ${text}\n`)).toEqual(key);
    expect(parseKey(text.slice(0, 43))).toEqual(key);
    expect(key.signingKey).toEqual(Buffer.from(text, 'base64url').subarray(0, 16));
    expect(key.encryptionKey).toEqual(Buffer.from(text, 'base64url').subarray(16));
  });

  it.each([
    ['empty', ''],
    ['too short', 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e'],
    ['too long', 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4e4='],
    ['standard base64 alphabet', 'cw/0x689RpI+jtRR7oE8h/eQsKImvJapLeSbXpwF4e4='],
    ['non-canonical last character', 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e5='],
    ['two padding characters', 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=='],
    ['inner space', 'cw_0x689RpI-jtRR7oE8h _eQsKImvJapLeSbXpwF4e4='],
  ])('parseKey rejects %s with EINVALIDKEY', (_name, text) => {
    const error = expectCryptoError(() => parseKey(text), 'EINVALIDKEY');
    expect(error.message).toMatch(/base64url/);
  });

  it('keyFingerprint is 8 stable hex characters that differ between keys and do not reveal the key', () => {
    const key = parseKey('cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=');
    const fingerprint = keyFingerprint(key);
    expect(fingerprint).toMatch(/^[0-9a-f]{8}$/);
    expect(keyFingerprint(parseKey('cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4='))).toBe(fingerprint);
    expect(keyFingerprint(parseKey(generateKey()))).not.toBe(fingerprint);
    expect(key.signingKey.toString('hex')).not.toContain(fingerprint);
    expect(key.encryptionKey.toString('hex')).not.toContain(fingerprint);
  });

  it('Fernet refuses a key object with wrong-length halves', () => {
    expectCryptoError(
      () => new Fernet({ signingKey: Buffer.alloc(16), encryptionKey: Buffer.alloc(15) }),
      'EINVALIDKEY',
    );
    expectCryptoError(() => new Fernet('not a key'), 'EINVALIDKEY');
    expectCryptoError(() => keyFromBytes(new Uint8Array(31)), 'EINVALIDKEY');
  });

  it('a key object and its text form seal identically', () => {
    const text = generateKey();
    const iv = randomBytes(16);
    expect(new Fernet(parseKey(text)).encrypt('x', { now: NOW, iv })).toBe(
      new Fernet(text).encrypt('x', { now: NOW, iv }),
    );
  });
});

describe('lengths', () => {
  it('FERNET_OVERHEAD is 57 and the minimum token 73 bytes', () => {
    expect(FERNET_OVERHEAD).toBe(57);
    expect(MIN_TOKEN_LENGTH).toBe(73);
  });

  it('sealedLength matches the length of real tokens, PKCS7 adding 1..16 bytes', () => {
    const fernet = new Fernet(generateKey());
    for (const n of [0, 1, 15, 16, 17, 31, 32, 1000, 1183, 65423]) {
      expect(fernet.seal(Buffer.alloc(n)).length).toBe(sealedLength(n));
      expect(sealedLength(n)).toBe(57 + 16 * (Math.floor(n / 16) + 1));
    }
    expect(() => sealedLength(-1)).toThrow(RangeError);
  });

  it('maxPlaintextLength is the largest plaintext whose token fits', () => {
    for (const budget of [72, 73, 88, 89, 1220, 65495, 65507]) {
      const n = maxPlaintextLength(budget);
      if (n < 0) {
        expect(budget).toBeLessThan(MIN_TOKEN_LENGTH);
        continue;
      }
      expect(sealedLength(n)).toBeLessThanOrEqual(budget);
      expect(sealedLength(n + 1)).toBeGreaterThan(budget);
    }
  });
});

describe('seal and open', () => {
  const fernet = new Fernet(generateKey());

  it('concatenates parts exactly as one plaintext', () => {
    const a = randomBytes(5);
    const b = randomBytes(40);
    const c = new Uint8Array(0);
    const iv = randomBytes(16);
    const sealed = fernet.seal([a, c, b], { now: NOW, iv });
    expect(sealed).toEqual(fernet.seal(Buffer.concat([a, b]), { now: NOW, iv }));
    expect(fernet.open(sealed)).toEqual(Buffer.concat([a, b]));
  });

  it('opens a token that is a subarray of a larger datagram after a cleartext prefix', () => {
    const prefix = Buffer.from('FY\x01\x02abcdefgh', 'latin1');
    const datagram = fernet.seal([prefix, Buffer.from('payload')], { headroom: prefix.length });
    prefix.copy(datagram, 0);
    const plaintext = fernet.open(datagram.subarray(prefix.length));
    expect(plaintext.subarray(0, 12)).toEqual(prefix);
    expect(plaintext.subarray(12).toString()).toBe('payload');
  });

  it('zero-fills the headroom even when the allocator hands out dirty memory', () => {
    for (let i = 0; i < 50; i++) {
      Buffer.allocUnsafe(200).fill(0xff);
      const sealed = fernet.seal(Buffer.from('x'), { headroom: 12 });
      expect(sealed.subarray(0, 12).every((byte) => byte === 0)).toBe(true);
    }
  });

  it('writes the clock as a big-endian u64 of whole seconds, and tokenTimestamp reads it back', () => {
    const sealed = fernet.seal(Buffer.from('t'), { now: NOW + 0.999 });
    expect(sealed[0]).toBe(0x80);
    expect(sealed.readBigUInt64BE(1)).toBe(BigInt(NOW));
    expect(tokenTimestamp(sealed)).toBe(NOW);
    const far = fernet.seal(Buffer.from('t'), { now: 2 ** 40 + 7 });
    expect(tokenTimestamp(far)).toBe(2 ** 40 + 7);
  });

  it('uses the system clock when no time is given', () => {
    const before = Math.floor(Date.now() / 1000);
    const stamp = tokenTimestamp(fernet.seal(Buffer.alloc(0)));
    expect(stamp).toBeGreaterThanOrEqual(before);
    expect(stamp).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
  });

  it('tokenTimestamp rejects short or wrong-version bytes with EBADTOKEN', () => {
    expectCryptoError(() => tokenTimestamp(new Uint8Array(72).fill(0x80)), 'EBADTOKEN');
    expectCryptoError(() => tokenTimestamp(new Uint8Array(73)), 'EBADTOKEN');
  });

  it('draws a fresh IV for every token', () => {
    const ivs = new Set<string>();
    for (let i = 0; i < 5000; i++) ivs.add(fernet.seal(Buffer.alloc(0)).subarray(9, 25).toString('hex'));
    expect(ivs.size).toBe(5000);
  });

  it('refuses a token sealed with another key (EBADTOKEN), without decrypting', () => {
    const other = new Fernet(generateKey());
    expectCryptoError(() => other.open(fernet.seal(Buffer.from('secret'))), 'EBADTOKEN');
    expect(other.tryOpen(fernet.seal(Buffer.from('secret')))).toBe('EBADTOKEN');
  });

  it('rejects an authentic token whose padding is wrong, with EBADTOKEN', () => {
    // Build a token whose MAC is right but whose decrypted padding byte is 0.
    const text = generateKey();
    const key = parseKey(text);
    const block = Buffer.alloc(16);
    const cipher = createCipheriv('aes-128-cbc', key.encryptionKey, Buffer.alloc(16));
    cipher.setAutoPadding(false);
    const ciphertext = Buffer.concat([cipher.update(block), cipher.final()]);
    const body = Buffer.concat([Buffer.from([0x80]), Buffer.alloc(8), Buffer.alloc(16), ciphertext]);
    const token = Buffer.concat([body, createHmac('sha256', key.signingKey).update(body).digest()]);
    expectCryptoError(() => new Fernet(text).open(token), 'EBADTOKEN');
  });

  it('gives every token the bytes of a fresh AES-CBC cipher, however seal, open and failures interleave', () => {
    // The instance keeps one CBC stream per direction; check it against a cipher made per token.
    const text = generateKey();
    const key = parseKey(text);
    const reference = (plaintext: Buffer, iv: Buffer): Buffer => {
      const cipher = createCipheriv('aes-128-cbc', key.encryptionKey, iv);
      const body = Buffer.concat([
        Buffer.from([0x80]),
        Buffer.alloc(8),
        iv,
        cipher.update(plaintext),
        cipher.final(),
      ]);
      return Buffer.concat([body, createHmac('sha256', key.signingKey).update(body).digest()]);
    };
    const a = new Fernet(text);
    const b = new Fernet(text);
    for (let i = 0; i < 300; i++) {
      const plaintext = randomBytes(i % 7 === 0 ? 0 : (i * 37) % 3000);
      const iv = randomBytes(16);
      const sealer = i % 3 === 0 ? b : a;
      const token = sealer.seal(plaintext, { now: 0, iv });
      expect(token.equals(reference(plaintext, iv))).toBe(true);
      const opener = i % 2 === 0 ? a : b;
      expect(opener.open(token).equals(plaintext)).toBe(true);
      if (i % 5 === 0) expect(opener.tryOpen(randomBytes(token.length))).toBe('EBADTOKEN');
    }
  });

  it('rejects invalid arguments with RangeError, not a token error', () => {
    expect(() => fernet.seal(Buffer.alloc(1), { iv: new Uint8Array(15) })).toThrow(RangeError);
    expect(() => fernet.seal(Buffer.alloc(1), { headroom: -1 })).toThrow(RangeError);
    expect(() => fernet.seal(Buffer.alloc(1), { now: Number.NaN })).toThrow(RangeError);
    expect(() => fernet.open(fernet.seal(Buffer.alloc(1)), { ttl: -1 })).toThrow(RangeError);
  });
});

describe('time window', () => {
  const fernet = new Fernet(generateKey());
  const token = fernet.seal(Buffer.from('hello'), { now: NOW });

  it('accepts a token up to exactly ttl seconds old', () => {
    expect(fernet.open(token, { ttl: 60, now: NOW + 60 }).toString()).toBe('hello');
    expect(fernet.open(token, { ttl: 60, now: NOW + 60.9 }).toString()).toBe('hello');
  });

  it('refuses a token older than the ttl with EEXPIRED', () => {
    const error = expectCryptoError(() => fernet.open(token, { ttl: 60, now: NOW + 61 }), 'EEXPIRED');
    expect(error).toBeInstanceOf(CryptoError);
    expect(fernet.tryOpen(token, { ttl: 60, now: NOW + 61 })).toBe('EEXPIRED');
  });

  it('refuses a token more than 60 s in the future when a ttl is given, with EEXPIRED', () => {
    expect(fernet.open(token, { ttl: 10, now: NOW - 60 }).toString()).toBe('hello');
    const error = expectCryptoError(() => fernet.open(token, { ttl: 10, now: NOW - 61 }), 'EEXPIRED');
    expect(error.message).toMatch(/future/);
  });

  it('checks no time at all without a ttl', () => {
    expect(fernet.open(token, { now: NOW + 10 ** 9 }).toString()).toBe('hello');
    expect(fernet.open(token, { now: 0 }).toString()).toBe('hello');
  });

  it('reports a forged token as EBADTOKEN even when its timestamp is also stale', () => {
    const forged = Buffer.from(token);
    forged[forged.length - 1]! ^= 1;
    expect(fernet.tryOpen(forged, { ttl: 60, now: NOW + 1000 })).toBe('EBADTOKEN');
  });
});

describe('text tokens', () => {
  const fernet = new Fernet(generateKey());

  it('encrypt pads the base64url text to a multiple of 4 and decrypt accepts it with or without padding', () => {
    for (const n of [0, 1, 2, 16, 17, 100]) {
      const plaintext = randomBytes(n);
      const token = fernet.encrypt(plaintext);
      expect(token.length % 4).toBe(0);
      expect(token).toMatch(/^[A-Za-z0-9_-]+=*$/);
      expect(fernet.decrypt(token)).toEqual(plaintext);
      expect(fernet.decrypt(token.replace(/=+$/, ''))).toEqual(plaintext);
    }
  });

  it('encrypts strings as UTF-8', () => {
    expect(fernet.decrypt(fernet.encrypt('grüße ✓')).toString('utf8')).toBe('grüße ✓');
  });

  it.each([
    ['a standard-base64 character', (t: string) => `+${t.slice(1)}`],
    ['a trailing newline', (t: string) => `${t}\n`],
    ['an inner space', (t: string) => `${t.slice(0, 10)} ${t.slice(10)}`],
    ['too much padding', (t: string) => `${t}=`],
    ['a non-canonical final character (same bytes)', setUnusedBit],
    ['an impossible length', (t: string) => `${t.replace(/=+$/, '')}AA`],
  ])('decrypt rejects %s with EBADTOKEN', (_name, mangle) => {
    // 20 bytes of plaintext: an 89-byte token, whose text ends in exactly one '='.
    const token = fernet.encrypt(randomBytes(20));
    expect(token).toMatch(/[^=]=$/);
    expect(fernet.decrypt(token).length).toBe(20);
    expectCryptoError(() => fernet.decrypt(mangle(token)), 'EBADTOKEN');
  });
});

describe('randomBytesPooled', () => {
  it('returns fresh buffers of the requested length, including lengths above the pool', () => {
    const a = randomBytesPooled(16);
    const b = randomBytesPooled(16);
    expect(a.length).toBe(16);
    expect(a.equals(b)).toBe(false);
    a.fill(0);
    expect(b.every((byte) => byte === 0)).toBe(false);
    expect(randomBytesPooled(0).length).toBe(0);
    expect(randomBytesPooled(100_000).length).toBe(100_000);
    expect(() => randomBytesPooled(-1)).toThrow(RangeError);
  });

  it('keeps producing distinct values across pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) seen.add(randomBytesPooled(16).toString('hex'));
    expect(seen.size).toBe(10_000);
  });
});

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Sets one of the 2 unused low bits of the last data character: Buffer.from decodes the same bytes. */
function setUnusedBit(token: string): string {
  const last = token.at(-2) ?? '';
  const changed = `${token.slice(0, -2)}${ALPHABET[ALPHABET.indexOf(last) | 1]}=`;
  expect(Buffer.from(changed, 'base64url')).toEqual(Buffer.from(token, 'base64url'));
  return changed;
}
