import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ACK_MIN_LENGTH,
  AckSchema,
  AckWireSchema,
  ControlMessageSchema,
  DATA_HEADER_LENGTH,
  DataHeaderSchema,
  DataSchema,
  decodeControlMessage,
  decodePacket,
  encodeAck,
  encodeData,
  encodeDataHeader,
  encodePrefix,
  MAX_ACK_RANGES,
  MAX_BLOCK_SIZE,
  MAX_FLOWS,
  PacketType,
  ProtocolError,
  Space,
} from '../src/index.js';
import * as arb from './arbitraries.js';

/**
 * The zod schemas are the specification of the DATA and ACK headers; the hand-written encoders and
 * decoders must accept exactly what the schemas accept, on valid and invalid input alike.
 */
const RUNS = 20_000;
const CONN = 0x0123_4567_89ab_cdefn;
const SESSION_PREFIX = encodePrefix({ space: Space.Session, connId: CONN });

/** A number field: usually a u32 (edges included), often something that is not one. */
const maybeU32 = fc.oneof(
  { weight: 6, arbitrary: arb.u32 },
  { weight: 1, arbitrary: fc.constantFrom(0, 1, 0xffff_fffe, 0xffff_ffff) },
  {
    weight: 2,
    arbitrary: fc.constantFrom<unknown>(
      -1,
      2 ** 32,
      2 ** 53,
      1.5,
      -0.5,
      Number.NaN,
      Infinity,
      '1',
      null,
      undefined,
      1n,
    ),
  },
);

/** Sort key for possibly malformed ranges. */
function firstOf(range: unknown): number {
  return Array.isArray(range) && typeof range[0] === 'number' ? range[0] : 0;
}

function encoderAccepts(encode: () => unknown): boolean {
  try {
    encode();
    return true;
  } catch (error) {
    if (!(error instanceof ProtocolError) || error.reason !== 'invalid-field') throw error;
    return false;
  }
}

describe('DATA: schema and hand-written codec agree', () => {
  it(`on ${RUNS} header objects, valid and invalid`, () => {
    const header = fc.record({
      packetNumber: maybeU32,
      sendTime: maybeU32,
      transferId: maybeU32,
      blockIndex: maybeU32,
    });
    let valid = 0;
    fc.assert(
      fc.property(header, (h) => {
        const schemaOk = DataHeaderSchema.safeParse(h).success;
        // biome-ignore lint/suspicious/noExplicitAny: deliberately feeding unchecked values
        const codecOk = encoderAccepts(() => encodeDataHeader(CONN, h as any));
        if (schemaOk !== codecOk)
          expect.fail(`disagree on ${String(JSON.stringify(h, (_, v) => String(v)))}`);
        if (schemaOk) {
          valid++;
          // biome-ignore lint/suspicious/noExplicitAny: validated by the schema just above
          const bytes = encodeData(CONN, { ...(h as any), payload: Buffer.from([1]) });
          const result = decodePacket(bytes, SESSION_PREFIX);
          if (!result.ok || result.value.type !== 'data') expect.fail('valid header did not decode');
          expect(DataHeaderSchema.parse(h)).toEqual({
            packetNumber: result.value.packetNumber,
            sendTime: result.value.sendTime,
            transferId: result.value.transferId,
            blockIndex: result.value.blockIndex,
          });
        }
      }),
      { numRuns: RUNS },
    );
    expect(valid).toBeGreaterThan(RUNS / 10);
    expect(valid).toBeLessThan(RUNS - RUNS / 10);
  });

  it(`on ${RUNS} DATA plaintexts of random header bytes and payload lengths`, () => {
    const pool = Buffer.alloc(DATA_HEADER_LENGTH + MAX_BLOCK_SIZE + 1, 0xab);
    const payloadLength = fc.oneof(
      fc.constantFrom(0, 1, 2, MAX_BLOCK_SIZE - 1, MAX_BLOCK_SIZE, MAX_BLOCK_SIZE + 1),
      fc.integer({ min: 0, max: 300 }),
    );
    let valid = 0;
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), payloadLength, (fields, n) => {
        SESSION_PREFIX.copy(pool, 0);
        pool[12] = PacketType.Data;
        pool.set(fields, 13);
        const bytes = pool.subarray(0, DATA_HEADER_LENGTH + n);
        const dv = new DataView(fields.buffer, fields.byteOffset, 16);
        const reference = {
          packetNumber: dv.getUint32(0),
          sendTime: dv.getUint32(4),
          transferId: dv.getUint32(8),
          blockIndex: dv.getUint32(12),
          payload: bytes.subarray(DATA_HEADER_LENGTH),
        };
        const schemaOk = DataSchema.safeParse(reference).success;
        const result = decodePacket(bytes, SESSION_PREFIX);
        if (schemaOk !== result.ok)
          expect.fail(`disagree: payload ${n}, fields ${Buffer.from(fields).toString('hex')}`);
        if (result.ok) {
          valid++;
          const { payload, ...header } = result.value as typeof reference & { type: 'data' };
          const { payload: expectedPayload, ...expectedHeader } = reference;
          expect(header).toEqual({ type: 'data', ...expectedHeader });
          // the payload is a view of the same bytes (compared by position, not element by element)
          expect(payload.buffer).toBe(expectedPayload.buffer);
          expect([payload.byteOffset, payload.length]).toEqual([
            expectedPayload.byteOffset,
            expectedPayload.length,
          ]);
        }
      }),
      { numRuns: RUNS },
    );
    expect(valid).toBeGreaterThan(RUNS / 10);
  });
});

