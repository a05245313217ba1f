import {
  BlockBitmap,
  blockCountFor,
  blockLength,
  maxPlaintextLength,
  PART_HEADER_LENGTH,
} from '@ferry/protocol';

/**
 * Block-addressed bulk transfers. A file is `blockCount` blocks of `blockSize` bytes (the last one may
 * be shorter). The sender asks its source for blocks on demand and keeps each block's bytes only until
 * the receiver has acknowledged it; the receiver hands each block to its sink as it arrives and keeps a
 * bitmap of what it holds. Memory on both sides is bounded by the flow-control window.
 *
 * A packet's acknowledgement says it arrived; a block is *held* only once the receiver's sink has
 * written it. The receiver's flow entries report held blocks (`cumulativeBlocks`), and a send
 * transfer completes only when they cover every block (PROTOCOL.md §12, §15).
 */
export type BlockRange = readonly [start: number, endExclusive: number];

/** The smallest PART a receiver takes, except the one that ends its block (see acceptsPart). */
export const MIN_PART_BYTES = 512;

/** Where a sender's block bytes are counted: taken before a block is read, given back with it. */
export interface BlockAccount {
  take(bytes: number): boolean;
  give(bytes: number): void;
}

export class SendTransfer {
  readonly acked: BlockBitmap;
  readonly blockCount: number;
  /** Next never-sent block (blocks below it were sent at least once or were already held). */
  private nextNew = 0;
  /** Blocks below this (and at or above nextNew) have been asked of the source. */
  private readFrontier = 0;
  private readonly retransmit: number[] = [];
  private readonly data = new Map<number, Buffer>();
  private readonly reading = new Set<number>();
  /** Flow control: the receiver accepts blocks with index < limit. */
  limit: number;
  /** Control message that must be acknowledged before data starts (the reply announcing the transfer). */
  gateSeq: number | undefined;
  completed = false;
  cancelled = false;
  bytesSent = 0;
  retransmittedBlocks = 0;
  /** Blocks below this are written by the receiver (its flow entries' cumulativeBlocks). */
  private heldCumulative = 0;
  /**
   * Blocks last sent in PARTs (the path shrank below their DATA datagram): that sending's generation
   * and how many of its parts are not yet acknowledged. A block is acknowledged once all are.
   */
  private readonly parts = new Map<number, { gen: number; left: number }>();
  private partGen = 0;
  /**
   * ACKs answering our PINGs, while every block was acknowledged and the receiver had not yet said
   * all are held, that carried no entry for this transfer: a receiver that does not report written
   * blocks (one from before they were reported) sends none; see FINAL_REPORT_MISSES.
   */
  finalMisses = 0;

  /**
   * `release` is called once with each buffer the source provided when the transfer no longer needs
   * it (acknowledged, cancelled, completed, or provided too late), so a source can reuse its memory.
   * `account` is asked for a block's bytes before the block is read (a block is read only if it
   * agrees) and gets them back when the block is released or its read fails.
   */
  constructor(
    readonly id: number,
    readonly size: number,
    readonly blockSize: number,
    initialWindowBlocks: number,
    have: ReadonlyArray<BlockRange> = [],
    gateSeq?: number,
    private readonly release?: (data: Buffer) => void,
    private readonly account?: BlockAccount,
  ) {
    this.blockCount = blockCountFor(size, blockSize);
    this.acked = BlockBitmap.fromRanges(this.blockCount, have);
    this.heldCumulative = this.acked.cumulative();
    this.limit = Math.min(this.blockCount, this.acked.cumulative() + initialWindowBlocks);
    this.gateSeq = gateSeq;
    if (this.acked.full) this.completed = true;
  }

  /** Every block arrived (acknowledged), but the receiver has not yet reported them all written. */
  awaitingHeld(): boolean {
    return !this.completed && !this.cancelled && this.acked.full;
  }

  /**
   * The receiver reported no written blocks for FINAL_REPORT_MISSES probes after all arrived: it is
   * a receiver that does not report them, so arrival has to do.
   */
  assumeHeld(): void {
    if (!this.awaitingHeld()) return;
    this.heldCumulative = this.blockCount;
    this.finish();
  }

