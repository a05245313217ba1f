import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { BlockBitmap, type BlockRange, blockCountFor, MIN_BLOCK_SIZE, MODE_MASK } from '@ferry/protocol';
import {
  busyError,
  checkBlockToWrite,
  checkUploadSize,
  committedDigest,
  requireEveryBlock,
} from '../block-checks.js';
import { FileError, systemCode, toFileError } from '../errors.js';
import { PARTIAL_PREFIX } from '../paths.js';
import type { CommitOptions, CommitResult, Upload } from '../storage.js';
import type { Dir } from './beneath.js';
import { fileDataBuffer, PrefixHasher } from './block-io.js';
import type { FileSystem } from './fs.js';
import { placeNoReplace } from './place.js';
import {
  convertBitmap,
  maxStateBytes,
  readState,
  STATE_SUFFIX,
  type StateFile,
  TMP_SUFFIX,
  writeState,
} from './sidecar.js';
import { unwritten, WriteRuns } from './write-runs.js';

export const DEFAULT_PERSIST_EVERY_BYTES = 8 * 1024 * 1024;
export const DEFAULT_PERSIST_EVERY_MS = 1000;
export interface LocalUploadOptions {
  fs: FileSystem;
  /** The directory the file appears in; the upload holds it from now on and closes it when it ends. */
  dir: Dir;
  /** The file's name in `dir`. */
  name: string;
  size: number;
  blockSize: number;
  /**
   * What the partial is a copy of (e.g. key name + source name + size + mtime). A partial is only
   * resumed for the same finalPath, identity and size; any other identity gets its own partial.
   */
  identity: string;
  /** Reuse the blocks of an earlier interrupted partial if there is one; otherwise start empty. */
  resume: boolean;
  /** Clock for sidecar timestamps and persistence pacing (ms since the epoch). */
  now?: () => number;
  /** Persist automatically once this many bytes were written since the last persist (0 = never). */
  persistEveryBytes?: number;
  /** ... or once this much time passed since the last persist, checked on each write (0 = never). */
  persistEveryMs?: number;
  /**
   * Partials currently open, by directory and name; open() adds to it and refuses (EBUSY) a partial
   * already in it, so two transfers never write one partial. Share one set per store.
   */
  inUse?: Set<string>;
  /** How messages name the file, e.g. the client's path on a server. */
  displayName: string;
  /** Called just before the file is moved into place; throw to refuse (e.g. the directory moved out). */
  beforePlace?: () => Promise<void>;
  /** Told the bytes of each run of blocks once it is written (space accounting). */
  onStored?: (bytes: number) => void;
  /** Called once when the upload has ended, whichever way. */
  onEnd?: () => void;
}

/**
 * An upload into a local directory: blocks are written at their offsets into a hidden partial file
 * next to the final name, a state sidecar records which blocks are safely on disk, and commit()
 * verifies the SHA-256, fsyncs and moves the file into place atomically. Every file is reached
 * through the directory's descriptor (see Dir), so a directory swapped for a symlink meanwhile cannot
 * redirect any of it.
 *
 * Crash safety: persist() fdatasyncs the data file before it writes the sidecar (temp file + fsync +
 * rename), so a persisted bitmap never claims a block that is not on disk. After a crash, reopening
 * with `resume: true` yields exactly the blocks of the last persist. A file of one block has no
 * sidecar: there is nothing partial to resume.
 *
 * Writes are coalesced: a block is buffered, contiguous buffered blocks form a run, and each run is
 * written with one positional write (when it reaches 1 MiB, or on the next turn of the event loop,
 * with one write in progress at a time so that runs grow under load). A block counts as held only
 * once its run's write succeeded, and write() resolves then; persist(), commit() and close() first
 * write out whatever is buffered.
 */
export class LocalUpload implements Upload {
  /** The partial data file's name in the directory. */
  readonly dataName: string;
  readonly size: number;
  readonly blockSize: number;
  readonly blockCount: number;
  readonly identity: string;
  /** True when open() found an earlier partial and kept its blocks. */
  readonly resumed: boolean;
  readonly createdAt: number;

