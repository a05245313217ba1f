import { GetObjectCommand } from '@aws-sdk/client-s3';
import { blockToRead } from '../block-checks.js';
import { FileError } from '../errors.js';
import { PrefixHasher } from '../local/block-io.js';
import type { ProgressCallback, ReadableFile } from '../storage.js';
import { META_SHA256, type ObjectInfo, type S3Bucket } from './bucket.js';
import { isNotFound, isPreconditionFailed } from './errors.js';

/** Bytes fetched by one ranged GET: chunks are fixed byte ranges, whatever the block size. */
const CHUNK_BYTES = 4 * 1024 * 1024;
/** Chunks fetched ahead of the one being read. */
const READ_AHEAD_CHUNKS = 3;
/** Chunks kept (recent ones and those ahead): memory per get is about this many chunks. */
const CACHED_CHUNKS = 4;

/**
 * An object opened for a get: blocks come from ranged GETs of about 4 MiB, each sent with `If-Match`
 * on the ETag seen at open, so a file replaced or removed during the get is EFILECHANGED, never sent
 * half old, half new. The next three chunks are fetched while one is read (bounded read-ahead).
 *
 * sha256(): a file ferry placed carries its verified SHA-256 in its metadata, which is returned after
 * checking that the object is still the one opened (the receiver checks what it got against it);
 * another object is hashed as it is read, the rest read back at the end.
 */
export class S3File implements ReadableFile {
  readonly size: number;
  readonly mtimeMs: number;
  readonly etag: string;
  readonly #bucket: S3Bucket;
  readonly #key: string;
  readonly #name: string;
  readonly #storedDigest: string | undefined;
  readonly #hasher: PrefixHasher | undefined;
  readonly #chunks = new Map<number, Promise<Buffer>>();
  #closed = false;

  constructor(bucket: S3Bucket, key: string, info: ObjectInfo, mtimeMs: number, displayName: string) {
    this.size = info.size;
    this.mtimeMs = mtimeMs;
    this.etag = info.etag;
    this.#bucket = bucket;
    this.#key = key;
    this.#name = displayName;
    const stored = info.metadata[META_SHA256];
    this.#storedDigest = stored !== undefined && /^[0-9a-f]{64}$/.test(stored) ? stored : undefined;
    this.#hasher =
      this.#storedDigest !== undefined
        ? undefined
        : new PrefixHasher(info.size, {
            readAt: (offset, length) => this.#get(offset, length),
            contiguousFrom: (offset) => this.size - offset,
            readBackEagerly: false,
          });
    // The first chunks are on their way while the reply announcing the transfer travels.
    if (this.size > 0) this.#readAhead(0);
  }

  async read(index: number, blockSize: number): Promise<Buffer> {
    this.#checkOpen();
    const { offset, length } = blockToRead(this.size, blockSize, index, this.#name);
    const first = Math.floor(offset / CHUNK_BYTES);
    const last = Math.floor((offset + length - 1) / CHUNK_BYTES);
    const pending = this.#chunk(first);
    const second = last === first ? undefined : this.#chunk(last);
    this.#readAhead(last + 1);
    const data = await pending;
    const from = offset - first * CHUNK_BYTES;
    if (second === undefined) return data.subarray(from, from + length);
    // A block across two chunks (chunks are fixed byte ranges, blocks of any size): joined.
    const rest = await second;
    return Buffer.concat([data.subarray(from), rest.subarray(0, length - (data.length - from))], length);
  }

  /** Starts fetching chunks from `next` on, up to READ_AHEAD_CHUNKS of them. */
  #readAhead(next: number): void {
    const lastChunk = Math.floor((this.size - 1) / CHUNK_BYTES);
    for (let c = next; c < next + READ_AHEAD_CHUNKS && c <= lastChunk; c++) {
      if (!this.#chunks.has(c)) this.#chunk(c).catch(() => {}); // its own reader reports a failure
    }
  }

  release(): void {
    // Chunks are dropped from the cache as reading moves on; the collector frees them.
  }

  async sha256(onProgress?: ProgressCallback): Promise<string> {
    this.#checkOpen();
    let digest: string;
    if (this.#storedDigest !== undefined) {
      digest = this.#storedDigest;
      onProgress?.(this.size, this.size);
    } else {
      try {
        digest = await this.#hasher!.digest(onProgress);
      } catch (error) {
        throw this.#bucket.error(error, `hashing ${this.#name}`);
      }
    }
    const now = await this.#bucket.head(this.#key, `checking ${this.#name}`).catch((error: unknown) => {
      if (error instanceof FileError && error.code === 'EIO') throw error;
      return undefined;
    });
    if (now === undefined || now.etag !== this.etag)
      throw this.#changed(now === undefined ? 'removed' : 'replaced');
    return digest;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#chunks.clear();
    await this.#hasher?.settle();
  }

  #chunk(chunkIndex: number): Promise<Buffer> {
    const cached = this.#chunks.get(chunkIndex);
    if (cached !== undefined) return cached;
    const start = chunkIndex * CHUNK_BYTES;
    const length = Math.min(CHUNK_BYTES, this.size - start);
    const loading = this.#get(start, length).then((data) => {
      this.#hasher?.offer(start, data);
      return data;
    });
    loading.catch(() => {
      if (this.#chunks.get(chunkIndex) === loading) this.#chunks.delete(chunkIndex);
    });
    this.#chunks.set(chunkIndex, loading);
    for (const oldest of this.#chunks.keys()) {
      if (this.#chunks.size <= CACHED_CHUNKS + READ_AHEAD_CHUNKS) break;
      this.#chunks.delete(oldest);
    }
    return loading;
  }

  /** Bytes `[offset, offset + length)` of the object as opened (EFILECHANGED if it is not that any more). */
  async #get(offset: number, length: number): Promise<Buffer> {
    this.#checkOpen();
    const what = `reading ${this.#name}`;
    try {
      const out = await this.#bucket.client.send(
        new GetObjectCommand({
          Bucket: this.#bucket.bucket,
          Key: this.#key,
          Range: `bytes=${offset}-${offset + length - 1}`,
          IfMatch: this.etag,
        }),
      );
      const data = Buffer.allocUnsafe(length);
      let at = 0;
      for await (const piece of out.Body as AsyncIterable<Uint8Array>) {
        if (at + piece.length > length)
          throw this.#changed(`longer than the ${this.size} bytes seen at open`);
        data.set(piece, at);
        at += piece.length;
      }
      if (at !== length) throw this.#changed(`shorter than the ${this.size} bytes seen at open`);
      return data;
    } catch (error) {
      if (isPreconditionFailed(error)) throw this.#changed('replaced');
      if (isNotFound(error)) throw this.#changed('removed');
      throw this.#bucket.error(error, what);
    }
  }

  #changed(how: string): FileError {
    return new FileError(
      'EFILECHANGED',
      `${this.#name} changed during the transfer (${how}); transfer it again`,
    );
  }

  #checkOpen(): void {
    if (this.#closed) throw new FileError('EINVAL', `${this.#name} is closed`);
  }
}
