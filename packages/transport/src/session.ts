import { type ErrorName, FerryError } from '@ferry/protocol';
import type { Connection } from './core/connection.js';
import type { BlockRange } from './core/transfers.js';

/**
 * Where a sender's blocks come from: read on demand, at most the window ahead of the receiver. The
 * transport never modifies a returned buffer, so a source may hand out views of a shared one.
 */
export interface BlockSource {
  readonly size: number;
  read(index: number, blockSize: number): Promise<Buffer>;
  /**
   * Called once with a buffer read() returned when the transport no longer uses it (the block was
   * acknowledged, or the transfer ended), so the source may reuse the memory. Not every buffer comes
   * back (a transfer torn down with its session may keep some): a source must not rely on it.
   */
  release?(data: Buffer): void;
}

/** Where a receiver's blocks go: each written at its offset as it arrives, in any order. */
export interface BlockSink {
  write(index: number, data: Buffer): Promise<void>;
}

export interface SessionDriver {
  /** Monotonic milliseconds. */
  now(): number;
  /** Asks the driver to run the connection soon (new work was queued). */
  kick(): void;
}

export interface SessionClosed {
  code: ErrorName;
  message: string;
  remote: boolean;
}

interface PendingTransfer {
  resolve: () => void;
  reject: (error: Error) => void;
  failed: boolean;
  /** Sink writes in progress (receive side). */
  writing: number;
}

/**
 * The application's view of one session, on either side: control messages, block transfers backed by
 * a source or a sink, progress, close. The I/O driver (UDP or simulated) feeds the connection; this class
 * turns the connection's events into callbacks and promises.
 */
export class Session {
  private readonly sources = new Map<number, BlockSource>();
  private readonly sinks = new Map<number, BlockSink>();
  /** Block sizes of transfers whose blocks are not the session's size. */
  private readonly blockSizes = new Map<number, number>();
  private readonly pathWaiters: Array<() => void> = [];
  private readonly pending = new Map<number, PendingTransfer>();
  private readonly messageListeners = new Set<(body: Buffer) => void>();
  private closedInfo: SessionClosed | undefined;
  private readonly closedWaiters: Array<(info: SessionClosed) => void> = [];

  constructor(
    readonly connection: Connection,
    private readonly driver: SessionDriver,
    readonly access: 'read-only' | 'read-write',
    /** Features the session may use (bits of @ferry/protocol's Feature): 0 in a version-1 session. */
    readonly features = 0,
  ) {}

  /** The session's block size (from the handshake); a transfer may use another (path MTU). */
  get blockSize(): number {
    return this.connection.blockSize;
  }

  /**
   * Resolves once path MTU discovery has had its first say (at once when it does not run; at most a
   * few round trips otherwise), so that a transfer about to start can use what the path carries.
   */
  pathSettled(): Promise<void> {
    if (this.connection.pathSettled || this.isClosed) return Promise.resolve();
    return new Promise((resolve) => this.pathWaiters.push(resolve));
  }

  get isClosed(): boolean {
    return this.closedInfo !== undefined;
  }

  /** Resolves when the session has ended, with why. */
  closed(): Promise<SessionClosed> {
    if (this.closedInfo !== undefined) return Promise.resolve(this.closedInfo);
    return new Promise((resolve) => this.closedWaiters.push(resolve));
  }

  onMessage(listener: (body: Buffer) => void): () => void {
    this.messageListeners.add(listener);
    return () => this.messageListeners.delete(listener);
  }

  /** Queues a control message; returns its sequence number. */
  send(body: Buffer): number {
    this.assertOpen();
    const seq = this.connection.sendMessage(body);
    this.driver.kick();
    return seq;
  }

  /**
   * Sends `source` as transfer `transferId`; resolves once the peer has acknowledged every block.
   * `have` lists block ranges the peer already holds; `afterMessage` holds data until that message is acked.
   */
  sendBlocks(
    transferId: number,
    source: BlockSource,
    options: { have?: ReadonlyArray<BlockRange>; afterMessage?: number; blockSize?: number } = {},
  ): Promise<void> {
    this.assertOpen();
    const done = this.track(transferId);
    this.sources.set(transferId, source);
    const release = source.release?.bind(source);
    const blockSize = options.blockSize ?? this.connection.blockSize;
    if (blockSize !== this.connection.blockSize) this.blockSizes.set(transferId, blockSize);
    this.connection.openSend(
      transferId,
      source.size,
      options.have ?? [],
      options.afterMessage,
      release,
      blockSize,
    );
    this.driver.kick();
    this.dispatch();
    return done;
  }

  /** Receives transfer `transferId` of `size` bytes into `sink`; resolves once every block is written. */
  receiveBlocks(
    transferId: number,
    size: number,
    sink: BlockSink,
    options: { have?: ReadonlyArray<BlockRange>; blockSize?: number } = {},
  ): Promise<void> {
    this.assertOpen();
    const done = this.track(transferId);
    this.sinks.set(transferId, sink);
    this.connection.openReceive(transferId, size, options.have ?? [], options.blockSize);
    this.driver.kick();
    this.dispatch();
    return done;
  }

  /** Bytes acknowledged (sending) or received (receiving) so far. */
  progress(transferId: number): { bytes: number; size: number } | undefined {
    return this.connection.transferProgress(transferId);
  }

  /** Block ranges received so far on a receive transfer (for resume bookkeeping). */
  receivedRanges(transferId: number): Array<[number, number]> {
    return this.connection.receivedRanges(transferId);
  }

