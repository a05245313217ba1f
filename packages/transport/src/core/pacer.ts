/**
 * Token-bucket pacer. Node's timers fire with ~1 ms granularity, so the pacer lets a sender emit the
 * bytes accumulated since its last wake-up in one burst, capped at `burstMs` worth of the rate.
 */
export const PACER_BURST_MS = 2;

export class Pacer {
  private tokens: number;
  private last = 0;

  constructor(
    private readonly minBurstBytes: number,
    private readonly burstMs = PACER_BURST_MS,
  ) {
    this.tokens = minBurstBytes;
  }

  private capacity(rate: number): number {
    return Math.max(this.minBurstBytes, rate * this.burstMs);
  }

  private refill(rate: number, now: number): void {
    if (!Number.isFinite(rate)) {
      this.tokens = Number.POSITIVE_INFINITY;
      this.last = now;
      return;
    }
    if (!Number.isFinite(this.tokens)) this.tokens = this.capacity(rate);
    if (now > this.last) {
      this.tokens = Math.min(this.capacity(rate), this.tokens + rate * (now - this.last));
      this.last = now;
    }
  }

  /** Whether `bytes` may leave now at `rate` bytes/ms. */
  canSend(bytes: number, rate: number, now: number): boolean {
    this.refill(rate, now);
    return this.tokens >= bytes || this.tokens >= this.capacity(rate);
  }

  onSend(bytes: number): void {
    this.tokens -= bytes;
  }

  /** The earliest time at which `bytes` may leave. */
  nextSendTime(bytes: number, rate: number, now: number): number {
    this.refill(rate, now);
    if (this.tokens >= bytes || !Number.isFinite(rate)) return now;
    return now + (bytes - this.tokens) / rate;
  }
}
