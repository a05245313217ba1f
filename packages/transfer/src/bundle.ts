import type { BlockSink, BlockSource, Session } from '@ferry/transport';

/**
 * A bundle: several small files' bytes back to back, moved as one transfer (a putFiles or getFiles
 * batch), so that a file of a few kilobytes costs no round trip of its own. It lives in memory
 * (a batch is at most MAX_BATCH_BYTES); each file inside is verified by its own SHA-256 by whoever
 * places it.
 */

/** The files' bytes back to back. */
export function joinBundle(parts: readonly Buffer[]): Buffer {
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** The files of a bundle, by their sizes in order (views of `bundle`, not copies). */
export function splitBundle(bundle: Buffer, sizes: readonly number[]): Buffer[] {
  const parts: Buffer[] = [];
  let at = 0;
  for (const size of sizes) {
    parts.push(bundle.subarray(at, at + size));
    at += size;
  }
  if (at !== bundle.length) throw new Error(`bundle of ${bundle.length} bytes split as ${at} (a bug)`);
  return parts;
}

/** The sending half: every block of `bundle` as transfer `transferId`; `sent` resolves once all are acknowledged. */
export class OutgoingBundle {
  readonly sent: Promise<void>;

  constructor(session: Session, transferId: number, bundle: Buffer, options: { afterMessage?: number } = {}) {
    const source: BlockSource = {
      size: bundle.length,
      read: async (index, blockSize) => bundle.subarray(index * blockSize, (index + 1) * blockSize),
    };
    this.sent = session.sendBlocks(transferId, source, options);
    this.sent.catch(() => {});
  }
}

/** The receiving half: transfer `transferId` of `size` bytes into memory; `received` resolves with it. */
export class IncomingBundle {
  readonly received: Promise<Buffer>;

  constructor(session: Session, transferId: number, size: number) {
    const bundle = Buffer.allocUnsafe(size);
    const sink: BlockSink = {
      write: async (index, data) => {
        data.copy(bundle, index * session.blockSize);
      },
    };
    this.received = session.receiveBlocks(transferId, size, sink).then(() => bundle);
    this.received.catch(() => {});
  }
}