  /**
   * Blocks the source should read now: lost blocks whose bytes are gone, and new blocks up to
   * `readAheadBlocks` ahead of the next one to send (blocks in flight do not count: their bytes are
   * kept until acknowledged, bounded by the congestion and flow-control windows), each only if the
   * account agrees to its bytes. Appends them to `out`.
   */
  blocksToRead(readAheadBlocks: number, out: number[]): void {
    if (this.completed || this.cancelled) return;
    for (const b of this.retransmit) {
      if (!this.acked.has(b) && !this.data.has(b) && !this.reading.has(b)) {
        if (!this.takeBytes(b)) return;
        this.reading.add(b);
        out.push(b);
      }
    }
    if (this.readFrontier < this.nextNew) this.readFrontier = this.nextNew;
    const end = Math.min(this.limit, this.blockCount);
    while (this.readFrontier < end && this.readFrontier - this.nextNew < readAheadBlocks) {
      const b = this.readFrontier;
      if (!(this.acked.has(b) || this.data.has(b) || this.reading.has(b))) {
        if (!this.takeBytes(b)) return;
        this.reading.add(b);
        out.push(b);
      }
      this.readFrontier++;
    }
  }

  private takeBytes(index: number): boolean {
    return this.account === undefined || this.account.take(blockLength(this.size, this.blockSize, index));
  }

  /** A block no longer needed goes back: to the source (its memory) and to the account (its bytes). */
  private drop(index: number, data: Buffer | undefined): void {
    if (data !== undefined) this.release?.(data);
    this.account?.give(blockLength(this.size, this.blockSize, index));
  }

  /** Whether a read of `index` is in progress (asked of the source, not provided yet). */
  isReading(index: number): boolean {
    return this.reading.has(index);
  }

  /** Reads in progress; a transfer that ended waits for them to give their bytes back. */
  get readsInProgress(): number {
    return this.reading.size;
  }

  provide(index: number, data: Buffer): void {
    if (!this.reading.delete(index)) {
      this.release?.(data); // not asked for (or already given back): not counted either
      return;
    }
    if (this.acked.has(index) || this.cancelled || this.completed) {
      this.drop(index, data);
      return;
    }
    this.data.set(index, data);
  }

  /** The read of `index` failed: its bytes go back (the transfer is aborted by the caller). */
  readFailed(index: number): void {
    if (this.reading.delete(index)) this.drop(index, undefined);
  }

  /** The next block to send, or undefined when nothing is ready (waiting for data, window or done). */
  next(): { index: number; data: Buffer; retransmission: boolean } | undefined {
    while (this.retransmit.length > 0) {
      const b = this.retransmit[0]!;
      if (this.acked.has(b)) {
        this.retransmit.shift();
        continue;
      }
      const data = this.data.get(b);
      if (data === undefined) return undefined; // being read again
      this.retransmit.shift();
      this.retransmittedBlocks++;
      return { index: b, data, retransmission: true };
    }
    while (this.nextNew < this.blockCount && this.acked.has(this.nextNew)) this.nextNew++;
    if (this.nextNew >= Math.min(this.limit, this.blockCount)) return undefined;
    const data = this.data.get(this.nextNew);
    if (data === undefined) return undefined;
    const index = this.nextNew++;
    return { index, data, retransmission: false };
  }

  /** Whether the transfer would send something if data were available. */
  wantsToSend(): boolean {
    if (this.completed || this.cancelled) return false;
    if (this.retransmit.some((b) => !this.acked.has(b))) return true;
    let b = this.nextNew;
    while (b < this.blockCount && this.acked.has(b)) b++;
    return b < Math.min(this.limit, this.blockCount);
  }

  /** A block could go out now: its bytes are here and the window allows it. */
  hasReady(): boolean {
    if (this.completed || this.cancelled) return false;
    for (const b of this.retransmit) {
      if (!this.acked.has(b)) return this.data.has(b);
    }
    let b = this.nextNew;
    while (b < this.blockCount && this.acked.has(b)) b++;
    return b < Math.min(this.limit, this.blockCount) && this.data.has(b);
  }

  /** Flow control is the only thing holding the sender back. */
  blockedByFlowControl(): boolean {
    if (this.completed || this.cancelled || this.retransmit.length > 0) return false;
    let b = this.nextNew;
    while (b < this.blockCount && this.acked.has(b)) b++;
    return b < this.blockCount && b >= this.limit;
  }

