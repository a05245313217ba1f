import { createHash, type Hash } from 'node:crypto';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  type ListPartsCommandOutput,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { BlockBitmap, type BlockRange, blockCountFor, blockLength } from '@ferry/protocol';
import { busyError, checkBlockToWrite, committedDigest, requireEveryBlock } from '../block-checks.js';
import { FileError } from '../errors.js';
import type { ClientPath } from '../paths.js';
import type { CommitOptions, CommitResult, Upload } from '../storage.js';
import { firstFailure, META_MTIME, META_SHA256, nameHash, type S3Bucket } from './bucket.js';
import { isNotFound } from './errors.js';

/** S3's smallest part (except the last), enforced by AWS and by Ceph RGW at completion. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's most parts in one upload. */
const MAX_PARTS = 10_000;
const MiB = 1024 * 1024;

/**
 * The part size of a file of `size` bytes: `preferred`, or larger when the file would need more than
 * 10,000 parts (rounded up to whole MiB). A part is a fixed byte range, so every server finds the same
 * parts in an upload another began; the size is part of the staging key for when configurations differ.
 */
export function partSizeFor(size: number, preferred: number): number {
  return Math.max(preferred, Math.ceil(size / MAX_PARTS / MiB) * MiB);
}

enum PartState {
  Empty = 0,
  Buffering = 1,
  Uploading = 2,
  /** In S3, as a part of the multipart upload. */
  Held = 3,
}

interface PartBuffer {
  memory: Buffer;
  filled: number;
}

export interface S3UploadOptions {
  bucket: S3Bucket;
  path: ClientPath;
  size: number;
  blockSize: number;
  identity: string;
  resume: boolean;
  /** Preferred part size (see partSizeFor). */
  partSize: number;
  /** Bytes of parts one upload may hold in memory (at least two parts). */
  maxBufferedBytes: number;
  /** Staging keys being written in this process (shared by the store): a second writer gets EBUSY. */
  inUse: Set<string>;
  /** Upload ids being written in this process, which the sweep leaves alone. */
  activeUploads: Set<string>;
  displayName: string;
}

interface Found {
  key: string;
  partSize: number;
  uploadId?: string;
  /** A staging object that a commit completed but did not place (EEXIST, or a stop in between). */
  staged?: { etag: string };
  parts: Map<number, string>;
}

/**
 * An upload into S3. A file of one part (the preferred part size, 8 MiB by default, or less) stays in
 * memory and is written with one PutObject at commit. A larger file is a multipart upload on a hidden
 * staging key below the prefix (`.ferry-partial-uploads/<hash of name, identity and size>-<part size>`):
 * each part is a fixed byte range, buffered in memory until every block in it arrived and then
 * uploaded, so what the upload holds lives in S3 itself (its upload id and parts) and any server
 * sharing the bucket resumes it. At most `maxBufferedBytes` of parts are in memory: a block of a later
 * part waits (its write() does not resolve) until the parts before it are uploaded and hashed.
 *
 * The whole file's SHA-256 is computed in order as blocks arrive. An upload resumed with parts this
 * process never saw cannot hash them (S3 does not serve parts before completion): its commit completes
 * the staging object and reads it back to hash it. Either way the digest is checked before the file
 * appears: a mismatch is EINTEGRITY and nothing is placed. The file is placed by a server-side copy of
 * the staging object (Ceph RGW copies by reference) with the digest and mtime in its metadata, and the
 * staging object is deleted.
 */
export class S3Upload implements Upload {
  readonly size: number;
  readonly blockSize: number;
  readonly blockCount: number;
  readonly resumed: boolean;
  readonly partSize: number;
  readonly partCount: number;

