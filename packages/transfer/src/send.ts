import type { BlockRange } from '@ferry/protocol';
import type { ProgressCallback, ReadableFile } from '@ferry/storage';
import type { Session } from '@ferry/transport';

export interface OutgoingFileOptions {
  /** Blocks the receiver already holds (a resume): they are not sent. */
  have?: readonly BlockRange[];
  /** Hold the data back until this control message (the reply announcing the transfer) is acknowledged. */
  afterMessage?: number;
  /** The transfer's block size, from its reply (default: the session's). */
  blockSize?: number;
}

/**
 * The sending half of a get (server) or a put (client): every block of `file` the receiver lacks goes
 * out as transfer `transferId` at once; `sent` resolves once each is acknowledged, and `digest()` then
 * gives the whole file's SHA-256 (mostly hashed while it was read), which the caller hands over — a
 * digest message, or the commit request. The caller closes the file.
 */
export class OutgoingFile {
  /** Resolves once the receiver acknowledged every block; rejects with the first failure. */
  readonly sent: Promise<void>;

  constructor(
    session: Session,
    readonly transferId: number,
    private readonly file: ReadableFile,
    options: OutgoingFileOptions = {},
  ) {
    this.sent = session.sendBlocks(transferId, file, {
      have: options.have ?? [],
      ...(options.afterMessage !== undefined ? { afterMessage: options.afterMessage } : {}),
      ...(options.blockSize !== undefined ? { blockSize: options.blockSize } : {}),
    });
    // Reported by whoever awaits `sent`; never an unhandled rejection.
    this.sent.catch(() => {});
  }

  /** SHA-256 (hex) of the file as sent, after every block was acknowledged; EFILECHANGED if it changed. */
  async digest(onProgress?: ProgressCallback): Promise<string> {
    await this.sent;
    return this.file.sha256(onProgress);
  }
}
