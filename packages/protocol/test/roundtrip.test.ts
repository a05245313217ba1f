import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DATA_HEADER_LENGTH,
  datagramLength,
  decodeAck,
  decodeClientHello,
  decodeClose,
  decodeControl,
  decodeControlMessage,
  decodeData,
  decodePacket,
  decodePart,
  decodePing,
  decodePrefix,
  decodeProbe,
  decodeRejectDatagram,
  decodeResetDatagram,
  decodeServerTime,
  decodeServerWelcome,
  decodeVersionNegotiation,
  encodeAck,
  encodeClientHello,
  encodeClose,
  encodeControl,
  encodeControlMessage,
  encodeData,
  encodeDataHeader,
  encodePacket,
  encodePing,
  encodePrefix,
  encodeProbe,
  encodeRejectDatagram,
  encodeResetDatagram,
  encodeServerTime,
  encodeServerWelcome,
  encodeVersionNegotiation,
  MIN_HELLO_DATAGRAM,
  MIN_HELLO_PLAINTEXT,
  type Packet,
  packetSpace,
  SERVER_TIME_LENGTH,
  SERVER_WELCOME_LENGTH,
  SERVER_WELCOME_V2_LENGTH,
  Space,
} from '../src/index.js';
import * as arb from './arbitraries.js';

function decodeOk(bytes: Buffer): Packet {
  const result = decodePacket(bytes, bytes.subarray(0, 12));
  if (!result.ok) throw new Error(`decode failed: ${result.error.message}`);
  return result.value;
}

