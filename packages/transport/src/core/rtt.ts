/**
 * Round-trip time estimation (RFC 6298 smoothing, RFC 9002 §5 ack-delay handling).
 * Packet numbers are never reused, so every sample is unambiguous: Karn's rule holds by construction.
 */
export const GRANULARITY_MS = 1;
export const MIN_RTO_MS = 5;
export const MAX_RTO_MS = 60_000;

export class RttEstimator {
  latest = 0;
  smoothed: number;
  variance: number;
  min = Number.POSITIVE_INFINITY;
  samples = 0;

  constructor(
    readonly initialRttMs = 100,
    readonly maxAckDelayMs = 5,
  ) {
    this.smoothed = initialRttMs;
    this.variance = initialRttMs / 2;
  }

  /** Feed one RTT sample; `ackDelayMs` is the peer's reported delay before acknowledging. */
  update(sampleMs: number, ackDelayMs: number): void {
    const sample = Math.max(sampleMs, 0.001);
    this.latest = sample;
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

  /** Retransmission timeout before backoff: srtt + max(4·rttvar, G) + the peer's max ack delay. */
  rto(): number {
    const base = this.smoothed + Math.max(4 * this.variance, GRANULARITY_MS) + this.maxAckDelayMs;
    return Math.min(Math.max(base, MIN_RTO_MS), MAX_RTO_MS);
  }

  toJSON(): { latestMs: number; smoothedMs: number; varianceMs: number; minMs: number | null } {
    return {
      latestMs: this.latest,
      smoothedMs: this.smoothed,
      varianceMs: this.variance,
      minMs: Number.isFinite(this.min) ? this.min : null,
    };
  }
}
