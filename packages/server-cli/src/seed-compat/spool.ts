import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { FileError, toFileError } from '@ferry/storage';

/** Chunks are gathered into writes of about this size. */
const WRITE_BYTES = 256 * 1024;
/** Beyond this many bytes waiting for the disk, the receiver holds its acknowledgement (backpressure). */
const BACKLOG_BYTES = 1024 * 1024;

/**
 * Where a seed-protocol upload waits until its last chunk arrives. The seed's put never says how
 * large the file is, while a store's upload needs its size up front; so the chunks go to an anonymous
 * temporary file (created 0600 with O_EXCL, unlinked at once: nothing is left behind, even after a
 * crash), hashed as they come, and are copied into the store once the size is known. Memory stays
 * bounded: chunks wait in memory only until a write of about 256 KiB gathers them.
 */
export class Spool {
  readonly #handle: FileHandle;
  readonly #hash = createHash('sha256');
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #written = 0;
  #size = 0;
  #writing: Promise<void> | undefined;
  #failure: unknown;
  #closed = false;

  private constructor(handle: FileHandle) {
    this.#handle = handle;
  }

  /** Errors are FileErrors (ENOSPC, EACCES, …) naming the spool directory. */
  static async create(dir: string): Promise<Spool> {
    const path = join(dir, `.ferry-seed-upload-${randomBytes(12).toString('hex')}`);
    let handle: FileHandle;
    try {
      handle = await open(
        path,
        constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o600,
      );
    } catch (error) {
      throw toFileError(error, `creating an upload spool in ${dir}`);
    }
    try {
      await unlink(path);
    } catch (error) {
      await handle.close().catch(() => {});
      throw toFileError(error, `removing the name of the upload spool ${path}`);
    }
    return new Spool(handle);
  }

  /** Bytes appended so far. */
  get size(): number {
    return this.#size;
  }

  /** True when so much waits for the disk that the sender should be held back until drain(). */
  get backlogged(): boolean {
    return this.#pendingBytes >= BACKLOG_BYTES;
  }

  /** Appends a chunk (kept, not copied: the caller must not change it). Throws a write's failure. */
  append(chunk: Buffer): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (chunk.length === 0) return;
    this.#hash.update(chunk);
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    this.#size += chunk.length;
    if (this.#pendingBytes >= WRITE_BYTES) this.#startWrite();
  }

  /** Resolves once the backlog is below its limit (or everything is written). */
  async drain(): Promise<void> {
    while (this.#writing !== undefined && this.backlogged) await this.#writing;
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Writes out everything appended and returns the SHA-256 (hex) of it all. Only once. */
  async finish(): Promise<string> {
    while (this.#writing !== undefined || this.#pendingBytes > 0) {
      if (this.#writing === undefined) this.#startWrite();
      await this.#writing;
      if (this.#failure !== undefined) throw this.#failure;
    }
    if (this.#failure !== undefined) throw this.#failure;
    return this.#hash.digest('hex');
  }

  /** Reads `length` bytes at `offset` of what finish() wrote. */
  async read(offset: number, length: number): Promise<Buffer> {
    const data = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.#handle.read(data, done, length - done, offset + done);
      if (bytesRead === 0)
        throw new FileError('EIO', 'the upload spool is shorter than what was written to it');
      done += bytesRead;
    }
    return data;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#writing?.catch(() => {});
    this.#pending = [];
    this.#pendingBytes = 0;
    await this.#handle.close().catch(() => {});
  }

  #startWrite(): void {
    if (this.#writing !== undefined || this.#pendingBytes === 0 || this.#closed) return;
    const buffers = this.#pending;
    const bytes = this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    const at = this.#written;
    this.#writing = this.#writeAll(buffers, bytes, at).finally(() => {
      this.#writing = undefined;
      if (this.#pendingBytes >= WRITE_BYTES) this.#startWrite();
    });
  }

  // Never rejects: a failure is kept and thrown by the next append, drain or finish.
  async #writeAll(buffers: Buffer[], bytes: number, at: number): Promise<void> {
    try {
      let done = 0;
      let rest = buffers;
      while (done < bytes) {
        const { bytesWritten } = await this.#handle.writev(rest, at + done);
        if (bytesWritten <= 0) throw Object.assign(new Error('the disk wrote nothing'), { code: 'EIO' });
        done += bytesWritten;
        rest = skip(rest, bytesWritten);
      }
      this.#written = at + bytes;
    } catch (error) {
      this.#failure ??= toFileError(error, 'writing the upload spool');
    }
  }
}

/** `buffers` without their first `count` bytes (no copy). */
function skip(buffers: Buffer[], count: number): Buffer[] {
  let i = 0;
  while (i < buffers.length && count >= buffers[i]!.length) count -= buffers[i++]!.length;
  const rest = buffers.slice(i);
  if (count > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(count);
  return rest;
}