describe('packet round trips', () => {
  it('client hello decodes to its fields and its datagram reaches MIN_HELLO_DATAGRAM (version 2 with features)', () => {
    fc.assert(
      fc.property(arb.connId, arb.clientHello, (id, f) => {
        const bytes = encodeClientHello(id, f);
        expect(decodeOk(bytes)).toEqual({ type: 'client-hello', ...f });
        expect(datagramLength(bytes.length)).toBeGreaterThanOrEqual(MIN_HELLO_DATAGRAM);
        expect(bytes.length).toBe(MIN_HELLO_PLAINTEXT);
        expect(decodePrefix(bytes)).toEqual({
          ok: true,
          value: { version: f.features === undefined ? 1 : 2, space: Space.Handshake, connId: id },
        });
      }),
    );
  });

  it('server welcome decodes to its fields and is smaller than the hello it answers (version 2 with features)', () => {
    fc.assert(
      fc.property(arb.connId, arb.serverWelcome, (id, f) => {
        const bytes = encodeServerWelcome(id, f);
        expect(bytes.length).toBe(
          f.features === undefined ? SERVER_WELCOME_LENGTH : SERVER_WELCOME_V2_LENGTH,
        );
        expect(bytes[2]).toBe(f.features === undefined ? 1 : 2);
        expect(decodeOk(bytes)).toEqual({ type: 'server-welcome', ...f });
      }),
    );
    expect(datagramLength(SERVER_WELCOME_V2_LENGTH)).toBeLessThan(MIN_HELLO_DATAGRAM);
  });

  it('only the handshake speaks version 2: a session packet with version byte 2 is refused (EVERSION)', () => {
    const ping = encodePacket(7n, { type: 'ping', packetNumber: 1 });
    ping[2] = 2;
    const result = decodePacket(ping, ping.subarray(0, 12));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.code).toBe('EVERSION');
    expect(decodePrefix(ping).ok).toBe(false);
  });

  it('server time decodes to its fields and is smaller than the hello it answers', () => {
    fc.assert(
      fc.property(arb.connId, arb.serverTime, (id, f) => {
        const bytes = encodeServerTime(id, f);
        expect(bytes.length).toBe(SERVER_TIME_LENGTH);
        expect(decodeOk(bytes)).toEqual({ type: 'server-time', ...f });
      }),
    );
    expect(datagramLength(SERVER_TIME_LENGTH)).toBeLessThan(MIN_HELLO_DATAGRAM);
  });

  it('data decodes to its fields with the payload as a view of the plaintext', () => {
    fc.assert(
      fc.property(arb.connId, arb.data, (id, f) => {
        const bytes = encodeData(id, f);
        const p = decodeOk(bytes);
        expect(p).toEqual({ type: 'data', ...f });
        if (p.type !== 'data') return;
        expect(p.payload.buffer).toBe(bytes.buffer);
        expect(p.payload.byteOffset).toBe(bytes.byteOffset + DATA_HEADER_LENGTH);
      }),
    );
  });

  it('encodeDataHeader writes exactly the first 29 plaintext bytes, into a reused buffer when given', () => {
    fc.assert(
      fc.property(arb.connId, arb.data, (id, f) => {
        const whole = encodeData(id, f);
        const header = encodeDataHeader(id, f);
        expect(header).toEqual(whole.subarray(0, DATA_HEADER_LENGTH));
        const scratch = Buffer.alloc(64, 0xee);
        const reused = encodeDataHeader(id, f, scratch);
        expect(reused.buffer).toBe(scratch.buffer);
        expect(reused).toEqual(header);
        expect(scratch[DATA_HEADER_LENGTH]).toBe(0xee);
      }),
    );
  });

  it('ack decodes to the same descending ranges and flows', () => {
    fc.assert(
      fc.property(arb.connId, arb.ack, (id, f) => {
        expect(decodeOk(encodeAck(id, f))).toEqual({ type: 'ack', ...f });
      }),
    );
  });

  it('control decodes to its body and the parsed message', () => {
    fc.assert(
      fc.property(
        arb.connId,
        arb.u32,
        arb.u32,
        arb.controlMessage,
        (id, packetNumber, messageSeq, message) => {
          const body = encodeControlMessage(message);
          const bytes = encodeControl(id, { packetNumber, messageSeq, body });
          expect(decodeOk(bytes)).toEqual({ type: 'control', packetNumber, messageSeq, body, message });
        },
      ),
    );
  });

  it('ping and close decode to their fields', () => {
    fc.assert(
      fc.property(arb.connId, arb.u32, arb.close, (id, packetNumber, f) => {
        expect(decodeOk(encodePing(id, { packetNumber }))).toEqual({ type: 'ping', packetNumber });
        expect(decodeOk(encodeClose(id, f))).toEqual({ type: 'close', ...f });
      }),
    );
  });

  it('a PROBE is a PING padded with zeros to the size asked, and nonzero padding is refused', () => {
    fc.assert(
      fc.property(arb.connId, arb.u32, fc.integer({ min: 0, max: 9000 }), (id, packetNumber, padding) => {
        const bytes = encodeProbe(id, { packetNumber, padding });
        expect(bytes.length).toBe(17 + padding);
        expect(decodeOk(bytes)).toEqual({ type: 'probe', packetNumber, padding });
        if (padding > 0) {
          const dirty = Buffer.from(bytes);
          dirty[dirty.length - 1] = 1;
          const r = decodePacket(dirty, dirty.subarray(0, 12));
          expect(!r.ok && r.error.reason).toBe('bad-padding');
        }
      }),
    );
  });

  it('every packet carries its own space in a repeated prefix equal to encodePrefix', () => {
    fc.assert(
      fc.property(arb.connId, arb.packet, (id, p) => {
        const bytes = encodePacket(id, p);
        const version = 'features' in p && p.features !== undefined ? 2 : 1;
        expect(bytes.subarray(0, 12)).toEqual(
          encodePrefix({ version, space: packetSpace(p.type), connId: id }),
        );
        const viaObject = decodePacket(bytes, { version, space: packetSpace(p.type), connId: id });
        expect(viaObject.ok).toBe(true);
      }),
    );
  });

  it('the per-kind decoders accept their own kind and refuse every other with unexpected-type', () => {
    const decoders = {
      'client-hello': decodeClientHello,
      'server-welcome': decodeServerWelcome,
      'server-time': decodeServerTime,
      data: decodeData,
      ack: decodeAck,
      control: decodeControl,
      ping: decodePing,
      close: decodeClose,
      probe: decodeProbe,
      part: decodePart,
    } as const;
    fc.assert(
      fc.property(arb.connId, arb.packet, (id, p) => {
        const bytes = encodePacket(id, p);
        for (const [kind, decode] of Object.entries(decoders)) {
          const result = decode(bytes, bytes.subarray(0, 12));
          if (kind === p.type) expect(result.ok).toBe(true);
          else expect(!result.ok && result.error.reason).toBe('unexpected-type');
        }
      }),
    );
  });

  it('a packet whose repeated prefix differs from the cleartext one is rejected', () => {
    fc.assert(
      fc.property(arb.connId, arb.connId, arb.packet, (a, b, p) => {
        fc.pre(a !== b);
        const bytes = encodePacket(a, p);
        const result = decodePacket(bytes, encodePrefix({ space: packetSpace(p.type), connId: b }));
        expect(result.ok).toBe(false);
        if (!result.ok) expect(result.error.reason).toBe('prefix-mismatch');
      }),
    );
  });
});

