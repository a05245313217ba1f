import { WindowedMax } from './windowed-filter.js';

/**
 * A rate-based congestion controller modelled on BBR (v1, with v2's ack-aggregation allowance).
 *
 * It estimates the bottleneck bandwidth (windowed max of delivery-rate samples over 10 rounds) and the
 * minimum RTT (windowed min over 10 s), paces at gain × bandwidth and caps data in flight at
 * gain × BDP. Loss is not read as congestion: a loss-compensated rate sample is used while the RTT
 * shows no standing queue, so random loss does not collapse throughput, while loss that comes with a
 * growing queue (a real bottleneck overflowing) gets no compensation. Units: bytes and milliseconds.
 * docs/CONGESTION.md describes the states and constants.
 */
export type CongestionState = 'startup' | 'drain' | 'probe-bw' | 'probe-rtt' | 'fixed';

export const STARTUP_GAIN = 2 / Math.LN2;
export const DRAIN_GAIN = 1 / STARTUP_GAIN;
/**
 * Startup's cap on data in flight, as a multiple of the estimated BDP: 2, as in BBRv3 (v1 used 2.89).
 * The bandwidth estimate trails the real rate during startup, so 2 x the estimate stays within one BDP
 * of queue, where 2.89 overflowed one-BDP buffers at the end of every startup.
 */
export const STARTUP_CWND_GAIN = 2;
export const CWND_GAIN = 2;
export const PROBE_BW_GAINS = [1.25, 0.75, 1, 1, 1, 1, 1, 1] as const;
export const BTLBW_WINDOW_ROUNDS = 10;
export const MIN_RTT_WINDOW_MS = 10_000;
/**
 * A sample within this fraction of the minimum RTT (plus MIN_RTT_NOISE_MS) confirms it: the minimum is
 * kept and its window starts again, so no PROBE_RTT follows. PROBE_RTT exists to learn a minimum that
 * grew (a new route) and to drain a standing queue; a sender whose round trips still come back at the
 * minimum has neither, and each probe cost a fixed-size transfer of ~10 s a fifth of a second
 * (simulated, 100 Mbit/s, 50 ms: 200 ms at 4 packets in flight).
 */
export const MIN_RTT_CONFIRM_FRACTION = 1 / 16;
export const MIN_RTT_NOISE_MS = 1;
export const PROBE_RTT_DURATION_MS = 200;
export const MIN_CWND_PACKETS = 4;
export const FULL_BW_GROWTH = 1.25;
export const FULL_BW_ROUNDS = 3;
/** Loss compensation never assumes more than this random-loss fraction. */
export const MAX_COMPENSATED_LOSS = 0.5;
/**
 * The random-loss estimate is the minimum per-round loss fraction over this many rounds. Random loss is
 * there in every round; loss from an overflowing queue comes and goes with the gain cycle (it is absent
 * from the 0.75 phase), so the minimum sees through it. (An average would count queue overflow as
 * "random", and compensating for it would raise the rate, overflow the queue more, and feed itself.)
 */
export const LOSS_WINDOW_ROUNDS = 10;
/** A round's loss fraction is a sample only if the round sent at least this many packets. */
export const MIN_LOSS_SAMPLE_PACKETS = 32;
/**
 * Startup ends at the first round that lost more than this fraction while the bandwidth did not grow by
 * FULL_BW_GROWTH (BBRv2's exit on loss, kept from firing on random loss by the growth test: a path that
 * is not yet full still grows, lossy or not). Waiting out FULL_BW_ROUNDS instead would keep ~3 BDP in
 * flight for three inflated round trips and overflow a one-BDP buffer by thousands of packets.
 */
export const STARTUP_LOSS_THRESHOLD = 0.02;
/** The RTT shows a standing queue once above this multiple of the minimum (plus 2 ms of noise). */
export const QUEUE_RTT_FACTOR = 1.25;
/**
 * Below this minimum RTT, and while the path loses nothing, the sender does not pace (a user's rate
 * limit still applies). Node's timers fire with about 1 ms granularity, so a pacer cannot space
 * packets within such a round trip; it only added timer waits (measured on loopback with 1120-byte
 * blocks: about 7 % more throughput without it). msquic skips pacing below the same RTT
 * (QUIC_MIN_PACING_RTT, on its smoothed RTT). A loss brings pacing back for PACE_AFTER_LOSS_ROUNDS:
 * a slower bottleneck with a shallow buffer would otherwise drop the bursts of a whole window.
 */
