import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Fernet, generateKey, sealedLength } from '../src/index.js';
import { expectCryptoError } from './errors.js';

const fernet = new Fernet(generateKey());
const NOW = 1_700_000_000;
const openOptions = { ttl: 3600, now: NOW + 1 };

/** Token bytes for an arbitrary plaintext (up to a few KiB) with a random IV. */
const arbitraryToken = fc
  .uint8Array({ maxLength: 4096, size: 'medium' })
  .map((plaintext) => fernet.seal(plaintext, { now: NOW }));

describe('round trips', () => {
  it('open(seal(x)) = x for arbitrary bytes (mostly small)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70_000, size: 'large' }), (plaintext) => {
        const sealed = fernet.seal(plaintext, { now: NOW });
        expect(sealed.length).toBe(sealedLength(plaintext.length));
        expect(fernet.open(sealed, openOptions).equals(plaintext)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('open(seal(x)) = x across the whole 0..70000-byte range', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70_000, size: 'max' }), (plaintext) => {
        // Buffer.equals: toEqual compares large buffers element by element, slowly.
        expect(fernet.open(fernet.seal(plaintext, { now: NOW }), openOptions).equals(plaintext)).toBe(true);
      }),
      { numRuns: 30 },
    );
  });

  it('open(seal(x)) = x for a few plaintexts of 60000..70000 bytes (datagram-sized blocks)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 60_000, maxLength: 70_000 }), (plaintext) => {
        expect(fernet.open(fernet.seal(plaintext, { headroom: 12 }).subarray(12)).equals(plaintext)).toBe(
          true,
        );
      }),
      { numRuns: 5 },
    );
  });

  it('sealing parts equals sealing their concatenation, at any headroom', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 6 }),
        fc.nat({ max: 64 }),
        (parts, headroom) => {
          const sealed = fernet.seal(parts, { headroom });
          expect(sealed.subarray(0, headroom).every((byte) => byte === 0)).toBe(true);
          expect(fernet.open(sealed.subarray(headroom))).toEqual(Buffer.concat(parts));
        },
      ),
    );
  });

  it('decrypt(encrypt(x)) = x through the base64url text form', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (plaintext) => {
        expect(fernet.decrypt(fernet.encrypt(plaintext))).toEqual(Buffer.from(plaintext));
      }),
    );
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (text) => {
        expect(fernet.decrypt(fernet.encrypt(text)).toString('utf8')).toBe(text);
      }),
    );
  });
});

describe('tampering', () => {
  it('flipping any single bit of a token is rejected with EBADTOKEN', () => {
    fc.assert(
      fc.property(arbitraryToken, fc.nat(), fc.nat({ max: 7 }), (token, index, bit) => {
        const tampered = Buffer.from(token);
        tampered[index % tampered.length]! ^= 1 << bit;
        expect(fernet.tryOpen(tampered, openOptions)).toBe('EBADTOKEN');
        expect(fernet.tryOpen(tampered)).toBe('EBADTOKEN');
        expectCryptoError(() => fernet.open(tampered, openOptions), 'EBADTOKEN');
      }),
      { numRuns: 500 },
    );
  });

  it('flipping any single bit of the decoded text token is rejected with EBADTOKEN', () => {
    fc.assert(
      fc.property(arbitraryToken, fc.nat(), fc.nat({ max: 7 }), (token, index, bit) => {
        const tampered = Buffer.from(token);
        tampered[index % tampered.length]! ^= 1 << bit;
        expectCryptoError(() => fernet.decrypt(tampered.toString('base64url'), openOptions), 'EBADTOKEN');
      }),
    );
  });

  it('truncating a token to any shorter length is rejected with EBADTOKEN', () => {
    fc.assert(
      fc.property(arbitraryToken, fc.nat(), (token, cut) => {
        const truncated = token.subarray(0, cut % token.length);
        expect(fernet.tryOpen(truncated, openOptions)).toBe('EBADTOKEN');
        expectCryptoError(() => fernet.open(truncated), 'EBADTOKEN');
      }),
      { numRuns: 300 },
    );
  });

  it('extending a token by one byte (or by a whole block) is rejected with EBADTOKEN', () => {
    fc.assert(
      fc.property(
        arbitraryToken,
        fc.integer({ min: 0, max: 255 }),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        (token, byte, block) => {
          expect(fernet.tryOpen(Buffer.concat([token, Uint8Array.of(byte)]), openOptions)).toBe('EBADTOKEN');
          expect(fernet.tryOpen(Buffer.concat([token, block]), openOptions)).toBe('EBADTOKEN');
          expect(fernet.tryOpen(Buffer.concat([Uint8Array.of(byte), token]), openOptions)).toBe('EBADTOKEN');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a token never opens under a different key', () => {
    const other = new Fernet(generateKey());
    fc.assert(
      fc.property(arbitraryToken, (token) => {
        expect(other.tryOpen(token)).toBe('EBADTOKEN');
      }),
    );
  });
});
