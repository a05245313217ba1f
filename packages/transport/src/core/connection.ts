import { type Fernet, sealedLength } from '@ferry/crypto';
import { decodeControlMessage, type ErrorName, FerryError, PREFIX_LENGTH } from '@ferry/protocol';
import { ACK_EVERY, AckScheduler, DEFAULT_MAX_ACK_DELAY_MS } from './ack-scheduler.js';
import { AmplificationBudget } from './amplification.js';
import type { CiphertextBuffers } from './ciphertext-buffers.js';
import { BbrController, type CongestionConfig } from './congestion.js';
import { ControlReceiver, ControlSender } from './control.js';
import {
  announcedReceiveWindow,
  effectiveReceiveWindow,
  type FlowEntry,
  FlowReports,
} from './flow-reports.js';
import { Pacer } from './pacer.js';
import { ReceivedPackets } from './received.js';
import { type PacketContent, type SentPacket, SentPackets } from './recovery.js';
import { RttEstimator } from './rtt.js';
import { DEFAULT_MAX_SESSION_BUFFERED_BYTES, SendBuffers, type SharedBufferBudget } from './send-buffers.js';
import { ConnectionStats, type DropReason } from './stats.js';
import { type BlockAccount, type BlockRange, ReceiveTransfer, SendTransfer } from './transfers.js';
import {
  type Datagram,
  datagramLength,
  decodeSessionPacket,
  encodeAck,
  encodeClose,
  encodeControl,
  encodeDataHeader,
  encodePing,
  errorCodeFromWire,
  errorCodeToWire,
  MAX_ACK_RANGES,
  openToken,
  SESSION_OVERHEAD,
  type SessionPacket,
  sealDatagram,
  sealDatagramv,
  sessionPrefix,
} from './wire.js';

/**
 * One ferry session, sans-I/O: feed it datagrams and timer expiries with the current time, take the
 * datagrams it wants sent and the events it raises, and wake it at `nextTimeout()`. It never reads a
 * clock, a socket or a timer of its own; `wallClock` (Unix seconds) only stamps Fernet tokens.
 */
export type ConnectionState = 'open' | 'closing' | 'draining' | 'closed';

export type ConnectionEvent =
  | { type: 'message'; body: Buffer }
  | { type: 'read'; transferId: number; index: number }
  | { type: 'block'; transferId: number; index: number; data: Buffer }
  | { type: 'send-complete'; transferId: number }
  | { type: 'receive-complete'; transferId: number }
  | { type: 'closed'; code: ErrorName; message: string; remote: boolean };

export interface ConnectionOptions {
  role: 'client' | 'server';
  connId: bigint;
  sendKey: Fernet;
  receiveKey: Fernet;
  blockSize: number;
  /** The peer's receive window in bytes (from the handshake). */
  peerReceiveWindow: number;
  /** Our receive window per transfer, in bytes (as announced in the handshake). */
  receiveWindow: number;
  /**
   * The size of the socket our datagrams arrive on, as the kernel accounts it (getRecvBufferSize()):
   * our window never grants more than it can queue (see effectiveReceiveWindow).
   */
  socketReceiveBufferBytes?: number;
  /**
   * Caps what the peer sends us, in bytes per millisecond, through flow control (the window is granted
   * at this rate). Default: the congestion rate limit, so that a user's limit holds both ways.
   */
  receiveRateBytesPerMs?: number;
  idleTimeoutMs: number;
  now: number;
  wallClock: () => number;
  congestion?: Omit<CongestionConfig, 'mss'>;
  /** Bytes the sender reads ahead of the window (per transfer, and at most half a window). */
  readAheadBytes?: number;
  /** Most bytes of block data this session holds at once (read ahead, in flight); default 16 MiB. */
  maxBufferedBytes?: number;
  /** A budget shared with other sessions (a server's): a block is read only once it has the bytes. */
  sharedBuffers?: SharedBufferBudget;
  /** The shared budget set bytes aside for this session, which waited for them: run it soon. */
  onBuffersAvailable?: () => void;
  /** Buffers for DATA packets' ciphertext, given back by the driver once each datagram is sent. */
  ciphertextBuffers?: CiphertextBuffers;
  /** Largest ack delay we allow ourselves, in ms. */
  maxAckDelayMs?: number;
  initialRttMs?: number;
}

export { ACK_EVERY, DEFAULT_MAX_ACK_DELAY_MS } from './ack-scheduler.js';
export const MAX_DATAGRAMS_PER_POLL = 128;
export const PROBE_PACKETS = 2;
/** Longest interval between retransmission-timeout probes once backed off (see probeTimeout). */
export const MAX_PROBE_INTERVAL_MS = 2_000;
/** Packet numbers are u32 on the wire. */
export const MAX_PACKET_NUMBER = 0xffff_ffff;
/**
 * A sender whose blocks all arrived waits for the receiver to report them written; after this many
 * ACKs answering its probes without any entry for the transfer, the receiver is taken for one that
 * does not report writes (from before they were reported), and arrival has to do.
 */
export const FINAL_REPORT_MISSES = 8;

