import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Fernet, GATHER_MIN_BYTES, generateKey, sealedLength } from '../src/index.js';
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
      { numRuns: 150 },
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

describe('sealv (gathered tokens)', () => {
  // Two instances of one key: the sealer's running CBC stream never helps the reference's output.
  const key = generateKey();
  const gatherSealer = new Fernet(key);
  const gatherReference = new Fernet(key);
  // Parts as the transport builds them (a small header, then a block) and in other layouts: empty
  // parts, the bulk part first or last, block-aligned and unaligned lengths.
  const part = fc.oneof(
    fc.uint8Array({ maxLength: 40 }),
    fc.uint8Array({ minLength: 1000, maxLength: 5000 }),
    fc
      .constantFrom(GATHER_MIN_BYTES, GATHER_MIN_BYTES + 16, GATHER_MIN_BYTES + 4111)
      .chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
  );

  it('is byte-for-byte the token seal makes, split over buffers, and leaves the parts alone', () => {
    fc.assert(
      fc.property(
        fc.array(part, { minLength: 1, maxLength: 4 }),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.nat({ max: 40 }),
        (parts, iv, headroom) => {
          const copies = parts.map((p) => Buffer.from(p));
          const gathered = gatherSealer.sealv(parts, { now: NOW, iv, headroom });
          const whole = gatherReference.seal(parts, { now: NOW, iv, headroom });
          expect(Buffer.concat(gathered).equals(whole)).toBe(true);
          expect(parts.every((p, i) => Buffer.from(p).equals(copies[i]!))).toBe(true);
          expect(
            gatherReference.open(whole.subarray(headroom), openOptions).equals(Buffer.concat(parts)),
          ).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('writes the bulk into bulkInto when it fits: the same token, the buffer reused token after token', () => {
    const into = Buffer.alloc(GATHER_MIN_BYTES + 4111);
    fc.assert(
      fc.property(
        fc.array(part, { minLength: 1, maxLength: 4 }),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.nat({ max: 40 }),
        (parts, iv, headroom) => {
          const gathered = gatherSealer.sealv(parts, { now: NOW, iv, headroom, bulkInto: into });
          const whole = gatherReference.seal(parts, { now: NOW, iv, headroom });
          const bulk = gathered.length === 3 ? gathered[1]! : undefined;
          if (bulk !== undefined) expect(bulk.buffer).toBe(into.buffer);
          expect(Buffer.concat(gathered).equals(whole)).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('interleaves with seal on one key: every token opens, whatever the order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.array(part, { minLength: 1, maxLength: 3 })), { maxLength: 12 }),
        (steps) => {
          for (const [gather, parts] of steps) {
            const token = gather
              ? Buffer.concat(gatherSealer.sealv(parts, { now: NOW }))
              : gatherSealer.seal(parts, { now: NOW });
            expect(gatherReference.open(token, openOptions).equals(Buffer.concat(parts))).toBe(true);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('returns one buffer from seal when no part reaches GATHER_MIN_BYTES', () => {
    const small = [new Uint8Array(GATHER_MIN_BYTES - 1), new Uint8Array(10)];
    const out = gatherSealer.sealv(small, { now: NOW });
    expect(out).toHaveLength(1);
    expect(gatherReference.open(out[0]!, openOptions).equals(Buffer.concat(small))).toBe(true);
  });

  it('sends a large block as header, the cipher output itself, and tail with the MAC', () => {
    const block = new Uint8Array(64_512).fill(7);
    const out = gatherSealer.sealv([new Uint8Array(24), block], { now: NOW, headroom: 12 });
    expect(out).toHaveLength(3);
    expect(out[1]!.length).toBeGreaterThan(64_000);
    expect(
      gatherReference.open(Buffer.concat(out).subarray(12), openOptions).subarray(24).equals(block),
    ).toBe(true);
  });
});
