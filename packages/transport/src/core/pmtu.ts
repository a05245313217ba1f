import {
  DATA_HEADER_LENGTH,
  FERNET_BLOCK,
  FERNET_OVERHEAD,
  INTERNET_MAX_DATAGRAM,
  MAX_BLOCK_SIZE,
  MAX_DATAGRAM,
  MIN_BLOCK_SIZE,
  maxPlaintextLength,
  PREFIX_LENGTH,
} from '@ferry/protocol';

/**
 * Datagram packetization-layer path MTU discovery (DPLPMTUD, RFC 8899) for one direction of a session,
 * sans-I/O. It says which probe sizes to send; the connection sends them as padded PROBE packets
 * (sealed like everything else), and reports each one acknowledged or lost as its loss detection
 * decides. Sizes are whole datagrams (UDP payload bytes), always ones a sealed packet can have
 * (12 + 57 + 16·k: see `alignDatagram`).
 *
 * The search starts at the BASE datagram (1,232 bytes: the IPv6 minimum MTU less headers, which every
 * path is assumed to carry) and goes up to `maxDatagram`, the local interface's MTU less IP and UDP
 * headers (a probe larger than that would be fragmented by this host and prove nothing). The first
 * round probes the largest size twice (one random loss must not cost it) and a few common sizes below
 * it once, all at once: on most paths one round trip settles the matter. A size is too big once every
 * probe of it was lost; between the largest size acknowledged and the smallest too big, a binary
 * search goes on, a pair of probes per round, until no sealed size lies between them.
 *
 * Black holes: a run of lost DATA datagrams larger than the base, or a retransmission timeout while
 * such datagrams are in flight, makes the path suspect; a probe of the confirmed size and one of the
 * base size then tell: the first acknowledged clears the suspicion; the base one acknowledged while
 * the other was lost confirms the black hole, and the confirmed size falls back to the base (a search
 * from there follows). Probe loss is never congestion: the connection keeps it out of its controller.
 */

/** The datagram every path is assumed to carry: 1,280 (IPv6 minimum MTU) − 40 (IPv6) − 8 (UDP). */
export const BASE_DATAGRAM = INTERNET_MAX_DATAGRAM;
/** Consecutive lost DATA datagrams larger than the base that make the path suspect (a black hole?). */
export const BLACK_HOLE_LOSSES = 4;
/** Confirmation attempts (a probe pair each) before a suspicion is left to the idle timeout. */
export const MAX_CONFIRMATIONS = 3;
/** After a search settles below the local maximum, try the sizes above again this much later. */
export const RAISE_INTERVAL_MS = 600_000;
/** UDP payloads of common MTUs below Ethernet's: IPv4 1500, PPPoE, IPv6 1500, WireGuard (IPv4, IPv6). */
export const COMMON_DATAGRAMS: readonly number[] = [1472, 1464, 1452, 1444, 1392, 1372];

/** The largest length a sealed datagram can have that is at most `n` bytes (12 + 57 + 16·k). */
export function alignDatagram(n: number): number {
  const k = Math.floor((Math.min(n, MAX_DATAGRAM) - PREFIX_LENGTH - FERNET_OVERHEAD) / FERNET_BLOCK);
  return PREFIX_LENGTH + FERNET_OVERHEAD + FERNET_BLOCK * k;
}

/** The largest block whose DATA datagram fits `datagram` bytes, within MIN..MAX_BLOCK_SIZE. */
export function blockSizeFor(datagram: number): number {
  const block = maxPlaintextLength(Math.min(datagram, MAX_DATAGRAM)) - DATA_HEADER_LENGTH;
  return Math.max(MIN_BLOCK_SIZE, Math.min(MAX_BLOCK_SIZE, block));
}

/** The UDP payload a link MTU carries: less 20 (IPv4) or 40 (IPv6) and 8 (UDP) bytes of headers. */
export function maxDatagramForMtu(mtu: number, family: 4 | 6): number {
  return Math.min(MAX_DATAGRAM, mtu - (family === 6 ? 40 : 20) - 8);
}

export type PathMtuPhase = 'search' | 'complete' | 'suspect';

