/**
 * Anti-amplification towards a peer address not yet validated (RFC 9000 §8.1, PROTOCOL.md §16):
 * while limited, at most the bytes allowed so far may be sent, a datagram only if it fits whole.
 * Also counts the bytes of authentic datagrams received, from which the endpoint computes what an
 * address has earned.
 */
export class AmplificationBudget {
  /** Bytes that may still be sent; undefined: not limited. */
  private allowance: number | undefined;
  private authentic = 0;

  /** Caps sending at `bytes` more (plus what `allow` adds); undefined lifts the cap. */
  limit(bytes: number | undefined): void {
    this.allowance = bytes;
  }

  /** Raises the cap by `bytes` (no effect when not limited). */
  allow(bytes: number): void {
    if (this.allowance !== undefined) this.allowance += bytes;
  }

  get limited(): boolean {
    return this.allowance !== undefined;
  }

  /** Whether a datagram of `bytes` may be sent now. */
  fits(bytes: number): boolean {
    return this.allowance === undefined || bytes <= this.allowance;
  }

  /** A datagram of `bytes` was sent. */
  spend(bytes: number): void {
    if (this.allowance !== undefined) this.allowance -= bytes;
  }

  /** An authentic datagram of `bytes` arrived. */
  onAuthentic(bytes: number): void {
    this.authentic += bytes;
  }

  /** Bytes of authentic datagrams received so far. */
  get authenticBytesReceived(): number {
    return this.authentic;
  }
}
