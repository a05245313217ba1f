import type { ReceiveTransfer } from './transfers.js';
import { MAX_FLOWS, SESSION_OVERHEAD } from './wire.js';

/**
 * What a receiver tells the sender in the flow entries of its ACKs (PROTOCOL.md §12): for each
 * transfer, the blocks written (`cumulativeBlocks`) and how far it may send (`blockLimit`). An ACK has
 * room for MAX_FLOWS entries. Beyond the transfers still arriving, a finished transfer is reported
 * (every block written) in the next FRESH_FINAL_REPORTS ACKs, and again in any ACK that answers a
 * PING: a sender whose blocks all arrived waits for that report and probes with PINGs until it has it.
 * A receiver with a rate limit extends `blockLimit` only as fast as its rate grants (a token bucket),
 * so that a user's limit also caps what it is sent.
 */
export const MAX_FINISHED_RECEIVES = 64;
export const FRESH_FINAL_REPORTS = 2;
/** A receive rate limit grants at most this much time's worth of bytes at once (and in the handshake). */
export const RATE_BURST_MS = 50;
/** Window updates for a rate-limited receiver go out at most this often (or per block, if longer). */
export const RATE_UPDATE_MS = 5;

export interface FlowEntry {
  transferId: number;
  cumulativeBlocks: number;
  blockLimit: number;
}

interface Finished {
  blockCount: number;
  /** ACKs that carried it. */
  reports: number;
  /** When it was last carried (in ACKs sent). */
  lastReport: number;
}

/**
 * Bytes Linux charges a receiving UDP socket for one datagram of `length` bytes (its buffer's
 * truesize), measured on loopback against the size getRecvBufferSize() reports: a datagram below
 * 16 KiB sits in a power-of-two allocation plus the buffer's head (1,221 bytes: 2,304; 8,000 bytes:
 * 16,644), a larger one in page fragments (16,413 bytes: 17,260; 64,613 bytes: 65,536). Rounded up.
 */
export function socketBytesPerDatagram(length: number): number {
  if (length >= 16 * 1024) return length + 2048;
  return 2 ** Math.ceil(Math.log2(length + 512)) + 512;
}

/**
 * The receive window per transfer (PROTOCOL.md §12): the configured one, capped, when the receiving
 * socket's buffer is known, at the block data it can queue in full DATA datagrams. Data in flight
 * towards a receiver that is descheduled (a busy machine) lands in its socket; a window larger than
 * the socket can hold lets the sender overflow it, and the loss costs retransmissions and timeouts.
 * TCP bounds its window by the socket buffer for the same reason.
 */
export function effectiveReceiveWindow(
  receiveWindow: number,
  socketBufferBytes: number | undefined,
  blockSize: number,
): number {
  if (socketBufferBytes === undefined) return receiveWindow;
  const datagrams = Math.floor(socketBufferBytes / socketBytesPerDatagram(blockSize + SESSION_OVERHEAD));
  return Math.min(receiveWindow, Math.max(1, datagrams) * blockSize);
}

/**
 * The receive window a receiver announces in its handshake: the sender may send that much of each
 * transfer before any flow entry arrives, so a receiver limited to `rateBytesPerMs` announces
 * RATE_BURST_MS worth of it (at least one block, as any window is).
 */
export function announcedReceiveWindow(receiveWindow: number, rateBytesPerMs: number | undefined): number {
  if (rateBytesPerMs === undefined || !Number.isFinite(rateBytesPerMs)) return receiveWindow;
  return Math.min(receiveWindow, Math.max(1, Math.floor(rateBytesPerMs * RATE_BURST_MS)));
}

/** A token bucket of bytes a rate-limited receiver may grant its senders (all its transfers). */
export class ReceiveRateLimiter {
  private credit = 0;
  private stamp: number;
  private readonly burstBytes: number;

  constructor(
    readonly bytesPerMs: number,
    blockBytes: number,
    now: number,
  ) {
    this.stamp = now;
    this.burstBytes = Math.max(blockBytes, bytesPerMs * RATE_BURST_MS);
  }

  private refill(now: number): void {
    if (now > this.stamp) {
      this.credit = Math.min(this.burstBytes, this.credit + (now - this.stamp) * this.bytesPerMs);
      this.stamp = now;
    }
  }

  /** Takes up to `wantBlocks` blocks of `blockBytes` from the credit; returns how many. */
  takeBlocks(wantBlocks: number, blockBytes: number, now: number): number {
    this.refill(now);
    const blocks = Math.min(wantBlocks, Math.floor(this.credit / blockBytes));
    this.credit -= blocks * blockBytes;
    return blocks;
  }

  /** Bytes of credit at `now`. */
  available(now: number): number {
    this.refill(now);
    return this.credit;
  }

  /** When the credit will reach `bytes` (a time past, if it has). */
  timeFor(bytes: number): number {
    const wanted = Math.min(bytes, this.burstBytes);
    return this.stamp + Math.max(0, wanted - this.credit) / this.bytesPerMs;
  }
}

export class FlowReports {
  /** Grants the peer's sending at the receive rate limit, if there is one. */
  private readonly rate: ReceiveRateLimiter | undefined;
  /** A PING arrived since our last ACK: a sender may be waiting for a report. */
  private pingSinceAck = false;
  /** Finished receive transfers, oldest first. */
  private readonly finished = new Map<number, Finished>();
  private acksSent = 0;
  /** Reused between ACKs. */
  private readonly order: ReceiveTransfer[] = [];
  private readonly stale: Array<[number, Finished]> = [];
  /** What the ACK being built advertises, applied by `commit` once it is sent. */
  private readonly stagedLimits: Array<[ReceiveTransfer, number]> = [];
  private readonly stagedReports: Finished[] = [];

