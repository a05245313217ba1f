import { WindowedMax } from './windowed-filter.js';

/**
 * Round-trip time estimation (RFC 6298 smoothing, RFC 9002 §5 ack-delay handling).
 * Packet numbers are never reused, so every sample is unambiguous: Karn's rule holds by construction.
 */
export const GRANULARITY_MS = 1;
export const MIN_RTO_MS = 5;
export const MAX_RTO_MS = 60_000;
/**
 * On a local path (LOCAL_PATH_RTT_MS) the timeout is never shorter than the longest round trip sampled
 * over this window. On a busy machine a round trip there is now and then a peer's scheduling delay
 * (tens of milliseconds on a path of 0.1 ms), and the smoothed variance forgets it within a few dozen
 * samples: a timeout below it fires for a peer that was only descheduled, again at its next delay. (On
 * a longer path a long round trip is a queue, which the variance follows; there the floor would only
 * slow the recovery of a lost tail.)
 */
export const MAX_RTT_WINDOW_MS = 10_000;
/**
 * On a path whose minimum RTT is below LOCAL_PATH_RTT_MS (loopback, a LAN), the timeout is at least
 * LOCAL_MIN_PTO_MS. There a round trip is the peer's scheduling more than the network: on a busy
 * machine a process waits its turn for a scheduler period (Linux: 6 ms × (1 + log2 CPUs), longer with
 * many runnable tasks), so a timeout of a few milliseconds fires for peers that were only descheduled
 * (measured on loopback beside two CPU-bound loops, other work loading the machine too: stalls of
 * 10-110 ms, timeouts in most runs; minimum RTTs of 0.7-0.9 ms with 64 KiB datagrams). A timeout only
 * probes (it declares nothing lost), and on such a path real loss is rare: the window fits the
 * receiver's socket; TCP's minimum is 200 ms.
 */
export const LOCAL_PATH_RTT_MS = 2;
export const LOCAL_MIN_PTO_MS = 50;

export class RttEstimator {
  latest = 0;
  smoothed: number;
  variance: number;
  min = Number.POSITIVE_INFINITY;
  samples = 0;
  /** Longest sample over the last MAX_RTT_WINDOW_MS. */
  private readonly recentMax = new WindowedMax(MAX_RTT_WINDOW_MS);

  constructor(
    readonly initialRttMs = 100,
    readonly maxAckDelayMs = 5,
  ) {
    this.smoothed = initialRttMs;
    this.variance = initialRttMs / 2;
  }

  /**
   * Feed one RTT sample; `ackDelayMs` is the peer's reported delay before acknowledging, `now` the
   * time of the sample (for the window of the longest recent one).
   */
  update(sampleMs: number, ackDelayMs: number, now = 0): void {
    const sample = Math.max(sampleMs, 0.001);
    this.latest = sample;
    this.recentMax.update(sample, now);
    if (sample < this.min) this.min = sample;
    // Subtract the peer's ack delay only when that leaves a plausible sample (RFC 9002 §5.3).
    const delay = Math.min(Math.max(ackDelayMs, 0), this.maxAckDelayMs);
    const adjusted = sample - delay >= this.min ? sample - delay : sample;
    if (this.samples === 0) {
      this.smoothed = adjusted;
      this.variance = adjusted / 2;
    } else {
      this.variance = 0.75 * this.variance + 0.25 * Math.abs(this.smoothed - adjusted);
      this.smoothed = 0.875 * this.smoothed + 0.125 * adjusted;
    }
    this.samples++;
  }

  /**
   * Retransmission (probe) timeout before backoff: srtt + max(4·rttvar, G) + the peer's max ack delay;
   * on a local path at least LOCAL_MIN_PTO_MS and the longest round trip of the last MAX_RTT_WINDOW_MS.
   */
  rto(): number {
    const base = this.smoothed + Math.max(4 * this.variance, GRANULARITY_MS) + this.maxAckDelayMs;
    const local = Math.min(this.min, this.initialRttMs) < LOCAL_PATH_RTT_MS;
    const floor = local ? Math.max(LOCAL_MIN_PTO_MS, this.recentMax.get()) : MIN_RTO_MS;
    return Math.min(Math.max(base, floor), MAX_RTO_MS);
  }

  /** The longest round trip of the last MAX_RTT_WINDOW_MS (0 before any). */
  get recentMaxMs(): number {
    return this.recentMax.get();
  }

  toJSON(): {
    latestMs: number;
    smoothedMs: number;
    varianceMs: number;
    minMs: number | null;
    recentMaxMs: number;
  } {
    return {
      latestMs: this.latest,
      smoothedMs: this.smoothed,
      varianceMs: this.variance,
      minMs: Number.isFinite(this.min) ? this.min : null,
      recentMaxMs: this.recentMax.get(),
    };
  }
}
