import { describe, expect, it } from 'vitest';
import {
  announcedReceiveWindow,
  type FlowEntry,
  FlowReports,
  RATE_BURST_MS,
  ReceiveRateLimiter,
} from '../src/core/flow-reports.js';
import { ReceiveTransfer } from '../src/core/transfers.js';

const ids = (out: FlowEntry[]): number[] => out.map((f) => f.transferId);

function ack(reports: FlowReports, receiving: ReceiveTransfer[], answeringPing = false): FlowEntry[] {
  const out: FlowEntry[] = [];
  if (answeringPing) reports.onPing();
  reports.select(receiving, 0, out);
  reports.commit();
  return out;
}

describe('FlowReports', () => {
  it('reports a finished transfer (every block written) in the next two ACKs, then in answers to PINGs', () => {
    const reports = new FlowReports(1024, undefined, 0);
    reports.onFinished(7, 10);
    expect(ack(reports, [])).toEqual([{ transferId: 7, cumulativeBlocks: 10, blockLimit: 10 }]);
    expect(ids(ack(reports, []))).toEqual([7]);
    expect(ids(ack(reports, []))).toEqual([]);
    // A sender still waiting for it probes with a PING: the ACK that answers carries it again.
    expect(ids(ack(reports, [], true))).toEqual([7]);
    expect(reports.has(7)).toBe(true);
    reports.forget(7);
    expect(ids(ack(reports, [], true))).toEqual([]);
  });

  it('reports written blocks, not arrived ones, and advertises only what an ACK that left carried', () => {
    const reports = new FlowReports(1024, undefined, 0);
    const t = new ReceiveTransfer(1, 10 * 1024, 1024, 4);
    t.onBlock(0);
    t.onBlock(1);
    t.onWritten(1);
    const out: FlowEntry[] = [];
    reports.select([t], 0, out);
    expect(out).toEqual([{ transferId: 1, cumulativeBlocks: 0, blockLimit: 5 }]);
    t.onWritten(0);
    out.length = 0;
    reports.select([t], 0, out);
    // Not committed before: the ACK was not sent (e.g. over an amplification cap).
    expect(t.advertisedLimit).toBe(4);
    reports.commit();
    expect(out).toEqual([{ transferId: 1, cumulativeBlocks: 2, blockLimit: 6 }]);
    expect(t.advertisedLimit).toBe(6);
  });

  it('answering a PING, puts transfers being written and one finished earlier before the others', () => {
    const reports = new FlowReports(1024, undefined, 0);
    for (const id of [90, 91]) {
      reports.onFinished(id, 1);
      ack(reports, []);
      ack(reports, []);
    }
    const arriving = [1, 2, 3, 4].map((id) => new ReceiveTransfer(id, 8 * 1024, 1024, 2));
    const writing = new ReceiveTransfer(5, 1024, 1024, 2);
    writing.onBlock(0); // arrived, not written
    expect(writing.finishing).toBe(true);
    const out = ack(reports, [...arriving, writing], true);
    expect(out).toHaveLength(4);
    expect(ids(out).slice(0, 2)).toEqual([5, 90]);
    // The next probe's answer carries the other finished transfer (least recently reported first).
    expect(ids(ack(reports, [...arriving, writing], true)).slice(0, 2)).toEqual([5, 91]);
  });
});

describe('ReceiveRateLimiter', () => {
  it('grants whole blocks at its rate, at most a burst at once', () => {
    const limiter = new ReceiveRateLimiter(100, 1000, 0); // 100 bytes/ms
    expect(limiter.takeBlocks(10, 1000, 0)).toBe(0);
    expect(limiter.timeFor(1000)).toBe(10);
    expect(limiter.takeBlocks(10, 1000, 25)).toBe(2);
    expect(limiter.available(25)).toBe(500);
    // Idle for long: no more than the burst (RATE_BURST_MS worth, at least a block) builds up.
    expect(limiter.takeBlocks(100, 1000, 10_000)).toBe((100 * RATE_BURST_MS) / 1000);
  });

  it('sets the window a rate-limited receiver announces in its handshake', () => {
    expect(announcedReceiveWindow(16 << 20, undefined)).toBe(16 << 20);
    expect(announcedReceiveWindow(16 << 20, 500)).toBe(500 * RATE_BURST_MS);
    expect(announcedReceiveWindow(1000, 500)).toBe(1000);
  });
});