describe('ACK: schema and hand-written codec agree', () => {
  it(`on ${RUNS} ACK objects, valid and invalid`, () => {
    const small = fc.integer({ min: 0, max: 40 });
    const range = fc.oneof(
      { weight: 4, arbitrary: fc.tuple(small, small).map(([a, b]) => [Math.min(a, b), Math.max(a, b)]) },
      { weight: 1, arbitrary: fc.tuple(maybeU32, maybeU32) },
      { weight: 1, arbitrary: fc.constantFrom<unknown>([1], [1, 2, 3], 'x', null) },
    );
    const ranges = fc.oneof(
      { weight: 3, arbitrary: arb.ackRanges },
      // short descending lists over a small space, so adjacency and overlap are frequent
      {
        weight: 3,
        arbitrary: fc
          .array(range, { maxLength: 5 })
          .map((rs) => [...rs].sort((x, y) => firstOf(y) - firstOf(x))),
      },
      { weight: 1, arbitrary: fc.array(range, { maxLength: MAX_ACK_RANGES + 3 }) },
    );
    const flow = fc.record({
      transferId: fc.integer({ min: 0, max: 3 }),
      cumulativeBlocks: maybeU32,
      blockLimit: maybeU32,
    });
    const ack = fc.record({
      packetNumber: maybeU32,
      tsEcho: maybeU32,
      ackDelay: maybeU32,
      ranges,
      flows: fc.oneof(arb.flows, fc.array(flow, { maxLength: MAX_FLOWS + 2 })),
    });
    let valid = 0;
    fc.assert(
      fc.property(ack, (a) => {
        const schemaOk = AckSchema.safeParse(a).success;
        // biome-ignore lint/suspicious/noExplicitAny: deliberately feeding unchecked values
        const codecOk = encoderAccepts(() => encodeAck(CONN, a as any));
        if (schemaOk !== codecOk) {
          expect.fail(
            `disagree (schema ${schemaOk}) on ${JSON.stringify(a, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}`,
          );
        }
        if (schemaOk) {
          valid++;
          // biome-ignore lint/suspicious/noExplicitAny: validated by the schema just above
          const result = decodePacket(encodeAck(CONN, a as any), SESSION_PREFIX);
          if (!result.ok) expect.fail(`valid ack did not decode: ${result.error.message}`);
          expect(result.value).toEqual({ type: 'ack', ...AckSchema.parse(a) });
        }
      }),
      { numRuns: RUNS },
    );
    expect(valid).toBeGreaterThan(RUNS / 10);
    expect(valid).toBeLessThan(RUNS - RUNS / 10);
  });

  it(`on ${RUNS} ACK wire images with random gaps, lengths and counts`, () => {
    const small = fc.oneof(fc.integer({ min: 0, max: 30 }), arb.u32);
    const wire = fc.record({
      packetNumber: arb.u32,
      tsEcho: arb.u32,
      ackDelay: arb.u32,
      largestAcked: fc.oneof(fc.integer({ min: 0, max: 200 }), arb.u32, fc.constant(0xffff_ffff)),
      firstRange: small,
      gaps: fc.oneof(
        fc.array(fc.record({ gap: fc.integer({ min: 0, max: 3 }), length: fc.integer({ min: 0, max: 3 }) }), {
          maxLength: 4,
        }),
        fc.array(fc.record({ gap: small, length: small }), { maxLength: MAX_ACK_RANGES + 2 }),
        fc.array(fc.record({ gap: fc.constant(0), length: fc.constant(0) }), {
          minLength: MAX_ACK_RANGES - 1,
          maxLength: MAX_ACK_RANGES + 1,
        }),
      ),
      flows: fc.oneof(
        arb.flows,
        fc.array(
          fc.record({
            transferId: fc.integer({ min: 0, max: 5 }),
            cumulativeBlocks: small,
            blockLimit: small,
          }),
          { maxLength: MAX_FLOWS + 2 },
        ),
      ),
    });
    let valid = 0;
    fc.assert(
      fc.property(wire, (w) => {
        // a plain writer of the layout, independent of the codec
        const length = ACK_MIN_LENGTH + 8 * w.gaps.length + 12 * w.flows.length;
        const bytes = Buffer.alloc(length);
        SESSION_PREFIX.copy(bytes, 0);
        bytes[12] = PacketType.Ack;
        let o = 13;
        for (const v of [w.packetNumber, w.tsEcho, w.ackDelay, w.largestAcked, w.firstRange]) {
          bytes.writeUInt32BE(v, o);
          o += 4;
        }
        bytes[o++] = w.gaps.length;
        for (const g of w.gaps) {
          bytes.writeUInt32BE(g.gap, o);
          bytes.writeUInt32BE(g.length, o + 4);
          o += 8;
        }
        bytes[o++] = w.flows.length;
        for (const f of w.flows) {
          bytes.writeUInt32BE(f.transferId, o);
          bytes.writeUInt32BE(f.cumulativeBlocks, o + 4);
          bytes.writeUInt32BE(f.blockLimit, o + 8);
          o += 12;
        }
        const schemaOk = AckWireSchema.safeParse(w).success;
        const result = decodePacket(bytes, SESSION_PREFIX);
        if (schemaOk !== result.ok) expect.fail(`disagree (schema ${schemaOk}) on ${JSON.stringify(w)}`);
        if (result.ok && result.value.type === 'ack') {
          valid++;
          // the decoded ranges re-encode to the same bytes
          expect(encodeAck(CONN, result.value)).toEqual(bytes);
        }
      }),
      { numRuns: RUNS },
    );
    expect(valid).toBeGreaterThan(RUNS / 20);
    expect(valid).toBeLessThan(RUNS - RUNS / 20);
  });
});

