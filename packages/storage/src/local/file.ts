import { constants, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { MAX_FILE_SIZE, MODE_MASK } from '@ferry/protocol';
import { blockToRead } from '../block-checks.js';
import { FileError, systemCode, toFileError } from '../errors.js';
import type { ProgressCallback, ReadableFile } from '../storage.js';
import type { Dir } from './beneath.js';
import { fileDataBuffer, PrefixHasher, SpareBuffers } from './block-io.js';
import { type FileSystem, withFileSystem } from './fs.js';

/** Bytes read from the file at once for block reads (rounded down to whole blocks). */
const CHUNK_BYTES = 1024 * 1024;
/** Chunks kept for blocks asked for again or out of order: memory is bounded by their total. */
const CACHED_CHUNKS = 4;
/** Chunk buffers kept for reuse once released (beyond these, released chunks go to the collector). */
const SPARE_CHUNKS = 4;

/**
 * One chunk of the file in memory. `users` counts blocks handed out (or waiting for the read) that
 * have not come back through release(); the memory is reused only when it is 0 and the chunk is
 * out of the cache.
 */
interface Chunk {
  memory: Buffer;
  loading: Promise<Buffer>;
  users: number;
  cached: boolean;
}

export interface OpenFileOptions {
  fs?: Partial<FileSystem>;
  /** How messages name the file (default: its base name), e.g. the client's path on a server. */
  displayName?: string;
}

/** What is at the file's name now (undefined: nothing), to tell whether it was replaced meanwhile. */
type StatAtName = () => Promise<Stats | undefined>;

const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

/** What kind of file a Stats describes, for messages and listings. */
export function describeFileType(stats: Stats): string {
  if (stats.isFile()) return 'regular file';
  if (stats.isDirectory()) return 'directory';
  if (stats.isSymbolicLink()) return 'symbolic link';
  if (stats.isFIFO()) return 'FIFO (named pipe)';
  if (stats.isSocket()) return 'socket';
  if (stats.isCharacterDevice()) return 'character device';
  if (stats.isBlockDevice()) return 'block device';
  return 'special file';
}

/** Throws EISDIR for a directory and EINVAL for anything else that is not a regular file. */
export function requireRegularFile(stats: Stats, name: string): void {
  if (stats.isFile()) return;
  if (stats.isDirectory()) throw new FileError('EISDIR', `${name} is a directory, not a file`);
  throw new FileError(
    'EINVAL',
    `${name} is a ${describeFileType(stats)}; only regular files can be transferred`,
  );
}

/**
 * A regular file opened read-only as the source of a transfer. Size, mtime and inode are recorded at
 * open; `checkUnchanged()` compares them again so that a file modified or replaced during the
 * transfer is reported (EFILECHANGED) instead of being sent half old, half new.
 */
export class LocalFile implements ReadableFile {
  readonly size: number;
  readonly mtimeMs: number;
  /** Permission bits (0..0o777). */
  readonly mode: number;
  readonly ino: number;
  readonly dev: number;
  readonly #handle: FileHandle;
  readonly #statAtName: StatAtName;
  readonly #name: string;
  readonly #hasher: PrefixHasher;
  /**
   * Chunks of #chunkBlockSize-byte blocks read recently or being read, by chunk index, least
   * recently used first; #newestChunk is the last one.
   */
  readonly #chunks = new Map<number, Chunk>();
  /** Chunks whose memory may come back for reuse: cached, or with blocks handed out. */
  readonly #byMemory = new Map<ArrayBufferLike, Chunk>();
  /** Chunk buffers no block points into any more, ready for the next read. */
  readonly #spare = new SpareBuffers(CHUNK_BYTES, SPARE_CHUNKS);
  #chunkBlockSize = 0;
  #newestChunk = -1;
  #closed = false;

  private constructor(handle: FileHandle, stats: Stats, statAtName: StatAtName, name: string) {
    this.size = stats.size;
    this.mtimeMs = stats.mtimeMs;
    this.mode = stats.mode & MODE_MASK;
    this.ino = stats.ino;
    this.dev = stats.dev;
    this.#handle = handle;
    this.#statAtName = statAtName;
    this.#name = name;
    this.#hasher = new PrefixHasher(stats.size, {
      readAt: (offset, length) => this.#readAt(offset, length),
      contiguousFrom: (offset) => this.size - offset,
      readBackEagerly: false,
    });
  }

  /**
   * Opens `path` for reading (following symbolic links: the caller's own files). Non-regular files are
   * refused: EISDIR for a directory, EINVAL for a FIFO, socket or device. The open is non-blocking so
   * that a FIFO cannot hang it, and the type is checked on the open descriptor.
   */
  static async open(path: string, options: OpenFileOptions = {}): Promise<LocalFile> {
    const fs = withFileSystem(options.fs);
    const name = options.displayName ?? basename(path);
    let handle: FileHandle;
    try {
      handle = await fs.open(path, READ_FLAGS);
    } catch (error) {
      throw toFileError(error, `opening ${name}`);
    }
    return LocalFile.#fromHandle(handle, name, () => fs.stat(path).catch(missingAsUndefined));
  }

  /**
   * Opens `name` in the directory `dir` for reading, never through a symbolic link (EINVAL if `name`
   * is one, e.g. swapped in since it was looked up). `statAtName` tells what is at the name later.
   */
  static async openAt(
    fs: FileSystem,
    dir: Dir,
    name: string,
    displayName: string,
    statAtName: StatAtName,
  ): Promise<LocalFile> {
    let handle: FileHandle;
    try {
      handle = await fs.open(dir.at(name), READ_FLAGS | constants.O_NOFOLLOW);
    } catch (error) {
      if (systemCode(error) === 'ELOOP') {
        throw new FileError('EINVAL', `${displayName} is a symbolic link where a regular file is required`, {
          cause: error,
        });
      }
      throw toFileError(error, displayName);
    }
    return LocalFile.#fromHandle(handle, displayName, statAtName);
  }

  static async #fromHandle(handle: FileHandle, name: string, statAtName: StatAtName): Promise<LocalFile> {
    try {
      const stats = await handle.stat();
      requireRegularFile(stats, name);
      if (stats.size > MAX_FILE_SIZE) {
        throw new FileError(
          'ETOOBIG',
          `${name} is ${stats.size} bytes; ferry transfers at most ${MAX_FILE_SIZE}`,
        );
      }
      return new LocalFile(handle, stats, statAtName, name);
    } catch (error) {
      await handle.close().catch(() => {});
      throw toFileError(error, `opening ${name}`);
    }
  }

  /** The open descriptor (for callers that verify where it points, e.g. via /proc/self/fd). */
  get fd(): number {
    return this.#handle.fd;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Block `index` as a fresh buffer (the last block may be short). EINVAL for an index past the end.
   *
   * Blocks are read from the file a chunk (about 1 MiB, whole blocks) at a time into a small cache
   * of recent chunks, so a sender asking for blocks one by one makes one read per chunk, not per
   * block; concurrent requests for one chunk share its read. Blocks are views into their chunk.
   */
  async read(index: number, blockSize: number): Promise<Buffer> {
    const { offset, length } = blockToRead(this.size, blockSize, index, this.#name);
    const blocksPerChunk = Math.floor(CHUNK_BYTES / blockSize);
    if (blocksPerChunk < 2) {
      // A chunk would be a single block: nothing to share, read it directly.
      const data = await this.#readAt(offset, length);
      this.#hasher.offer(offset, data);
      return data;
    }
    const chunkBytes = blocksPerChunk * blockSize;
    const chunkIndex = Math.floor(offset / chunkBytes);
    const chunk = this.#chunk(chunkIndex, chunkBytes, blockSize);
    // Counted before the wait, so the chunk cannot be reused while this read waits for it.
    chunk.users++;
    let data: Buffer;
    try {
      data = await chunk.loading;
    } catch (error) {
      chunk.users--;
      throw error;
    }
    const from = offset - chunkIndex * chunkBytes;
    // A view, not a copy (a copy per block doubled the sender's buffer churn). The chunk's memory is
    // reused only once every block read from it came back through release() and it left the cache;
    // a view that never comes back just leaves its chunk to the garbage collector.
    return data.subarray(from, from + length);
  }

  /** Takes back a block returned by read(): once a chunk has none out, its memory is reused. */
  release(data: Buffer): void {
    const chunk = this.#byMemory.get(data.buffer);
    if (chunk === undefined || chunk.users === 0) return;
    chunk.users--;
    this.#recycle(chunk);
  }

  /** Throws EFILECHANGED if the file's size, mtime or inode differ from those seen at open. */
  async checkUnchanged(): Promise<void> {
    this.#checkOpen();
    let now: Stats;
    let atPath: Stats | undefined;
    try {
      now = await this.#handle.stat();
      atPath = await this.#statAtName();
    } catch (error) {
      throw toFileError(error, `checking ${this.#name}`);
    }
    const changes: string[] = [];
    if (now.size !== this.size) changes.push(`size ${this.size} -> ${now.size}`);
    if (now.mtimeMs !== this.mtimeMs) changes.push('modification time');
    if (atPath === undefined) changes.push('removed');
    else if (atPath.ino !== this.ino || atPath.dev !== this.dev) changes.push('replaced by another file');
    if (changes.length > 0) {
      throw new FileError(
        'EFILECHANGED',
        `${this.#name} changed during the transfer (${changes.join(', ')}); transfer it again`,
      );
    }
  }

  /**
   * SHA-256 (hex) of the whole file as read through this handle. Blocks already read in order by
   * `read()` are not read again; the rest is read now, with progress reported. Ends with
   * `checkUnchanged()`, so a digest is only returned for a file that stayed the same.
   */
  async sha256(onProgress?: ProgressCallback): Promise<string> {
    this.#checkOpen();
    let digest: string;
    try {
      digest = await this.#hasher.digest(onProgress);
    } catch (error) {
      throw toFileError(error, `hashing ${this.#name}`);
    }
    await this.checkUnchanged();
    return digest;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#chunks.clear();
    this.#byMemory.clear();
    this.#spare.clear();
    await this.#hasher.settle();
    this.#hasher.discard();
    await this.#handle.close();
  }

  /** Chunk `chunkIndex` from the cache, or read (and hashed, if at the frontier) now. */
  #chunk(chunkIndex: number, chunkBytes: number, blockSize: number): Chunk {
    if (blockSize !== this.#chunkBlockSize) {
      for (const chunk of this.#chunks.values()) chunk.cached = false;
      this.#chunks.clear();
      this.#chunkBlockSize = blockSize;
      this.#newestChunk = -1;
    }
    const cached = this.#chunks.get(chunkIndex);
    if (cached !== undefined) {
      // Most recently used last, unless it already is (the common case: reads in order).
      if (chunkIndex !== this.#newestChunk) {
        this.#chunks.delete(chunkIndex);
        this.#chunks.set(chunkIndex, cached);
        this.#newestChunk = chunkIndex;
      }
      return cached;
    }
    const start = chunkIndex * chunkBytes;
    const length = Math.min(chunkBytes, this.size - start);
    // Every chunk gets CHUNK_BYTES (chunkBytes never exceeds it), so a chunk recycled after a
    // change of block size still holds any later chunk.
    const memory = this.#spare.take();
    const chunk: Chunk = { memory, loading: Promise.resolve(memory), users: 0, cached: true };
    this.#byMemory.set(memory.buffer, chunk);
    chunk.loading = this.#readInto(memory.subarray(0, length), start).then(
      (data) => {
        this.#hasher.offer(start, data);
        return data;
      },
      (error: unknown) => {
        // Not cached: a later request tries again (and reports the error again if it persists).
        if (this.#chunks.get(chunkIndex) === chunk) this.#chunks.delete(chunkIndex);
        chunk.cached = false;
        this.#byMemory.delete(memory.buffer); // never reused: a failed read may still be writing into it
        throw error;
      },
    );
    this.#chunks.set(chunkIndex, chunk);
    this.#newestChunk = chunkIndex;
    // Evicting a chunk still being read only drops it from the cache; its readers hold it (users),
    // so memory beyond the cache is bounded by the requests in progress and the blocks not released.
    for (const [oldestIndex, oldest] of this.#chunks) {
      if (this.#chunks.size <= CACHED_CHUNKS) break;
      this.#chunks.delete(oldestIndex);
      oldest.cached = false;
      this.#recycle(oldest);
    }
    return chunk;
  }

  /** Keeps a chunk's memory for the next read once it is out of the cache and no block points into it. */
  #recycle(chunk: Chunk): void {
    if (chunk.cached || chunk.users > 0 || this.#closed) return;
    if (this.#byMemory.get(chunk.memory.buffer) !== chunk) return;
    this.#byMemory.delete(chunk.memory.buffer);
    this.#spare.give(chunk.memory);
  }

  async #readAt(offset: number, length: number): Promise<Buffer> {
    this.#checkOpen();
    return this.#readInto(fileDataBuffer(length), offset);
  }

  /** Fills `data` from the file at `offset`. */
  async #readInto(data: Buffer, offset: number): Promise<Buffer> {
    this.#checkOpen();
    const length = data.length;
    let done = 0;
    try {
      while (done < length) {
        const { bytesRead } = await this.#handle.read(data, done, length - done, offset + done);
        if (bytesRead === 0) {
          throw new FileError(
            'EFILECHANGED',
            `${this.#name} became shorter during the transfer (expected ${this.size} bytes); transfer it again`,
          );
        }
        done += bytesRead;
      }
    } catch (error) {
      throw toFileError(error, `reading ${this.#name}`);
    }
    return data;
  }

  #checkOpen(): void {
    if (this.#closed) throw new FileError('EINVAL', `${this.#name} is closed`);
  }
}

/**
 * SHA-256 (hex) of a whole file, read in 1 MiB chunks with progress reported as bytes are hashed.
 * The same checks as a transfer source apply (regular files only; EFILECHANGED if it changes).
 */
export async function sha256File(
  path: string,
  onProgress?: ProgressCallback,
  options: OpenFileOptions = {},
): Promise<string> {
  const file = await LocalFile.open(path, options);
  try {
    return await file.sha256(onProgress);
  } finally {
    await file.close();
  }
}

function missingAsUndefined(error: unknown): undefined {
  if (systemCode(error) === 'ENOENT') return undefined;
  throw error;
}
