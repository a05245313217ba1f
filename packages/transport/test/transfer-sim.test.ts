import { describe, expect, it } from 'vitest';
import { runSimTransfer } from './helpers/sim-harness.js';

const BLOCK = 1024;

describe('transfers on a clean simulated link', () => {
  for (const size of [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * 1024 * 1024 + 7]) {
    for (const direction of ['put', 'get'] as const) {
      it(`delivers ${size} bytes bit-exact (${direction})`, () => {
        const r = runSimTransfer({
          seed: size + 1,
          size,
          blockSize: BLOCK,
          direction,
          up: { delayMs: 10, rateBitsPerSecond: 100e6 },
        });
        expect(r.handshakeError).toBeUndefined();
        expect(r.ok, JSON.stringify({ ...r, sender: undefined, receiver: undefined })).toBe(true);
      });
    }
  }
});