export class Connection {
  state: ConnectionState = 'open';
  readonly stats = new ConnectionStats();
  readonly rtt: RttEstimator;
  readonly cc: BbrController;
  readonly role: 'client' | 'server';
  readonly connId: bigint;
  readonly blockSize: number;
  readonly idleTimeoutMs: number;
  private readonly prefix: Buffer;
  private readonly sendKey: Fernet;
  private readonly ciphertextBuffers: CiphertextBuffers | undefined;
  private readonly receiveKey: Fernet;
  private readonly wallClock: () => number;
  private readonly sent = new SentPackets();
  private readonly received = new ReceivedPackets();
  private readonly pacer: Pacer;
  private readonly controlOut = new ControlSender();
  private readonly controlIn = new ControlReceiver();
  private readonly sending = new Map<number, SendTransfer>();
  /** Send transfers that ended with reads in progress: their bytes come back when the reads do. */
  private readonly retiring = new Map<number, SendTransfer>();
  /** Block data held by this session's send transfers (see SendBuffers). */
  private readonly buffers: SendBuffers;
  /** Bytes of block data the sender aims to hold: a window, plus read-ahead (set before reads). */
  private readTarget = 0;
  private readonly readAheadBytes: number;
  private readonly account: BlockAccount = {
    take: (bytes) => this.buffers.take(bytes, this.readTarget),
    give: (bytes) => this.buffers.give(bytes),
  };
  /** Reused list of blocks to read (one poll's worth). */
  private readonly toRead: number[] = [];
  private readonly receiving = new Map<number, ReceiveTransfer>();
  /**
   * Flow entries of our ACKs (and the receive rate limit, if any), and the receive transfers completed
   * recently: they are reported as written until the sender knows, and a late retransmission of one of
   * their blocks is still acknowledged (as a duplicate): dropping it unacknowledged would leave the
   * sender retransmitting until it timed out.
   */
  private readonly flows: FlowReports;
  /** The window (in blocks) the peer assumes for a transfer before any flow entry. */
  private readonly initialReceiveBlocks: number;
  private readonly flowEntries: FlowEntry[] = [];
  private readonly events: ConnectionEvent[] = [];
  private readonly peerWindowBlocks: number;
  private readonly windowBlocks: number;
  private readonly readAheadBlocks: number;
  private readonly acks: AckScheduler;
  /** Anti-amplification towards an unvalidated peer address (see `limitSending`). */
  private readonly amplification = new AmplificationBudget();
  private flowUpdate = false;
  private lastReceived: number;
  private lastProgress: number;
  private lastAckElicitingSent: number;
  private rtoBackoff = 0;
  /**
   * Receiver-side probing: when blocks are awaited and none has come for a (backed-off) RTO, a PING goes
   * out. A receiver otherwise sends only ACKs, so after a NAT rebinding the sender's packets would go to
   * the old address and nothing would tell it the new one until the next keep-alive (idle timeout / 3).
   */
  private lastBlockOrProbeAt: number;
  private receiveProbes = 0;
  private probeCredits = 0;
  /** An RTO fired and its probes have not been sent yet. */
  private probeDue = false;
  private pingPending = false;
  private closePending = false;
  private closeCode: ErrorName = 'OK';
  private closeReason = '';
  private closeAt = 0;
  private lastCloseSent = Number.NEGATIVE_INFINITY;
  private roundRobin = 0;
  /** Set once the peer has sent an authenticated session packet (address validation, key confirmation). */
  peerValidated: boolean;

  constructor(options: ConnectionOptions) {
    this.role = options.role;
    this.connId = options.connId;
    this.blockSize = options.blockSize;
    this.idleTimeoutMs = options.idleTimeoutMs;
    this.sendKey = options.sendKey;
    this.ciphertextBuffers = options.ciphertextBuffers;
    this.receiveKey = options.receiveKey;
    this.wallClock = options.wallClock;
    this.prefix = sessionPrefix(options.connId);
    const maxAckDelayMs = options.maxAckDelayMs ?? DEFAULT_MAX_ACK_DELAY_MS;
    this.acks = new AckScheduler(maxAckDelayMs);
    this.rtt = new RttEstimator(options.initialRttMs ?? 100, maxAckDelayMs + 1);
    const mss = this.blockSize + SESSION_OVERHEAD;
    this.cc = new BbrController({
      mss,
      minCwndBytes: 64 * 1024,
      ...options.congestion,
      initialRttMs: options.initialRttMs ?? 100,
    });
    this.pacer = new Pacer(2 * mss);
    this.peerWindowBlocks = Math.max(1, Math.floor(options.peerReceiveWindow / this.blockSize));
    this.windowBlocks = Math.max(
      1,
      Math.floor(
        effectiveReceiveWindow(options.receiveWindow, options.socketReceiveBufferBytes, this.blockSize) /
          this.blockSize,
      ),
    );
    const receiveRate = options.receiveRateBytesPerMs ?? options.congestion?.maxRateBytesPerMs;
    this.flows = new FlowReports(this.blockSize, receiveRate, options.now);
    this.initialReceiveBlocks = Math.max(
      1,
      Math.floor(announcedReceiveWindow(options.receiveWindow, receiveRate) / this.blockSize),
    );
    this.readAheadBytes = options.readAheadBytes ?? 4 * 1024 * 1024;
    this.readAheadBlocks = Math.max(4, Math.ceil(this.readAheadBytes / this.blockSize));
    this.buffers = new SendBuffers(
      options.maxBufferedBytes ?? DEFAULT_MAX_SESSION_BUFFERED_BYTES,
      options.sharedBuffers,
      options.onBuffersAvailable,
    );
    this.lastReceived = options.now;
    this.lastBlockOrProbeAt = options.now;
    this.lastProgress = options.now;
    this.lastAckElicitingSent = options.now;
    this.peerValidated = options.role === 'client';
  }

  // ---------------------------------------------------------------- application interface

