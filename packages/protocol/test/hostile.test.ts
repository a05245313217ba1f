import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type DecodeResult,
  decodeControlMessage,
  decodePacket,
  decodePrefix,
  decodeRejectDatagram,
  decodeResetDatagram,
  decodeVersionNegotiation,
  encodePrefix,
  encodeRejectDatagram,
  encodeResetDatagram,
  encodeVersionNegotiation,
  MAX_CONTROL_BYTES,
  ProtocolError,
  Space,
} from '../src/index.js';
import * as arb from './arbitraries.js';

/**
 * Wraps bytes so that reading an index outside them throws: a decoder that never reads out of bounds
 * behaves exactly as on the bare bytes. Methods run on the real array (subarray, buffer stay native).
 */
function guarded(bytes: Uint8Array): Uint8Array {
  return new Proxy(bytes, {
    get(target, key) {
      if (typeof key === 'string' && /^-?\d+$/.test(key)) {
        const index = Number(key);
        if (index < 0 || index >= target.length) throw new RangeError(`read at ${index} of ${target.length}`);
        return target[index];
      }
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** Runs a decoder and fails the test on any throw; returns the typed result. */
function neverThrows<T>(name: string, decode: () => DecodeResult<T>): DecodeResult<T> {
  let result: DecodeResult<T>;
  try {
    result = decode();
  } catch (error) {
    expect.fail(`${name} threw: ${String(error)}`);
  }
  // plain checks: this runs millions of times and expect() is comparatively slow
  if (result.ok === true) return result;
  const { error } = result;
  if (
    result.ok !== false ||
    !(error instanceof ProtocolError) ||
    (error.code !== 'EPROTO' && error.code !== 'EVERSION') ||
    typeof error.reason !== 'string'
  ) {
    expect.fail(`${name} returned something other than a typed result`);
  }
  return result;
}

/** Every decoder of the package, on the same bytes. */
function decodeEverything(bytes: Uint8Array, expectedPrefix: Uint8Array): DecodeResult<unknown>[] {
  const g = guarded(bytes);
  return [
    neverThrows('decodePacket', () => decodePacket(g, expectedPrefix)),
    neverThrows('decodePrefix', () => decodePrefix(g)),
    neverThrows('decodeResetDatagram', () => decodeResetDatagram(g)),
    neverThrows('decodeRejectDatagram', () => decodeRejectDatagram(g)),
    neverThrows('decodeVersionNegotiation', () => decodeVersionNegotiation(g)),
    // only ever decodes a whole view as UTF-8 (a proxy is not a typed array to TextDecoder)
    neverThrows('decodeControlMessage', () => decodeControlMessage(bytes)),
  ];
}

/** Kinds whose length is fully determined by their fields: any extension must be rejected. */
const FIXED_LENGTH = new Set(['client-hello', 'server-welcome', 'server-time', 'ack', 'ping', 'close']);

describe('hostile bytes', () => {
  it('the bounds guard used below catches an out-of-bounds read', () => {
    const g = guarded(new Uint8Array(3));
    expect(g[2]).toBe(0);
    expect(() => g[3]).toThrow(RangeError);
    expect(g.subarray(1).length).toBe(2);
  });

  it('random bytes never make a decoder throw or read out of bounds', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
        decodeEverything(bytes, bytes.subarray(0, 12));
      }),
      { numRuns: 3000 },
    );
  });

  it('random bodies behind a valid prefix and a real type byte are rejected or decoded, never thrown', () => {
    const type = fc.constantFrom(
      0x00,
      0x01,
      0x02,
      0x03,
      0x04,
      0x10,
      0x11,
      0x12,
      0x13,
      0x14,
      0x15,
      0x16,
      0xff,
    );
    const space = fc.constantFrom(Space.Handshake, Space.Session, Space.Reset, Space.Reject, 0x07);
    fc.assert(
      fc.property(arb.connId, space, type, fc.uint8Array({ maxLength: 1300 }), (id, s, t, body) => {
        const prefix = encodePrefix({ space: s, connId: id });
        const bytes = Buffer.concat([prefix, Buffer.from([t]), body]);
        decodeEverything(bytes, prefix);
      }),
      { numRuns: 3000 },
    );
  });

  it('every truncation of every kind of valid packet is a typed error', () => {
    fc.assert(
      fc.property(arb.plaintext, ({ kind, bytes }) => {
        const prefix = bytes.subarray(0, 12);
        // a DATA or CONTROL cut inside its payload, or a PROBE inside its padding, may still be a
        // valid (shorter) packet
        const shortest = kind === 'probe' ? 17 : kind === 'part' ? 33 : 29;
        for (let n = 0; n < bytes.length; n++) {
          const [packet] = decodeEverything(bytes.subarray(0, n), prefix);
          if (n < shortest && packet!.ok) expect.fail(`a ${n}-byte cut decoded`);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('truncating a fixed-length packet anywhere is rejected, for every cut', () => {
    fc.assert(
      fc.property(arb.plaintext, ({ kind, bytes }) => {
        fc.pre(FIXED_LENGTH.has(kind));
        const prefix = bytes.subarray(0, 12);
        for (let n = 0; n < bytes.length; n++) {
          if (decodePacket(bytes.subarray(0, n), prefix).ok) expect.fail(`${kind} cut to ${n} bytes decoded`);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('every one-byte extension is a typed error for fixed-length kinds and never a throw for any kind', () => {
    fc.assert(
      fc.property(arb.plaintext, fc.integer({ min: 0, max: 255 }), ({ kind, bytes }, extra) => {
        const longer = Buffer.concat([bytes, Buffer.from([extra])]);
        const [packet] = decodeEverything(longer, bytes.subarray(0, 12));
        if (FIXED_LENGTH.has(kind)) {
          expect(packet!.ok).toBe(false);
          if (!packet!.ok) expect(packet!.error.reason).toBe('trailing-bytes');
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('flipping any byte of a valid packet never makes a decoder throw', () => {
    fc.assert(
      fc.property(arb.plaintext, fc.nat(), fc.integer({ min: 1, max: 255 }), ({ bytes }, at, xor) => {
        const mutated = Buffer.from(bytes);
        const i = at % mutated.length;
        mutated[i] = mutated[i]! ^ xor;
        decodeEverything(mutated, bytes.subarray(0, 12));
      }),
      { numRuns: 3000 },
    );
  });

  it('truncated and extended tokenless datagrams are rejected', () => {
    fc.assert(
      fc.property(
        arb.connId,
        arb.bytes(16),
        arb.u16,
        fc.integer({ min: 0, max: 255 }),
        (id, token, code, extra) => {
          const cases: Array<[Buffer, (b: Uint8Array) => DecodeResult<unknown>]> = [
            [encodeResetDatagram(id, token), decodeResetDatagram],
            [encodeRejectDatagram(id, code), decodeRejectDatagram],
            [encodeVersionNegotiation(id, [1, 2]), decodeVersionNegotiation],
          ];
          for (const [bytes, decode] of cases) {
            expect(decode(guarded(bytes)).ok).toBe(true);
            for (let n = 0; n < bytes.length; n++)
              expect(decode(guarded(bytes.subarray(0, n))).ok).toBe(false);
            expect(decode(guarded(Buffer.concat([bytes, Buffer.from([extra])]))).ok).toBe(false);
          }
        },
      ),
    );
  });

  it('hostile control bodies (deep nesting, huge numbers, prototype keys, bad UTF-8) are typed errors', () => {
    const cases = [
      '['.repeat(8000) + ']'.repeat(8000),
      '{"op":"list","id":1,"path":"","__proto__":{"x":1}}',
      '{"op":"list","id":1e400,"path":""}',
      '{"op":"list","id":-1,"path":""}',
      '{"op":"list","id":1.5,"path":""}',
      '{"op":"list","id":1,"path":"\\ud800"}',
      '{"op":"list","id":1,"path":"a\\u0000b"}',
      '{"op":"constructor","id":1}',
      '{"op":"toString"}',
      '\ufeff{"op":"ping"}',
      'null',
      '[]',
      '"reply"',
      '',
      `{"op":"stat","id":1,"path":"${'a'.repeat(MAX_CONTROL_BYTES)}"}`,
    ];
    for (const text of cases) {
      const result = neverThrows('decodeControlMessage', () => decodeControlMessage(Buffer.from(text)));
      expect(result.ok, text.slice(0, 60)).toBe(false);
    }
    const badUtf8 = Buffer.from([0x7b, 0xff, 0x7d]);
    const result = decodeControlMessage(badUtf8);
    expect(!result.ok && result.error.reason).toBe('bad-utf8');
  });
});