  readonly #bucket: S3Bucket;
  readonly #path: ClientPath;
  readonly #finalKey: string;
  readonly #stagingKey: string;
  readonly #name: string;
  readonly #inUse: Set<string>;
  readonly #activeUploads: Set<string>;
  readonly #inUseKey: string;
  /** Blocks in memory or in S3. */
  readonly #received: BlockBitmap;
  readonly #states: Uint8Array;
  readonly #buffers = new Map<number, PartBuffer>();
  readonly #spare: Buffer[] = [];
  readonly #etags: Map<number, string>;
  readonly #windowParts: number;
  /** Part uploads in progress; each settles (never rejects) when it has ended. */
  readonly #uploading = new Set<Promise<void>>();
  /** Writes of blocks whose parts are beyond the window, waiting for it to move. */
  readonly #waiting = new Map<number, { data: Buffer; resolve: () => void; reject: (e: unknown) => void }>();
  #uploadId: string | undefined;
  #creating: Promise<string> | undefined;
  /** Removal of earlier uploads of the same file (a fresh start), awaited before completing this one. */
  #cleanup: Promise<void> = Promise.resolve();
  /** Undefined once hashing in order is impossible (resumed parts this process never saw). */
  #hash: Hash | undefined = createHash('sha256');
  #hashed = 0;
  #digest: string | undefined;
  /** The lowest part not yet both held and hashed: parts below it need no memory. */
  #low = 0;
  #staged: { etag: string } | undefined;
  /** The staging object's content was hashed and matched (by this process). */
  #verified: string | undefined;
  #failure: FileError | undefined;
  #state: 'open' | 'committed' | 'closed' = 'open';
  #committing = false;

