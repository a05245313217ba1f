import type { LinkConfig } from '@ferry/netsim';
import type { ErrorName } from '@ferry/protocol';
import { describe, expect, it } from 'vitest';
import { SendBuffers, SharedBufferBudget } from '../src/core/send-buffers.js';
import { describeRun, runSimTransfer } from './helpers/sim-harness.js';

const KIB = 1024;
const MIB = 1024 * 1024;

describe('SharedBufferBudget and SendBuffers', () => {
  it('keeps a session within its own cap and within the window-based goal it is given', () => {
    const buffers = new SendBuffers(100 * KIB);
    expect(buffers.take(60 * KIB, 1 * MIB)).toBe(true);
    expect(buffers.take(60 * KIB, 1 * MIB)).toBe(false); // the cap
    expect(buffers.take(30 * KIB, 80 * KIB)).toBe(false); // the goal
    expect(buffers.take(20 * KIB, 80 * KIB)).toBe(true);
    expect(buffers.heldBytes).toBe(80 * KIB);
    buffers.give(60 * KIB);
    expect(buffers.heldBytes).toBe(20 * KIB);
    // One block always fits an empty session, however small the cap.
    const tiny = new SendBuffers(1);
    expect(tiny.take(64 * KIB, 0)).toBe(true);
    expect(tiny.take(1, Number.POSITIVE_INFINITY)).toBe(false);
  });

  it('shares one budget: a session that finds it spent waits in line, is woken with its bytes set aside', () => {
    const shared = new SharedBufferBudget(100);
    const woken: string[] = [];
    const a = new SendBuffers(1_000, shared, () => woken.push('a'));
    const b = new SendBuffers(1_000, shared, () => woken.push('b'));
    const c = new SendBuffers(1_000, shared, () => woken.push('c'));
    expect(a.take(80, Number.POSITIVE_INFINITY)).toBe(true);
    expect(b.take(30, Number.POSITIVE_INFINITY)).toBe(false);
    expect(shared.waiting).toBe(1);
    // First come, first served: c may not take what b waits for, even though 20 bytes are free.
    expect(c.take(20, Number.POSITIVE_INFINITY)).toBe(false);
    expect(shared.waiting).toBe(2);
    a.give(20);
    expect(woken).toEqual(['b']); // 60 + 30 fit: set aside for b
    expect(shared.usedBytes).toBe(90);
    expect(b.take(30, Number.POSITIVE_INFINITY)).toBe(true); // uses what was set aside
    expect(shared.usedBytes).toBe(90);
    a.give(60);
    expect(woken).toEqual(['b', 'c']);
    // c's turn came, but it stopped sending: what was set aside goes back.
    c.stop();
    expect(shared.usedBytes).toBe(30);
    b.give(30);
    expect(shared.usedBytes).toBe(0);
  });

  it('gives back what was set aside and not used, and a stopped session leaves the line', () => {
    const shared = new SharedBufferBudget(100);
    const a = new SendBuffers(1_000, shared);
    const b = new SendBuffers(1_000, shared);
    expect(a.take(100, Number.POSITIVE_INFINITY)).toBe(true);
    expect(b.take(50, Number.POSITIVE_INFINITY)).toBe(false);
    b.stop();
    expect(shared.waiting).toBe(0);
    a.give(100);
    expect(shared.usedBytes).toBe(0);
    expect(b.take(50, Number.POSITIVE_INFINITY)).toBe(true);
    expect(a.take(60, Number.POSITIVE_INFINITY)).toBe(false);
    b.give(50); // a is served: 60 set aside
    expect(shared.usedBytes).toBe(60);
    a.settle(); // a round of reads ended without using them
    expect(shared.usedBytes).toBe(0);
  });
});

/** A long, fast path: windows grow to megabytes. */
const FAT: LinkConfig = { delayMs: 20, rateBitsPerSecond: 400e6, queueBytes: 4 * MIB };

