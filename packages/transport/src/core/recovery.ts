import type { RttEstimator } from './rtt.js';

/**
 * Sent-packet bookkeeping, loss detection (RFC 9002 §6: packet and time thresholds) and delivery-rate
 * sampling (draft-cheng-iccrg-delivery-rate-estimation). Packets are kept in packet-number order in a
 * deque whose front is trimmed as packets settle, so memory is bounded by what is in flight.
 */
export const PACKET_THRESHOLD = 3;
export const TIME_THRESHOLD = 9 / 8;

export type PacketContent =
  | { kind: 'data'; transferId: number; block: number }
  | { kind: 'control'; seq: number }
  | { kind: 'ping' };

export interface SentPacket {
  pn: number;
  time: number;
  size: number;
  ackEliciting: boolean;
  content: PacketContent | undefined;
  /** Connection delivered count, its time and the send time of the first packet of the flight, at send. */
  delivered: number;
  deliveredTime: number;
  firstSentTime: number;
  appLimited: boolean;
  state: 'flight' | 'acked' | 'lost';
}

export interface AckResult {
  newlyAcked: SentPacket[];
  lost: SentPacket[];
  ackedBytes: number;
  lostBytes: number;
  rttSample: number | undefined;
  rate: number | undefined;
  priorDelivered: number;
  isAppLimited: boolean;
  largestNewlyAcked: number;
}

export class SentPackets {
  private readonly packets: Array<SentPacket | undefined> = [];
  private base = 0;
  private head = 0;
  bytesInFlight = 0;
  ackElicitingInFlight = 0;
  largestAcked = -1;
  lastAckElicitingTime = 0;
  /** Delivery-rate state. */
  delivered = 0;
  deliveredTime = 0;
  firstSentTime = 0;
  appLimitedUntil = 0;
  lossTime = 0;

  get nextPn(): number {
    return this.base + this.packets.length - this.head;
  }

  private slot(pn: number): SentPacket | undefined {
    const i = pn - this.base + this.head;
    if (i < this.head || i >= this.packets.length) return undefined;
    return this.packets[i];
  }

  onSent(pn: number, now: number, size: number, ackEliciting: boolean, content?: PacketContent): SentPacket {
    if (pn !== this.nextPn) throw new Error(`packet number ${pn} out of order (expected ${this.nextPn})`);
    if (this.bytesInFlight === 0 && ackEliciting) {
      this.firstSentTime = now;
      this.deliveredTime = now;
    }
    const p: SentPacket = {
      pn,
      time: now,
      size,
      ackEliciting,
      content,
      delivered: this.delivered,
      deliveredTime: this.deliveredTime,
      firstSentTime: this.firstSentTime,
      appLimited: this.appLimitedUntil > this.delivered,
      state: 'flight',
    };
    this.packets.push(p);
    if (ackEliciting) {
      this.bytesInFlight += size;
      this.ackElicitingInFlight++;
      this.lastAckElicitingTime = now;
    } else {
      p.state = 'acked';
    }
    this.trim();
    return p;
  }

  /** Marks the connection application-limited until what is in flight now has been delivered. */
  markAppLimited(): void {
    this.appLimitedUntil = Math.max(this.delivered + this.bytesInFlight, 1);
  }

  private settle(p: SentPacket, state: 'acked' | 'lost'): void {
    if (p.state !== 'flight') return;
    p.state = state;
    if (p.ackEliciting) {
      this.bytesInFlight -= p.size;
      this.ackElicitingInFlight--;
    }
  }

  private trim(): void {
    while (this.head < this.packets.length) {
      const p = this.packets[this.head];
      if (p !== undefined && p.state === 'flight') break;
      this.packets[this.head] = undefined;
      this.head++;
      this.base++;
    }
    if (this.head > 1024 && this.head * 2 > this.packets.length) {
      this.packets.splice(0, this.head);
      this.head = 0;
    }
  }