  constructor(
    private readonly blockSize: number,
    rateBytesPerMs: number | undefined,
    now: number,
  ) {
    this.rate =
      rateBytesPerMs !== undefined && Number.isFinite(rateBytesPerMs) && rateBytesPerMs > 0
        ? new ReceiveRateLimiter(rateBytesPerMs, blockSize, now)
        : undefined;
  }

  /** Transfers' windows are granted at a receive rate. */
  get rateLimited(): boolean {
    return this.rate !== undefined;
  }

  /** A PING arrived (the next ACK answers it). */
  onPing(): void {
    this.pingSinceAck = true;
  }

  /**
   * When a window update is due for the rate limit: some transfer could go further than granted and
   * RATE_UPDATE_MS of credit (or a block) has built up. Infinity when none is due.
   */
  rateUpdateTime(receiving: Iterable<ReceiveTransfer>): number {
    const rate = this.rate;
    if (rate === undefined) return Number.POSITIVE_INFINITY;
    for (const t of receiving) {
      if (t.rateBound) return rate.timeFor(Math.max(this.blockSize, rate.bytesPerMs * RATE_UPDATE_MS));
    }
    return Number.POSITIVE_INFINITY;
  }

  /** Transfer `id` is complete: every block written. */
  onFinished(id: number, blockCount: number): void {
    this.finished.delete(id);
    this.finished.set(id, { blockCount, reports: 0, lastReport: -1 });
    if (this.finished.size > MAX_FINISHED_RECEIVES) this.finished.delete(this.finished.keys().next().value!);
  }

  /** A transfer id used again: not a finished one any more. */
  forget(id: number): void {
    this.finished.delete(id);
  }

  /** Whether `id` finished recently (its late blocks are acknowledged, as duplicates). */
  has(id: number): boolean {
    return this.finished.has(id);
  }

  /**
   * Fills `out` with the flow entries of an ACK sent at `now`: freshly finished transfers first; when
   * the ACK answers a PING, then the transfers whose blocks all arrived and are being written, and one
   * transfer finished earlier (the least recently reported); then the transfers still arriving, those
   * whose window grew most first (each extended as the rate limit grants, if there is one); then,
   * answering a PING, more finished ones. `commit` applies what it advertises once the ACK is sent.
   */
  select(receiving: Iterable<ReceiveTransfer>, now: number, out: FlowEntry[]): void {
    const answeringPing = this.pingSinceAck;
    this.stagedLimits.length = 0;
    this.stagedReports.length = 0;
    for (const [id, f] of this.finished) {
      if (out.length >= MAX_FLOWS) break;
      if (f.reports >= FRESH_FINAL_REPORTS) continue;
      this.report(id, f, out);
    }
    const order = this.order;
    order.length = 0;
    for (const t of receiving) order.push(t);
    if (answeringPing) {
      for (const t of order) {
        if (out.length >= MAX_FLOWS) break;
        if (t.finishing) this.advertise(t, now, out);
      }
      const stale = this.staleByLastReport();
      if (stale.length > 0 && out.length < MAX_FLOWS) this.report(stale[0]![0], stale[0]![1], out);
    }
    // An ACK has room for MAX_FLOWS transfers: those whose window grew most since it was last advertised
    // go first, so that a fifth receiving transfer is not starved of window updates.
    if (order.length > MAX_FLOWS - out.length) {
      order.sort((a, b) => b.windowLimit() - b.advertisedLimit - (a.windowLimit() - a.advertisedLimit));
    }
    for (const t of order) {
      if (out.length >= MAX_FLOWS) break;
      if (answeringPing && t.finishing) continue; // already in
      this.advertise(t, now, out);
    }
    if (answeringPing) {
      for (const [id, f] of this.staleByLastReport()) {
        if (out.length >= MAX_FLOWS) break;
        if (!this.stagedReports.includes(f)) this.report(id, f, out);
      }
    }
  }

  /** The ACK built by the last `select` was sent: what it advertised counts as advertised. */
  commit(): void {
    const ack = this.acksSent++;
    for (const [t, limit] of this.stagedLimits) t.advertisedLimit = limit;
    for (const f of this.stagedReports) {
      f.reports++;
      f.lastReport = ack;
    }
    this.stagedLimits.length = 0;
    this.stagedReports.length = 0;
    this.pingSinceAck = false;
  }

  private advertise(t: ReceiveTransfer, now: number, out: FlowEntry[]): void {
    if (this.rate !== undefined && t.rateBound) {
      t.rateGranted += this.rate.takeBlocks(t.windowLimit() - t.rateGranted, this.blockSize, now);
    }
    const limit = Math.max(t.limit(), t.advertisedLimit);
    this.stagedLimits.push([t, limit]);
    out.push({ transferId: t.id, cumulativeBlocks: t.written.cumulative(), blockLimit: limit });
  }

  private report(id: number, f: Finished, out: FlowEntry[]): void {
    this.stagedReports.push(f);
    out.push({ transferId: id, cumulativeBlocks: f.blockCount, blockLimit: f.blockCount });
  }

  /** Finished transfers already reported FRESH_FINAL_REPORTS times, least recently reported first. */
  private staleByLastReport(): Array<[number, Finished]> {
    const stale = this.stale;
    stale.length = 0;
    for (const entry of this.finished) if (entry[1].reports >= FRESH_FINAL_REPORTS) stale.push(entry);
    if (stale.length > 1) stale.sort((a, b) => a[1].lastReport - b[1].lastReport);
    return stale;
  }
}