describe('buffered bytes of a sender (simulated)', () => {
  it('a silent receiver pins one window of block data, not the read-ahead', () => {
    const samples: number[] = [];
    const r = runSimTransfer({
      seed: 31,
      size: 32 * MIB,
      blockSize: 16 * KIB,
      direction: 'get',
      idleTimeoutMs: 3_000,
      // The client falls silent right after the transfer starts: it acknowledges nothing more.
      up: { delayMs: 5, blackouts: [{ fromMs: 18, toMs: 1e9 }] },
      down: { delayMs: 5 },
      stopWhen: 'both-closed',
      maxTimeMs: 10_000,
      setup: (ctx) => {
        for (let at = 50; at < 3_500; at += 10) {
          ctx.net.schedule(at, () => {
            const held = ctx.serverSession()?.connection.bufferedBytes;
            if (held !== undefined) samples.push(held);
          });
        }
      },
    });
    expect(r.serverClosed).toBe<ErrorName>('ETIMEDOUT');
    const peak = Math.max(...samples);
    // An initial window of 10 blocks (164 KB) plus half a window of read-ahead: before, the sender
    // also read 4 MiB ahead of what it had sent, whatever its window.
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(300 * KIB);
    // Everything held went back when the session ended.
    expect(r.endpoint.buffers.usedBytes).toBe(0);
  });

  it('a session never holds more than its cap, and its transfer completes', () => {
    let peak = 0;
    const r = runSimTransfer({
      seed: 32,
      size: 16 * MIB,
      blockSize: 16 * KIB,
      direction: 'get',
      up: FAT,
      endpoint: { maxSessionBufferedBytes: 256 * KIB },
      setup: (ctx) => {
        for (let at = 0; at < 20_000; at += 5) {
          ctx.net.schedule(at, () => {
            peak = Math.max(peak, ctx.serverSession()?.connection.bufferedBytes ?? 0);
          });
        }
      },
    });
    expect(r.ok, describeRun(r)).toBe(true);
    expect(peak).toBeGreaterThan(128 * KIB);
    expect(peak).toBeLessThanOrEqual(256 * KIB);
    expect(r.endpoint.buffers.usedBytes).toBe(0);
  });

  it('a session waits for the shared budget and is woken when bytes come back (reads answered late)', () => {
    let peak = 0;
    const r = runSimTransfer({
      seed: 33,
      size: 8 * MIB,
      blockSize: 16 * KIB,
      direction: 'get',
      up: FAT,
      readDelayMs: 2,
      endpoint: { maxBufferedBytes: 96 * KIB },
      setup: (ctx) => {
        for (let at = 0; at < 20_000; at += 5) {
          ctx.net.schedule(at, () => {
            peak = Math.max(peak, ctx.endpoint.buffers.usedBytes);
          });
        }
      },
    });
    expect(r.ok, describeRun(r)).toBe(true);
    expect(peak).toBeGreaterThan(64 * KIB);
    expect(peak).toBeLessThanOrEqual(96 * KIB);
    expect(r.endpoint.buffers.usedBytes).toBe(0);
  });

  it('a session that ends with blocks held and reads in progress gives every byte and buffer back', () => {
    const r = runSimTransfer({
      seed: 34,
      size: 16 * MIB,
      blockSize: 16 * KIB,
      direction: 'get',
      up: FAT,
      readDelayMs: 3,
      poisonReleased: true,
      stopWhen: 'both-closed',
      maxTimeMs: 5_000,
      setup: (ctx) => {
        ctx.net.schedule(150, () => {
          const server = ctx.serverSession()!.connection;
          expect(server.bufferedBytes).toBeGreaterThan(0);
          server.close(ctx.net.now(), 'ECANCELED', 'stopped');
          ctx.serviceServer();
        });
      },
    });
    expect(r.serverClosed ?? r.clientClosed).toBeDefined();
    // Reads still in progress at the close came back later: their bytes too.
    expect(r.serverSession!.connection.bufferedBytes).toBe(0);
    expect(r.endpoint.buffers.usedBytes).toBe(0);
    expect(r.blocksProvided).toBeGreaterThan(0);
    expect(r.blocksReleased).toBe(r.blocksProvided);
  });
});
