/**
 * A hard bound on the block data a sender holds: bytes asked of its source (read, being read, in
 * flight, awaiting acknowledgement) until the transport gives the block back. Each session has a
 * cap of its own (`SendBuffers`); a server's sessions also share one budget (`SharedBufferBudget`),
 * served first come, first served: a session that finds it spent waits in line and is woken once
 * bytes are set aside for it. A block is read only once its bytes are taken, so memory follows the
 * budget, not the number of sessions or how long their peers stay silent.
 */
export const DEFAULT_MAX_SESSION_BUFFERED_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_BUFFERED_BYTES = 256 * 1024 * 1024;

export class SharedBufferBudget {
  private used = 0;
  /** Sessions waiting for bytes, in the order they asked. */
  private readonly line: SendBuffers[] = [];

  constructor(readonly limitBytes: number) {}

  get usedBytes(): number {
    return this.used;
  }

  /** Sessions waiting for bytes. */
  get waiting(): number {
    return this.line.length;
  }

  /** Takes `bytes` if they fit (one block always fits an unused budget) and nobody waits before. */
  tryTake(bytes: number): boolean {
    if (this.line.length > 0 || !this.fits(bytes)) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used -= bytes;
    this.serve();
  }

  /** Puts `buffers` in line for `buffers.need` bytes (once). */
  wait(buffers: SendBuffers): void {
    if (buffers.inLine) return;
    buffers.inLine = true;
    this.line.push(buffers);
    this.serve();
  }

  leave(buffers: SendBuffers): void {
    if (!buffers.inLine) return;
    buffers.inLine = false;
    const i = this.line.indexOf(buffers);
    if (i >= 0) this.line.splice(i, 1);
    this.serve();
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.limitBytes;
  }

  /** Sets bytes aside for the sessions in line, first first, while they fit. */
  private serve(): void {
    while (this.line.length > 0) {
      const next = this.line[0]!;
      if (!this.fits(next.need)) return;
      this.line.shift();
      next.inLine = false;
      this.used += next.need;
      next.grant(next.need);
    }
  }
}

/** One session's share: at most `capBytes` held, and (on a server) bytes of the shared budget. */
export class SendBuffers {
  /** Bytes of blocks taken and not given back yet. */
  private held = 0;
  /** Bytes the shared budget set aside for this session while it waited in line. */
  private granted = 0;
  /** Bytes this session waits for (its next block), while in line. */
  need = 0;
  inLine = false;

  constructor(
    readonly capBytes: number,
    private readonly shared?: SharedBufferBudget,
    /** Called when bytes were set aside for this session: it should run and read. */
    private readonly onGranted?: () => void,
  ) {}

  get heldBytes(): number {
    return this.held;
  }

  /**
   * Takes `bytes` for one block if they keep this session within `limitBytes` (a window-based goal,
   * itself capped at `capBytes`) and the shared budget has them; otherwise the session waits in the
   * shared line (when that was what stopped it) and false is returned.
   */
  take(bytes: number, limitBytes: number): boolean {
    // One block always fits an empty session's own cap, however small the cap.
    if (this.held > 0 && this.held + bytes > Math.min(limitBytes, this.capBytes)) return false;
    if (this.shared !== undefined) {
      if (this.granted >= bytes) {
        this.granted -= bytes;
      } else if (!this.shared.tryTake(bytes)) {
        this.need = bytes;
        this.shared.wait(this);
        return false;
      }
    }
    this.held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.held -= bytes;
    this.shared?.give(bytes);
  }

  /** Called by the shared budget: `bytes` are set aside for this session. */
  grant(bytes: number): void {
    this.granted += bytes;
    this.onGranted?.();
  }

  /** Gives back what was set aside and not used (after a round of reads, or when sending stops). */
  settle(): void {
    if (this.granted === 0 || this.shared === undefined) return;
    const bytes = this.granted;
    this.granted = 0;
    this.shared.give(bytes);
  }

  /** This session sends nothing more: out of line, nothing set aside. Held bytes come back as given. */
  stop(): void {
    this.shared?.leave(this);
    this.settle();
  }
}
