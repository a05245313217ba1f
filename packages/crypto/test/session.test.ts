import { hkdfSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  deriveSessionKeys,
  Fernet,
  formatKey,
  generateKey,
  generateX25519,
  hkdfExpand,
  hkdfExtract,
  hkdfSha256,
  parseKey,
  x25519KeyPairFromPrivate,
  x25519SharedSecret,
} from '../src/index.js';
import { expectCryptoError } from './errors.js';

const hex = (text: string): Buffer => Buffer.from(text, 'hex');

describe('HKDF-SHA256 (RFC 5869)', () => {
  it('matches test case 1', () => {
    const ikm = Buffer.alloc(22, 0x0b);
    const salt = hex('000102030405060708090a0b0c');
    const info = hex('f0f1f2f3f4f5f6f7f8f9');
    const prk = hkdfExtract(salt, ikm);
    expect(prk.toString('hex')).toBe('077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5');
    const okm = '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865';
    expect(hkdfExpand(prk, info, 42).toString('hex')).toBe(okm);
    expect(hkdfSha256(ikm, salt, info, 42).toString('hex')).toBe(okm);
  });

  it('matches test case 3 (empty salt and info)', () => {
    const ikm = Buffer.alloc(22, 0x0b);
    const empty = Buffer.alloc(0);
    expect(hkdfExtract(empty, ikm).toString('hex')).toBe(
      '19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04',
    );
    expect(hkdfSha256(ikm, empty, empty, 42).toString('hex')).toBe(
      '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
    );
  });

  it('agrees with node:crypto hkdfSync for random inputs and lengths', () => {
    for (const length of [0, 1, 31, 32, 33, 64, 100, 255 * 32]) {
      const ikm = randomBytes(40);
      const salt = randomBytes(32);
      const info = randomBytes(50);
      expect(hkdfSha256(ikm, salt, info, length)).toEqual(
        Buffer.from(hkdfSync('sha256', ikm, salt, info, length)),
      );
    }
    expect(() => hkdfExpand(randomBytes(32), Buffer.alloc(0), 255 * 32 + 1)).toThrow(RangeError);
  });
});

describe('X25519 (RFC 7748)', () => {
  const alicePrivate = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
  const alicePublic = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
  const bobPrivate = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
  const bobPublic = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
  const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';

  it('reproduces the §6.1 Alice/Bob public keys and shared secret', () => {
    const alice = x25519KeyPairFromPrivate(alicePrivate);
    const bob = x25519KeyPairFromPrivate(bobPrivate);
    expect(alice.publicKey.toString('hex')).toBe(alicePublic);
    expect(bob.publicKey.toString('hex')).toBe(bobPublic);
    expect(x25519SharedSecret(alice.privateKey, bob.publicKey).toString('hex')).toBe(shared);
    expect(x25519SharedSecret(bob.privateKey, alice.publicKey).toString('hex')).toBe(shared);
  });

  it('generates key pairs with 32-byte raw public keys that agree on a secret', () => {
    const a = generateX25519();
    const b = generateX25519();
    expect(a.publicKey.length).toBe(32);
    expect(a.publicKey.equals(b.publicKey)).toBe(false);
    const secret = x25519SharedSecret(a.privateKey, b.publicKey);
    expect(secret.length).toBe(32);
    expect(x25519SharedSecret(b.privateKey, a.publicKey)).toEqual(secret);
  });

  it.each([
    ['u = 0', '0000000000000000000000000000000000000000000000000000000000000000'],
    ['u = 1', '0100000000000000000000000000000000000000000000000000000000000000'],
    ['a point of order 8', 'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800'],
  ])('refuses the low-order peer key %s (all-zero secret) with EINVALIDKEY', (_name, point) => {
    expectCryptoError(() => x25519SharedSecret(generateX25519().privateKey, hex(point)), 'EINVALIDKEY');
  });

  it('refuses peer keys and private scalars that are not 32 bytes with EINVALIDKEY', () => {
    const { privateKey } = generateX25519();
    expectCryptoError(() => x25519SharedSecret(privateKey, new Uint8Array(31)), 'EINVALIDKEY');
    expectCryptoError(() => x25519SharedSecret(privateKey, new Uint8Array(33)), 'EINVALIDKEY');
    expectCryptoError(() => x25519KeyPairFromPrivate(new Uint8Array(16)), 'EINVALIDKEY');
  });
});