  private constructor(options: S3UploadOptions, found: Found | undefined, partSize: number) {
    this.size = options.size;
    this.blockSize = options.blockSize;
    this.blockCount = blockCountFor(options.size, options.blockSize);
    this.partSize = partSize;
    this.partCount = Math.ceil(options.size / partSize);
    this.#bucket = options.bucket;
    this.#path = options.path;
    this.#finalKey = options.bucket.key(options.path);
    this.#stagingKey = found?.key ?? S3Upload.stagingKey(options, partSize);
    this.#name = options.displayName;
    this.#inUse = options.inUse;
    this.#activeUploads = options.activeUploads;
    this.#inUseKey = S3Upload.stagingKey(options, 0);
    this.#received = new BlockBitmap(this.blockCount);
    this.#states = new Uint8Array(this.partCount);
    this.#etags = found?.parts ?? new Map();
    this.#windowParts = Math.max(2, Math.floor(options.maxBufferedBytes / partSize));
    this.#uploadId = found?.uploadId;
    this.#staged = found?.staged;
    if (this.#staged !== undefined) {
      this.#states.fill(PartState.Held);
    } else {
      for (const n of this.#etags.keys()) this.#states[n - 1] = PartState.Held;
    }
    const heldParts = this.#states.reduce((n, s) => n + (s === PartState.Held ? 1 : 0), 0);
    this.resumed = heldParts > 0;
    if (this.resumed) {
      this.#hash = undefined;
      for (const [start, end] of this.held()) this.#received.setRange(start, end);
      this.#advanceLow();
    }
  }

  /** The staging key prefix of a path, identity and size; with a part size, the whole key. */
  static stagingKey(
    options: Pick<S3UploadOptions, 'bucket' | 'path' | 'identity' | 'size'>,
    partSize: number,
  ): string {
    const hash = nameHash(
      'ferry s3 upload v1',
      options.bucket.key(options.path),
      options.identity,
      String(options.size),
    );
    return `${options.bucket.hiddenPrefix}${hash}-${partSize === 0 ? '' : String(partSize)}`;
  }

  /**
   * Starts an upload, or with `resume` continues the newest one found for the same path, identity and
   * size (its parts, or a staged object a commit left). Without `resume`, earlier ones are removed.
   */
  static async open(
    options: S3UploadOptions,
    checks: Promise<unknown> = Promise.resolve(),
  ): Promise<S3Upload> {
    checks.catch(() => {}); // awaited below; never an unhandled rejection if open fails first
    const inUseKey = S3Upload.stagingKey(options, 0);
    if (options.inUse.has(inUseKey)) {
      throw busyError(options.displayName);
    }
    options.inUse.add(inUseKey);
    try {
      const preferred = partSizeFor(options.size, options.partSize);
      if (options.size <= preferred) {
        await checks;
        return new S3Upload(options, undefined, Math.max(1, preferred));
      }
      const what = `preparing ${options.displayName}`;
      if (!options.resume) {
        // A fresh start: earlier uploads of the same file are removed in the background (listings are
        // slow on some stores: ~45 ms each on Ceph RGW), while this upload creates its own and stores
        // its parts; only its completion waits for the removal (see #complete), since an earlier
        // staged object may sit at the key it completes to.
        await checks;
        const upload = new S3Upload(options, undefined, preferred);
        upload.#cleanup = findEarlier(options.bucket, inUseKey, what)
          .then(async (earlier) => {
            // The listing holds this upload's own multipart upload if its creation went out first
            // (the creation is under way or done by the time the listing answers, or it never was).
            const own = upload.#uploadId ?? (await upload.#creating?.catch(() => undefined));
            await removeAll(
              options.bucket,
              earlier.filter((e) => e.uploadId === undefined || e.uploadId !== own),
            );
          })
          .catch(() => {});
        upload.#createEarly();
        return upload;
      }
      // The target's checks and the search for earlier uploads go out together: one round trip.
      const [, candidates] = await firstFailure([checks, findEarlier(options.bucket, inUseKey, what)]);
      const found =
        candidates.find((c) => c.staged !== undefined) ?? candidates.find((c) => c.uploadId !== undefined);
      if (found?.uploadId !== undefined && found.staged === undefined) {
        found.parts = await listParts(options.bucket, found, options.size, what);
      }
      await removeAll(
        options.bucket,
        candidates.filter((c) => c !== found),
      );
      const upload = new S3Upload(options, found, found?.partSize ?? preferred);
      if (upload.#uploadId !== undefined) options.activeUploads.add(upload.#uploadId);
      upload.#createEarly();
      return upload;
    } catch (error) {
      options.inUse.delete(inUseKey);
      throw options.bucket.error(error, `preparing ${options.displayName}`);
    }
  }

  held(): BlockRange[] {
    const ranges: BlockRange[] = [];
    let p = 0;
    while (p < this.partCount) {
      if (this.#states[p] !== PartState.Held) {
        p++;
        continue;
      }
      let end = p;
      while (end < this.partCount && this.#states[end] === PartState.Held) end++;
      // Blocks wholly inside the held bytes (parts and blocks need not align).
      const startByte = p * this.partSize;
      const endByte = Math.min(this.size, end * this.partSize);
      const first = Math.ceil(startByte / this.blockSize);
      const last = endByte === this.size ? this.blockCount : Math.floor(endByte / this.blockSize);
      if (last > first) ranges.push([first, last]);
      p = end;
    }
    return ranges;
  }

  /**
   * Takes block `index` into its part's buffer (resolving at once), or waits while its part is beyond
   * what may be buffered. A complete part is uploaded in the background; its failure rejects every
   * later write and the commit.
   */
  async write(index: number, data: Buffer): Promise<void> {
    this.#checkOpen();
    if (this.#failure !== undefined) throw this.#failure;
    checkBlockToWrite(this, index, data, this.#name);
    if (this.#received.has(index)) return;
    if (this.#waiting.has(index)) {
      return new Promise((resolve, reject) => {
        const earlier = this.#waiting.get(index)!;
        this.#waiting.set(index, {
          data: earlier.data,
          resolve: () => {
            earlier.resolve();
            resolve();
          },
          reject: (e) => {
            earlier.reject(e);
            reject(e);
          },
        });
      });
    }
    if (this.#fits(index)) {
      this.#store(index, data);
      return;
    }
    return new Promise((resolve, reject) => this.#waiting.set(index, { data, resolve, reject }));
  }

  /** Waits for the part uploads in progress: then what held() says is in S3. */
  async persist(): Promise<void> {
    await this.#settleUploads();
    if (this.#failure !== undefined) throw this.#failure;
  }

  async commit(options: CommitOptions): Promise<CommitResult> {
    this.#checkOpen();
    if (this.#committing) throw new FileError('EINVAL', `${this.#name} is already being committed`);
    this.#committing = true;
    try {
      return await this.#commit(options);
    } finally {
      this.#committing = false;
    }
  }

  async #commit(options: CommitOptions): Promise<CommitResult> {
    const expected = committedDigest(options.sha256);
    await this.persist();
    // Earlier uploads of the file are gone before the name is locked (placing holds the lock briefly).
    await this.#cleanup;
    requireEveryBlock(this.#received, this.#name);
    const what = `saving ${this.#name}`;
    const metadata: Record<string, string> = { [META_SHA256]: expected };
    if (options.mtimeMs !== undefined && Number.isFinite(options.mtimeMs))
      metadata[META_MTIME] = String(options.mtimeMs);
    if (this.#digest === undefined && this.#hash !== undefined && this.#hashed === this.size) {
      this.#digest = this.#hash.digest('hex');
      this.#hash = undefined;
    }
    if (this.#digest !== undefined && this.#digest !== expected)
      await this.#integrityFailure(this.#digest, expected);
    const bucket = this.#bucket;
    try {
      if (this.partCount <= 1 && this.#staged === undefined && this.#uploadId === undefined) {
        // One part: it is all in memory; one PutObject places it.
        const body = this.#buffers.get(0)?.memory.subarray(0, this.size) ?? Buffer.alloc(0);
        await bucket.placeNoReplace(this.#path, options.overwrite, what, {
          place: async (ifNoneMatch) => {
            await bucket.client.send(
              new PutObjectCommand({
                Bucket: bucket.bucket,
                Key: this.#finalKey,
                Body: body,
                ContentLength: this.size,
                Metadata: metadata,
                ...(ifNoneMatch !== undefined ? { IfNoneMatch: ifNoneMatch } : {}),
              }),
            );
          },
        });
      } else {
        // Completing the upload is quick and runs while the name is locked; reading a staged object
        // back to hash it may take long, and happens before.
        const verified = this.#digest !== undefined || this.#verified !== undefined;
        const prepare = async (): Promise<void> => {
          if (this.#staged === undefined) await this.#complete(what);
          if (this.#verified === undefined) {
            const actual = this.#digest ?? (await this.#hashStaged(options, what));
            if (actual !== expected) await this.#integrityFailure(actual, expected);
            this.#verified = actual;
          }
        };
        if (!verified) await prepare();
        await bucket.placeNoReplace(this.#path, options.overwrite, what, {
          ...(verified ? { prepare } : {}),
          place: (ifNoneMatch) =>
            bucket.copy(this.#stagingKey, this.#finalKey, this.size, {
              metadata,
              ...(this.#staged !== undefined ? { ifMatch: this.#staged.etag } : {}),
              ...(ifNoneMatch !== undefined ? { ifNoneMatch } : {}),
            }),
          cleanup: () => bucket.deleteQuietly(this.#stagingKey),
        });
      }
    } catch (error) {
      throw bucket.error(error, what);
    }
    this.#state = 'committed';
    this.#end();
    return { size: this.size, sha256: expected };
  }

  /** Discards the upload and throws EINTEGRITY. */
  async #integrityFailure(actual: string, expected: string): Promise<never> {
    await this.abort({ keep: false });
    throw new FileError(
      'EINTEGRITY',
      `${this.#name} failed verification: SHA-256 of the received data is ${actual}, the sender's is ${expected}; the partial upload was discarded, transfer it again`,
    );
  }

  /** Completes the multipart upload into the staging object. */
  async #complete(what: string): Promise<void> {
    const uploadId = await this.#ensureUploadId();
    await this.#cleanup;
    const parts = [...this.#etags.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([PartNumber, ETag]) => ({ PartNumber, ETag }));
    if (parts.length !== this.partCount) {
      throw new FileError(
        'EIO',
        `${what}: ${parts.length} of ${this.partCount} parts are in the object store`,
      );
    }
    const out = await this.#bucket.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: this.#bucket.bucket,
        Key: this.#stagingKey,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
    this.#activeUploads.delete(uploadId);
    this.#uploadId = undefined;
    this.#staged = { etag: out.ETag ?? '' };
  }

  /** Reads the staging object back and hashes it (parts another server received are not in memory here). */
  async #hashStaged(options: CommitOptions, what: string): Promise<string> {
    const hash = createHash('sha256');
    const out = await this.#bucket.client.send(
      new GetObjectCommand({
        Bucket: this.#bucket.bucket,
        Key: this.#stagingKey,
        ...(this.#staged?.etag ? { IfMatch: this.#staged.etag } : {}),
      }),
    );
    let done = 0;
    for await (const chunk of out.Body as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      done += chunk.length;
      options.onProgress?.(Math.min(done, this.size), this.size);
    }
    if (done !== this.size) {
      throw new FileError('EIO', `${what}: the staged upload holds ${done} bytes, expected ${this.size}`);
    }
    return hash.digest('hex');
  }

  /**
   * Ends the upload without committing; never throws. keep: parts in S3 stay for a resume (here or on
   * another server sharing the bucket; the sweep removes them after the expiry), parts in memory are
   * dropped. Otherwise the multipart upload (or a staged object) is removed.
   */
  async abort(options: { keep: boolean }): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'closed';
    const closed = new FileError('EINVAL', `the upload of ${this.#name} was ended`);
    for (const waiting of this.#waiting.values()) waiting.reject(closed);
    this.#waiting.clear();
    await this.#settleUploads();
    await this.#creating?.catch(() => {}); // a multipart upload created meanwhile is this one's too
    // The removal of earlier uploads ends before the name is free again: a later upload of the file
    // (a take-over) may resume or complete at the key it would delete.
    await this.#cleanup;
    if (!options.keep) {
      if (this.#uploadId !== undefined) await this.#bucket.abortUpload(this.#stagingKey, this.#uploadId);
      if (this.#staged !== undefined) await this.#bucket.deleteQuietly(this.#stagingKey);
    }
    this.#end();
  }

  // ---- internals ----

  #checkOpen(): void {
    if (this.#state !== 'open')
      throw new FileError('EINVAL', `the upload of ${this.#name} is ${this.#state}`);
  }

  #end(): void {
    this.#buffers.clear();
    this.#spare.length = 0;
    this.#inUse.delete(this.#inUseKey);
    if (this.#uploadId !== undefined) this.#activeUploads.delete(this.#uploadId);
  }

  /** Parts `[first, last]` that block `index` touches. */
  #partsOf(index: number): [number, number] {
    const start = index * this.blockSize;
    const end = start + blockLength(this.size, this.blockSize, index);
    return [Math.floor(start / this.partSize), Math.floor((end - 1) / this.partSize)];
  }

  #partLength(part: number): number {
    return Math.min(this.partSize, this.size - part * this.partSize);
  }

  /** Whether every part the block touches is held already or may have a buffer now. */
  #fits(index: number): boolean {
    const [first, last] = this.#partsOf(index);
    for (let p = first; p <= last; p++) {
      if (this.#states[p] !== PartState.Held && p >= this.#low + this.#windowParts) return false;
    }
    return true;
  }

  #store(index: number, data: Buffer): void {
    const start = index * this.blockSize;
    const end = start + data.length;
    const [first, last] = this.#partsOf(index);
    for (let p = first; p <= last; p++) {
      if (this.#states[p] === PartState.Held) continue;
      const partStart = p * this.partSize;
      const from = Math.max(start, partStart);
      const to = Math.min(end, partStart + this.#partLength(p));
      let buffer = this.#buffers.get(p);
      if (buffer === undefined) {
        // A whole part reuses a spare buffer; the last (or only) part gets just its length.
        const length = this.#partLength(p);
        const memory =
          length === this.partSize
            ? (this.#spare.pop() ?? Buffer.allocUnsafeSlow(this.partSize))
            : Buffer.allocUnsafeSlow(length);
        buffer = { memory, filled: 0 };
        this.#buffers.set(p, buffer);
        this.#states[p] = PartState.Buffering;
      }
      buffer.memory.set(data.subarray(from - start, to - start), from - partStart);
      buffer.filled += to - from;
      if (buffer.filled === this.#partLength(p) && (this.partCount > 1 || this.#uploadId !== undefined)) {
        this.#startUpload(p, buffer);
      }
    }
    this.#received.set(index);
    this.#advanceHash();
  }

  /** Hashes the blocks in memory that continue the hashed prefix; frees parts no longer needed. */
  #advanceHash(): void {
    const hash = this.#hash;
    if (hash !== undefined) {
      while (this.#hashed < this.size) {
        const index = this.#hashed / this.blockSize;
        if (!this.#received.has(index)) break;
        const end = this.#hashed + blockLength(this.size, this.blockSize, index);
        const [first, last] = this.#partsOf(index);
        for (let p = first; p <= last; p++) {
          const partStart = p * this.partSize;
          const from = Math.max(this.#hashed, partStart);
          const to = Math.min(end, partStart + this.#partLength(p));
          hash.update(this.#buffers.get(p)!.memory.subarray(from - partStart, to - partStart));
        }
        this.#hashed = end;
      }
    }
    this.#advanceLow();
  }

  #partDone(part: number): boolean {
    if (this.#states[part] !== PartState.Held) return false;
    return this.#hash === undefined || this.#hashed >= Math.min(this.size, (part + 1) * this.partSize);
  }

  /** Moves the window past parts held and hashed, reusing their memory; lets waiting blocks in. */
  #advanceLow(): void {
    const before = this.#low;
    while (this.#low < this.partCount && this.#partDone(this.#low)) {
      const buffer = this.#buffers.get(this.#low);
      if (buffer !== undefined) {
        this.#buffers.delete(this.#low);
        // Kept for the next part: an upload never holds more than its window of part buffers, and
        // reusing them spares the allocator (8 MiB allocated and freed again and again grows RSS).
        if (buffer.memory.length === this.partSize) this.#spare.push(buffer.memory);
      }
      this.#low++;
    }
    if (this.#low === before || this.#waiting.size === 0 || this.#state !== 'open') return;
    for (const index of [...this.#waiting.keys()].sort((a, b) => a - b)) {
      if (!this.#fits(index)) continue;
      const waiting = this.#waiting.get(index)!;
      this.#waiting.delete(index);
      this.#store(index, waiting.data);
      waiting.resolve();
    }
  }

  /**
   * Creates the multipart upload now rather than when the first part is full: creating one takes a
   * round trip of its own (50-70 ms on Ceph RGW), which then runs while the first blocks arrive. A
   * failure is not reported here: a part's upload that starts after it tries to create it again and
   * reports its own failure. An upload ended (kept for a resume) before its first part is stored
   * leaves an empty multipart upload, removed by the next upload of the file or by the sweep.
   */
  #createEarly(): void {
    if (this.#uploadId === undefined && this.#staged === undefined) {
      this.#ensureUploadId().catch(() => {});
    }
  }

  #ensureUploadId(): Promise<string> {
    if (this.#uploadId !== undefined) return Promise.resolve(this.#uploadId);
    this.#creating ??= this.#bucket.client
      .send(
        new CreateMultipartUploadCommand({
          Bucket: this.#bucket.bucket,
          Key: this.#stagingKey,
          Metadata: { 'ferry-size': String(this.size) },
        }),
      )
      .then((out) => {
        if (out.UploadId === undefined) throw new FileError('EIO', 'the object store gave no upload id');
        this.#uploadId = out.UploadId;
        this.#activeUploads.add(out.UploadId);
        return out.UploadId;
      })
      .finally(() => {
        this.#creating = undefined;
      });
    return this.#creating;
  }

  #startUpload(part: number, buffer: PartBuffer): void {
    this.#states[part] = PartState.Uploading;
    const body = buffer.memory.subarray(0, this.#partLength(part));
    const uploading: Promise<void> = this.#ensureUploadId()
      .then((uploadId) =>
        this.#bucket.client.send(
          new UploadPartCommand({
            Bucket: this.#bucket.bucket,
            Key: this.#stagingKey,
            UploadId: uploadId,
            PartNumber: part + 1,
            Body: body,
            ContentLength: body.length,
          }),
        ),
      )
      .then(
        (out) => {
          this.#etags.set(part + 1, out.ETag ?? '');
          this.#states[part] = PartState.Held;
          if (this.#state === 'open') this.#advanceLow();
        },
        (error: unknown) => {
          this.#states[part] = PartState.Buffering;
          let failure: FileError;
          try {
            failure = this.#bucket.error(error, `storing part ${part + 1} of ${this.#name}`);
          } catch (unexpected) {
            failure = new FileError(
              'EIO',
              `storing part ${part + 1} of ${this.#name}: ${String(unexpected)}`,
            );
          }
          this.#fail(failure);
        },
      )
      .finally(() => this.#uploading.delete(uploading));
    this.#uploading.add(uploading);
  }

  #fail(failure: FileError): void {
    this.#failure ??= failure;
    for (const waiting of this.#waiting.values()) waiting.reject(this.#failure);
    this.#waiting.clear();
  }

  async #settleUploads(): Promise<void> {
    while (this.#uploading.size > 0) await Promise.all([...this.#uploading]);
  }
}

/** Aborts the uploads and deletes the staged objects of `found`. */
async function removeAll(bucket: S3Bucket, found: readonly Found[]): Promise<void> {
  for (const other of found) {
    if (other.uploadId !== undefined) await bucket.abortUpload(other.key, other.uploadId);
    if (other.staged !== undefined) await bucket.deleteQuietly(other.key);
  }
}

/** Uploads and staged objects under a staging key prefix, newest first. */
async function findEarlier(bucket: S3Bucket, keyPrefix: string, what: string): Promise<Found[]> {
  const found: Found[] = [];
  const partSizeOf = (key: string): number => Number(key.slice(keyPrefix.length));
  const initiated = new Map<Found, number>();
  // Both listings go out together: one round trip instead of two.
  const listing = bucket.client.send(
    new ListObjectsV2Command({ Bucket: bucket.bucket, Prefix: keyPrefix, MaxKeys: 100 }),
  );
  listing.catch(() => {}); // awaited below; never an unhandled rejection if the uploads' listing fails
  for await (const out of bucket.uploadPages(keyPrefix, what, 100)) {
    for (const upload of out.Uploads ?? []) {
      if (upload.Key === undefined || upload.UploadId === undefined) continue;
      const partSize = partSizeOf(upload.Key);
      if (!Number.isSafeInteger(partSize) || partSize < 1) continue;
      const f: Found = { key: upload.Key, partSize, uploadId: upload.UploadId, parts: new Map() };
      found.push(f);
      initiated.set(f, upload.Initiated?.getTime() ?? 0);
    }
  }
  const objects = await listing;
  for (const object of objects.Contents ?? []) {
    if (object.Key === undefined) continue;
    const partSize = partSizeOf(object.Key);
    if (!Number.isSafeInteger(partSize) || partSize < 1) continue;
    const f: Found = { key: object.Key, partSize, staged: { etag: object.ETag ?? '' }, parts: new Map() };
    found.push(f);
    initiated.set(f, object.LastModified?.getTime() ?? 0);
  }
  return found.sort((a, b) => (initiated.get(b) ?? 0) - (initiated.get(a) ?? 0));
}

/** The parts of an upload that are whole (of the part size, or the last part's length), by number. */
async function listParts(
  bucket: S3Bucket,
  found: Found,
  size: number,
  what: string,
): Promise<Map<number, string>> {
  const parts = new Map<number, string>();
  const count = Math.ceil(size / found.partSize);
  let marker: string | undefined;
  for (let page = 0; page < 20; page++) {
    let out: ListPartsCommandOutput;
    try {
      out = await bucket.client.send(
        new ListPartsCommand({
          Bucket: bucket.bucket,
          Key: found.key,
          UploadId: found.uploadId,
          ...(marker !== undefined ? { PartNumberMarker: marker } : {}),
        }),
      );
    } catch (error) {
      if (isNotFound(error) || (error as { name?: string }).name === 'NoSuchUpload') return new Map();
      throw bucket.error(error, what);
    }
    for (const part of out.Parts ?? []) {
      const n = part.PartNumber;
      if (n === undefined || n < 1 || n > count || part.ETag === undefined) continue;
      const expected = Math.min(found.partSize, size - (n - 1) * found.partSize);
      if (part.Size === expected) parts.set(n, part.ETag);
    }
    if (out.IsTruncated !== true) break;
    marker = out.NextPartNumberMarker;
  }
  return parts;
}
