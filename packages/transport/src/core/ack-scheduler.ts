/**
 * When a receiver owes its peer an ACK (PROTOCOL.md §9): at once after ACK_EVERY ack-eliciting
 * packets, or after one that arrived out of order or asks for a prompt answer (CONTROL, PING); else
 * at most `maxAckDelayMs` after the first one not yet acknowledged.
 */
export const DEFAULT_MAX_ACK_DELAY_MS = 1;
/** Ack at once after this many ack-eliciting packets (else at the end of a receive batch or the delay). */
export const ACK_EVERY = 2;

export class AckScheduler {
  private pending = 0;
  private immediate = false;
  private deadline = Number.POSITIVE_INFINITY;

  constructor(readonly maxAckDelayMs = DEFAULT_MAX_ACK_DELAY_MS) {}

  /** An ack-eliciting packet arrived; `immediate` when it must be answered without delay. */
  onAckEliciting(now: number, immediate: boolean): void {
    if (this.pending === 0) this.deadline = now + this.maxAckDelayMs;
    this.pending++;
    if (immediate) this.immediate = true;
  }

  /** Answers what is owed at once (a transfer just completed: the sender should hear promptly). */
  hurry(): void {
    if (this.pending > 0) this.immediate = true;
  }

  /** Ack-eliciting packets received and not yet acknowledged. */
  get owed(): number {
    return this.pending;
  }

  /** Whether the ACK owed is due at `now`. */
  due(now: number): boolean {
    return this.pending > 0 && (this.immediate || this.pending >= ACK_EVERY || now >= this.deadline);
  }

  /** When the ACK owed is due (0: now; Infinity: nothing owed). */
  nextDeadline(): number {
    if (this.pending === 0) return Number.POSITIVE_INFINITY;
    return this.immediate || this.pending >= ACK_EVERY ? 0 : this.deadline;
  }

  /** An ACK left: it acknowledged everything received so far. */
  onAckSent(): void {
    this.pending = 0;
    this.immediate = false;
    this.deadline = Number.POSITIVE_INFINITY;
  }
}