describe('deriveSessionKeys', () => {
  function handshake(context: Uint8Array = Buffer.from('transcript')) {
    const psk = parseKey(generateKey());
    const client = generateX25519();
    const server = generateX25519();
    const clientNonce = randomBytes(16);
    const serverNonce = randomBytes(16);
    const clientSide = deriveSessionKeys({
      psk,
      sharedSecret: x25519SharedSecret(client.privateKey, server.publicKey),
      clientNonce,
      serverNonce,
      context,
    });
    const serverSide = deriveSessionKeys({
      psk,
      sharedSecret: x25519SharedSecret(server.privateKey, client.publicKey),
      clientNonce,
      serverNonce,
      context,
    });
    return { psk, clientNonce, serverNonce, clientSide, serverSide, client, server };
  }

  it('gives client and server the same keys, and a different key per direction', () => {
    const { clientSide, serverSide } = handshake();
    expect(formatKey(clientSide.clientToServer)).toBe(formatKey(serverSide.clientToServer));
    expect(formatKey(clientSide.serverToClient)).toBe(formatKey(serverSide.serverToClient));
    expect(formatKey(clientSide.clientToServer)).not.toBe(formatKey(clientSide.serverToClient));
    // A packet sealed for one direction does not open as the other direction.
    const sealed = new Fernet(clientSide.clientToServer).seal(Buffer.from('data'));
    expect(new Fernet(serverSide.clientToServer).open(sealed).toString()).toBe('data');
    expect(new Fernet(serverSide.serverToClient).tryOpen(sealed)).toBe('EBADTOKEN');
  });

  it('follows the documented HKDF construction exactly', () => {
    const psk = parseKey(generateKey());
    const sharedSecret = randomBytes(32);
    const clientNonce = randomBytes(16);
    const serverNonce = randomBytes(16);
    const context = randomBytes(40);
    const okm = Buffer.from(
      hkdfSync(
        'sha256',
        Buffer.concat([sharedSecret, psk.signingKey, psk.encryptionKey]),
        Buffer.concat([clientNonce, serverNonce]),
        Buffer.concat([Buffer.from('ferry v1 session keys'), context]),
        64,
      ),
    );
    const keys = deriveSessionKeys({ psk, sharedSecret, clientNonce, serverNonce, context });
    expect(keys.clientToServer.signingKey).toEqual(okm.subarray(0, 16));
    expect(keys.clientToServer.encryptionKey).toEqual(okm.subarray(16, 32));
    expect(keys.serverToClient.signingKey).toEqual(okm.subarray(32, 48));
    expect(keys.serverToClient.encryptionKey).toEqual(okm.subarray(48, 64));
  });

  it('binds every input: a different psk, nonce, secret or context gives different keys', () => {
    const base = {
      psk: parseKey(generateKey()),
      sharedSecret: randomBytes(32),
      clientNonce: randomBytes(16),
      serverNonce: randomBytes(16),
      context: Buffer.from('ctx'),
    };
    const reference = formatKey(deriveSessionKeys(base).clientToServer);
    const variants = [
      { ...base, psk: parseKey(generateKey()) },
      { ...base, sharedSecret: randomBytes(32) },
      { ...base, clientNonce: randomBytes(16) },
      { ...base, serverNonce: randomBytes(16) },
      { ...base, context: Buffer.from('ctx2') },
      // Swapping the nonces must not give the same salt.
      { ...base, clientNonce: base.serverNonce, serverNonce: base.clientNonce },
    ];
    for (const variant of variants) {
      expect(formatKey(deriveSessionKeys(variant).clientToServer)).not.toBe(reference);
    }
  });

  it('accepts a context longer than 1024 bytes (a whole handshake transcript)', () => {
    const { clientSide, serverSide } = handshake(randomBytes(4000));
    expect(formatKey(clientSide.serverToClient)).toBe(formatKey(serverSide.serverToClient));
  });

  it('refuses a shared secret that is not 32 bytes (EINVALIDKEY) and short nonces (RangeError)', () => {
    const psk = parseKey(generateKey());
    const nonce = randomBytes(16);
    const context = Buffer.alloc(0);
    expectCryptoError(
      () =>
        deriveSessionKeys({
          psk,
          sharedSecret: randomBytes(31),
          clientNonce: nonce,
          serverNonce: nonce,
          context,
        }),
      'EINVALIDKEY',
    );
    expect(() =>
      deriveSessionKeys({
        psk,
        sharedSecret: randomBytes(32),
        clientNonce: randomBytes(8),
        serverNonce: nonce,
        context,
      }),
    ).toThrow(RangeError);
  });
});
