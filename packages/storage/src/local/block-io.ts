import { createHash, type Hash } from 'node:crypto';
import type { ProgressCallback } from '../storage.js';

/** Below this, a buffer comes from Node's usual allocation (small buffers are pooled). */
const OWN_MAPPING_MIN_BYTES = 64 * 1024;

/** ArrayBuffer with the resizable form's options (ES2024; the base config's lib is ES2023). */
const ResizableArrayBuffer = ArrayBuffer as unknown as new (
  byteLength: number,
  options: { maxByteLength: number },
) => ArrayBuffer;

/**
 * A buffer of `size` bytes for file data, whose memory goes back to the system once it is collected.
 *
 * A plain Buffer of a megabyte comes from the C allocator (glibc), which maps it on its own only
 * until one such block is freed: its mmap threshold then rises to that size, later blocks come from
 * its heap, and the heap is given back only from its top. A few small live allocations above the
 * freed blocks kept 234 MB of file buffers in a server after 200 stalled gets had ended. The memory
 * of a resizable ArrayBuffer is mapped by V8 itself (a reservation of maxByteLength) and unmapped as
 * soon as the buffer is collected, whatever else the process holds. Its contents start zeroed.
 */
export function fileDataBuffer(size: number): Buffer {
  if (size < OWN_MAPPING_MIN_BYTES) return Buffer.allocUnsafe(size);
  return Buffer.from(new ResizableArrayBuffer(size, { maxByteLength: size }));
}

/**
 * A few buffers of one fixed size, kept for reuse: file I/O buffers of a megabyte allocated per use
 * each cost an mmap and its page faults, and wait for a garbage collection to be freed.
 */
export class SpareBuffers {
  readonly #spare: Buffer[] = [];

  constructor(
    readonly size: number,
    private readonly keep: number,
  ) {}

  /** A buffer of `size` bytes, a kept one when there is one. Its contents are undefined. */
  take(): Buffer {
    return this.#spare.pop() ?? fileDataBuffer(this.size);
  }

  /** Keeps `buffer` for a later take(), unless it is not one of ours or enough are kept. */
  give(buffer: Buffer): void {
    if (buffer.length === this.size && this.#spare.length < this.keep) this.#spare.push(buffer);
  }

  clear(): void {
    this.#spare.length = 0;
  }
}

const CATCH_UP_CHUNK = 1024 * 1024;
/** Default bytes of early blocks held (as copies) until the hash frontier reaches them. */
export const DEFAULT_HASH_AHEAD_BYTES = 4 * 1024 * 1024;

export interface PrefixHasherOptions {
  /** Reads bytes back from the file (for bytes not offered in order). */
  readAt: (offset: number, length: number) => Promise<Buffer>;
  /** How many bytes from `offset` on can be read back now. */
  contiguousFrom: (offset: number) => number;
  /**
   * Read back in the background as soon as bytes past the frontier are contiguous with it (a
   * receiver, whose data is on disk anyway); otherwise only when the digest is asked for (a sender,
   * which would rather not read its file twice).
   */
  readBackEagerly: boolean;
  /** Bytes of early blocks to keep in memory until the frontier reaches them. */
  aheadBytes?: number;
}

/**
 * SHA-256 of a file computed as its bytes become available, so that the digest is ready (or nearly)
 * when the last block is written or read, instead of after a long silent re-read.
 *
 * Bytes offered at the hashed frontier are hashed from memory; bytes offered a little ahead of it
 * (pipelined reads, reordered packets) are copied and kept, up to `aheadBytes`, until the frontier
 * reaches them; anything else is read back from the file later.
 */
export class PrefixHasher {
  readonly #size: number;
  readonly #options: PrefixHasherOptions;
  readonly #aheadLimit: number;
  readonly #hash: Hash = createHash('sha256');
  readonly #ahead = new Map<number, Buffer>();
  #aheadBytes = 0;
  #hashed = 0;
  #catchUp: Promise<void> | undefined;
  #failure: unknown;
  #digest: string | undefined;

  constructor(size: number, options: PrefixHasherOptions) {
    this.#size = size;
    this.#options = options;
    this.#aheadLimit = options.aheadBytes ?? DEFAULT_HASH_AHEAD_BYTES;
  }

  /** Bytes hashed so far (from offset 0). */
  get hashedBytes(): number {
    return this.#hashed;
  }

