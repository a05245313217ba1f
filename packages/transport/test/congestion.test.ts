import { describe, expect, it } from 'vitest';
import {
  type AckSample,
  BbrController,
  MIN_PACING_RTT_MS,
  PACE_AFTER_LOSS_ROUNDS,
} from '../src/core/congestion.js';

const MSS = 1221;

/** One acknowledgement carrying an RTT sample and a delivery-rate sample. */
function ack(now: number, rttMs: number, delivered: number): AckSample {
  return {
    now,
    ackedBytes: MSS,
    delivered,
    rate: 10 * MSS,
    priorDelivered: delivered - MSS,
    isAppLimited: false,
    rttMs,
    bytesInFlight: 10 * MSS,
  };
}

describe('BbrController pacing', () => {
  it('paces at its model rate on a path whose RTT is above the timer granularity', () => {
    const cc = new BbrController({ mss: MSS });
    cc.onAck(ack(50, 40, MSS));
    expect(Number.isFinite(cc.sendingRate)).toBe(true);
    expect(cc.sendingRate).toBe(cc.pacingRate);
  });

  it('does not pace below MIN_PACING_RTT_MS (a pacer cannot act within a Node timer tick)', () => {
    const cc = new BbrController({ mss: MSS });
    expect(Number.isFinite(cc.sendingRate)).toBe(true); // no RTT sample yet: paced
    cc.onAck(ack(1, MIN_PACING_RTT_MS / 4, MSS));
    expect(cc.sendingRate).toBe(Number.POSITIVE_INFINITY);
  });

  it('keeps a user rate limit on a sub-millisecond path', () => {
    const cc = new BbrController({ mss: MSS, maxRateBytesPerMs: 1000 });
    cc.onAck(ack(1, MIN_PACING_RTT_MS / 4, MSS));
    expect(cc.sendingRate).toBe(1000);
  });

  it('paces again after a loss on a sub-millisecond path, for PACE_AFTER_LOSS_ROUNDS rounds', () => {
    const cc = new BbrController({ mss: MSS });
    let delivered = MSS;
    cc.onAck(ack(1, MIN_PACING_RTT_MS / 4, delivered));
    expect(cc.sendingRate).toBe(Number.POSITIVE_INFINITY);
    cc.onPacketsLost(MSS);
    expect(Number.isFinite(cc.sendingRate)).toBe(true);
    // Each ack below starts a new round (its packet was sent after the previous one was delivered).
    for (let i = 0; i <= PACE_AFTER_LOSS_ROUNDS + 1; i++) {
      delivered += MSS;
      cc.onAck(ack(2 + i, MIN_PACING_RTT_MS / 4, delivered));
    }
    expect(cc.sendingRate).toBe(Number.POSITIVE_INFINITY);
  });
});
