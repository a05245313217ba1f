import { dataDatagramLength } from '@ferry/protocol';
import { describe, expect, it } from 'vitest';
import {
  alignDatagram,
  BASE_DATAGRAM,
  BLACK_HOLE_LOSSES,
  blockSizeFor,
  maxDatagramForMtu,
  PathMtu,
  RAISE_INTERVAL_MS,
} from '../src/core/pmtu.js';

/**
 * Runs probe rounds over a path that carries datagrams up to `pathMax` bytes: every probe the state
 * machine asks for is acknowledged or lost (a probe may also be lost by `randomLoss`). Bounded.
 */
function drive(
  pmtu: PathMtu,
  pathMax: () => number,
  options: { randomLoss?: (size: number, n: number) => boolean; now?: number; rounds?: number } = {},
): { rounds: number; probes: number } {
  let rounds = 0;
  let probes = 0;
  let n = 0;
  const now = options.now ?? 0;
  for (; rounds < (options.rounds ?? 50) && pmtu.hasProbes; rounds++) {
    const sizes = pmtu.takeProbes();
    probes += sizes.length;
    for (const size of sizes) {
      const lost = size > pathMax() || (options.randomLoss?.(size, n++) ?? false);
      if (lost) pmtu.onProbeLost(size, now + rounds);
      else pmtu.onProbeAcked(size, now + rounds);
    }
  }
  return { rounds, probes };
}