describe('tokenless datagrams and control messages round-trip', () => {
  it('reset datagram', () => {
    fc.assert(
      fc.property(arb.connId, arb.bytes(16), (id, token) => {
        const bytes = encodeResetDatagram(id, token);
        expect(bytes.length).toBe(28);
        expect(decodeResetDatagram(bytes)).toEqual({ ok: true, value: { connId: id, resetToken: token } });
        expect(decodePrefix(bytes)).toEqual({
          ok: true,
          value: { version: 1, space: Space.Reset, connId: id },
        });
      }),
    );
  });

  it('reject datagram', () => {
    fc.assert(
      fc.property(arb.connId, arb.u16, (id, errorCode) => {
        const bytes = encodeRejectDatagram(id, errorCode);
        expect(bytes.length).toBe(14);
        expect(decodeRejectDatagram(bytes)).toEqual({ ok: true, value: { connId: id, errorCode } });
        expect(decodePrefix(bytes)).toEqual({
          ok: true,
          value: { version: 1, space: Space.Reject, connId: id },
        });
      }),
    );
  });

  it('version negotiation', () => {
    const versions = fc.array(fc.integer({ min: 1, max: 255 }), { minLength: 1, maxLength: 255 });
    fc.assert(
      fc.property(arb.connId, versions, (id, list) => {
        const bytes = encodeVersionNegotiation(id, list);
        expect(decodeVersionNegotiation(bytes)).toEqual({ ok: true, value: { connId: id, versions: list } });
        expect(decodePrefix(bytes)).toEqual({ ok: true, value: { version: 0, space: 0, connId: id } });
      }),
    );
  });

  it('every control message', () => {
    fc.assert(
      fc.property(arb.controlMessage, (message) => {
        expect(decodeControlMessage(encodeControlMessage(message))).toEqual({ ok: true, value: message });
      }),
      { numRuns: 1000 },
    );
  });
});

describe('replies and the requests they answer', () => {
  it('isReplyTo tells each successful reply kind from the others', async () => {
    const { isReplyTo } = await import('../src/index.js');
    const ok = { op: 'reply', id: 1, ok: true } as const;
    const stat = { ...ok, entry: { name: 'a', type: 'file', size: 1, mtimeMs: 0 } } as const;
    const list = { ...ok, entries: [] };
    expect(isReplyTo('stat', stat)).toBe(true);
    expect(isReplyTo('list', stat)).toBe(false);
    expect(isReplyTo('delete', stat)).toBe(false);
    expect(isReplyTo('delete', ok)).toBe(true);
    expect(isReplyTo('list', list)).toBe(true);
    expect(isReplyTo('get', list)).toBe(false);
  });
});
