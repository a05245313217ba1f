import type { BlockRange } from '@ferry/protocol';
import type { CommitOptions, CommitResult, Upload } from '@ferry/storage';
import type { Session } from '@ferry/transport';

/**
 * The receiving half of a get (client) or a put (server): blocks of transfer `transferId` go into a
 * resumable upload as they arrive; once the sender's SHA-256 is known, `commit()` waits for every block
 * to be stored, verifies and places the file. The upload may still be opening when the transfer
 * starts (blocks wait in the sink, within the receive window), so the first block never waits for it.
 */
export class IncomingFile {
  /** Resolves once every block is stored; rejects with the first failure (a write, the session). */
  readonly received: Promise<void>;
  readonly #upload: Promise<Upload>;

  constructor(
    session: Session,
    readonly transferId: number,
    size: number,
    upload: Upload | Promise<Upload>,
    have: readonly BlockRange[],
    /** The transfer's block size, from its reply (default: the session's). */
    blockSize?: number,
  ) {
    this.#upload = Promise.resolve(upload);
    const sink =
      upload instanceof Promise
        ? { write: async (index: number, data: Buffer) => (await upload).write(index, data) }
        : upload;
    this.received = session.receiveBlocks(transferId, size, sink, {
      have,
      ...(blockSize !== undefined ? { blockSize } : {}),
    });
    // Reported through commit() or by whoever awaits `received`; never an unhandled rejection.
    this.received.catch(() => {});
  }

  /** The upload, once open. */
  upload(): Promise<Upload> {
    return this.#upload;
  }

  /** Waits for every block, then verifies the SHA-256 and places the file (see Upload.commit). */
  async commit(options: CommitOptions): Promise<CommitResult> {
    await this.received;
    return (await this.#upload).commit(options);
  }

  /** Ends the upload without committing (see Upload.abort); never throws. */
  async abort(options: { keep: boolean }): Promise<void> {
    const upload = await this.#upload.catch(() => undefined);
    await upload?.abort(options);
  }
}