  readonly #fs: FileSystem;
  readonly #dir: Dir;
  readonly #finalName: string;
  readonly #handle: FileHandle;
  readonly #bitmap: BlockBitmap;
  readonly #hasher: PrefixHasher;
  readonly #now: () => number;
  readonly #persistEveryBytes: number;
  readonly #persistEveryMs: number;
  readonly #inUse: Set<string> | undefined;
  readonly #inUseKey: string;
  readonly #beforePlace: (() => Promise<void>) | undefined;
  readonly #onStored: ((bytes: number) => void) | undefined;
  #onEnd: (() => void) | undefined;
  readonly #name: string;
  readonly #sidecar: boolean;
  #dirClosed = false;
  /** Set once the sidecar is removed for good (committed or discarded): no persist writes it again. */
  #sidecarFinal = false;
  #persistChain: Promise<void> = Promise.resolve();
  /** Settles (never rejects) when the commit in progress has ended. */
  #committing: Promise<void> | undefined;
  #autoPersist: Promise<void> | undefined;
  #failure: unknown;
  #bytesSincePersist = 0;
  #lastPersistAt: number;
  /** Blocks the sidecar on disk records (-1: no sidecar written by this upload yet). */
  #persistedCount = -1;
  #state: 'open' | 'committed' | 'closed' = 'open';
  /** Blocks buffered and being written, coalesced into runs. */
  readonly #runs: WriteRuns;