  /**
   * Offers bytes just written or read at `offset` (one buffer, or consecutive buffers written
   * together); call only once they can also be read back.
   */
  offer(offset: number, data: Uint8Array | readonly Uint8Array[]): void {
    if (this.#digest !== undefined || this.#failure !== undefined) return;
    const parts = data instanceof Uint8Array ? [data] : data;
    let length = 0;
    for (const part of parts) length += part.length;
    if (length === 0) return;
    if (this.#catchUp === undefined && offset === this.#hashed) {
      for (const part of parts) this.#hash.update(part);
      this.#hashed += length;
      this.#drainAhead();
    } else if (
      offset > this.#hashed &&
      this.#aheadBytes + length <= this.#aheadLimit &&
      !this.#ahead.has(offset)
    ) {
      const copy = fileDataBuffer(length);
      let at = 0;
      for (const part of parts) {
        copy.set(part, at);
        at += part.length;
      }
      this.#ahead.set(offset, copy);
      this.#aheadBytes += length;
    }
    if (this.#options.readBackEagerly) this.kick();
  }

  /** Starts reading back whatever is on disk past the frontier (e.g. after a resume). */
  kick(): void {
    if (this.#catchUp === undefined && this.#failure === undefined && this.#digest === undefined) {
      if (this.#hashed < this.#size && this.#options.contiguousFrom(this.#hashed) > 0) this.#start(undefined);
    }
  }

  /** Drops the early blocks kept in memory (the file is closed: no digest will be asked for). */
  discard(): void {
    this.#ahead.clear();
    this.#aheadBytes = 0;
  }

  /** Waits for background read-back to stop (before the file is closed). */
  async settle(): Promise<void> {
    while (this.#catchUp !== undefined) await this.#catchUp;
  }

  /**
   * The hex digest of all `size` bytes: reads back whatever is not hashed yet. Every byte must be
   * available by then; throws the first read-back error.
   */
  async digest(onProgress?: ProgressCallback): Promise<string> {
    if (this.#digest !== undefined) return this.#digest;
    for (;;) {
      await this.settle();
      if (this.#failure !== undefined) throw this.#failure;
      if (this.#digest !== undefined) return this.#digest;
      if (this.#hashed >= this.#size) break;
      if (this.#options.contiguousFrom(this.#hashed) <= 0) {
        throw new Error(`digest requested with bytes from ${this.#hashed} not yet available`);
      }
      this.#start(onProgress);
    }
    this.#digest = this.#hash.digest('hex');
    this.#ahead.clear();
    this.#aheadBytes = 0;
    onProgress?.(this.#size, this.#size);
    return this.#digest;
  }

  // #catchUp is set before #advance runs and cleared synchronously when its loop exits, so offer()
  // never hashes from memory while a read-back is in progress, and never misses the moment it ends.
  #start(onProgress: ProgressCallback | undefined): void {
    let finished!: () => void;
    this.#catchUp = new Promise<void>((resolve) => {
      finished = resolve;
    });
    void this.#advance(onProgress).then(finished);
  }

  // Never rejects: a failure is kept and reported by digest().
  async #advance(onProgress: ProgressCallback | undefined): Promise<void> {
    try {
      for (;;) {
        this.#drainAhead();
        const available = Math.min(this.#options.contiguousFrom(this.#hashed), this.#size - this.#hashed);
        if (available <= 0) return;
        // Read up to the next block kept in memory, so it is not read twice.
        let length = Math.min(available, CATCH_UP_CHUNK);
        for (const offset of this.#ahead.keys()) {
          if (offset > this.#hashed && offset < this.#hashed + length) length = offset - this.#hashed;
        }
        const chunk = await this.#options.readAt(this.#hashed, length);
        this.#hash.update(chunk);
        this.#hashed += length;
        onProgress?.(this.#hashed, this.#size);
      }
    } catch (error) {
      this.#failure = error;
    } finally {
      this.#catchUp = undefined;
    }
  }

  #drainAhead(): void {
    // Blocks behind the frontier can never be used; blocks at it are hashed now.
    for (;;) {
      const next = this.#ahead.get(this.#hashed);
      if (next === undefined) break;
      this.#ahead.delete(this.#hashed);
      this.#aheadBytes -= next.length;
      this.#hash.update(next);
      this.#hashed += next.length;
    }
    if (this.#ahead.size > 0) {
      for (const [offset, data] of this.#ahead) {
        if (offset < this.#hashed) {
          this.#ahead.delete(offset);
          this.#aheadBytes -= data.length;
        }
      }
    }
  }
}