describe('control messages: decoding agrees with ControlMessageSchema', () => {
  /** A valid message with one field changed, removed, added, or its op swapped for another's. */
  const mutated = fc
    .tuple(
      arb.controlMessage,
      fc.oneof(
        fc.constant<'none'>('none'),
        fc.constant<'drop'>('drop'),
        fc.constant<'extra'>('extra'),
        fc.constant<'swap-op'>('swap-op'),
        fc.constant<'bad-value'>('bad-value'),
      ),
      fc.nat(),
      fc.constantFrom<unknown>(-1, 2 ** 32, 1.5, '', 'x', null, true, [], {}, 'reply', 'get', 'nope'),
    )
    .map(([message, how, pick, value]) => {
      const m: Record<string, unknown> = { ...message };
      const keys = Object.keys(m);
      const key = keys[pick % keys.length]!;
      if (how === 'drop') delete m[key];
      if (how === 'extra') m.unexpected = value;
      if (how === 'swap-op') m.op = value;
      if (how === 'bad-value') m[key] = value;
      return m;
    });

  it('accepts exactly what the schema accepts, on valid and mutated messages', () => {
    let valid = 0;
    fc.assert(
      fc.property(fc.oneof(mutated, fc.anything()), (message) => {
        const schemaOk = ControlMessageSchema.safeParse(message).success;
        const result = decodeControlMessage(Buffer.from(JSON.stringify(message) ?? 'null'));
        // JSON drops what it cannot represent (undefined, functions): compare with what went over it.
        const overJson: unknown = JSON.parse(JSON.stringify(message) ?? 'null');
        const expected = ControlMessageSchema.safeParse(overJson).success;
        if (expected !== result.ok) {
          expect.fail(`disagree (schema ${expected}) on ${JSON.stringify(message)}`);
        }
        if (schemaOk) valid++;
        if (result.ok) expect(result.value).toEqual(ControlMessageSchema.parse(overJson));
      }),
      { numRuns: RUNS / 4 },
    );
    expect(valid).toBeGreaterThan(RUNS / 40);
  });
});
