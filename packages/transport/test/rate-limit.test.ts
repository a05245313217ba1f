import type { LinkConfig } from '@ferry/netsim';
import { describe, expect, it } from 'vitest';
import { describeRun, runSimTransfer } from './helpers/sim-harness.js';

/**
 * A client's rate limit (`--limit`, the congestion controller's maxRateBytesPerMs) holds both ways:
 * it paces what the client sends, and it grants what the server may send it through flow control (the
 * client announces a small window in its hello and extends it at its rate).
 */
const FAST: LinkConfig = { delayMs: 10, rateBitsPerSecond: 100e6, queueBytes: 1024 * 1024 };
const SIZE = 3_000_000;
const LIMIT = 500; // bytes per ms: 500 kB/s

describe('a client rate limit', () => {
  for (const direction of ['get', 'put'] as const) {
    for (const blockSize of [1120, 16 * 1024]) {
      it(`holds for a ${direction} (${blockSize}-byte blocks): 3 MB at 500 kB/s take about 6 s`, () => {
        const r = runSimTransfer({
          seed: 60,
          size: SIZE,
          blockSize,
          direction,
          up: FAST,
          clientConnection: { congestion: { maxRateBytesPerMs: LIMIT } },
          maxTimeMs: 60_000,
        });
        expect(r.ok, describeRun(r)).toBe(true);
        const seconds = (r.completedAt! - r.startedAt!) / 1000;
        const expected = SIZE / (LIMIT * 1000);
        expect(seconds).toBeGreaterThanOrEqual(expected * 0.9);
        expect(seconds).toBeLessThanOrEqual(expected * 1.25);
      });
    }
  }

  it('without a limit the same get takes a fraction of that', () => {
    const r = runSimTransfer({ seed: 60, size: SIZE, blockSize: 16 * 1024, direction: 'get', up: FAST });
    expect(r.ok, describeRun(r)).toBe(true);
    expect((r.completedAt! - r.startedAt!) / 1000).toBeLessThan(1.5);
  });

  it('holds across several gets at once: they share the rate', () => {
    const r = runSimTransfer({
      seed: 61,
      size: 1_000_000,
      blockSize: 16 * 1024,
      direction: 'get',
      extraTransfers: [
        { direction: 'get', size: 1_000_000 },
        { direction: 'get', size: 1_000_000 },
      ],
      up: FAST,
      clientConnection: { congestion: { maxRateBytesPerMs: LIMIT } },
      maxTimeMs: 60_000,
    });
    expect(r.ok, describeRun(r)).toBe(true);
    const seconds = (r.completedAt! - r.startedAt!) / 1000;
    expect(seconds).toBeGreaterThanOrEqual(6 * 0.85);
  });
});
