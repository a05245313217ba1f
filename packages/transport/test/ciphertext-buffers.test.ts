import { describe, expect, it } from 'vitest';
import { CiphertextBuffers } from '../src/core/ciphertext-buffers.js';

describe('CiphertextBuffers', () => {
  it('hands out a buffer again only once the datagram holding it was sent', () => {
    const buffers = new CiphertextBuffers(1024);
    const first = buffers.take();
    const datagram = [Buffer.alloc(8), first.subarray(0, 512), Buffer.alloc(8)];
    expect(buffers.holds(datagram)).toBe(true);
    // Still in a datagram being sent: the next take is another buffer.
    const second = buffers.take();
    expect(second.buffer).not.toBe(first.buffer);
    buffers.sent(datagram);
    expect(buffers.take().buffer).toBe(first.buffer);
  });

  it('ignores datagrams and buffers that are not its own', () => {
    const buffers = new CiphertextBuffers(1024);
    const foreign = Buffer.alloc(1024);
    expect(buffers.holds([foreign])).toBe(false);
    expect(buffers.holds(foreign)).toBe(false);
    buffers.sent([foreign]);
    buffers.give(foreign);
    expect(buffers.take().buffer).not.toBe(foreign.buffer);
  });
});