  private constructor(init: {
    options: LocalUploadOptions;
    handle: FileHandle;
    bitmap: BlockBitmap;
    dataName: string;
    inUseKey: string;
    resumed: boolean;
    createdAt: number;
    persistedCount: number;
    now: () => number;
  }) {
    const { options } = init;
    this.dataName = init.dataName;
    this.size = options.size;
    this.blockSize = options.blockSize;
    this.blockCount = init.bitmap.blockCount;
    this.identity = options.identity;
    this.resumed = init.resumed;
    this.createdAt = init.createdAt;
    this.#fs = options.fs;
    this.#dir = options.dir;
    this.#finalName = options.name;
    this.#handle = init.handle;
    this.#bitmap = init.bitmap;
    this.#now = init.now;
    this.#lastPersistAt = init.now();
    this.#persistedCount = init.persistedCount;
    this.#persistEveryBytes = options.persistEveryBytes ?? DEFAULT_PERSIST_EVERY_BYTES;
    this.#persistEveryMs = options.persistEveryMs ?? DEFAULT_PERSIST_EVERY_MS;
    this.#inUse = options.inUse;
    this.#inUseKey = init.inUseKey;
    this.#beforePlace = options.beforePlace;
    this.#onStored = options.onStored;
    this.#onEnd = options.onEnd;
    this.#name = options.displayName;
    this.#sidecar = this.blockCount > 1;
    this.#runs = new WriteRuns(this.blockSize, {
      write: (parts, offset) => this.#writeAt(parts, offset),
      describe: (start, end) =>
        `writing ${this.#name} (${end - start === 1 ? `block ${start}` : `blocks ${start}-${end - 1}`})`,
      stored: (start, end, offset, parts, bytes) => this.#stored(start, end, offset, parts, bytes),
    });
    this.#hasher = new PrefixHasher(this.size, {
      readAt: (offset, length) => this.#readAt(offset, length),
      contiguousFrom: (offset) => this.#contiguousFrom(offset),
      readBackEagerly: true,
    });
  }

  /** The partial data file's name for a target name and identity (stable, so a restart finds it again). */
  static partialName(name: string, identity: string, size: number): string {
    const hash = createHash('sha256')
      .update('ferry partial v2\0')
      .update(name)
      .update('\0')
      .update(identity)
      .update('\0')
      .update(String(size))
      .digest('hex')
      .slice(0, 32);
    return PARTIAL_PREFIX + hash;
  }

  /** Checks an upload's size and block size: EINVAL, or ETOOBIG past the protocol's limits. */
  static check(size: number, blockSize: number, name: string): void {
    checkUploadSize(size, blockSize, name);
  }

  /**
   * Creates the partial, or reopens an earlier one when `resume` is set and its sidecar matches
   * (identity, size; a different block size is converted). A sidecar that is missing, corrupt or
   * for another identity means starting empty. Errors: EINVAL (bad size/blockSize), ETOOBIG,
   * EBUSY (partial in use), and I/O errors as FileErrors. On failure the directory is closed.
   */
  static async open(options: LocalUploadOptions): Promise<LocalUpload> {
    const { size, blockSize, dir, fs } = options;
    const name = options.displayName;
    try {
      LocalUpload.check(size, blockSize, name);
      if (typeof options.identity !== 'string') {
        throw new FileError('EINVAL', 'partial identity must be a string');
      }
    } catch (error) {
      await dir.close();
      throw error;
    }
    const blockCount = blockCountFor(size, blockSize);
    const now = options.now ?? Date.now;
    const dataName = LocalUpload.partialName(options.name, options.identity, size);
    const inUseKey = `${dir.key}/${dataName}`;
    const inUse = options.inUse;
    if (inUse?.has(inUseKey)) {
      await dir.close();
      throw busyError(name);
    }
    inUse?.add(inUseKey);
    try {
      const dataPath = dir.at(dataName);
      let opened = options.resume ? await reopen(fs, dataPath, options, blockCount) : undefined;
      const resumed = opened !== undefined;
      opened ??= await create(fs, dataPath, options, blockCount, now());
      const upload = new LocalUpload({
        options,
        handle: opened.handle,
        bitmap: opened.bitmap,
        dataName,
        inUseKey,
        resumed,
        createdAt: opened.createdAt,
        persistedCount: resumed ? opened.bitmap.count : -1,
        now,
      });
      // The first sidecar is written in the background: until it exists, a crash leaves a data file
      // that no resume claims and expiry removes, which loses nothing (no block was held yet). Waiting
      // for its fsyncs would hold back the first block by a few milliseconds; a failure is reported
      // by the next write, commit or close like any background persist.
      if (!resumed) upload.#startPersist();
      upload.#hasher.kick();
      return upload;
    } catch (error) {
      inUse?.delete(inUseKey);
      await dir.close();
      options.onEnd?.();
      throw toFileError(error, `preparing ${name}`);
    }
  }

  /** A copy of the set of blocks written so far. */
  have(): BlockBitmap {
    return this.#bitmap.clone();
  }

  held(): BlockRange[] {
    return this.#bitmap.ranges();
  }

  has(index: number): boolean {
    return this.#bitmap.has(index);
  }

  /** Blocks written so far. */
  get received(): number {
    return this.#bitmap.count;
  }

  get complete(): boolean {
    return this.#bitmap.full;
  }

  /** First block not yet written (blockCount when complete). */
  cumulative(): number {
    return this.#bitmap.cumulative();
  }

  /**
   * Writes block `index` at its offset. `data` must be exactly the block's length (blockSize, or
   * less for the last block), and must not change until the returned promise settles. A block
   * already held is ignored. Resolves once the block is written (coalesced with its contiguous
   * neighbours) and marked held. Errors: EINVAL (bad index or length, or the partial is closed),
   * ENOSPC / EIO (the write of its run failed; no block of the run is marked held).
   */
  async write(index: number, data: Buffer): Promise<void> {
    this.#checkOpen();
    if (this.#failure !== undefined) throw this.#failure;
    checkBlockToWrite(this, index, data, this.#name);
    if (this.#bitmap.has(index)) return;
    return this.#runs.add(index, data);
  }

  /**
   * Makes the blocks written so far durable and records them in the sidecar: fdatasync the data
   * file, then write the sidecar to a temp file, fsync it and rename it over the old one. Calls are
   * serialized; each records the blocks held when it starts.
   */
  persist(): Promise<void> {
    const run = this.#persistChain.then(() => this.#persistNow());
    this.#persistChain = run.catch(() => {});
    return run;
  }

  /**
   * Verifies and moves the file into place. Requires every block (EINVAL otherwise). A digest
   * mismatch throws EINTEGRITY and discards the partial. Without `overwrite`, an existing file is
   * never replaced (EEXIST) and the partial is kept, so a retry with overwrite needs no re-send;
   * a directory is never replaced (EISDIR).
   *
   * Without overwrite the move is link(partial, final) + unlink(partial): link fails if the name
   * exists, so there is no window in which a file created by someone else is replaced. Where the file
   * system has no hard links, it falls back to check-then-rename and accepts that race. With
   * overwrite it is rename(), which replaces atomically.
   */
  async commit(options: CommitOptions): Promise<CommitResult> {
    this.#checkOpen();
    if (this.#committing !== undefined) {
      throw new FileError('EINVAL', `${this.#name} is already being committed`);
    }
    const run = this.#commit(options);
    this.#committing = run.then(
      () => {},
      () => {},
    );
    try {
      return await run;
    } finally {
      this.#committing = undefined;
    }
  }

  async #commit(options: CommitOptions): Promise<CommitResult> {
    const expected = committedDigest(options.sha256);
    await this.#settleBackground();
    requireEveryBlock(this.#bitmap, this.#name);
    let actual: string;
    try {
      actual = await this.#hasher.digest(options.onProgress);
    } catch (error) {
      throw toFileError(error, `verifying ${this.#name}`);
    }
    if (actual !== expected) {
      this.#state = 'closed'; // discarded here, not through abort(), which waits for this commit
      await this.#discard();
      throw new FileError(
        'EINTEGRITY',
        `${this.#name} failed verification: SHA-256 of the received data is ${actual}, the sender's is ${expected}; the partial was discarded, transfer it again`,
      );
    }
    try {
      if (options.mode !== undefined) await this.#handle.chmod(options.mode & MODE_MASK);
      if (options.mtimeMs !== undefined) {
        const seconds = options.mtimeMs / 1000;
        await this.#handle.utimes(seconds, seconds);
      }
      await this.#handle.sync();
    } catch (error) {
      throw toFileError(error, `saving ${this.#name}`);
    }
    await this.#beforePlace?.();
    await this.#place(options.overwrite);
    this.#state = 'committed';
    this.#sidecarFinal = true;
    await this.#dir.handle.sync().catch(() => {}); // the new name survives a crash (where it can sync)
    await this.#persistChain; // a persist already running (from a close() racing this) ends first
    await this.#removeQuietly(this.dataName + STATE_SUFFIX);
    await this.#handle.close().catch(() => {});
    await this.#end();
    return { size: this.size, sha256: actual };
  }

  /**
   * Ends the transfer without committing. keep: persist and leave the partial for a later resume;
   * otherwise delete the data file and sidecar. Never throws (it runs on error paths); use close()
   * to learn whether the final persist succeeded.
   */
  async abort(options: { keep: boolean }): Promise<void> {
    // A commit in progress ends first: placed, there is nothing to abort; failed, the upload is open.
    if (this.#committing !== undefined) await this.#committing;
    if (this.#state !== 'open') return;
    if (options.keep) {
      await this.close().catch(() => {});
      return;
    }
    this.#state = 'closed';
    await this.#discard();
  }

  /**
   * Persists and closes, keeping the partial for resume — unless it is of no use to one: nothing held,
   * or no sidecar on disk that says what is held (its first persist failed, say on a full disk); such a
   * partial is removed at once instead of taking room until it expires. The descriptor is closed even
   * if persist fails. A commit in progress (a peer leaving during its final sync) is let finish first.
   */
  async close(): Promise<void> {
    if (this.#committing !== undefined) await this.#committing;
    if (this.#state !== 'open') return;
    let failure: unknown;
    try {
      await this.#settleBackground();
      await this.persist();
    } catch (error) {
      failure = error;
    }
    this.#state = 'closed';
    await this.#runs.drain();
    await this.#hasher.settle();
    if (this.#persistedCount <= 0 || !this.#sidecar) {
      await this.#discard();
    } else {
      await this.#handle.close().catch(() => {});
      await this.#end();
    }
    if (failure !== undefined) throw failure;
  }

  /** Closes and removes the data file and its sidecar, and ends the upload. */
  async #discard(): Promise<void> {
    this.#sidecarFinal = true;
    await this.#settleBackground().catch(() => {});
    await this.#persistChain;
    await this.#handle.close().catch(() => {});
    // Sidecar first: a data file without a sidecar is never resumed, whatever happens next.
    await this.#removeQuietly(this.dataName + STATE_SUFFIX);
    await this.#removeQuietly(this.dataName + STATE_SUFFIX + TMP_SUFFIX);
    await this.#removeQuietly(this.dataName);
    await this.#end();
  }

  // ---- internals ----

  /** Writes `parts` one after another at `offset`, however short each writev comes back. */
  async #writeAt(parts: Buffer[], offset: number): Promise<void> {
    let done = 0;
    let rest = parts;
    while (rest.length > 0) {
      const { bytesWritten } = await this.#handle.writev(rest, offset + done);
      if (bytesWritten <= 0) throw Object.assign(new Error('the disk wrote nothing'), { code: 'EIO' });
      done += bytesWritten;
      rest = unwritten(rest, bytesWritten);
    }
  }

  /** Blocks start..end-1 are on disk: they are held now, hashed, counted toward the next persist. */
  #stored(start: number, end: number, offset: number, parts: readonly Buffer[], bytes: number): void {
    if (this.#state !== 'open') return;
    this.#bitmap.setRange(start, end);
    this.#hasher.offer(offset, parts);
    this.#bytesSincePersist += bytes;
    this.#onStored?.(bytes);
    this.#maybePersist();
  }

  #checkOpen(): void {
    if (this.#state !== 'open') {
      throw new FileError('EINVAL', `the partial file for ${this.#name} is ${this.#state}`);
    }
  }

  #maybePersist(): void {
    // Once every block is here the commit follows, and it makes them durable itself; a persist
    // started now would only make the commit wait for it. (close() still persists if none comes.)
    if (this.#autoPersist !== undefined || this.#bitmap.full) return;
    const byBytes = this.#persistEveryBytes > 0 && this.#bytesSincePersist >= this.#persistEveryBytes;
    const byTime = this.#persistEveryMs > 0 && this.#now() - this.#lastPersistAt >= this.#persistEveryMs;
    if (!byBytes && !byTime) return;
    this.#startPersist();
  }

  /** Persists in the background; a failure is reported by the next write(), commit() or close(). */
  #startPersist(): void {
    this.#autoPersist = this.persist()
      .catch((error: unknown) => {
        this.#failure ??= error;
      })
      .finally(() => {
        this.#autoPersist = undefined;
      });
  }

  async #settleBackground(): Promise<void> {
    await this.#runs.drain();
    if (this.#autoPersist !== undefined) await this.#autoPersist;
    await this.#hasher.settle();
    if (this.#failure !== undefined) throw this.#failure;
  }

  async #persistNow(): Promise<void> {
    if (this.#sidecarFinal || !this.#sidecar) return;
    // Blocks are marked held only once written, so whatever the bitmap says below was written
    // before the fdatasync; writing out the buffered blocks first just lets this persist claim them.
    await this.#runs.drain();
    const count = this.#bitmap.count;
    const bitmap = this.#bitmap.toBuffer();
    const startedAt = this.#now();
    this.#bytesSincePersist = 0;
    this.#lastPersistAt = startedAt;
    if (count === this.#persistedCount) return;
    try {
      await this.#handle.datasync();
      const state: StateFile = {
        version: 1,
        identity: this.identity,
        finalName: this.#name,
        size: this.size,
        blockSize: this.blockSize,
        bitmap: bitmap.toString('base64'),
        createdAt: this.createdAt,
        updatedAt: startedAt,
      };
      await writeState(this.#fs, this.#dir, this.dataName, state);
      this.#persistedCount = count;
    } catch (error) {
      throw toFileError(error, `saving progress of ${this.#name}`);
    }
  }

  async #place(overwrite: boolean): Promise<void> {
    const what = `saving ${this.#name}`;
    const from = this.#dir.at(this.dataName);
    const to = this.#dir.at(this.#finalName);
    try {
      if (overwrite) {
        await this.#fs.rename(from, to);
        return;
      }
      // The name appears only if nothing else holds it; the partial's own name goes after.
      if ((await placeNoReplace(this.#fs, from, to)) === 'linked') await this.#removeQuietly(this.dataName);
    } catch (error) {
      const code = systemCode(error);
      if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST')
        throw await this.#existsError(error);
      throw toFileError(error, what);
    }
  }

  async #existsError(cause: unknown): Promise<FileError> {
    const existing = await this.#fs.stat(this.#dir.at(this.#finalName)).catch(() => undefined);
    if (existing?.isDirectory()) {
      return new FileError(
        'EISDIR',
        `${this.#name} exists and is a directory; it cannot be replaced by a file`,
        {
          cause,
        },
      );
    }
    return new FileError(
      'EEXIST',
      `${this.#name} already exists; it was not replaced (ask to overwrite to replace it; the received data is kept for that)`,
      { cause },
    );
  }

  async #readAt(offset: number, length: number): Promise<Buffer> {
    const data = fileDataBuffer(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.#handle.read(data, done, length - done, offset + done);
      if (bytesRead === 0)
        throw new FileError('EIO', `the partial file of ${this.#name} is shorter than expected`);
      done += bytesRead;
    }
    return data;
  }

  #contiguousFrom(offset: number): number {
    if (offset >= this.size) return 0;
    const index = Math.floor(offset / this.blockSize);
    if (!this.#bitmap.has(index)) return 0;
    const end = Math.min(this.size, this.#bitmap.nextMissing(index) * this.blockSize);
    return end - offset;
  }

  /** Removes `name` from the upload's directory, if it is there. */
  async #removeQuietly(name: string): Promise<void> {
    await this.#fs.unlink(this.#dir.at(name)).catch(() => {});
  }

  /** Releases the directory (once no persist can use it any more) and the partial's name; tells the store. */
  async #end(): Promise<void> {
    if (this.#dirClosed) return;
    await this.#persistChain;
    this.#dirClosed = true;
    await this.#dir.close();
    this.#inUse?.delete(this.#inUseKey);
    const onEnd = this.#onEnd;
    this.#onEnd = undefined;
    onEnd?.();
  }
}

interface Opened {
  handle: FileHandle;
  bitmap: BlockBitmap;
  createdAt: number;
}

// An earlier partial is reused only if everything about it checks out; otherwise undefined.
async function reopen(
  fs: FileSystem,
  dataPath: string,
  options: LocalUploadOptions,
  blockCount: number,
): Promise<Opened | undefined> {
  let state: StateFile;
  try {
    state = await readState(fs, dataPath + STATE_SUFFIX, maxStateBytes(options.size, MIN_BLOCK_SIZE));
  } catch {
    return undefined;
  }
  if (state.identity !== options.identity || state.size !== options.size) return undefined;
  let bitmap: BlockBitmap;
  try {
    const stored = BlockBitmap.fromBuffer(
      blockCountFor(state.size, state.blockSize),
      Buffer.from(state.bitmap, 'base64'),
    );
    bitmap =
      state.blockSize === options.blockSize
        ? stored
        : convertBitmap(stored, state.blockSize, options.size, options.blockSize);
  } catch {
    return undefined;
  }
  if (bitmap.blockCount !== blockCount) return undefined;
  let handle: FileHandle;
  try {
    handle = await fs.open(dataPath, constants.O_RDWR | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if (systemCode(error) === 'ENOENT' || systemCode(error) === 'ELOOP') return undefined;
    throw error;
  }
  try {
    const stats = await handle.stat();
    // Exactly the file this module made: regular, sized, this user's (not one a local user planted for
    // the server to adopt and place), and not hard-linked to anything else.
    const mine = process.geteuid === undefined || stats.uid === process.geteuid();
    if (stats.isFile() && stats.size === options.size && stats.nlink === 1 && mine) {
      return { handle, bitmap, createdAt: state.createdAt };
    }
  } catch {
    // Fall through: start afresh.
  }
  await handle.close().catch(() => {});
  return undefined;
}

async function create(
  fs: FileSystem,
  dataPath: string,
  options: LocalUploadOptions,
  blockCount: number,
  now: number,
): Promise<Opened> {
  // Unlink-then-exclusive-create: never write through a symlink or a hard link planted at this name.
  for (const path of [dataPath + STATE_SUFFIX, dataPath + STATE_SUFFIX + TMP_SUFFIX, dataPath]) {
    await fs.unlink(path).catch((error: unknown) => {
      if (systemCode(error) !== 'ENOENT') throw error;
    });
  }
  const handle = await fs.open(
    dataPath,
    constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o666,
  );
  try {
    await handle.truncate(options.size);
  } catch (error) {
    await handle.close().catch(() => {});
    await fs.unlink(dataPath).catch(() => {});
    throw error;
  }
  return { handle, bitmap: new BlockBitmap(blockCount), createdAt: now };
}