describe('path MTU discovery (RFC 8899 search, sans-I/O)', () => {
  it('sizes are those a sealed datagram can have, and blocks fill them exactly', () => {
    expect(alignDatagram(1472)).toBe(1461);
    expect(alignDatagram(BASE_DATAGRAM)).toBe(1221);
    expect(blockSizeFor(1461)).toBe(1362);
    expect(dataDatagramLength(blockSizeFor(1461))).toBe(1461);
    expect(dataDatagramLength(blockSizeFor(1461) + 1)).toBeGreaterThan(1472);
    expect(maxDatagramForMtu(1500, 4)).toBe(1472);
    expect(maxDatagramForMtu(1500, 6)).toBe(1452);
  });

  it('settles on a 1500-byte Ethernet path in one round trip', () => {
    const pmtu = new PathMtu(1472, 0, 1000);
    expect(pmtu.settled).toBe(false);
    const { rounds } = drive(pmtu, () => 1472);
    expect(rounds).toBe(1);
    expect(pmtu.settled).toBe(true);
    expect(pmtu.phase).toBe('complete');
    expect(pmtu.confirmed).toBe(1461);
  });

  it('one random loss of the largest probe does not cost the size (it is probed twice)', () => {
    const pmtu = new PathMtu(1472, 0, 1000);
    drive(pmtu, () => 1472, { randomLoss: (size, n) => size === 1461 && n === 0 });
    expect(pmtu.confirmed).toBe(1461);
  });

  it('finds a smaller MTU in the path by binary search, from a jumbo-frame interface', () => {
    const pmtu = new PathMtu(maxDatagramForMtu(9000, 4), 0, 1000);
    drive(pmtu, () => 4000);
    expect(pmtu.phase).toBe('complete');
    expect(pmtu.confirmed).toBe(alignDatagram(4000));
    // And a path whose MTU is one of the common ones is found in the first round.
    const common = new PathMtu(maxDatagramForMtu(9000, 4), 0, 1000);
    drive(common, () => 1472);
    expect(common.confirmed).toBe(1461);
    expect(common.settled).toBe(true);
  });

  it('a path that carries only the base keeps the base (every probe lost: no harm)', () => {
    const pmtu = new PathMtu(1472, 0, 1000);
    drive(pmtu, () => BASE_DATAGRAM);
    expect(pmtu.confirmed).toBe(alignDatagram(BASE_DATAGRAM));
    expect(pmtu.phase).toBe('complete');
  });

  it('goes ahead with what is confirmed when the first round takes too long', () => {
    const pmtu = new PathMtu(1472, 0, 300);
    pmtu.takeProbes(); // sent, never answered (a blackout)
    expect(pmtu.nextTimeout()).toBe(300);
    pmtu.handleTimeout(299);
    expect(pmtu.settled).toBe(false);
    pmtu.handleTimeout(300);
    expect(pmtu.settled).toBe(true);
    expect(pmtu.confirmed).toBe(alignDatagram(BASE_DATAGRAM));
  });

  it('detects a black hole (large datagrams lost, small ones through) and falls back, then searches again', () => {
    let path = 1472;
    const pmtu = new PathMtu(1472, 0, 1000);
    drive(pmtu, () => path);
    expect(pmtu.confirmed).toBe(1461);
    path = 1400; // the path's MTU shrinks; nothing says so
    for (let i = 0; i < BLACK_HOLE_LOSSES - 1; i++) pmtu.onDataLost(1461, 10);
    expect(pmtu.phase).toBe('complete'); // a few losses are not enough
    pmtu.onDataLost(1461, 10);
    expect(pmtu.phase).toBe('suspect');
    drive(pmtu, () => path, { now: 20 });
    expect(pmtu.blackHoles).toBe(1);
    expect(pmtu.confirmed).toBe(alignDatagram(1400));
    expect(pmtu.phase).toBe('complete');
  });

  it('a burst of lost data that a probe of the confirmed size survives is no black hole', () => {
    const pmtu = new PathMtu(1472, 0, 1000);
    drive(pmtu, () => 1472);
    for (let i = 0; i < BLACK_HOLE_LOSSES; i++) pmtu.onDataLost(1461, 10);
    expect(pmtu.phase).toBe('suspect');
    drive(pmtu, () => 1472, { now: 20 });
    expect(pmtu.confirmed).toBe(1461);
    expect(pmtu.blackHoles).toBe(0);
    expect(pmtu.phase).toBe('complete');
  });

  it('a retransmission timeout with large datagrams in flight makes the path suspect; a large ack clears it', () => {
    const pmtu = new PathMtu(1472, 0, 1000);
    drive(pmtu, () => 1472);
    pmtu.onRetransmissionTimeout(1461, 50);
    expect(pmtu.phase).toBe('suspect');
    pmtu.onDataAcked(1461);
    expect(pmtu.phase).toBe('complete');
    pmtu.onRetransmissionTimeout(300, 60); // only small packets in flight: nothing to suspect
    expect(pmtu.phase).toBe('complete');
  });

  it('when nothing gets through at all, confirms a bounded number of times and keeps the size', () => {
    const pmtu = new PathMtu(1472, 0, 1000);
    drive(pmtu, () => 1472);
    pmtu.onRetransmissionTimeout(1461, 50);
    const { probes } = drive(pmtu, () => 0, { now: 60 });
    expect(probes).toBeLessThanOrEqual(6);
    expect(pmtu.confirmed).toBe(1461);
    expect(pmtu.hasProbes).toBe(false);
  });

  it('while the path is suspect, every retransmission timeout sends another confirmation pair (the first may be lost at random)', () => {
    const pmtu = new PathMtu(1472, 0, 1000);
    drive(pmtu, () => 1472);
    pmtu.onRetransmissionTimeout(1461, 50);
    expect(pmtu.takeProbes()).toEqual([1461, 1221]); // both lost at random: no verdict comes
    pmtu.onRetransmissionTimeout(1461, 60);
    expect(pmtu.takeProbes()).toEqual([1461, 1221]);
    // The second pair's small probe gets through; its acknowledgement shows the large ones lost.
    pmtu.onProbeAcked(1221, 70);
    for (let i = 0; i < 2; i++) pmtu.onProbeLost(1461, 70);
    expect(pmtu.blackHoles).toBe(1);
    expect(pmtu.confirmed).toBe(1221);
  });

  it('tries larger sizes again after the raise interval', () => {
    let path = 1400;
    const pmtu = new PathMtu(1472, 0, 1000);
    drive(pmtu, () => path);
    expect(pmtu.confirmed).toBe(alignDatagram(1400));
    path = 1472;
    expect(pmtu.nextTimeout()).toBeLessThanOrEqual(RAISE_INTERVAL_MS + 100);
    pmtu.handleTimeout(pmtu.nextTimeout());
    drive(pmtu, () => path, { now: RAISE_INTERVAL_MS + 100 });
    expect(pmtu.confirmed).toBe(1461);
  });

  it('raising the local limit (a peer proved a larger size reaches us) searches up to it', () => {
    const pmtu = new PathMtu(1300, 0, 1000);
    drive(pmtu, () => 1472);
    expect(pmtu.confirmed).toBe(alignDatagram(1300));
    pmtu.raiseMax(1472, 10);
    drive(pmtu, () => 1472, { now: 10 });
    expect(pmtu.confirmed).toBe(1461);
  });
});
