import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Fernet, generateKey } from '../src/index.js';

// CommonJS with `module.exports = fernet`: require() gives the object its types describe.
const fernetJs = createRequire(import.meta.url)('fernet') as typeof import('fernet');

// The `fernet` npm package handles UTF-8 text only, so these round trips use strings.
const messages = ['hello', '', 'x'.repeat(16), 'grüße, ☃ and 🚀', 'line\nbreaks\tand tabs', 'a'.repeat(5000)];

describe('interop with the fernet npm package (text payloads)', () => {
  const key = generateKey();
  const ours = new Fernet(key);
  const secret = new fernetJs.Secret(key);

  it.each(messages.map((m) => [m.length, m] as const))(
    'it decrypts our token (%i chars)',
    (_length, message) => {
      const token = ours.encrypt(message);
      expect(new fernetJs.Token({ secret, token, ttl: 0 }).decode()).toBe(message);
    },
  );

  it.each(messages.map((m) => [m.length, m] as const))(
    'we decrypt its token (%i chars)',
    (_length, message) => {
      const token = new fernetJs.Token({ secret }).encode(message);
      expect(ours.decrypt(token, { ttl: 60 }).toString('utf8')).toBe(message);
    },
  );

  it('round-trips arbitrary strings both ways', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 100 }), (message) => {
        expect(new fernetJs.Token({ secret, token: ours.encrypt(message), ttl: 0 }).decode()).toBe(message);
        expect(ours.decrypt(new fernetJs.Token({ secret }).encode(message)).toString('utf8')).toBe(message);
      }),
      { numRuns: 50 },
    );
  });

  it('reads the timestamp it writes', () => {
    const time = '2020-01-02T03:04:05Z';
    const token = new fernetJs.Token({ secret, time }).encode('t');
    expect(ours.decrypt(token, { ttl: 10, now: Date.parse(time) / 1000 + 5 }).toString()).toBe('t');
  });

  it('rejects its tokens made under another key', () => {
    const token = new fernetJs.Token({ secret: new fernetJs.Secret(generateKey()) }).encode('nope');
    expect(() => ours.decrypt(token)).toThrow(expect.objectContaining({ code: 'EBADTOKEN' }));
  });
});