export const MIN_PACING_RTT_MS = 1;
export const PACE_AFTER_LOSS_ROUNDS = 100;

export interface CongestionConfig {
  /** Largest datagram the sender emits, in bytes. */
  mss: number;
  initialCwndPackets?: number;
  /** Floor for the congestion window, in bytes (absorbs ack aggregation on busy hosts). */
  minCwndBytes?: number;
  /** Cap on the congestion window, in bytes. */
  maxCwndBytes?: number;
  /** A fixed window of this many packets with no pacing (1 = the seed's stop-and-wait). */
  fixedWindowPackets?: number;
  /** Cap on the pacing rate, in bytes per millisecond (a user's bandwidth limit). */
  maxRateBytesPerMs?: number;
  initialRttMs?: number;
}

export interface AckSample {
  now: number;
  /** Bytes newly acknowledged by this ack. */
  ackedBytes: number;
  /** Connection-wide delivered count after this ack. */
  delivered: number;
  /** Delivery rate sample (bytes/ms) from the newest acknowledged packet, if any. */
  rate: number | undefined;
  /** Connection delivered count when the newest acknowledged packet was sent. */
  priorDelivered: number;
  isAppLimited: boolean;
  rttMs: number | undefined;
  bytesInFlight: number;
}

export class BbrController {
  state: CongestionState;
  cwnd: number;
  pacingRate: number;
  private readonly bw = new WindowedMax(BTLBW_WINDOW_ROUNDS);
  private readonly extraAcked = new WindowedMax(BTLBW_WINDOW_ROUNDS);
  minRtt = Number.POSITIVE_INFINITY;
  private minRttStamp = 0;
  round = 0;
  /** The round of the latest loss (-1: none yet); pacing stays on for a while after one. */
  private lastLossRound = -1;
  private nextRoundDelivered = 0;
  private roundStart = false;
  private fullBw = 0;
  private fullBwCount = 0;
  filledPipe = false;
  private cycleIndex = 0;
  private cycleStamp = 0;
  private probeRttDoneStamp = 0;
  private probeRttRoundDone = false;
  private priorCwnd = 0;
  private pacingGain = STARTUP_GAIN;
  private cwndGain = STARTUP_CWND_GAIN;
  private ackEpochStart = 0;
  private ackEpochAcked = 0;
  /** Random-loss estimate: windowed minimum of the per-round loss fraction (LOSS_WINDOW_ROUNDS). */
  lossRate = 0;
  /** Negated per-round loss fractions, so that the windowed maximum is the windowed minimum. */
  private readonly roundLossMin = new WindowedMax(LOSS_WINDOW_ROUNDS);
  /** Loss fraction of the round that just ended (0 if it sent too little to tell). */
  private lastRoundLoss = 0;
  private roundLost = 0;
  private roundSent = 0;
  private latestRtt = 0;
  private readonly mss: number;
  private readonly minCwnd: number;
  private readonly maxCwnd: number;
  private readonly maxRate: number;

  constructor(config: CongestionConfig) {
    this.mss = config.mss;
    this.minCwnd = Math.max(config.minCwndBytes ?? 0, MIN_CWND_PACKETS * this.mss);
    this.maxCwnd = config.maxCwndBytes ?? Number.POSITIVE_INFINITY;
    this.maxRate = config.maxRateBytesPerMs ?? Number.POSITIVE_INFINITY;
    if (config.fixedWindowPackets !== undefined) {
      this.state = 'fixed';
      this.cwnd = config.fixedWindowPackets * this.mss;
      this.pacingRate = this.maxRate;
      return;
    }
    this.state = 'startup';
    this.cwnd = Math.min(Math.max((config.initialCwndPackets ?? 10) * this.mss, this.minCwnd), this.maxCwnd);
    this.pacingRate = Math.min((STARTUP_GAIN * this.cwnd) / (config.initialRttMs ?? 100), this.maxRate);
  }

