import { describe, expect, it } from 'vitest';
import { type Delivery, type LinkConfig, LinkModel, Rng } from '../src/index.js';

function packet(seq: number, size = 1200): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt32BE(seq, 0);
  return b;
}

/** Offers `count` packets every `intervalMs` and returns all deliveries with their send index. */
function drive(
  link: LinkModel,
  count: number,
  intervalMs: number,
  size = 1200,
): Array<Delivery & { seq: number; sentAt: number }> {
  const out: Array<Delivery & { seq: number; sentAt: number }> = [];
  for (let i = 0; i < count; i++) {
    const sentAt = i * intervalMs;
    for (const d of link.offer(packet(i, size), sentAt)) out.push({ ...d, seq: i, sentAt });
  }
  return out;
}

describe('LinkModel', () => {
  it('an ideal link delivers every datagram at once, unchanged and in order', () => {
    const link = new LinkModel({}, new Rng(1));
    const sent = packet(7);
    const [d, ...rest] = link.offer(sent, 12.5);
    expect(rest).toEqual([]);
    expect(d?.atMs).toBe(12.5);
    expect(d?.datagram).toBe(sent);
    expect(link.stats.toJSON()).toEqual({
      offered: 1,
      delivered: 1,
      dropped: { loss: 0, queue: 0, mtu: 0, blackout: 0 },
      duplicated: 0,
      reordered: 0,
      corrupted: 0,
      bytesOffered: 1200,
      bytesDelivered: 1200,
      peakQueueBytes: 0,
    });
  });

  it('rejects invalid configurations with RangeError', () => {
    const bad: LinkConfig[] = [
      { loss: 1.5 },
      { loss: -0.1 },
      { rateBitsPerSecond: 0 },
      { delayMs: -1 },
      { jitterMs: Number.NaN },
      { burstLoss: { enterBad: 2, leaveBad: 0.5, lossInBad: 1 } },
      { blackouts: [{ fromMs: 10, toMs: 5 }] },
    ];
    for (const config of bad) expect(() => new LinkModel(config)).toThrow(RangeError);
    const link = new LinkModel({});
    expect(() => link.reconfigure({ duplicate: 3 })).toThrow(RangeError);
  });

  it('holds the rate when overdriven, and counts queue drops', () => {
    const rate = 10_000_000;
    const link = new LinkModel({ rateBitsPerSecond: rate, queueBytes: 64 * 1024 }, new Rng(1));
    // 2 s of 1200-byte packets offered at 20 Mbit/s (one every 0.48 ms).
    const deliveries = drive(link, 4167, 0.48);
    const last = deliveries[deliveries.length - 1]!;
    const first = deliveries[0]!;
    const bits = (deliveries.length - 1) * 1200 * 8;
    const measured = bits / ((last.atMs - first.atMs) / 1000);
    expect(Math.abs(measured / rate - 1)).toBeLessThan(0.01);
    expect(link.stats.dropped.queue).toBeGreaterThan(1500);
    expect(link.stats.delivered + link.stats.dropped.queue).toBe(4167);
    expect(link.stats.peakQueueBytes).toBeLessThanOrEqual(64 * 1024);
    // Queueing delay is bounded by queueBytes / rate (plus one packet).
    const worstWait = Math.max(...deliveries.map((d) => d.atMs - d.sentAt));
    expect(worstWait).toBeLessThanOrEqual(((64 * 1024 + 1200) * 8) / 10_000 + 1e-9);
  });

  it('below the rate, nothing is dropped and each packet waits only its serialization time', () => {
    const link = new LinkModel({ rateBitsPerSecond: 10_000_000, delayMs: 5 }, new Rng(1));
    const deliveries = drive(link, 1000, 2); // 4.8 Mbit/s offered
    expect(link.stats.dropped.queue).toBe(0);
    for (const d of deliveries) expect(d.atMs - d.sentAt).toBeCloseTo(5 + 0.96, 9);
  });

  it('counts per-datagram overhead against the rate', () => {
    const link = new LinkModel({ rateBitsPerSecond: 8_000_000, overheadBytes: 28 }, new Rng(1));
    const [d] = link.offer(packet(0, 972), 0);
    expect(d?.atMs).toBeCloseTo(1, 9); // (972 + 28) bytes at 1 MB/s
  });

  it('an empty queue accepts a datagram larger than queueBytes', () => {
    const link = new LinkModel({ rateBitsPerSecond: 1_000_000, queueBytes: 100 }, new Rng(1));
    expect(link.offer(packet(0, 1200), 0)).toHaveLength(1);
    expect(link.offer(packet(1, 1200), 0)).toHaveLength(0);
    expect(link.stats.dropped.queue).toBe(1);
  });

  it('keeps delay within delay +- jitter and never reorders without reorder set', () => {
    const link = new LinkModel({ delayMs: 20, jitterMs: 5 }, new Rng(2));
    const deliveries = drive(link, 10_000, 1);
    let min = Number.POSITIVE_INFINITY;
    let max = 0;
    let previous = Number.NEGATIVE_INFINITY;
    let outOfOrder = 0;
    for (const d of deliveries) {
      const latency = d.atMs - d.sentAt;
      min = Math.min(min, latency);
      max = Math.max(max, latency);
      if (d.atMs < previous) outOfOrder++;
      previous = d.atMs;
    }
    expect(outOfOrder).toBe(0);
    expect(min).toBeGreaterThanOrEqual(15);
    expect(max).toBeLessThanOrEqual(25);
    expect(min).toBeLessThan(17);
    expect(max).toBeGreaterThan(23);
    expect(link.stats.reordered).toBe(0);
  });

  it('loses the configured fraction over 100k datagrams', () => {
    const link = new LinkModel({ loss: 0.1 }, new Rng(3));
    const small = Buffer.alloc(1);
    for (let i = 0; i < 100_000; i++) link.offer(small, i);
    // Binomial sd is ~0.00095; 0.005 is more than 5 sd.
    expect(Math.abs(link.stats.dropped.loss / 100_000 - 0.1)).toBeLessThan(0.005);
    expect(link.stats.delivered + link.stats.dropped.loss).toBe(100_000);
  });

  it('burst loss comes in runs, unlike random loss of the same average', () => {
    const meanRun = (config: LinkConfig) => {
      const link = new LinkModel(config, new Rng(4));
      const small = Buffer.alloc(1);
      let runs = 0;
      let lost = 0;
      let inRun = false;
      for (let i = 0; i < 100_000; i++) {
        const dropped = link.offer(small, i).length === 0;
        if (dropped) {
          lost++;
          if (!inRun) runs++;
        }
        inRun = dropped;
      }
      return { rate: lost / 100_000, meanRun: lost / runs };
    };
    // Stationary bad-state share: 0.01 / (0.01 + 0.2) = 4.8 %; mean stay in bad: 5 packets.
    const burst = meanRun({ burstLoss: { enterBad: 0.01, leaveBad: 0.2, lossInBad: 1 } });
    const random = meanRun({ loss: burst.rate });
    expect(burst.rate).toBeGreaterThan(0.035);
    expect(burst.rate).toBeLessThan(0.06);
    expect(burst.meanRun).toBeGreaterThan(4);
    expect(random.meanRun).toBeLessThan(1.2);
  });

  it('duplicates the configured fraction as separate copies at the same time', () => {
    const link = new LinkModel({ duplicate: 0.2, delayMs: 3 }, new Rng(5));
    let pairs = 0;
    let faulty = 0;
    for (let i = 0; i < 10_000; i++) {
      const sent = packet(i, 64);
      const out = link.offer(sent, i);
      if (out.length === 2) {
        pairs++;
        const [first, second] = out;
        const sameTime = first?.atMs === second?.atMs;
        const separateCopy = second?.datagram !== first?.datagram && second?.datagram.equals(sent) === true;
        if (!sameTime || !separateCopy) faulty++;
      }
    }
    expect(faulty).toBe(0);
    expect(link.stats.duplicated).toBe(pairs);
    expect(link.stats.delivered).toBe(10_000 + pairs);
    expect(Math.abs(pairs / 10_000 - 0.2)).toBeLessThan(0.02);
  });

  it('reorders by holding packets back, and counts them', () => {
    const link = new LinkModel({ delayMs: 10, reorder: 0.05 }, new Rng(6));
    const deliveries = drive(link, 10_000, 0.5);
    const arrivalOrder = [...deliveries].sort((a, b) => a.atMs - b.atMs).map((d) => d.seq);
    let overtaken = 0;
    for (let i = 1; i < arrivalOrder.length; i++) if (arrivalOrder[i]! < arrivalOrder[i - 1]!) overtaken++;
    expect(link.stats.reordered).toBeGreaterThan(400);
    expect(link.stats.reordered).toBeLessThan(600);
    expect(overtaken).toBeGreaterThan(300);
    // Held back by the default extra delay: max(5, delay + jitter) = 10 ms.
    const held = deliveries.filter((d) => d.atMs - d.sentAt > 10.5);
    expect(held).toHaveLength(link.stats.reordered);
    for (const d of held) expect(d.atMs - d.sentAt).toBeCloseTo(20, 9);
  });

  it('corrupts by flipping exactly one bit of a copy', () => {
    const link = new LinkModel({ corrupt: 0.3 }, new Rng(7));
    let damaged = 0;
    for (let i = 0; i < 2000; i++) {
      const sent = new Rng(i).fill(Buffer.alloc(100));
      const original = Buffer.from(sent);
      const [d] = link.offer(sent, i);
      expect(sent.equals(original)).toBe(true); // the offered buffer is never modified
      let bits = 0;
      for (let k = 0; k < 100; k++) {
        let x = (d!.datagram[k] ?? 0) ^ (original[k] ?? 0);
        for (; x; x &= x - 1) bits++;
      }
      expect(bits === 0 || bits === 1).toBe(true);
      if (bits === 1) damaged++;
    }
    expect(link.stats.corrupted).toBe(damaged);
    expect(Math.abs(damaged / 2000 - 0.3)).toBeLessThan(0.05);
  });

  it('drops datagrams over the MTU and counts them', () => {
    const link = new LinkModel({ mtu: 1200 }, new Rng(8));
    expect(link.offer(Buffer.alloc(1200), 0)).toHaveLength(1);
    expect(link.offer(Buffer.alloc(1201), 0)).toHaveLength(0);
    expect(link.stats.dropped.mtu).toBe(1);
  });

  it('drops everything during a blackout, and nothing outside it', () => {
    const link = new LinkModel({ blackouts: [{ fromMs: 100, toMs: 200 }] }, new Rng(9));
    const delivered = drive(link, 300, 1, 10).map((d) => d.seq);
    expect(link.stats.dropped.blackout).toBe(100);
    expect(delivered).toEqual([
      ...Array.from({ length: 100 }, (_, i) => i),
      ...Array.from({ length: 100 }, (_, i) => 200 + i),
    ]);
  });

  it('reconfigure changes conditions from then on', () => {
    const link = new LinkModel({ delayMs: 5 }, new Rng(10));
    expect(link.offer(packet(0), 0)[0]?.atMs).toBe(5);
    link.reconfigure({ loss: 1 });
    expect(link.offer(packet(1), 1)).toHaveLength(0);
    expect(link.config).toMatchObject({ delayMs: 5, loss: 1 });
  });

  it('is deterministic for a seed', () => {
    const config: LinkConfig = {
      rateBitsPerSecond: 5_000_000,
      delayMs: 10,
      jitterMs: 3,
      loss: 0.05,
      duplicate: 0.05,
      reorder: 0.05,
      corrupt: 0.05,
    };
    const trace = (seed: number) =>
      drive(new LinkModel(config, new Rng(seed)), 2000, 1).map(
        (d) => `${d.seq}@${d.atMs}:${d.datagram.toString('hex', 0, 8)}`,
      );
    expect(trace(1)).toEqual(trace(1));
    expect(trace(1)).not.toEqual(trace(2));
  });
});
