import type { LinkConfig } from '@ferry/netsim';
import type { ErrorName } from '@ferry/protocol';
import { describe, expect, it } from 'vitest';
import { CLIENT_ADDRESS, describeRun, runSimTransfer, SERVER_ADDRESS } from './helpers/sim-harness.js';

/**
 * Liveness: every session ends, with a typed error, in bounded (virtual) time — a one-way blackout
 * longer than the idle timeout fails both sides with ETIMEDOUT — while a quiet or slow but working
 * path is kept open (keep-alives) and a close is seen by both sides with its code.
 */
const IDLE = 3_000;
const LINK: LinkConfig = { delayMs: 10, rateBitsPerSecond: 10e6 };

describe('a one-way blackout longer than the idle timeout', () => {
  const cases = [
    { blackedOut: 'client to server', direction: 'put' },
    { blackedOut: 'client to server', direction: 'get' },
    { blackedOut: 'server to client', direction: 'put' },
    { blackedOut: 'server to client', direction: 'get' },
  ] as const;
  for (const c of cases) {
    it(`fails both sides with ETIMEDOUT, in bounded time (${c.blackedOut}, ${c.direction})`, () => {
      const start = 300; // mid-transfer: 1 MiB at 10 Mbit/s takes about 850 ms
      const blackout: LinkConfig = { ...LINK, blackouts: [{ fromMs: start, toMs: start + 10 * IDLE }] };
      const upBlocked = c.blackedOut === 'client to server';
      const r = runSimTransfer({
        seed: 42,
        size: 1024 * 1024,
        direction: c.direction,
        up: upBlocked ? blackout : LINK,
        down: upBlocked ? LINK : blackout,
        idleTimeoutMs: IDLE,
        stopWhen: 'both-closed',
        maxTimeMs: 20 * IDLE,
      });
      expect(r.reason, describeRun(r)).toBe('until');
      expect(r.handshakeError).toBeUndefined();
      expect(r.clientClosed).toBe<ErrorName>('ETIMEDOUT');
      expect(r.serverClosed).toBe<ErrorName>('ETIMEDOUT');
      expect(r.senderError).toBe<ErrorName>('ETIMEDOUT');
      expect(r.receiverError).toBe<ErrorName>('ETIMEDOUT');
      for (const at of [r.clientClosedAt!, r.serverClosedAt!]) {
        // Not before the idle timeout has passed since the peer went silent, and not long after.
        expect(at).toBeGreaterThanOrEqual(start + IDLE - 100);
        expect(at).toBeLessThanOrEqual(start + 2 * IDLE);
      }
    });
  }
});

describe('keep-alive and slow paths', () => {
  it('keeps an idle session open for many idle timeouts, even through 20 % loss', () => {
    const r = runSimTransfer({
      seed: 7,
      size: 0,
      up: { ...LINK, loss: 0.2 },
      idleTimeoutMs: IDLE,
      stopWhen: 'both-closed',
      maxTimeMs: 20 * IDLE,
    });
    expect(r.reason).toBe('maxTime');
    expect(r.clientClosed).toBeUndefined();
    expect(r.serverClosed).toBeUndefined();
    expect(r.clientConnection?.state).toBe('open');
  });

  it('does not time out a slow, high-latency transfer (2 s RTT, 256 kbit/s)', () => {
    const r = runSimTransfer({
      seed: 8,
      size: 256 * 1024,
      up: { delayMs: 1000, rateBitsPerSecond: 256e3, loss: 0.02 },
      idleTimeoutMs: 30_000,
      maxTimeMs: 120_000,
    });
    expect(r.ok, describeRun(r)).toBe(true);
    expect(r.sender!.stats.rtoCount).toBeLessThan(5);
  });
});

describe('closing', () => {
  for (const code of ['OK', 'EIO'] as const) {
    it(`a close with ${code} ends both sessions, and the peer sees the code`, () => {
      const r = runSimTransfer({
        seed: 9,
        size: 0,
        up: { ...LINK, loss: 0.1 },
        idleTimeoutMs: IDLE,
        stopWhen: 'both-closed',
        maxTimeMs: 10 * IDLE,
        setup: (ctx) => {
          ctx.net.schedule(500, () => {
            ctx.clientConnection()!.close(ctx.net.now(), code, 'test close');
            ctx.serviceClient();
          });
        },
      });
      expect(r.reason, describeRun(r)).toBe('until');
      expect(r.clientClosed).toBe(code);
      expect(r.serverClosed).toBe(code);
      // The peer learns of it through the CLOSE packet, well before any timeout.
      expect(r.serverClosedAt!).toBeLessThan(500 + IDLE);
    });
  }
});

void CLIENT_ADDRESS;
void SERVER_ADDRESS;

describe('packet number exhaustion', () => {
  it('ends the session with EPROTO, cleanly, before the u32 packet numbers run out', () => {
    const r = runSimTransfer({
      seed: 10,
      size: 1024 * 1024,
      up: LINK,
      idleTimeoutMs: IDLE,
      stopWhen: 'both-closed',
      maxTimeMs: 10 * IDLE,
      setup: (ctx) => {
        ctx.net.schedule(200, () => {
          // Jump the client's packet numbers to just short of the limit (as after ~4 billion packets).
          const sent = (ctx.clientConnection() as unknown as { sent: { base: number } }).sent;
          sent.base += 0xffff_ffff - 600 - sent.base;
        });
      },
    });
    expect(r.reason, describeRun(r)).toBe('until');
    expect(r.clientClosed).toBe<ErrorName>('EPROTO');
    expect(r.serverClosed).toBe<ErrorName>('EPROTO');
  });
});
