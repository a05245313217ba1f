import { Fernet } from '@ferry/crypto';
import type { SimTraceEvent } from '@ferry/netsim';
import { describe, expect, it } from 'vitest';
import { ClientHandshake } from '../src/core/handshake.js';
import { encodeServerTime, sealHandshake } from '../src/core/wire.js';
import {
  CLIENT_ADDRESS,
  describeRun,
  randomKey,
  runSimTransfer,
  SERVER_ADDRESS,
  TEST_KEY,
} from './helpers/sim-harness.js';

/**
 * A client whose clock is off. Fernet stamps every token; the server refuses hellos stamped more than
 * 120 s before or 60 s after its own clock (replay protection). The server tells an authentic but
 * out-of-window hello its time (SERVER_TIME, echoing the hello's nonce), the client stamps its hello by
 * it and the handshake goes on; the client judges the server's answers by the nonce they echo, not by
 * their timestamps.
 */
const LINK = { delayMs: 10, rateBitsPerSecond: 10e6 };

describe('clocks that disagree', () => {
  for (const offset of [70, -70, -200, 3_600, -86_400]) {
    it(`a client whose clock is ${offset} s off the server's completes its handshake and transfer`, () => {
      const r = runSimTransfer({ seed: 40, size: 100_000, up: LINK, clientClockOffsetSeconds: offset });
      expect(r.handshakeError).toBeUndefined();
      expect(r.ok, describeRun(r)).toBe(true);
      // Within the window (70 s behind) the hello is accepted as it is; outside, one SERVER_TIME.
      const outside = offset > 60 || offset < -120;
      expect(r.endpoint.counters.serverTimesSent).toBe(outside ? 1 : 0);
      expect(r.endpoint.counters.drops['stale-handshake']).toBe(outside ? 1 : 0);
      expect(r.endpoint.counters.handshakes).toBe(1);
      // Quickly: one extra round trip, not a timeout.
      expect(r.startedAt!).toBeLessThan(200);
    });
  }

  it('a SERVER_TIME that does not echo the hello, or is sealed with another key, is ignored', () => {
    const wall = (): number => 1_800_000_000;
    const make = () =>
      new ClientHandshake({
        key: TEST_KEY,
        now: 0,
        wallClock: wall,
        maxBlockSize: 1024,
        receiveWindow: 1 << 20,
        idleTimeoutMs: 30_000,
      });
    const h = make();
    const first = h.poll(0)[0]!;
    const fernet = new Fernet(TEST_KEY);
    const otherNonce = Buffer.alloc(16, 7);
    const forged = sealHandshake(fernet, encodeServerTime(h.initialConnId, otherNonce), 1e9);
    expect(h.receive(forged, 1)).toBe(false);
    const wrongKey = new Fernet(randomKey());
    const sealedElsewhere = sealHandshake(wrongKey, encodeServerTime(h.initialConnId, otherNonce), 1e9);
    expect(h.receive(sealedElsewhere, 1)).toBe(false);
    // Nothing changed: the next hello is the same datagram as the first.
    expect(h.poll(300)[0]!.equals(first)).toBe(true);
  });

  it('a hello replayed after the window is not accepted again: no state, one small sealed answer', () => {
    let hello: Buffer | undefined;
    let answered = 0;
    const onTrace = (e: SimTraceEvent): void => {
      if (e.type === 'deliver' && e.from === CLIENT_ADDRESS && e.to === SERVER_ADDRESS && e.datagram[3] === 1)
        hello ??= Buffer.from(e.datagram);
    };
    const r = runSimTransfer({
      seed: 41,
      size: 1024,
      up: LINK,
      onTrace,
      idleTimeoutMs: 60_000,
      stopWhen: 'both-closed',
      maxTimeMs: 140_000,
      setup: (ctx) => {
        const replayer = ctx.net.addEndpoint('10.6.6.6:666');
        ctx.net.connect('10.6.6.6:666', SERVER_ADDRESS, { delayMs: 2 });
        replayer.onDatagram = (d) => {
          answered = d.length;
        };
        // 130 s later the hello's token is stale (TTL 120 s), its nonce still remembered or not.
        ctx.net.schedule(130_000, () => replayer.send(hello!, SERVER_ADDRESS));
      },
    });
    expect(r.ok, describeRun(r)).toBe(true);
    expect(r.endpoint.counters.handshakes).toBe(1);
    expect(r.endpoint.counters.drops['stale-handshake']).toBe(1);
    expect(r.endpoint.toJSON().halfOpen).toBe(0);
    expect(answered).toBe(101);
    expect(answered).toBeLessThan(hello!.length);
  });
});
