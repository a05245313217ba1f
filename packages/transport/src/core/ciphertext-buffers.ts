import type { Datagram } from './wire.js';

/** Spare buffers kept for the next packets: a poll's worth (MAX_DATAGRAMS_PER_POLL), 8 MiB of 64 KiB. */
const SPARE_BUFFERS = 128;

/**
 * Buffers that DATA packets' bulk ciphertext is written into (Fernet.sealv's `bulkInto`), taken
 * back once the datagram has left the socket and reused: the cipher's own output, a new buffer per
 * packet, grew a sender's C heap by 30-40 MB that it kept after the transfer (see the Fernet method).
 *
 * Plain buffers: reused, they do not pile up (a resizable ArrayBuffer's own mapping, as file data
 * has, cost about 10 % of a get's server CPU here). Spares are held weakly, so a full collection of
 * an idle process frees them; a datagram whose buffer never comes back (a driver that does not give
 * it) only leaves it to the collector.
 */
export class CiphertextBuffers {
  readonly #spare: Array<WeakRef<ArrayBuffer>> = [];
  readonly #ours = new WeakSet<ArrayBufferLike>();

  constructor(readonly size: number) {}

  /** A buffer of `size` bytes, not in any datagram still to be sent. */
  take(): Buffer {
    for (let spare = this.#spare.pop(); spare !== undefined; spare = this.#spare.pop()) {
      const memory = spare.deref();
      if (memory !== undefined) return Buffer.from(memory);
    }
    const memory = Buffer.allocUnsafeSlow(this.size).buffer as ArrayBuffer;
    this.#ours.add(memory);
    return Buffer.from(memory);
  }

  /** Takes back a buffer from take() that no datagram uses. */
  give(buffer: Buffer): void {
    if (this.#ours.has(buffer.buffer) && this.#spare.length < SPARE_BUFFERS) {
      this.#spare.push(new WeakRef(buffer.buffer as ArrayBuffer));
    }
  }

  /** Takes back the buffer of ours that `datagram` holds, if any, once the datagram has been sent. */
  sent(datagram: Datagram): void {
    if (!Array.isArray(datagram)) return;
    for (const part of datagram) {
      if (this.#ours.has(part.buffer)) {
        this.give(part);
        return;
      }
    }
  }

  /** Whether `datagram` holds a buffer of ours (it must go back through sent()). */
  holds(datagram: Datagram): boolean {
    return Array.isArray(datagram) && datagram.some((part) => this.#ours.has(part.buffer));
  }
}