  /** Stops a transfer; its promise rejects with `error` (ECANCELED by default). */
  cancel(transferId: number, error?: Error): void {
    this.connection.cancelTransfer(transferId);
    this.fail(transferId, error ?? new FerryError('ECANCELED', 'transfer cancelled'));
    this.driver.kick();
  }

  /** Closes the session and waits until the close is done. */
  async close(code: ErrorName = 'OK', reason = ''): Promise<SessionClosed> {
    if (this.closedInfo === undefined) {
      this.connection.close(this.driver.now(), code, reason);
      this.driver.kick();
    }
    return this.closed();
  }

  stats(): Record<string, unknown> {
    return this.connection.toJSON();
  }

  private assertOpen(): void {
    if (this.closedInfo !== undefined) {
      throw new FerryError(
        this.closedInfo.code === 'OK' ? 'ECONNRESET' : this.closedInfo.code,
        this.closedInfo.message,
      );
    }
  }

  private track(transferId: number): Promise<void> {
    if (this.pending.has(transferId)) throw new Error(`transfer ${transferId} is already in progress`);
    return new Promise<void>((resolve, reject) => {
      this.pending.set(transferId, { resolve, reject, failed: false, writing: 0 });
    });
  }

  private fail(transferId: number, error: Error): void {
    const p = this.pending.get(transferId);
    this.sources.delete(transferId);
    this.sinks.delete(transferId);
    this.blockSizes.delete(transferId);
    if (p === undefined || p.failed) return;
    p.failed = true;
    this.pending.delete(transferId);
    p.reject(error);
  }

  /** Turns the connection's queued events into callbacks. The driver calls this after every run. */
  dispatch(): void {
    for (;;) {
      const e = this.connection.pollEvent();
      if (e === undefined) return;
      switch (e.type) {
        case 'message':
          for (const listener of this.messageListeners) listener(e.body);
          break;
        case 'read': {
          const source = this.sources.get(e.transferId);
          if (source === undefined) {
            // The transfer ended before its read was served: the block's bytes go back unread.
            this.connection.readFailed(e.transferId, e.index);
            break;
          }
          source.read(e.index, this.blockSizes.get(e.transferId) ?? this.connection.blockSize).then(
            (data) => {
              this.connection.provideBlock(e.transferId, e.index, data);
              this.driver.kick();
            },
            (error: unknown) => {
              this.connection.readFailed(e.transferId, e.index);
              this.abortTransfer(e.transferId, error);
            },
          );
          break;
        }
        case 'block': {
          const sink = this.sinks.get(e.transferId);
          const p = this.pending.get(e.transferId);
          if (sink === undefined || p === undefined) break;
          p.writing++;
          sink.write(e.index, e.data).then(
            () => {
              p.writing--;
              this.connection.blockWritten(e.transferId, e.index);
              this.driver.kick();
              this.dispatch();
            },
            (error: unknown) => this.writeFailed(e.transferId, error),
          );
          break;
        }
        case 'path-settled':
          for (const w of this.pathWaiters.splice(0)) w();
          break;
        case 'send-complete':
        case 'receive-complete': {
          const p = this.pending.get(e.transferId);
          this.sources.delete(e.transferId);
          this.sinks.delete(e.transferId);
          this.blockSizes.delete(e.transferId);
          if (p !== undefined && !p.failed) {
            this.pending.delete(e.transferId);
            p.resolve();
          }
          break;
        }
        case 'closed': {
          const info: SessionClosed = { code: e.code, message: e.message, remote: e.remote };
          this.closedInfo = info;
          for (const id of [...this.pending.keys()]) {
            this.fail(
              id,
              new FerryError(
                e.code === 'OK' ? 'ECONNRESET' : e.code,
                e.code === 'OK' ? 'the session was closed' : e.message,
              ),
            );
          }
          for (const w of this.closedWaiters.splice(0)) w(info);
          for (const w of this.pathWaiters.splice(0)) w();
          break;
        }
      }
    }
  }

  /**
   * A block could not be written (disk full, I/O error): the transfer stops here, and the peer is told
   * why at once (an `abort` with the write's code), instead of learning it from a later request.
   */
  private writeFailed(transferId: number, error: unknown): void {
    if (this.pending.get(transferId)?.failed === false && !this.isClosed) {
      const e = error instanceof FerryError ? error : new FerryError('EIO', String(error));
      const { code, message } = e.toReply(0);
      this.connection.sendMessage(Buffer.from(JSON.stringify({ op: 'abort', transferId, code, message })));
    }
    this.abortTransfer(transferId, error);
  }

  private abortTransfer(transferId: number, error: unknown): void {
    this.connection.cancelTransfer(transferId);
    this.fail(transferId, error instanceof Error ? error : new Error(String(error)));
    this.driver.kick();
  }

  /** Marks the session closed without a CLOSE exchange (the driver lost the socket). */
  terminate(code: ErrorName, message: string): void {
    if (this.closedInfo !== undefined) return;
    this.connection.close(this.driver.now(), code, message);
    const info: SessionClosed = { code, message, remote: false };
    this.closedInfo = info;
    // A normal close still ends unfinished transfers: they were cancelled.
    const failCode = code === 'OK' ? 'ECANCELED' : code;
    for (const id of [...this.pending.keys()]) this.fail(id, new FerryError(failCode, message));
    for (const w of this.closedWaiters.splice(0)) w(info);
    for (const w of this.pathWaiters.splice(0)) w();
  }
}
