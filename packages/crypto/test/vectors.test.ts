import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Fernet, isCryptoError } from '../src/index.js';
import {
  generateVectors,
  invalidVectors,
  sharedVectorDir,
  sharedVectorsPresent,
  unixSeconds,
  vectorDir,
  verifyVectors,
} from './vectors.js';

describe('Fernet spec vectors', () => {
  it('loads every vector file', () => {
    expect(generateVectors.length).toBeGreaterThan(0);
    expect(verifyVectors.length).toBeGreaterThan(0);
    expect(invalidVectors.length).toBeGreaterThan(0);
  });

  it.skipIf(!sharedVectorsPresent)('keeps the in-repo copies identical to the published vectors', () => {
    for (const name of ['generate.json', 'verify.json', 'invalid.json']) {
      expect(readFileSync(resolve(vectorDir, name), 'utf8')).toBe(
        readFileSync(resolve(sharedVectorDir, name), 'utf8'),
      );
    }
  });

  describe.each(generateVectors.map((v, i) => ({ ...v, name: `generate #${i}` })))('$name', (v) => {
    const fernet = new Fernet(v.secret);
    const opts = { now: unixSeconds(v.now), iv: Uint8Array.from(v.iv) };

    it('encrypt produces the exact token', () => {
      expect(fernet.encrypt(v.src, opts)).toBe(v.token);
    });

    it('seal produces the same token as raw bytes', () => {
      expect(fernet.seal(Buffer.from(v.src), opts).toString('base64url')).toBe(v.token.replace(/=+$/, ''));
    });

    it('seal with headroom puts the same token after zeroed headroom', () => {
      const sealed = fernet.seal([Buffer.from(v.src)], { ...opts, headroom: 12 });
      expect(sealed.subarray(0, 12)).toEqual(Buffer.alloc(12));
      expect(sealed.subarray(12).toString('base64url')).toBe(v.token.replace(/=+$/, ''));
    });
  });

  describe.each(verifyVectors.map((v, i) => ({ ...v, name: `verify #${i}` })))('$name', (v) => {
    it('decrypt recovers the plaintext within the ttl', () => {
      const plaintext = new Fernet(v.secret).decrypt(v.token, { ttl: v.ttl_sec, now: unixSeconds(v.now) });
      expect(plaintext.toString('utf8')).toBe(v.src);
    });

    it('open recovers the plaintext from the binary token', () => {
      const plaintext = new Fernet(v.secret).open(Buffer.from(v.token, 'base64url'), {
        ttl: v.ttl_sec,
        now: unixSeconds(v.now),
      });
      expect(plaintext.toString('utf8')).toBe(v.src);
    });
  });

  describe.each(invalidVectors)('invalid: $desc', (v) => {
    // The time-window vectors are authentic tokens, so they fail with EEXPIRED; all others with EBADTOKEN.
    const expected = /expired|future/i.test(v.desc) ? 'EEXPIRED' : 'EBADTOKEN';

    it(`decrypt rejects it with ${expected}`, () => {
      const fernet = new Fernet(v.secret);
      let caught: unknown;
      try {
        fernet.decrypt(v.token, { ttl: v.ttl_sec, now: unixSeconds(v.now) });
      } catch (error) {
        caught = error;
      }
      expect(isCryptoError(caught, expected)).toBe(true);
    });

    it(`tryOpen returns ${expected} without throwing`, () => {
      const fernet = new Fernet(v.secret);
      const bytes = Buffer.from(v.token, 'base64url');
      expect(fernet.tryOpen(bytes, { ttl: v.ttl_sec, now: unixSeconds(v.now) })).toBe(expected);
    });
  });
});