export class PathMtu {
  /** The largest datagram known to reach the peer (the PLPMTU). */
  confirmed: number;
  /** The largest datagram this side may probe (aligned). */
  private max: number;
  private readonly base: number;
  /** Smallest size known too big (sizes at or above it are not probed); max + 16 when none is. */
  private tooBig: number;
  phase: PathMtuPhase = 'search';
  /** The first round (or the wait for it) is over: decisions taken now are as good as they get soon. */
  settled = false;
  private settleBy: number;
  /** Probes in flight, by size; sizes whose probes were all lost so far (none acknowledged). */
  private readonly outstanding = new Map<number, number>();
  private readonly lost = new Map<number, number>();
  /** Sizes to send at the next `takeProbes`. */
  private queued: number[] = [];
  private raiseAt = Number.POSITIVE_INFINITY;
  private largeLossStreak = 0;
  private confirmations = 0;
  /** While suspect: the confirmed size's probe was lost / the base probe was acknowledged. */
  private suspectLost = false;
  private baseAcked = false;
  /** Times the confirmed size fell back (black holes confirmed), for counters. */
  blackHoles = 0;
  probesSent = 0;
  probesLost = 0;

  /**
   * `maxDatagram`: the local limit (interface MTU less headers); `settleWithinMs`: how long the first
   * round may take before decisions go ahead with what is confirmed (at least the base).
   */
  constructor(maxDatagram: number, now: number, settleWithinMs: number, base = BASE_DATAGRAM) {
    this.base = alignDatagram(base);
    this.max = Math.max(this.base, alignDatagram(maxDatagram));
    this.confirmed = this.base;
    this.tooBig = this.max + FERNET_BLOCK;
    this.settleBy = now + settleWithinMs;
    this.startRound();
  }

  /** The local limit, aligned. */
  get maxDatagram(): number {
    return this.max;
  }

  /** Raises the local limit (a peer that proved a larger size reaches us); searches up to it. */
  raiseMax(maxDatagram: number, now: number): void {
    const max = alignDatagram(maxDatagram);
    if (max <= this.max) return;
    const searchFrom = this.tooBig > this.max;
    this.max = max;
    if (searchFrom) this.tooBig = this.max + FERNET_BLOCK;
    if (this.phase === 'complete' && this.tooBig > this.confirmed + FERNET_BLOCK) {
      this.phase = 'search';
      this.raiseAt = Number.POSITIVE_INFINITY;
      this.queue(this.max, 2);
    }
    void now;
  }

  /** The sizes of the probes to send now (each once); the connection reports each back. */
  takeProbes(): number[] {
    const out = this.queued;
    this.queued = [];
    for (const size of out) {
      this.outstanding.set(size, (this.outstanding.get(size) ?? 0) + 1);
      this.probesSent++;
    }
    return out;
  }

  /** Whether probes wait to be sent. */
  get hasProbes(): boolean {
    return this.queued.length > 0;
  }

  onProbeAcked(size: number, now: number): void {
    this.settle(size);
    this.lost.delete(size);
    if (this.phase === 'suspect') {
      if (size >= this.confirmed) this.endSuspicion();
      else if (size <= this.base) {
        this.baseAcked = true;
        this.judgeSuspicion(now);
      }
      return;
    }
    if (size > this.confirmed) this.confirmed = size;
    if (size >= this.tooBig) this.tooBig = Math.min(this.max, size) + FERNET_BLOCK;
    this.advance(now);
  }

  onProbeLost(size: number, now: number): void {
    this.probesLost++;
    this.settle(size);
    if (this.phase === 'suspect') {
      if (size >= this.confirmed) this.suspectLost = true;
      this.judgeSuspicion(now);
      return;
    }
    if (size > this.confirmed) {
      this.lost.set(size, (this.lost.get(size) ?? 0) + 1);
      // Too big only once no probe of it is left in flight and none was acknowledged.
      if ((this.outstanding.get(size) ?? 0) === 0 && size < this.tooBig) this.tooBig = size;
    }
    this.advance(now);
  }

  /** A DATA datagram of `size` bytes was acknowledged: datagrams that large get through. */
  onDataAcked(size: number): void {
    if (size <= this.base) return;
    this.largeLossStreak = 0;
    if (this.phase === 'suspect' && size >= this.confirmed) this.endSuspicion();
  }

  /** A DATA datagram of `size` bytes was declared lost. */
  onDataLost(size: number, now: number): void {
    if (size <= this.base || size > this.confirmed) return;
    if (++this.largeLossStreak >= BLACK_HOLE_LOSSES) this.suspect(now);
  }

