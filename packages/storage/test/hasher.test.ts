import { createHash } from 'node:crypto';
import { BlockBitmap } from '@ferry/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PrefixHasher } from '../src/local/block-io.js';

describe('PrefixHasher', () => {
  it('yields the SHA-256 of the whole file for any arrival order, ahead budget and read-back mode', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 0, maxLength: 2000 }),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.boolean(),
        fc.infiniteStream(fc.integer({ min: 0, max: 1 << 30 })),
        fc.integer({ min: 1, max: 6 }),
        async (bytes, blockSize, aheadBytes, eager, randoms, parallel) => {
          const data = Buffer.from(bytes);
          const count = Math.ceil(data.length / blockSize);
          const held = new BlockBitmap(count);
          const hasher = new PrefixHasher(data.length, {
            readAt: async (offset, length) => {
              await Promise.resolve();
              expect(held.has(Math.floor(offset / blockSize))).toBe(true);
              return Buffer.from(data.subarray(offset, offset + length));
            },
            contiguousFrom: (offset) => {
              const index = Math.floor(offset / blockSize);
              if (offset >= data.length || !held.has(index)) return 0;
              return Math.min(data.length, held.nextMissing(index) * blockSize) - offset;
            },
            readBackEagerly: eager,
            aheadBytes,
          });
          const order = Array.from({ length: count }, (_, i) => i);
          const it = randoms[Symbol.iterator]();
          for (let i = order.length - 1; i > 0; i--) {
            const j = it.next().value! % (i + 1);
            [order[i], order[j]] = [order[j]!, order[i]!];
          }
          for (let i = 0; i < order.length; i += parallel) {
            await Promise.all(
              order.slice(i, i + parallel).map(async (b) => {
                await Promise.resolve();
                held.set(b);
                hasher.offer(b * blockSize, data.subarray(b * blockSize, (b + 1) * blockSize));
              }),
            );
          }
          expect(await hasher.digest()).toBe(createHash('sha256').update(data).digest('hex'));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('needs no read-back when blocks arrive in order', async () => {
    const data = Buffer.alloc(10_000, 7);
    const hasher = new PrefixHasher(data.length, {
      readAt: () => Promise.reject(new Error('should not read')),
      contiguousFrom: () => 0,
      readBackEagerly: true,
    });
    for (let o = 0; o < data.length; o += 1000) hasher.offer(o, data.subarray(o, o + 1000));
    expect(hasher.hashedBytes).toBe(data.length);
    expect(await hasher.digest()).toBe(createHash('sha256').update(data).digest('hex'));
  });
});