  /**
   * Queues a control message (JSON bytes); returns its sequence number. Throws a FerryError (EPROTO) if
   * the body is not a valid control message: the peer would refuse it, and the session would stall.
   */
  sendMessage(body: Buffer): number {
    const check = decodeControlMessage(body);
    if (!check.ok) throw new FerryError('EPROTO', `not a valid control message: ${check.error.message}`);
    return this.controlOut.enqueue(body);
  }

  /** Sends an ack-eliciting PING (key confirmation, probing, keep-alive). */
  ping(): void {
    this.pingPending = true;
  }

  /** Whether control message `seq` has been acknowledged. */
  messageAcked(seq: number): boolean {
    return this.controlOut.isAcked(seq);
  }

  /**
   * Starts sending a file of `size` bytes as transfer `transferId`. `have` lists block ranges the peer
   * already holds (resume); `afterMessage` holds data back until that control message is acknowledged.
   * `release` gets back each block buffer provided for this transfer once it is no longer needed.
   */
  openSend(
    transferId: number,
    size: number,
    have: ReadonlyArray<BlockRange> = [],
    afterMessage?: number,
    release?: (data: Buffer) => void,
  ): void {
    if (this.sending.has(transferId)) throw new Error(`transfer ${transferId} is already being sent`);
    const t = new SendTransfer(
      transferId,
      size,
      this.blockSize,
      this.peerWindowBlocks,
      have,
      afterMessage,
      release,
      this.account,
    );
    this.sending.set(transferId, t);
    if (t.completed) this.completeSend(t);
  }

  /**
   * The source's bytes for a block requested with a 'read' event. Always call it (or `readFailed`)
   * for every read, also after the transfer or the session ended: that gives the block's bytes back.
   */
  provideBlock(transferId: number, index: number, data: Buffer): void {
    const t = this.readingTransfer(transferId, index);
    if (t === undefined) return;
    t.provide(index, data);
    this.retired(t);
  }

  /** The source could not read a block requested with a 'read' event (its bytes are given back). */
  readFailed(transferId: number, index: number): void {
    const t = this.readingTransfer(transferId, index);
    if (t === undefined) return;
    t.readFailed(index);
    this.retired(t);
  }

  /** The transfer whose read of `index` is in progress: a current one, else one that ended. */
  private readingTransfer(transferId: number, index: number): SendTransfer | undefined {
    const current = this.sending.get(transferId);
    if (current?.isReading(index)) return current;
    return this.retiring.get(transferId) ?? current;
  }

  /** Forgets an ended transfer once no read of it is in progress. */
  private retired(t: SendTransfer): void {
    if (this.retiring.get(t.id) === t && t.readsInProgress === 0) this.retiring.delete(t.id);
  }

  /** An ended send transfer: kept until its reads in progress have come back. */
  private retire(t: SendTransfer): void {
    if (t.readsInProgress > 0) this.retiring.set(t.id, t);
  }

  /** Bytes of block data this session's send transfers hold (read, in flight, not yet released). */
  get bufferedBytes(): number {
    return this.buffers.heldBytes;
  }

  /** Starts receiving transfer `transferId`; blocks in `have` are already held (resume). */
  openReceive(transferId: number, size: number, have: ReadonlyArray<BlockRange> = []): void {
    if (this.receiving.has(transferId)) throw new Error(`transfer ${transferId} is already being received`);
    this.flows.forget(transferId);
    const t = new ReceiveTransfer(
      transferId,
      size,
      this.blockSize,
      this.windowBlocks,
      have,
      this.initialReceiveBlocks,
      this.flows.rateLimited,
    );
    this.receiving.set(transferId, t);
    this.lastBlockOrProbeAt = Math.max(this.lastBlockOrProbeAt, this.lastReceived);
    this.receiveProbes = 0;
    // Tell the sender our window at once (it matters when resuming far into the file).
    this.flowUpdate = true;
    if (t.isComplete) this.completeReceive(t);
  }

  /**
   * The sink finished writing block `index` of a receive transfer: it counts as held (reported to the
   * sender) and frees window. A transfer completes once every block is written.
   */
  blockWritten(transferId: number, index: number): void {
    const t = this.receiving.get(transferId);
    if (t === undefined) return;
    t.onWritten(index);
    const limit = t.limit();
    if (limit - t.advertisedLimit >= Math.max(1, t.windowBlocks / 4)) this.flowUpdate = true;
    if (t.isComplete) this.completeReceive(t);
  }

  /** Stops a transfer in either direction (its blocks are no longer sent or accepted). */
  cancelTransfer(transferId: number): void {
    const s = this.sending.get(transferId);
    if (s !== undefined) {
      s.cancel();
      this.sending.delete(transferId);
      this.retire(s);
    }
    const r = this.receiving.get(transferId);
    if (r !== undefined) {
      r.cancelled = true;
      this.receiving.delete(transferId);
    }
  }

  /** Blocks of a receive transfer held so far. */
  receivedRanges(transferId: number): Array<[number, number]> {
    return this.receiving.get(transferId)?.have.ranges() ?? [];
  }

  transferProgress(transferId: number): { bytes: number; size: number } | undefined {
    const s = this.sending.get(transferId);
    if (s !== undefined) return { bytes: s.bytesSent, size: s.size };
    const r = this.receiving.get(transferId);
    if (r !== undefined) return { bytes: r.bytesReceived, size: r.size };
    return undefined;
  }