  /**
   * Block `index` (`length` bytes) goes out (again) in PARTs whose datagrams fit `maxDatagram` bytes:
   * how many bytes each carries, and the generation that names this sending.
   */
  startParts(index: number, length: number, maxDatagram: number): { gen: number; partBytes: number } {
    const partBytes = Math.max(1, maxPlaintextLength(maxDatagram) - PART_HEADER_LENGTH);
    const gen = ++this.partGen;
    this.parts.set(index, { gen, left: Math.ceil(length / partBytes) });
    return { gen, partBytes };
  }

  /** A PART of sending `gen` was acknowledged; the block is acknowledged once all its parts are. */
  onPartAcked(index: number, gen: number): void {
    const p = this.parts.get(index);
    if (p === undefined || p.gen !== gen || --p.left > 0) return;
    this.onAcked(index);
  }

  /** A PART of sending `gen` was lost: the block goes out again (unless a later sending superseded it). */
  onPartLost(index: number, gen: number): void {
    const p = this.parts.get(index);
    if (p === undefined || p.gen !== gen) return;
    this.parts.delete(index);
    this.onLost(index);
  }

  onAcked(index: number): void {
    if (this.parts.size > 0) this.parts.delete(index);
    if (this.acked.set(index)) {
      const data = this.data.get(index);
      if (data !== undefined) {
        this.data.delete(index);
        this.drop(index, data);
      }
      this.bytesSent += blockLength(this.size, this.blockSize, index);
    }
    if (this.acked.full) this.dropData();
  }

  onLost(index: number): void {
    this.sendAgain(index);
  }

  /** Queues a block to go out again (lost, or the content of a probe), unless it is acknowledged. */
  sendAgain(index: number): void {
    if (!this.acked.has(index)) this.retransmit.push(index);
  }

  /**
   * Receiver's flow-control report: everything below `cumulative` is written; blocks below `limit` may
   * be sent. The transfer completes when `cumulative` covers every block.
   */
  onFlow(cumulative: number, limit: number): void {
    const c = Math.min(cumulative, this.blockCount);
    for (let b = this.acked.cumulative(); b < c; b++) this.onAcked(b);
    if (limit > this.limit) this.limit = Math.min(limit, this.blockCount);
    this.finalMisses = 0;
    if (c > this.heldCumulative) this.heldCumulative = c;
    if (this.heldCumulative >= this.blockCount && !this.cancelled) this.finish();
  }

  private finish(): void {
    if (this.completed) return;
    this.completed = true;
    this.dropData();
  }

  cancel(): void {
    this.cancelled = true;
    this.dropData();
  }

  /** Gives back every block held; reads in progress give theirs back when they complete (provide). */
  private dropData(): void {
    for (const [index, data] of this.data) this.drop(index, data);
    this.data.clear();
    this.retransmit.length = 0;
  }

  get bufferedBytes(): number {
    let n = 0;
    for (const d of this.data.values()) n += d.length;
    return n;
  }
}

export class ReceiveTransfer {
  /** Blocks that arrived (or were held before: resume). */
  readonly have: BlockBitmap;
  /** Blocks the sink has written (or were held before): what flow entries report. */
  readonly written: BlockBitmap;
  readonly blockCount: number;
  pendingWrites = 0;
  completed = false;
  cancelled = false;
  /** The last limit advertised to the sender. */
  advertisedLimit = 0;
  /** Blocks below this are granted by the receive rate limit (Infinity: no limit). */
  rateGranted = Number.POSITIVE_INFINITY;
  bytesReceived = 0;
  duplicateBlocks = 0;
  /** Blocks of which some PARTs arrived: their bytes so far, and which ranges (sorted, merged). */
  private readonly partial = new Map<number, { data: Buffer; ranges: Array<[number, number]> }>();

  /**
   * `initialBlocks`: the window the sender assumes before any flow entry (from the receive window this
   * side announced in the handshake); `rateLimited`: blocks beyond it are granted as the rate allows.
   */
  constructor(
    readonly id: number,
    readonly size: number,
    readonly blockSize: number,
    readonly windowBlocks: number,
    have: ReadonlyArray<BlockRange> = [],
    initialBlocks = windowBlocks,
    rateLimited = false,
  ) {
    this.blockCount = blockCountFor(size, blockSize);
    this.have = BlockBitmap.fromRanges(this.blockCount, have);
    this.written = BlockBitmap.fromRanges(this.blockCount, have);
    this.advertisedLimit = Math.min(this.blockCount, this.have.cumulative() + Math.max(1, initialBlocks));
    if (rateLimited) this.rateGranted = this.advertisedLimit;
  }