  /**
   * The rate the sender paces at, bytes/ms: on a sub-millisecond path that has lost nothing for
   * PACE_AFTER_LOSS_ROUNDS, no pacing (Infinity, or a user's rate limit).
   */
  get sendingRate(): number {
    const unpaced =
      this.minRtt < MIN_PACING_RTT_MS &&
      (this.lastLossRound < 0 || this.round - this.lastLossRound > PACE_AFTER_LOSS_ROUNDS);
    return unpaced ? this.maxRate : this.pacingRate;
  }

  /** Bottleneck bandwidth estimate in bytes per millisecond. */
  get bandwidth(): number {
    return this.bw.get();
  }

  onPacketSent(bytes: number): void {
    this.roundSent += bytes;
  }

  onPacketsLost(bytes: number): void {
    if (bytes > 0) this.lastLossRound = this.round;
    this.roundLost += bytes;
  }

  onAck(s: AckSample): void {
    if (this.state === 'fixed') return;
    if (s.rttMs !== undefined) {
      this.latestRtt = s.rttMs;
    }
    this.updateRound(s);
    this.updateBandwidth(s);
    this.updateAckAggregation(s);
    this.checkFullPipe(s);
    this.checkDrain(s);
    this.updateCycle(s);
    this.updateMinRtt(s);
    this.setPacingRate();
    this.setCwnd(s);
  }

  private bdp(gain: number): number {
    if (!Number.isFinite(this.minRtt) || this.bandwidth === 0) return this.cwnd;
    return gain * this.bandwidth * this.minRtt;
  }

  private updateRound(s: AckSample): void {
    this.roundStart = false;
    if (s.priorDelivered >= this.nextRoundDelivered) {
      this.nextRoundDelivered = s.delivered;
      this.round++;
      this.roundStart = true;
      const total = this.roundSent;
      this.lastRoundLoss = 0;
      if (total >= MIN_LOSS_SAMPLE_PACKETS * this.mss) {
        this.lastRoundLoss = Math.min(this.roundLost / total, 1);
        this.roundLossMin.update(-this.lastRoundLoss, this.round);
        this.lossRate = -this.roundLossMin.get();
      }
      this.roundLost = 0;
      this.roundSent = 0;
    }
  }

  /** True while the RTT shows no standing queue, so loss is taken as random rather than congestive. */
  private queueIsShort(): boolean {
    if (!Number.isFinite(this.minRtt)) return true;
    return this.latestRtt <= this.minRtt * QUEUE_RTT_FACTOR + 2;
  }

  private updateBandwidth(s: AckSample): void {
    if (s.rate === undefined || s.rate <= 0) return;
    let rate = s.rate;
    if (this.lossRate > 0.001 && this.queueIsShort()) {
      rate /= 1 - Math.min(this.lossRate, MAX_COMPENSATED_LOSS);
    }
    if (!s.isAppLimited || rate >= this.bandwidth) {
      this.bw.update(rate, this.round);
    }
  }

  private updateAckAggregation(s: AckSample): void {
    const bw = this.bandwidth;
    if (bw === 0) return;
    const expected = bw * (s.now - this.ackEpochStart);
    if (this.ackEpochAcked <= expected) {
      this.ackEpochStart = s.now;
      this.ackEpochAcked = 0;
    }
    this.ackEpochAcked += s.ackedBytes;
    const extra = Math.max(0, this.ackEpochAcked - bw * (s.now - this.ackEpochStart));
    this.extraAcked.update(Math.min(extra, this.cwnd), this.round);
  }

  private checkFullPipe(s: AckSample): void {
    if (this.filledPipe || !this.roundStart || s.isAppLimited) return;
    if (this.bandwidth >= this.fullBw * FULL_BW_GROWTH) {
      this.fullBw = this.bandwidth;
      this.fullBwCount = 0;
      return;
    }
    this.fullBwCount++;
    if (this.fullBwCount >= FULL_BW_ROUNDS || this.lastRoundLoss > STARTUP_LOSS_THRESHOLD) {
      this.filledPipe = true;
    }
  }

  private checkDrain(s: AckSample): void {
    if (this.state === 'startup' && this.filledPipe) {
      this.state = 'drain';
      this.pacingGain = DRAIN_GAIN;
      this.cwndGain = STARTUP_CWND_GAIN;
    }
    if (this.state === 'drain' && s.bytesInFlight <= this.bdp(1)) {
      this.enterProbeBw(s.now);
    }
  }

