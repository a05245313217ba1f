import { describe, expect, it } from 'vitest';
import { MIN_PART_BYTES, ReceiveTransfer } from '../src/core/transfers.js';

/**
 * PART packets carry a piece of a block that no longer fits the path (PROTOCOL.md, path MTU). The
 * receiver holds a partial block until every byte of it arrived: a peer must not make it hold a whole
 * block, or merge thousands of ranges, for a byte or two each.
 */
describe('PART pieces a receiver takes', () => {
  const BLOCK = 64 * 1024;

  it('refuses a tiny piece unless it ends its block, and assembles a block from real-sized pieces', () => {
    const t = new ReceiveTransfer(1, 3 * BLOCK + 100, BLOCK, 4);
    expect(t.acceptsPart(0, 0, 1)).toBe('invalid');
    expect(t.acceptsPart(0, 1000, MIN_PART_BYTES - 1)).toBe('invalid');
    // The last piece of a block may be short, as the last block itself may be.
    expect(t.acceptsPart(0, BLOCK - 10, 10)).toBe('ok');
    expect(t.acceptsPart(3, 0, 100)).toBe('ok');
    expect(t.acceptsPart(3, 0, 101)).toBe('invalid');
    // A sender's pieces: as large as its base datagram allows.
    const data = Buffer.alloc(BLOCK, 7);
    const piece = 1100;
    let whole: Buffer | undefined;
    for (let offset = 0; offset < BLOCK; offset += piece) {
      const length = Math.min(piece, BLOCK - offset);
      expect(t.acceptsPart(0, offset, length)).toBe('ok');
      whole = t.onPart(0, offset, data.subarray(offset, offset + length));
    }
    expect(whole?.equals(data)).toBe(true);
  });
});