  /** What the window allows: everything held, plus the window less the blocks not yet written. */
  windowLimit(): number {
    const credit = Math.max(0, this.windowBlocks - this.pendingWrites);
    return Math.min(this.blockCount, this.have.cumulative() + credit);
  }

  limit(): number {
    return Math.min(this.windowLimit(), this.rateGranted);
  }

  /** The window would let the sender go further than the rate has granted so far. */
  get rateBound(): boolean {
    return this.rateGranted < this.windowLimit();
  }

  /** Checks a DATA packet before its packet number is recorded. */
  accepts(index: number, length: number): 'ok' | 'duplicate' | 'beyond-window' | 'invalid' {
    if (this.cancelled) return 'beyond-window';
    if (!Number.isInteger(index) || index < 0 || index >= this.blockCount) return 'invalid';
    if (length !== blockLength(this.size, this.blockSize, index)) return 'invalid';
    if (this.have.has(index)) return 'duplicate';
    if (index >= Math.max(this.limit(), this.advertisedLimit)) return 'beyond-window';
    return 'ok';
  }

  /**
   * Checks a PART before its packet number is recorded: its bytes must lie within its block, and it
   * must carry at least MIN_PART_BYTES unless it ends the block. A sender's parts are as large as the
   * path's base datagram allows (over 1,000 bytes); tiny ones would only let a peer make this side
   * hold a whole block, and merge many ranges, for a byte each.
   */
  acceptsPart(
    index: number,
    offset: number,
    length: number,
  ): 'ok' | 'duplicate' | 'beyond-window' | 'invalid' {
    if (this.cancelled) return 'beyond-window';
    if (!Number.isInteger(index) || index < 0 || index >= this.blockCount) return 'invalid';
    const blockBytes = blockLength(this.size, this.blockSize, index);
    if (offset + length > blockBytes) return 'invalid';
    if (length < MIN_PART_BYTES && offset + length !== blockBytes) return 'invalid';
    if (this.have.has(index)) return 'duplicate';
    if (index >= Math.max(this.limit(), this.advertisedLimit)) return 'beyond-window';
    return 'ok';
  }

  /**
   * Adds a PART's bytes to its block; returns the whole block once every byte of it has arrived (the
   * caller then treats it as a block that came in one DATA). Partial blocks lie within the window, so
   * what they hold is bounded as the window is.
   */
  onPart(index: number, offset: number, payload: Buffer): Buffer | undefined {
    let p = this.partial.get(index);
    if (p === undefined) {
      p = { data: Buffer.alloc(blockLength(this.size, this.blockSize, index)), ranges: [] };
      this.partial.set(index, p);
    }
    payload.copy(p.data, offset);
    p.ranges = addRange(p.ranges, offset, offset + payload.length);
    const whole = p.ranges.length === 1 && p.ranges[0]![0] === 0 && p.ranges[0]![1] === p.data.length;
    if (!whole) return undefined;
    this.partial.delete(index);
    return p.data;
  }

  onBlock(index: number): void {
    this.partial.delete(index);
    if (this.have.set(index)) {
      this.pendingWrites++;
      this.bytesReceived += blockLength(this.size, this.blockSize, index);
    }
  }

  /** The sink wrote block `index`. */
  onWritten(index: number): void {
    if (this.written.set(index) && this.pendingWrites > 0) this.pendingWrites--;
  }

  /** Every block arrived; some are still being written. */
  get finishing(): boolean {
    return this.have.full && !this.written.full;
  }

  get isComplete(): boolean {
    return this.written.full;
  }
}

/** `ranges` (sorted, disjoint, merged) with [start, end) added. */
function addRange(ranges: Array<[number, number]>, start: number, end: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let s = start;
  let e = end;
  for (const [a, b] of ranges) {
    if (b < s || a > e) out.push([a, b]);
    else {
      s = Math.min(s, a);
      e = Math.max(e, b);
    }
  }
  out.push([s, e]);
  return out.sort((x, y) => x[0] - y[0]);
}