  private enterProbeBw(now: number): void {
    this.state = 'probe-bw';
    this.cwndGain = CWND_GAIN;
    // Start at a random-ish phase other than the draining one, as BBR does; deterministic here.
    this.cycleIndex = 2 + (this.round % 6);
    this.pacingGain = PROBE_BW_GAINS[this.cycleIndex]!;
    this.cycleStamp = now;
  }

  private updateCycle(s: AckSample): void {
    if (this.state !== 'probe-bw') return;
    const elapsed = s.now - this.cycleStamp > (Number.isFinite(this.minRtt) ? this.minRtt : 1);
    let advance = elapsed;
    if (this.pacingGain > 1) advance = elapsed && s.bytesInFlight >= this.bdp(this.pacingGain);
    else if (this.pacingGain < 1) advance = elapsed || s.bytesInFlight <= this.bdp(1);
    if (this.pacingGain > 1 && elapsed && s.now - this.cycleStamp > 2 * this.minRtt) advance = true;
    if (advance) {
      this.cycleIndex = (this.cycleIndex + 1) % PROBE_BW_GAINS.length;
      this.pacingGain = PROBE_BW_GAINS[this.cycleIndex]!;
      this.cycleStamp = s.now;
    }
  }

  private updateMinRtt(s: AckSample): void {
    if (
      s.rttMs !== undefined &&
      s.rttMs <= this.minRtt * (1 + MIN_RTT_CONFIRM_FRACTION) + MIN_RTT_NOISE_MS &&
      this.state !== 'probe-rtt'
    ) {
      this.minRttStamp = s.now; // confirmed: see MIN_RTT_CONFIRM_FRACTION
    }
    const expired = s.now - this.minRttStamp > MIN_RTT_WINDOW_MS;
    if (s.rttMs !== undefined && (s.rttMs <= this.minRtt || expired)) {
      this.minRtt = s.rttMs;
      this.minRttStamp = s.now;
    }
    if (expired && this.state !== 'probe-rtt' && this.filledPipe) {
      this.state = 'probe-rtt';
      this.pacingGain = 1;
      this.priorCwnd = this.cwnd;
      this.probeRttDoneStamp = 0;
    }
    if (this.state === 'probe-rtt') {
      if (this.probeRttDoneStamp === 0 && s.bytesInFlight <= this.minCwnd) {
        this.probeRttDoneStamp = s.now + PROBE_RTT_DURATION_MS;
        this.probeRttRoundDone = false;
        this.nextRoundDelivered = s.delivered;
      } else if (this.probeRttDoneStamp !== 0) {
        if (this.roundStart) this.probeRttRoundDone = true;
        if (this.probeRttRoundDone && s.now > this.probeRttDoneStamp) {
          this.minRttStamp = s.now;
          this.cwnd = Math.max(this.cwnd, this.priorCwnd);
          this.enterProbeBw(s.now);
        }
      }
    }
  }

  private setPacingRate(): void {
    const bw = this.bandwidth;
    if (bw === 0) return;
    const rate = this.pacingGain * bw;
    // In startup the rate only grows; afterwards it follows the model.
    if (this.filledPipe || rate > this.pacingRate) this.pacingRate = Math.min(rate, this.maxRate);
  }

  private setCwnd(s: AckSample): void {
    if (this.state === 'probe-rtt') {
      this.cwnd = this.minCwnd;
      return;
    }
    const target = this.bdp(this.cwndGain) + this.extraAcked.get();
    if (this.filledPipe) this.cwnd = Math.min(this.cwnd + s.ackedBytes, target);
    else if (this.cwnd < target || s.delivered < 10 * this.mss) this.cwnd += s.ackedBytes;
    this.cwnd = Math.min(Math.max(this.cwnd, this.minCwnd), this.maxCwnd);
  }

  toJSON(): Record<string, number | string | boolean> {
    return {
      state: this.state,
      cwndBytes: Math.round(this.cwnd),
      pacingRateBytesPerSec: Math.round(this.pacingRate * 1000),
      bandwidthBytesPerSec: Math.round(this.bandwidth * 1000),
      minRttMs: Number.isFinite(this.minRtt) ? this.minRtt : -1,
      lossRate: Number(this.lossRate.toFixed(4)),
      round: this.round,
    };
  }
}