  /**
   * Processes an ACK's ranges (largest first, inclusive). Returns what became acknowledged and lost.
   */
  onAck(
    ranges: ReadonlyArray<readonly [number, number]>,
    ackDelayMs: number,
    now: number,
    rtt: RttEstimator,
  ): AckResult {
    const result: AckResult = {
      newlyAcked: [],
      lost: [],
      ackedBytes: 0,
      lostBytes: 0,
      rttSample: undefined,
      rate: undefined,
      priorDelivered: 0,
      isAppLimited: false,
      largestNewlyAcked: -1,
    };
    const next = this.nextPn;
    let newest: SentPacket | undefined;
    for (const [lo, hi] of ranges) {
      if (hi >= next) continue; // acknowledges a packet never sent: ignore the range (the MAC held, so a bug)
      for (let pn = Math.max(lo, this.base); pn <= hi; pn++) {
        const p = this.slot(pn);
        if (p === undefined || p.state === 'acked') continue;
        const wasLost = p.state === 'lost';
        if (!wasLost) this.settle(p, 'acked');
        else p.state = 'acked';
        if (!p.ackEliciting) continue;
        result.newlyAcked.push(p);
        if (!wasLost) result.ackedBytes += p.size;
        this.delivered += p.size;
        this.deliveredTime = now;
        if (newest === undefined || p.delivered >= newest.delivered) newest = p;
        if (pn > result.largestNewlyAcked) result.largestNewlyAcked = pn;
      }
    }
    const largestInAck = ranges[0]?.[1] ?? -1;
    if (largestInAck > this.largestAcked && largestInAck < next) {
      this.largestAcked = largestInAck;
      const p = this.slotAny(largestInAck);
      if (p !== undefined && result.largestNewlyAcked === largestInAck && p.ackEliciting) {
        result.rttSample = now - p.time;
        rtt.update(result.rttSample, ackDelayMs, now);
      }
    }
    if (newest !== undefined) {
      result.priorDelivered = newest.delivered;
      result.isAppLimited = newest.appLimited;
      const sendElapsed = newest.time - newest.firstSentTime;
      const ackElapsed = this.deliveredTime - newest.deliveredTime;
      this.firstSentTime = newest.time;
      const interval = Math.max(sendElapsed, ackElapsed);
      const minRtt = Number.isFinite(rtt.min) ? rtt.min : 0;
      if (interval > 0 && interval >= minRtt) {
        result.rate = (this.delivered - newest.delivered) / interval;
      }
    }
    this.detectLost(now, rtt, result);
    this.trim();
    return result;
  }

  private slotAny(pn: number): SentPacket | undefined {
    return this.slot(pn);
  }

  /** RFC 9002 §6.1: declares lost what the largest acknowledged packet proves missing. */
  detectLost(now: number, rtt: RttEstimator, result: { lost: SentPacket[]; lostBytes: number }): void {
    this.lossTime = 0;
    if (this.largestAcked < 0) return;
    const lossDelay = Math.max(TIME_THRESHOLD * Math.max(rtt.latest, rtt.smoothed), 1);
    const lostSendTime = now - lossDelay;
    const end = Math.min(this.largestAcked, this.nextPn - 1);
    for (let pn = this.base; pn < end; pn++) {
      const p = this.slot(pn);
      if (p === undefined || p.state !== 'flight') continue;
      if (p.time <= lostSendTime || this.largestAcked - pn >= PACKET_THRESHOLD) {
        this.settle(p, 'lost');
        if (p.ackEliciting) {
          result.lost.push(p);
          result.lostBytes += p.size;
        }
      } else {
        const at = p.time + lossDelay;
        if (this.lossTime === 0 || at < this.lossTime) this.lossTime = at;
      }
    }
    this.trim();
  }

  /** The oldest packet still in flight that carries something worth retransmitting. */
  oldestInFlight(): SentPacket | undefined {
    for (let i = this.head; i < this.packets.length; i++) {
      const p = this.packets[i];
      if (p !== undefined && p.state === 'flight' && p.ackEliciting) return p;
    }
    return undefined;
  }

  /** Forgets everything in flight (connection closing). */
  clear(): void {
    this.base = this.nextPn;
    this.packets.length = 0;
    this.head = 0;
    this.bytesInFlight = 0;
    this.ackElicitingInFlight = 0;
  }
}