  /** Closes the session: `code` 'OK' for a normal close, else the error that ends it. */
  close(now: number, code: ErrorName = 'OK', reason = ''): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    this.closeCode = code;
    this.closeReason = reason;
    this.closePending = true;
    this.closeAt = now + 3 * this.rtt.rto();
    this.dropTransfers();
  }

  pollEvent(): ConnectionEvent | undefined {
    return this.events.shift();
  }

  get hasEvents(): boolean {
    return this.events.length > 0;
  }

  /** Nothing queued, nothing in flight: every message and block was acknowledged. */
  get quiescent(): boolean {
    return this.controlOut.idle && this.sent.ackElicitingInFlight === 0 && this.sending.size === 0;
  }

  // ---------------------------------------------------------------- input

  /**
   * A datagram addressed to this connection (prefix already matched). Returns true when it was
   * authentic and newer than anything received before.
   */
  receiveDatagram(datagram: Buffer, now: number): boolean {
    if (this.state === 'closed') return false;
    this.stats.datagramsReceived++;
    this.stats.bytesReceived += datagram.length;
    // Not this session's cleartext prefix (a late handshake datagram, another connection id, a damaged
    // prefix): not ours, and not worth a MAC check.
    if (datagram.length < this.prefix.length || this.prefix.compare(datagram, 0, this.prefix.length) !== 0) {
      this.drop('unknown-connection');
      return false;
    }
    const plaintext = openToken(this.receiveKey, datagram);
    if (typeof plaintext === 'string') {
      this.drop('bad-mac');
      return false;
    }
    this.amplification.onAuthentic(datagram.length);
    const decoded = decodeSessionPacket(plaintext, datagram);
    if (!decoded.ok) {
      this.drop('malformed');
      // The MAC held, so the peer itself sent this: a protocol violation (a bug, or a peer speaking
      // another dialect), not line noise. Dropping it unacknowledged would only have the peer resend it
      // until one side timed out; end the session now, saying why (RFC 9000 §10.2, PROTOCOL_VIOLATION).
      this.fail(now, 'EPROTO', `the peer sent a malformed packet (${decoded.why})`);
      return false;
    }
    const largestBefore = this.received.largest;
    this.onPacket(decoded.value, now);
    // Only a new packet, newer than any before, may move the session to another address (NAT rebinding).
    return this.received.largest > largestBefore;
  }

  private drop(reason: DropReason): void {
    this.stats.drops[reason]++;
  }

  private onPacket(p: SessionPacket, now: number): void {
    if (this.received.isDuplicate(p.pn)) {
      this.drop('replay');
      return;
    }
    if (this.state === 'draining' || this.state === 'closing') {
      if (p.type === 'close') this.enterDraining(now);
      else if (this.state === 'closing' && now - this.lastCloseSent >= this.rtt.rto())
        this.closePending = true;
      return;
    }
    switch (p.type) {
      case 'data': {
        const t = this.receiving.get(p.transferId);
        if (t === undefined) {
          if (this.flows.has(p.transferId)) {
            this.accept(p.pn, p.sendTime, now, true, true);
            this.stats.duplicateBlocks++;
            return;
          }
          this.drop('unknown-transfer');
          return;
        }
        const verdict = t.accepts(p.blockIndex, p.payload.length);
        if (verdict === 'invalid') {
          this.drop('malformed');
          return;
        }
        if (verdict === 'beyond-window') {
          this.drop('flow-control');
          return;
        }
        this.accept(p.pn, p.sendTime, now, true, false);
        if (verdict === 'duplicate') {
          t.duplicateBlocks++;
          this.stats.duplicateBlocks++;
          return;
        }
        t.onBlock(p.blockIndex);
        this.lastBlockOrProbeAt = now;
        this.receiveProbes = 0;
        this.stats.blocksReceived++;
        this.events.push({ type: 'block', transferId: t.id, index: p.blockIndex, data: p.payload });
        return;
      }
      case 'control': {
        const verdict = this.controlIn.offer(p.seq, p.body);
        if (verdict === 'reject') {
          this.drop('flow-control');
          return;
        }
        this.accept(p.pn, 0, now, true, true);
        for (const body of this.controlIn.drain()) this.events.push({ type: 'message', body });
        return;
      }
      case 'ping':
        this.accept(p.pn, 0, now, true, true);
        this.flows.onPing();
        return;
      case 'ack':
        this.accept(p.pn, 0, now, false, false);
        this.onAck(p, now);
        return;
      case 'close': {
        this.accept(p.pn, 0, now, false, false);
        const code = errorCodeFromWire(p.errorCode);
        this.dropTransfers();
        this.events.push({
          type: 'closed',
          code,
          message: p.reason || (code === 'OK' ? 'the peer closed the session' : 'the peer ended the session'),
          remote: true,
        });
        this.enterDraining(now);
        return;
      }
    }
  }

  private accept(pn: number, sendTime: number, now: number, ackEliciting: boolean, immediate: boolean): void {
    const inOrder = pn === this.received.largest + 1;
    this.received.record(pn, now, sendTime);
    this.lastReceived = now;
    this.peerValidated = true;
    if (ackEliciting) this.acks.onAckEliciting(now, immediate || !inOrder);
  }

  private onAck(p: Extract<SessionPacket, { type: 'ack' }>, now: number): void {
    const result = this.sent.onAck(p.ranges, p.ackDelayMicros / 1000, now, this.rtt);
    if (result.newlyAcked.length > 0) {
      this.rtoBackoff = 0;
      this.lastProgress = now;
    }
    for (const sp of result.newlyAcked) this.onContentAcked(sp.content);
    this.onLost(result.lost);
    for (const f of p.flows) this.sending.get(f.transferId)?.onFlow(f.cumulativeBlocks, f.blockLimit);
    this.checkFinalReports(p.flows, result.newlyAcked);
    this.cc.onAck({
      now,
      ackedBytes: result.ackedBytes,
      delivered: this.sent.delivered,
      rate: result.rate,
      priorDelivered: result.priorDelivered,
      isAppLimited: result.isAppLimited,
      rttMs: result.rttSample,
      bytesInFlight: this.sent.bytesInFlight,
    });
    this.checkSendCompletion();
  }

  private onContentAcked(c: PacketContent | undefined): void {
    if (c === undefined) return;
    if (c.kind === 'data') this.sending.get(c.transferId)?.onAcked(c.block);
    else if (c.kind === 'control') this.controlOut.onAcked(c.seq);
  }

  private onLost(lost: ReadonlyArray<{ content: PacketContent | undefined; size: number }>): void {
    if (lost.length === 0) return;
    let bytes = 0;
    for (const p of lost) {
      bytes += p.size;
      this.stats.packetsLost++;
      const c = p.content;
      if (c === undefined) continue;
      if (c.kind === 'data') {
        const t = this.sending.get(c.transferId);
        if (t !== undefined) {
          t.onLost(c.block);
          this.stats.retransmits++;
        }
      } else if (c.kind === 'control') {
        this.controlOut.onLost(c.seq);
        this.stats.retransmits++;
      }
    }
    this.cc.onPacketsLost(bytes);
  }

  /**
   * Transfers whose blocks all arrived wait for the receiver to report them written. An ACK that
   * answers one of our PINGs (probes) and carries no entry for such a transfer counts as a miss; see
   * FINAL_REPORT_MISSES.
   */
  private checkFinalReports(
    flows: ReadonlyArray<{ transferId: number }>,
    newlyAcked: ReadonlyArray<SentPacket>,
  ): void {
    let answersPing = false;
    for (const t of this.sending.values()) {
      if (!t.awaitingHeld()) continue;
      if (!answersPing) {
        for (const sp of newlyAcked) if (sp.content?.kind === 'ping') answersPing = true;
        if (!answersPing) return;
      }
      if (flows.some((f) => f.transferId === t.id)) continue;
      if (++t.finalMisses >= FINAL_REPORT_MISSES) t.assumeHeld();
    }
  }

  private checkSendCompletion(): void {
    for (const t of this.sending.values()) {
      if (t.completed) this.completeSend(t);
    }
  }

  private completeSend(t: SendTransfer): void {
    this.sending.delete(t.id);
    this.retire(t);
    this.events.push({ type: 'send-complete', transferId: t.id });
  }

  private completeReceive(t: ReceiveTransfer): void {
    if (t.completed) return;
    t.completed = true;
    this.receiving.delete(t.id);
    this.flows.onFinished(t.id, t.blockCount);
    // An ACK at once: the sender learns that every block is written (and what is owed is acknowledged).
    this.flowUpdate = true;
    this.events.push({ type: 'receive-complete', transferId: t.id });
  }

  private dropTransfers(): void {
    for (const t of this.sending.values()) {
      t.cancel();
      this.retire(t);
    }
    this.sending.clear();
    this.buffers.stop();
    for (const t of this.receiving.values()) t.cancelled = true;
    this.receiving.clear();
  }

  private enterDraining(now: number): void {
    if (this.state === 'draining' || this.state === 'closed') return;
    this.state = 'draining';
    this.closeAt = now + 3 * this.rtt.rto();
    this.sent.clear();
  }

  // ---------------------------------------------------------------- timers

  nextTimeout(): number {
    if (this.state === 'closed') return Number.POSITIVE_INFINITY;
    if (this.amplification.limited) return this.cappedTimeout();
    if (this.state !== 'open') return this.closePending ? 0 : this.closeAt;
    let t = Math.min(
      this.lastReceived + this.idleTimeoutMs,
      this.lastAckElicitingSent + this.idleTimeoutMs / 3,
    );
    t = Math.min(t, this.acks.nextDeadline());
    if (this.flowUpdate && this.received.largest >= 0) t = 0;
    t = Math.min(t, this.flows.rateUpdateTime(this.receiving.values()));
    if (this.sent.lossTime > 0) t = Math.min(t, this.sent.lossTime);
    if (this.sent.ackElicitingInFlight > 0) {
      t = Math.min(t, this.rtoDeadline(), this.lastProgress + this.idleTimeoutMs);
    } else if (this.flowBlocked()) {
      t = Math.min(t, this.lastAckElicitingSent + this.probeTimeout());
    }
    t = Math.min(t, this.receiveProbeDeadline());
    if (this.controlOut.hasPending() || this.pingPending) t = 0;
    else if (this.hasDataReady()) {
      t = Math.min(
        t,
        this.pacer.nextSendTime(this.blockSize + SESSION_OVERHEAD, this.cc.sendingRate, this.lastPoll),
      );
    }
    return t;
  }

  private lastPoll = 0;

  /**
   * The timers of a capped connection: only those that send nothing (idle timeouts, loss detection,
   * the end of closing). Sending waits for the poll that follows the peer's next datagram, so that a
   * deadline whose packet the cap refuses cannot come back due at once, again and again.
   */
  private cappedTimeout(): number {
    if (this.state !== 'open') return this.closeAt;
    let t = this.lastReceived + this.idleTimeoutMs;
    if (this.sent.lossTime > 0) t = Math.min(t, this.sent.lossTime);
    if (this.sent.ackElicitingInFlight > 0) t = Math.min(t, this.lastProgress + this.idleTimeoutMs);
    return t;
  }

  private rtoDeadline(): number {
    return this.sent.lastAckElicitingTime + this.probeTimeout();
  }

  /**
   * The RTO with exponential backoff, but never longer than MAX_PROBE_INTERVAL_MS (or the RTO itself, on a
   * slower path): a long silence — a burst of loss, a lost key-confirming PING while the server holds the
   * session half-open — is then probed every couple of seconds instead of once or twice before the idle
   * timeout; the idle timeout, not the backoff, decides when to give up.
   */
  private probeTimeout(backoff = this.rtoBackoff): number {
    const rto = this.rtt.rto();
    return Math.min(rto * 2 ** backoff, Math.max(rto, MAX_PROBE_INTERVAL_MS));
  }

  /** When a receiver waiting for blocks probes the sender (see lastBlockOrProbeAt). */
  private receiveProbeDeadline(): number {
    let waiting = false;
    for (const t of this.receiving.values()) {
      if (!t.have.full) {
        waiting = true;
        break;
      }
    }
    if (!waiting) return Number.POSITIVE_INFINITY;
    // Twice the RTO at first: blocks may be paced slower than one per round trip on a slow link.
    return this.lastBlockOrProbeAt + this.probeTimeout(this.receiveProbes + 1);
  }

  /**
   * The peer's packets now come from another address (NAT rebinding). Whatever was sent to the old one
   * is probably lost: probe at once rather than after a backed-off timeout.
   */
  peerAddressChanged(): void {
    this.rtoBackoff = 0;
  }

  /**
   * Caps what this connection sends until `limitSending(undefined)`: at most `bytes` more, plus what
   * `allowSending` adds (anti-amplification towards a peer address not yet validated, RFC 9000
   * §8.1). Under the cap a packet goes out only if it fits whole, the PING that lets the peer's ACK
   * validate the address first; nothing is sent on a timer (what waits goes with the next poll after
   * the peer's next datagram raises the cap), so a capped session never spins.
   */
  limitSending(bytes: number | undefined): void {
    this.amplification.limit(bytes);
    if (bytes !== undefined) this.pingPending = true;
  }

  allowSending(bytes: number): void {
    this.amplification.allow(bytes);
  }

  /** Whether sending is capped (see `limitSending`). */
  get sendingLimited(): boolean {
    return this.amplification.limited;
  }

  /** The packet number the next packet sent will have. */
  get nextPacketNumber(): number {
    return this.sent.nextPn;
  }

  /** The largest packet number the peer has acknowledged (-1 before any). */
  get largestAckedPacket(): number {
    return this.sent.largestAcked;
  }

  /** Whether a packet with this plaintext fits the sending cap (always, when there is none). */
  private fits(plaintext: Buffer): boolean {
    return this.amplification.fits(PREFIX_LENGTH + sealedLength(plaintext.length));
  }

  /** Bytes of authentic datagrams received (their MAC held), for a peer address's sending cap. */
  get authenticBytesReceived(): number {
    return this.amplification.authenticBytesReceived;
  }

  /** The peer holds the sender back: its window (flow control), or its report of blocks written. */
  private flowBlocked(): boolean {
    for (const t of this.sending.values()) if (t.blockedByFlowControl() || t.awaitingHeld()) return true;
    return false;
  }

  private hasDataReady(): boolean {
    if (this.sent.bytesInFlight + this.blockSize + SESSION_OVERHEAD > this.cc.cwnd && this.probeCredits === 0)
      return false;
    for (const t of this.sending.values()) if (this.gateOpen(t) && t.hasReady()) return true;
    return false;
  }

  private gateOpen(t: SendTransfer): boolean {
    if (t.gateSeq === undefined) return true;
    if (!this.controlOut.isAcked(t.gateSeq)) return false;
    t.gateSeq = undefined;
    return true;
  }

  /** Runs expired timers. */
  handleTimeout(now: number): void {
    if (this.state === 'closed') return;
    if (this.state !== 'open') {
      if (now >= this.closeAt) this.finishClose();
      return;
    }
    if (now - this.lastReceived >= this.idleTimeoutMs) {
      this.timeOut(now, `no packet from the peer for ${Math.round(this.idleTimeoutMs / 1000)} s`);
      return;
    }
    if (this.sent.ackElicitingInFlight > 0 && now - this.lastProgress >= this.idleTimeoutMs) {
      this.timeOut(now, `nothing acknowledged by the peer for ${Math.round(this.idleTimeoutMs / 1000)} s`);
      return;
    }
    if (this.sent.lossTime > 0 && now >= this.sent.lossTime) {
      const result = { lost: [] as SentPacket[], lostBytes: 0 };
      this.sent.detectLost(now, this.rtt, result);
      this.onLost(result.lost);
    }
    if (this.sent.ackElicitingInFlight > 0 && now >= this.rtoDeadline()) {
      this.stats.rtoCount++;
      this.rtoBackoff = Math.min(this.rtoBackoff + 1, 16);
      // A probe timeout declares nothing lost (RFC 9002 §6.2): the peer may only have been slow to
      // answer (descheduled, on a busy machine), and a loss would cost the controller's estimates. The
      // first probe carries the oldest packet's content again; acknowledgements then tell what was lost.
      const oldest = this.sent.oldestInFlight();
      if (oldest !== undefined) this.probeWith(oldest.content);
      this.probeCredits = PROBE_PACKETS;
      this.probeDue = true;
      if (!this.hasSomethingToProbeWith()) this.pingPending = true;
    } else if (
      this.sent.ackElicitingInFlight === 0 &&
      this.flowBlocked() &&
      now >= this.lastAckElicitingSent + this.probeTimeout()
    ) {
      this.rtoBackoff = Math.min(this.rtoBackoff + 1, 16);
      this.pingPending = true;
    }
    if (now >= this.flows.rateUpdateTime(this.receiving.values())) this.flowUpdate = true;
    if (now >= this.receiveProbeDeadline()) {
      this.pingPending = true;
      this.receiveProbes = Math.min(this.receiveProbes + 1, 16);
      this.lastBlockOrProbeAt = now;
    }
    if (now - this.lastAckElicitingSent >= this.idleTimeoutMs / 3) this.pingPending = true;
  }

  /** Sends `content` again as a probe, leaving the packet that carried it in flight. */
  private probeWith(content: PacketContent | undefined): void {
    if (content === undefined) return;
    if (content.kind === 'data') this.sending.get(content.transferId)?.sendAgain(content.block);
    else if (content.kind === 'control') this.controlOut.onLost(content.seq);
  }

  private hasSomethingToProbeWith(): boolean {
    if (this.controlOut.hasPending()) return true;
    for (const t of this.sending.values()) if (t.wantsToSend()) return true;
    return false;
  }

  private timeOut(now: number, why: string): void {
    this.fail(now, 'ETIMEDOUT', why, `session timed out: ${why}`, now);
  }

  /**
   * Ends the session at once on a local error: the application hears of it now, the peer gets a CLOSE
   * with the code (answered again while closing, until `closeAt`).
   */
  private fail(
    now: number,
    code: ErrorName,
    why: string,
    message = why,
    closeAt = now + 3 * this.rtt.rto(),
  ): void {
    if (this.state !== 'open') return;
    this.dropTransfers();
    this.events.push({ type: 'closed', code, message, remote: false });
    this.state = 'closing';
    this.closeCode = code;
    this.closeReason = why;
    this.closePending = true;
    this.closeAt = closeAt;
    this.finishCloseSilently = true;
  }

  private finishCloseSilently = false;

  private finishClose(): void {
    if (this.state === 'closed') return;
    const wasLocal = this.state === 'closing';
    this.state = 'closed';
    if (wasLocal && !this.finishCloseSilently) {
      this.events.push({
        type: 'closed',
        code: this.closeCode,
        message: this.closeReason || 'session closed',
        remote: false,
      });
    }
  }

  // ---------------------------------------------------------------- output

  /** Datagrams to send now (at most MAX_DATAGRAMS_PER_POLL; call again while it returns a full batch). */
  poll(now: number): Datagram[] {
    this.lastPoll = now;
    const out: Datagram[] = [];
    if (this.state === 'closed') return out;
    // No amplification: a server says nothing on the session until the client has proved its address.
    if (!this.peerValidated) return out;
    // Packet numbers are u32 on the wire and never reused (about 4.8 TB at the internet block size):
    // end the session cleanly before the encoder would throw, leaving room for the CLOSE.
    if (this.state === 'open' && this.sent.nextPn >= MAX_PACKET_NUMBER - MAX_DATAGRAMS_PER_POLL * 4) {
      this.fail(
        now,
        'EPROTO',
        'this session has used all its packet numbers; reconnect to continue (resume)',
      );
    }
    if (this.state !== 'open') {
      const close = this.closePending
        ? encodeClose(this.prefix, this.nextPn(), errorCodeToWire(this.closeCode), this.closeReason)
        : undefined;
      if (close !== undefined && this.fits(close)) {
        this.closePending = false;
        this.lastCloseSent = now;
        out.push(this.emit(close, now));
        this.sent.onSent(this.sent.nextPn, now, datagramLength(out[0]!), false);
      }
      if (now >= this.closeAt) this.finishClose();
      return out;
    }
    this.requestReads();
    if (this.amplification.limited && this.pingPending) {
      // Capped: the PING that can validate the peer's new address goes first.
      const ping = encodePing(this.prefix, this.nextPn());
      if (this.fits(ping)) {
        this.pingPending = false;
        out.push(this.emitAckEliciting(ping, now, { kind: 'ping' }));
      }
    }
    if (this.shouldAck(now)) this.pushAck(now, out);
    while (out.length < MAX_DATAGRAMS_PER_POLL) {
      const m = this.controlOut.peek();
      if (m === undefined) break;
      const plaintext = encodeControl(this.prefix, this.nextPn(), m.seq, m.body);
      if (!this.fits(plaintext)) break;
      this.controlOut.next();
      out.push(this.emitAckEliciting(plaintext, now, { kind: 'control', seq: m.seq }));
    }
    this.emitData(now, out);
    // An RTO sends two probes (RFC 9002 §6.2.4): PINGs make up what data did not, so that one lost packet
    // or ACK does not cost another doubled timeout.
    let pings = this.pingPending ? 1 : 0;
    if (this.probeDue) pings = Math.max(pings, this.probeCredits);
    this.probeDue = false;
    this.pingPending = false;
    for (; pings > 0 && out.length < MAX_DATAGRAMS_PER_POLL; pings--) {
      const ping = encodePing(this.prefix, this.nextPn());
      if (!this.fits(ping)) break;
      out.push(this.emitAckEliciting(ping, now, { kind: 'ping' }));
    }
    if (pings > 0) this.pingPending = true; // the batch (or the cap) is full: next poll
    if (this.shouldAck(now)) this.pushAck(now, out);
    this.requestReads();
    return out;
  }

  private emitData(now: number, out: Datagram[]): void {
    const size = this.blockSize + SESSION_OVERHEAD;
    let idle = 0;
    const transfers = [...this.sending.values()];
    if (transfers.length === 0) {
      this.sent.markAppLimited();
      return;
    }
    let sent = false;
    while (out.length < MAX_DATAGRAMS_PER_POLL && idle < transfers.length) {
      if (!this.amplification.fits(size)) return;
      const cwndOk = this.sent.bytesInFlight + size <= this.cc.cwnd;
      if (!cwndOk && this.probeCredits === 0) {
        // A window of fewer than ACK_EVERY packets (a fixed window of one: stop-and-wait) would wait
        // out the peer's ack delay after every flight; a PING has the peer acknowledge at once.
        if (sent && this.sent.ackElicitingInFlight < ACK_EVERY) this.pingPending = true;
        return;
      }
      if (this.probeCredits === 0 && !this.pacer.canSend(size, this.cc.sendingRate, now)) return;
      const t = transfers[this.roundRobin++ % transfers.length]!;
      if (!this.gateOpen(t)) {
        idle++;
        continue;
      }
      const block = t.next();
      if (block === undefined) {
        idle++;
        continue;
      }
      idle = 0;
      const pn = this.nextPn();
      const header = encodeDataHeader(this.prefix, pn, microTime(now), t.id, block.index);
      const datagram = sealDatagramv(
        this.sendKey,
        this.prefix,
        [header, block.data],
        this.wallClock(),
        this.ciphertextBuffers,
      );
      const length = datagramLength(datagram);
      this.countSent(length);
      this.afterAckEliciting(pn, length, now, {
        kind: 'data',
        transferId: t.id,
        block: block.index,
      });
      this.pacer.onSend(length);
      if (this.probeCredits > 0) this.probeCredits--;
      this.stats.blocksSent++;
      if (block.retransmission) this.stats.blocksRetransmitted++;
      out.push(datagram);
      sent = true;
    }
    if (idle >= transfers.length) this.sent.markAppLimited();
  }

  /**
   * Asks the sources for blocks, as the window allows: the session holds at most a congestion window
   * plus read-ahead (half a window, at least 4 blocks, at most readAheadBytes) of block data, within
   * its own cap and the shared budget. A silent peer therefore pins one window, not the read-ahead
   * of every transfer.
   */
  private requestReads(): void {
    if (this.sending.size === 0) return;
    const cwnd = this.cc.cwnd;
    this.readTarget = cwnd + Math.min(this.readAheadBytes, Math.max(cwnd / 2, 4 * this.blockSize));
    const toRead = this.toRead;
    for (const t of this.sending.values()) {
      if (!this.gateOpen(t)) continue;
      t.blocksToRead(this.readAheadBlocks, toRead);
      for (const index of toRead) this.events.push({ type: 'read', transferId: t.id, index });
      toRead.length = 0;
    }
    this.buffers.settle();
  }

  private shouldAck(now: number): boolean {
    // An ACK needs at least one received packet to acknowledge (a flow update waits for it).
    if (this.received.largest < 0) return false;
    return this.flowUpdate || this.acks.due(now);
  }

  /** Appends an ACK to `out`, unless it does not fit the sending cap (then it stays pending). */
  private pushAck(now: number, out: Datagram[]): void {
    const flows = this.flowEntries;
    flows.length = 0;
    this.flows.select(this.receiving.values(), now, flows);
    const ranges = this.received.ackRanges(MAX_ACK_RANGES);
    const ackDelay = Math.max(0, Math.round((now - this.received.largestReceivedAt) * 1000));
    const pn = this.nextPn();
    const plaintext = encodeAck(this.prefix, pn, this.received.largestSendTime, ackDelay, ranges, flows);
    if (!this.fits(plaintext)) return;
    this.flows.commit();
    const datagram = this.emit(plaintext, now);
    out.push(datagram);
    this.sent.onSent(pn, now, datagram.length, false);
    this.acks.onAckSent();
    this.flowUpdate = false;
    this.stats.acksSent++;
  }

  private emitAckEliciting(plaintext: Buffer, now: number, content: PacketContent): Buffer {
    const pn = this.sent.nextPn;
    const datagram = this.emit(plaintext, now);
    this.afterAckEliciting(pn, datagram.length, now, content);
    if (this.probeCredits > 0) this.probeCredits--;
    return datagram;
  }

  private afterAckEliciting(pn: number, size: number, now: number, content: PacketContent): void {
    if (this.sent.ackElicitingInFlight === 0) this.lastProgress = now;
    this.sent.onSent(pn, now, size, true, content);
    this.cc.onPacketSent(size);
    this.lastAckElicitingSent = now;
  }

  private nextPn(): number {
    return this.sent.nextPn;
  }

  private emit(plaintext: Buffer, _now: number): Buffer {
    const datagram = sealDatagram(this.sendKey, this.prefix, [plaintext], this.wallClock());
    this.countSent(datagram.length);
    return datagram;
  }

  private countSent(length: number): void {
    this.stats.datagramsSent++;
    this.stats.bytesSent += length;
    this.amplification.spend(length);
  }

  /** Counters and estimator state, for logs and `--json`. */
  toJSON(): Record<string, unknown> {
    return {
      state: this.state,
      rtt: this.rtt.toJSON(),
      congestion: this.cc.toJSON(),
      bytesInFlight: this.sent.bytesInFlight,
      bufferedBytes: this.buffers.heldBytes,
      ...this.stats.toJSON(),
    };
  }
}

function microTime(nowMs: number): number {
  return Math.floor(nowMs * 1000) >>> 0;
}