  /**
   * A retransmission timeout fired; `dataSize` is the size of the DATA datagram it gave up on (0 when
   * it was no DATA). While the path is suspect, every timeout sends another confirmation pair: the
   * earlier one may have been lost at random, and with nothing else getting through, only an answer
   * to a small probe can tell what was lost.
   */
  onRetransmissionTimeout(dataSize: number, now: number): void {
    if (this.phase === 'suspect') this.confirm(now);
    else if (dataSize > this.base && this.confirmed > this.base) this.suspect(now);
  }

  private suspect(now: number): void {
    if (this.phase === 'suspect' || this.confirmed <= this.base) return;
    this.phase = 'suspect';
    this.confirmations = 0;
    this.confirm(now);
  }

  /** One confirmation: a probe of the confirmed size and one of the base size. */
  private confirm(_now: number): void {
    this.confirmations++;
    this.suspectLost = false;
    this.baseAcked = false;
    this.queue(this.confirmed, 1);
    this.queue(this.base, 1);
  }

  private judgeSuspicion(now: number): void {
    const big = this.outstanding.get(this.confirmed) ?? 0;
    const small = this.outstanding.get(this.base) ?? 0;
    if (this.suspectLost && this.baseAcked && big === 0) {
      // Small datagrams get through, ones of the confirmed size do not: a black hole.
      this.blackHoles++;
      const was = this.confirmed;
      this.confirmed = this.base;
      this.tooBig = was;
      this.lost.clear();
      this.phase = 'search';
      this.largeLossStreak = 0;
      this.startSearchStep(now);
      return;
    }
    if (big > 0 || small > 0) return; // wait for the rest of this confirmation
    if (this.confirmations < MAX_CONFIRMATIONS) this.confirm(now);
    // Else nothing gets through at all: the idle timeout decides; a large DATA acknowledgement clears it.
  }

  private endSuspicion(): void {
    this.phase = this.tooBig <= this.confirmed + FERNET_BLOCK ? 'complete' : 'search';
    this.largeLossStreak = 0;
  }

  /** Runs timers: the first round's deadline and the raise timer. */
  handleTimeout(now: number): void {
    if (!this.settled && now >= this.settleBy) this.settled = true;
    if (this.phase === 'complete' && now >= this.raiseAt) {
      this.raiseAt = Number.POSITIVE_INFINITY;
      this.tooBig = this.max + FERNET_BLOCK;
      this.lost.clear();
      this.phase = 'search';
      this.queue(this.max, 2);
    }
  }

  nextTimeout(): number {
    let t = this.settled ? Number.POSITIVE_INFINITY : this.settleBy;
    if (this.phase === 'complete') t = Math.min(t, this.raiseAt);
    return t;
  }

  private settle(size: number): void {
    const n = (this.outstanding.get(size) ?? 1) - 1;
    if (n > 0) this.outstanding.set(size, n);
    else this.outstanding.delete(size);
    if (!this.settled && this.outstanding.size === 0 && this.queued.length === 0) this.settled = true;
  }

  private startRound(): void {
    if (this.max <= this.base) {
      this.phase = 'complete';
      this.settled = true;
      return;
    }
    this.queue(this.max, 2);
    const below = new Set<number>();
    for (const d of COMMON_DATAGRAMS) {
      const size = alignDatagram(d);
      if (size > this.base && size < this.max) below.add(size);
    }
    for (const size of [...below].sort((a, b) => b - a)) this.queue(size, 1);
  }

  /** Once a round has no probe in flight: the next binary-search step, or done. */
  private advance(now: number): void {
    if (this.outstanding.size > 0 || this.queued.length > 0 || this.phase !== 'search') return;
    this.startSearchStep(now);
  }

  private startSearchStep(now: number): void {
    const gap = this.tooBig - this.confirmed;
    if (gap <= FERNET_BLOCK) {
      this.phase = 'complete';
      this.raiseAt = this.confirmed < this.max ? now + RAISE_INTERVAL_MS : Number.POSITIVE_INFINITY;
      return;
    }
    const mid = alignDatagram(this.confirmed + Math.floor(gap / 2));
    this.queue(mid > this.confirmed ? mid : this.confirmed + FERNET_BLOCK, 2);
  }

  private queue(size: number, copies: number): void {
    for (let i = 0; i < copies; i++) this.queued.push(size);
  }

  toJSON(): Record<string, unknown> {
    return {
      phase: this.phase,
      confirmedDatagram: this.confirmed,
      maxDatagram: this.max,
      probesSent: this.probesSent,
      probesLost: this.probesLost,
      blackHoles: this.blackHoles,
    };
  }
}
