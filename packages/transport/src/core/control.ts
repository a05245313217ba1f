/**
 * The control channel: small messages (requests, replies, events) delivered reliably, in order and
 * exactly once, one message per CONTROL packet. Each direction numbers its messages from 0.
 */
export const MAX_CONTROL_IN_FLIGHT = 32;
export const MAX_CONTROL_REORDER = 64;

export class ControlSender {
  private nextSeq = 0;
  private readonly unsent: Array<{ seq: number; body: Buffer }> = [];
  private readonly retransmit: number[] = [];
  private readonly outstanding = new Map<number, Buffer>();
  private readonly ackedSeqs = new Set<number>();
  private lowestUnacked = 0;

  /** Queues a message; returns its sequence number. */
  enqueue(body: Buffer): number {
    const seq = this.nextSeq++;
    this.unsent.push({ seq, body });
    return seq;
  }

  /** The next message to put on the wire, if any (retransmissions first). */
  next(): { seq: number; body: Buffer } | undefined {
    while (this.retransmit.length > 0) {
      const seq = this.retransmit.shift()!;
      const body = this.outstanding.get(seq);
      if (body !== undefined) return { seq, body };
    }
    if (this.unsent.length === 0 || this.outstanding.size >= MAX_CONTROL_IN_FLIGHT) return undefined;
    const m = this.unsent.shift()!;
    this.outstanding.set(m.seq, m.body);
    return m;
  }

  /** What `next()` would return, without taking it. */
  peek(): { seq: number; body: Buffer } | undefined {
    while (this.retransmit.length > 0) {
      const seq = this.retransmit[0]!;
      const body = this.outstanding.get(seq);
      if (body !== undefined) return { seq, body };
      this.retransmit.shift(); // acknowledged meanwhile: nothing to send again
    }
    if (this.unsent.length === 0 || this.outstanding.size >= MAX_CONTROL_IN_FLIGHT) return undefined;
    return this.unsent[0];
  }

  hasPending(): boolean {
    return (
      this.retransmit.length > 0 || (this.unsent.length > 0 && this.outstanding.size < MAX_CONTROL_IN_FLIGHT)
    );
  }

  onAcked(seq: number): void {
    if (!this.outstanding.delete(seq)) return;
    this.ackedSeqs.add(seq);
    while (this.ackedSeqs.delete(this.lowestUnacked)) this.lowestUnacked++;
  }

  /** Whether message `seq` has been acknowledged by the peer. */
  isAcked(seq: number): boolean {
    return seq < this.lowestUnacked || this.ackedSeqs.has(seq);
  }

  onLost(seq: number): void {
    if (this.outstanding.has(seq)) this.retransmit.push(seq);
  }

  /** Nothing queued and nothing awaiting acknowledgement. */
  get idle(): boolean {
    return this.unsent.length === 0 && this.outstanding.size === 0;
  }
}

export class ControlReceiver {
  private nextExpected = 0;
  private readonly early = new Map<number, Buffer>();

  /**
   * Offers a received message. Returns 'accept' when it is new (it is buffered or delivered),
   * 'duplicate' when already delivered, 'reject' when too far ahead to buffer (the packet must then
   * be dropped unacknowledged so the peer sends it again later).
   */
  offer(seq: number, body: Buffer): 'accept' | 'duplicate' | 'reject' {
    if (seq < this.nextExpected || this.early.has(seq)) return 'duplicate';
    if (seq >= this.nextExpected + MAX_CONTROL_REORDER) return 'reject';
    this.early.set(seq, Buffer.from(body));
    return 'accept';
  }

  /** Messages now deliverable in order. */
  drain(): Buffer[] {
    const out: Buffer[] = [];
    for (;;) {
      const body = this.early.get(this.nextExpected);
      if (body === undefined) break;
      this.early.delete(this.nextExpected);
      this.nextExpected++;
      out.push(body);
    }
    return out;
  }
}
