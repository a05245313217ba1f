import { describe, expect, it } from 'vitest';
import { effectiveReceiveWindow, socketBytesPerDatagram } from '../src/core/flow-reports.js';
import { SESSION_OVERHEAD } from '../src/core/wire.js';
import { describeRun, runSimTransfer } from './helpers/sim-harness.js';

/**
 * A receiver on a busy machine is descheduled now and then: what arrives meanwhile waits in its
 * socket, and what does not fit there is lost. Its receive window is capped at what the socket can
 * queue, so a sender however fast never has more in flight than the socket holds.
 */
const MiB = 1024 * 1024;

describe('a receiver that stalls', () => {
  it('loses nothing to its socket: the window never grants more than the socket can queue', () => {
    // A loopback-like path (2 GB/s, 0.1 ms RTT), a 1 MiB socket, and a receiver descheduled for 5 ms
    // of every 10 ms while a 32 MiB get arrives.
    const stalls: Array<[number, number]> = [];
    for (let t = 5; t < 2_000; t += 10) stalls.push([t, t + 5]);
    const r = runSimTransfer({
      seed: 41,
      size: 32 * MiB,
      blockSize: 16 * 1024,
      direction: 'get',
      receiveWindow: 16 * MiB,
      up: { rateBitsPerSecond: 16e9, delayMs: 0.05, queueBytes: 64 * MiB },
      clientSocket: { bufferBytes: 1 * MiB, stalls },
      maxTimeMs: 60_000,
    });
    expect(r.ok, describeRun(r)).toBe(true);
    expect(r.clientSocketDrops).toBe(0);
  });

  it('is not taken for a lossy path: a timeout while it stalls declares nothing lost', () => {
    // The sender's probe timeout (50 ms on this path) expires during the stalls of 120 ms;
    // acknowledgements of everything arrive once the receiver runs again, so nothing was lost and none is
    // counted.
    const stalls: Array<[number, number]> = [];
    for (let t = 5; t < 5_000; t += 200) stalls.push([t, t + 120]);
    const r = runSimTransfer({
      seed: 42,
      size: 16 * MiB,
      blockSize: 16 * 1024,
      direction: 'get',
      up: { rateBitsPerSecond: 16e9, delayMs: 0.05, queueBytes: 64 * MiB },
      clientSocket: { bufferBytes: 8 * MiB, stalls },
      maxTimeMs: 60_000,
    });
    expect(r.ok, describeRun(r)).toBe(true);
    const stats = r.sender!.stats;
    expect(stats.rtoCount, 'the stalls outlast the probe timeout').toBeGreaterThan(0);
    expect(stats.packetsLost).toBe(0);
    expect(r.sender!.cc.lossRate).toBe(0);
  });

  it('once seen, a stall of the same length no longer times out: the timeout covers the longest recent round trip', () => {
    // Stalls of 80 ms every 200 ms on a loopback-like path: longer than the 50 ms floor, so a timeout
    // from the smoothed RTT and the floor alone expired at every stall; the longest recent round trip
    // stays.
    const stalls: Array<[number, number]> = [];
    for (let t = 5; t < 5_000; t += 200) stalls.push([t, t + 80]);
    const r = runSimTransfer({
      seed: 43,
      size: 64 * MiB,
      blockSize: 16 * 1024,
      direction: 'get',
      up: { rateBitsPerSecond: 1e9, delayMs: 0.05, queueBytes: 64 * MiB },
      clientSocket: { bufferBytes: 8 * MiB, stalls },
      maxTimeMs: 60_000,
    });
    expect(r.ok, describeRun(r)).toBe(true);
    const stalled = stalls.filter(([from]) => from < (r.completedAt ?? 0)).length;
    expect(stalled, 'the transfer spans several stalls').toBeGreaterThan(3);
    expect(r.sender!.stats.rtoCount).toBeLessThanOrEqual(1);
  });

  it('on a local path, a stall shorter than 50 ms sets off no timeout at all', () => {
    // Loopback-like (0.1 ms RTT): a receiver descheduled for 30 ms, five times. Before, the timeout was
    // a few ms here and the first stall set it off.
    const stalls: Array<[number, number]> = [];
    for (let t = 5; t < 5_000; t += 100) stalls.push([t, t + 30]);
    const r = runSimTransfer({
      seed: 44,
      size: 64 * MiB,
      blockSize: 16 * 1024,
      direction: 'get',
      up: { rateBitsPerSecond: 1e9, delayMs: 0.05, queueBytes: 64 * MiB },
      clientSocket: { bufferBytes: 8 * MiB, stalls },
      maxTimeMs: 60_000,
    });
    expect(r.ok, describeRun(r)).toBe(true);
    expect(stalls.filter(([from]) => from < (r.completedAt ?? 0)).length).toBeGreaterThan(3);
    expect(r.sender!.stats.rtoCount).toBe(0);
  });

  it('still has a window of at least one block on a tiny socket', () => {
    const block = 64_512;
    expect(effectiveReceiveWindow(16 * MiB, 1024, block)).toBe(block);
    expect(effectiveReceiveWindow(16 * MiB, undefined, block)).toBe(16 * MiB);
    // 8 MiB (what a 4 MiB request gives on Linux) holds 125 datagrams of the largest block.
    expect(effectiveReceiveWindow(16 * MiB, 8 * MiB, block)).toBe(
      Math.floor((8 * MiB) / socketBytesPerDatagram(block + SESSION_OVERHEAD)) * block,
    );
  });
});
