import { randomBytes } from 'node:crypto';
import {
  DeleteObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { type Entry, MAX_WALK_DEPTH, type WalkEntry } from '@ferry/protocol';
import { checkUploadSize } from '../block-checks.js';
import { decodeCursor, encodeCursor, pageLimit } from '../cursor.js';
import { FileError } from '../errors.js';
import { readFilesThroughReads, writeFilesThroughUploads } from '../generic.js';
import { type ClientPath, isPartialName, parseClientPath, showPath } from '../paths.js';
import type {
  FileContent,
  ListOptions,
  ListPage,
  Storage,
  UploadOptions,
  WalkOptions,
  WalkPage,
  WholeFile,
} from '../storage.js';
import { firstFailure, META_MTIME, type ObjectInfo, S3Bucket } from './bucket.js';
import { isPreconditionFailed, s3Code, s3Status } from './errors.js';
import { S3File } from './file.js';
import { type S3Location, showLocation } from './location.js';
import { MIN_PART_SIZE, S3Upload } from './upload.js';

export interface S3StorageOptions extends S3Location {
  /** The S3 API's URL (Ceph RGW, MinIO, …); default: AWS S3 of the region. */
  endpoint?: string;
  /** Address buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT (most self-hosted stores need it). */
  forcePathStyle?: boolean;
  /** Default: the SDK's chain (AWS_REGION, the profile), else us-east-1 when an endpoint is given. */
  region?: string;
  /** Default: the SDK's chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, …). */
  credentials?: S3ClientConfig['credentials'];
  /** Preferred part size of multipart uploads (at least 5 MiB; default 8 MiB). */
  partSize?: number;
  /** Bytes of parts one upload may buffer (at least two parts; default 32 MiB: four 8 MiB parts). */
  maxBufferedBytes?: number;
  /** Clock for the expiry sweep (ms since the epoch). */
  now?: () => number;
}

export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
export const DEFAULT_MAX_BUFFERED_BYTES = 32 * 1024 * 1024;
/** Greatest code point: listing resumes after every key that continues a directory's prefix. */
const AFTER_PREFIX = '\u{10FFFF}';

/**
 * Files in an S3 bucket (below an optional prefix), served like a directory: paths are keys below the
 * prefix, with the same rules as on disk (no '..', no absolute names, nothing outside the prefix).
 * Directories are prefixes: one exists while it has a marker object (`name/`, which mkdir writes) or
 * anything below it. Uploads are S3 multipart uploads that any server sharing the bucket can resume
 * (see S3Upload); ferry's own objects live under `.ferry-partial-uploads/` and are never listed.
 * See packages/storage/README.md for what is and is not atomic.
 */
export class S3Storage implements Storage {
  readonly location: string;
  readonly #bucket: S3Bucket;
  readonly #options: S3StorageOptions;
  readonly #inUse = new Set<string>();
  readonly #activeUploads = new Set<string>();
  #writable: boolean;

  private constructor(bucket: S3Bucket, options: S3StorageOptions, writable: boolean) {
    this.#bucket = bucket;
    this.#options = options;
    this.#writable = writable;
    this.location = showLocation(options);
  }

  /**
   * Connects and checks the bucket: ENOENT if it does not exist, EACCES if the credentials are refused,
   * EIO if the endpoint cannot be reached. Whether it accepts writes is learned by writing (and
   * removing) a small object under `.ferry-partial-uploads/`.
   */
  static async open(options: S3StorageOptions): Promise<S3Storage> {
    const partSize = options.partSize ?? DEFAULT_PART_SIZE;
    if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE) {
      throw new FileError(
        'EINVAL',
        `the part size must be at least ${MIN_PART_SIZE} bytes (S3's smallest part)`,
      );
    }
    const region = options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
    const client = new S3Client({
      ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
      ...(region !== undefined ? { region } : options.endpoint !== undefined ? { region: 'us-east-1' } : {}),
      ...(options.forcePathStyle === true ? { forcePathStyle: true } : {}),
      ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
      // Checksums only where S3 requires them: older self-hosted stores reject the newer trailers, and
      // every request is signed with its payload's SHA-256 anyway.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: 5000, requestTimeout: 120_000 },
      maxAttempts: 3,
    });
    const endpoint = options.endpoint ?? 'AWS S3';
    const bucket = new S3Bucket(client, options.bucket, options.prefix, endpoint);
    const where = `${showLocation(options)} at ${endpoint}`;
    try {
      await client.send(new HeadBucketCommand({ Bucket: options.bucket }));
    } catch (error) {
      client.destroy();
      const status = s3Status(error);
      const code = s3Code(error);
      if (status === 404 || code === 'NoSuchBucket' || code === 'NotFound') {
        throw new FileError('ENOENT', `serving ${where}: the bucket ${options.bucket} does not exist`, {
          cause: error,
        });
      }
      if (status === 403 || status === 400 || status === 401) {
        throw new FileError(
          'EACCES',
          `serving ${where}: the object store refused access to the bucket (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)`,
          { cause: error },
        );
      }
      throw bucket.error(error, `serving ${where}`);
    }
    let writable = true;
    const probe = `${bucket.hiddenPrefix}probe-${randomBytes(8).toString('hex')}`;
    try {
      await client.send(
        new PutObjectCommand({ Bucket: options.bucket, Key: probe, Body: Buffer.alloc(0), ContentLength: 0 }),
      );
      await bucket.deleteQuietly(probe);
    } catch (error) {
      if (s3Status(error) !== 403) {
        client.destroy();
        throw bucket.error(error, `serving ${where}`);
      }
      writable = false;
    }
    return new S3Storage(bucket, { ...options, partSize }, writable);
  }

  async writable(): Promise<boolean> {
    return this.#writable;
  }

  async close(): Promise<void> {
    this.#bucket.client.destroy();
  }

  async stat(relPath: string): Promise<Entry> {
    const path = parseClientPath(relPath);
    const what = `stat ${showPath(path.rel)}`;
    const name = path.segments.at(-1) ?? '';
    if (path.segments.length === 0) return { name, type: 'dir', size: 0, mtimeMs: 0 };
    const object = await this.#bucket.head(this.#bucket.key(path), what);
    if (object !== undefined) return { name, type: 'file', size: object.size, mtimeMs: mtimeOf(object) };
    const dir = await this.#bucket.dir(path, what);
    if (dir !== undefined) return { name, type: 'dir', size: 0, mtimeMs: dir.mtimeMs };
    throw new FileError('ENOENT', `${showPath(path.rel)}: no such file or directory`);
  }

  /**
   * One page of a directory in the store's key order (UTF-8 bytes, a directory counting as its name
   * followed by '/'; this is name order except where a name continues another with a character below
   * '/'). Files show the store's LastModified (stat and get show the modification time the client gave).
   */
  async list(dirPath: string, options: ListOptions = {}): Promise<ListPage> {
    const path = parseClientPath(dirPath);
    const limit = pageLimit(options.limit, 'list');
    const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor, path.rel);
    const what = `listing ${showPath(path.rel)}`;
    const prefix = this.#bucket.dirPrefix(path);
    const entries: Entry[] = [];
    let bytes = 2;
    let last: string | undefined;
    let seenAny = false;
    let more = false;
    const startAfter =
      after === undefined ? undefined : prefix + (after.endsWith('/') ? after + AFTER_PREFIX : after);
    const listing = {
      prefix,
      delimiter: '/',
      ...(startAfter !== undefined ? { startAfter } : {}),
      maxKeys: () => Math.min(1000, limit - entries.length + 1),
    };
    pages: for await (const out of this.#bucket.objectPages(listing, what)) {
      const items: Array<{ suffix: string; entry?: Entry }> = [];
      for (const object of out.Contents ?? []) {
        if (object.Key === undefined) continue;
        const suffix = object.Key.slice(prefix.length);
        items.push({
          suffix,
          entry: {
            name: suffix,
            type: 'file',
            size: object.Size ?? 0,
            mtimeMs: object.LastModified?.getTime() ?? 0,
          },
        });
      }
      for (const common of out.CommonPrefixes ?? []) {
        if (common.Prefix === undefined) continue;
        const suffix = common.Prefix.slice(prefix.length);
        items.push({ suffix, entry: { name: suffix.slice(0, -1), type: 'dir', size: 0, mtimeMs: 0 } });
      }
      items.sort((a, b) => Buffer.compare(Buffer.from(a.suffix), Buffer.from(b.suffix)));
      for (const item of items) {
        seenAny = true;
        const entry = item.entry!;
        if (item.suffix === '' || entry.name === '' || isPartialName(entry.name)) continue; // marker, hidden
        if (entries.length >= limit) {
          more = true;
          break pages;
        }
        const size = Buffer.byteLength(JSON.stringify(entry)) + 1;
        if (options.maxBytes !== undefined && entries.length > 0 && bytes + size > options.maxBytes) {
          more = true;
          break pages;
        }
        bytes += size;
        entries.push(entry);
        last = item.suffix;
      }
    }
    if (!seenAny && after === undefined && path.segments.length > 0) {
      if ((await this.#bucket.head(this.#bucket.key(path), what)) !== undefined) {
        throw new FileError('ENOTDIR', `${showPath(path.rel)} is not a directory`);
      }
      throw new FileError('ENOENT', `${showPath(path.rel)}: no such file or directory`);
    }
    const page: ListPage = { entries };
    if (more && last !== undefined) page.next = encodeCursor(path.rel, last);
    return page;
  }

  async openRead(relPath: string): Promise<S3File> {
    const path = parseClientPath(relPath);
    if (path.segments.length === 0) throw new FileError('EISDIR', 'the root directory is not a file');
    const what = `opening ${showPath(path.rel)}`;
    const key = this.#bucket.key(path);
    const object = await this.#bucket.head(key, what);
    if (object === undefined) {
      if ((await this.#bucket.dir(path, what)) !== undefined) {
        throw new FileError('EISDIR', `${showPath(path.rel)} is a directory, not a file`);
      }
      throw new FileError('ENOENT', `${showPath(path.rel)}: no such file or directory`);
    }
    return new S3File(this.#bucket, key, object, mtimeOf(object), showPath(path.rel));
  }

  async beginUpload(relPath: string, options: UploadOptions): Promise<S3Upload> {
    const path = parseClientPath(relPath);
    if (path.segments.length === 0)
      throw new FileError('EISDIR', 'the root directory cannot be written as a file');
    const name = showPath(path.rel);
    checkUploadSize(options.size, options.blockSize, name);
    if (typeof options.identity !== 'string')
      throw new FileError('EINVAL', 'upload identity must be a string');
    const what = `writing ${name}`;
    this.#requireWritable(what);
    const key = this.#bucket.key(path);
    // Checked together (one round trip), failures reported in this order.
    const checks = firstFailure([
      this.#bucket.requireParent(path, what),
      this.#bucket.dir(path, what).then((dir) => {
        if (dir !== undefined) throw new FileError('EISDIR', `${name} is a directory`);
      }),
      options.overwrite
        ? Promise.resolve()
        : this.#bucket.head(key, what).then((existing) => {
            if (existing !== undefined) {
              throw new FileError('EEXIST', `${name} already exists (ask to overwrite to replace it)`);
            }
          }),
    ]);
    return S3Upload.open(
      {
        bucket: this.#bucket,
        path,
        size: options.size,
        blockSize: options.blockSize,
        identity: options.identity,
        resume: options.resume,
        partSize: this.#options.partSize ?? DEFAULT_PART_SIZE,
        maxBufferedBytes: this.#options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES,
        inUse: this.#inUse,
        activeUploads: this.#activeUploads,
        displayName: name,
      },
      checks,
    );
  }

  /**
   * Renames a file: a server-side copy (only of the version checked, metadata kept), then a delete of
   * the old name if it still holds that version. Not atomic: for a moment both names exist with the
   * same content, and a get of the old name in progress fails (EFILECHANGED) once it is deleted. Without overwrite the new name is placed
   * like an upload's (never replacing a file, even one placed meanwhile by another server). Directories
   * are not renamed (that would copy every object below them): EINVAL.
   */
  async rename(from: string, to: string, options: { overwrite: boolean }): Promise<void> {
    const src = parseClientPath(from);
    const dst = parseClientPath(to);
    if (src.segments.length === 0 || dst.segments.length === 0) {
      throw new FileError('EINVAL', 'the root directory cannot be renamed or replaced');
    }
    const what = `renaming ${showPath(src.rel)} to ${showPath(dst.rel)}`;
    this.#requireWritable(what);
    const srcKey = this.#bucket.key(src);
    const dstKey = this.#bucket.key(dst);
    const object = await this.#bucket.head(srcKey, what);
    if (object === undefined) {
      if ((await this.#bucket.dir(src, what)) !== undefined) {
        throw new FileError('EINVAL', `${showPath(src.rel)} is a directory; an S3 store renames files only`);
      }
      throw new FileError('ENOENT', `${showPath(src.rel)}: no such file or directory`);
    }
    if (srcKey === dstKey) return;
    await this.#bucket.requireParent(dst, what);
    try {
      await this.#bucket.placeNoReplace(dst, options.overwrite, what, {
        place: (ifNoneMatch) =>
          this.#bucket.copy(srcKey, dstKey, object.size, {
            ifMatch: object.etag,
            ...(ifNoneMatch !== undefined ? { ifNoneMatch } : {}),
          }),
      });
    } catch (error) {
      if (error instanceof FileError && error.code === 'EEXIST') {
        throw new FileError('EEXIST', `${showPath(dst.rel)} already exists (ask to overwrite to replace it)`);
      }
      if (isPreconditionFailed(error)) {
        throw new FileError(
          'EFILECHANGED',
          `${showPath(src.rel)} changed while it was being renamed; try again`,
        );
      }
      throw this.#bucket.error(error, what);
    }
    // The old name goes only if it still holds the version copied: a file put there meanwhile stays.
    // (If-Match makes that exact where the store honours it on deletes; Ceph RGW 16 ignores it, which
    // leaves the moment between this check and the delete.)
    const now = await this.#bucket.head(srcKey, what);
    if (now?.etag !== object.etag) return;
    try {
      await this.#bucket.client.send(
        new DeleteObjectCommand({ Bucket: this.#bucket.bucket, Key: srcKey, IfMatch: object.etag }),
      );
    } catch (error) {
      if (!isPreconditionFailed(error) && s3Status(error) !== 404) throw this.#bucket.error(error, what);
    }
  }

  async delete(relPath: string): Promise<void> {
    const path = parseClientPath(relPath);
    if (path.segments.length === 0) throw new FileError('EISDIR', 'the root directory cannot be deleted');
    const what = `deleting ${showPath(path.rel)}`;
    this.#requireWritable(what);
    const key = this.#bucket.key(path);
    if ((await this.#bucket.head(key, what)) === undefined) {
      if ((await this.#bucket.dir(path, what)) !== undefined) {
        throw new FileError('EISDIR', `${showPath(path.rel)} is a directory; ferry deletes files only`);
      }
      throw new FileError('ENOENT', `${showPath(path.rel)}: no such file or directory`);
    }
    await this.#bucket.delete(key, what);
  }

  /**
   * Creates a directory: a marker object `name/` (zero bytes), so that an empty directory exists and
   * is listed; with `parents`, every missing level gets one. EEXIST if the name exists; ENOENT if its
   * parent does not (without `parents`).
   */
  async mkdir(relPath: string, options: { parents?: boolean } = {}): Promise<void> {
    const path = parseClientPath(relPath);
    const what = `creating ${showPath(path.rel)}`;
    if (path.segments.length === 0) {
      if (options.parents === true) return;
      throw new FileError('EEXIST', 'the root directory already exists');
    }
    this.#requireWritable(what);
    if (options.parents === true) {
      // Every level gets its marker, so that each directory exists on its own (see placeNoReplace).
      for (let i = 1; i <= path.segments.length; i++) {
        const segments = path.segments.slice(0, i);
        const at = { rel: segments.join('/'), segments };
        if ((await this.#bucket.head(this.#bucket.key(at), what)) !== undefined) {
          throw new FileError(
            'EEXIST',
            `${showPath(path.rel)}: a file is in the way of a directory (${showPath(at.rel)})`,
          );
        }
        if ((await this.#bucket.head(this.#bucket.dirPrefix(at), what)) === undefined)
          await this.#marker(at, false, what);
      }
      return;
    }
    await this.#bucket.requireParent(path, what);
    const taken =
      (await this.#bucket.dir(path, what)) !== undefined ||
      (await this.#bucket.head(this.#bucket.key(path), what)) !== undefined;
    if (taken) throw new FileError('EEXIST', `${showPath(path.rel)} already exists`);
    await this.#marker(path, true, what);
  }

  /**
   * Removes an empty directory: its marker object. ENOTEMPTY if any object (but its own marker and
   * ferry's hidden ones) has its prefix; ENOTDIR for a file; ENOENT if there is neither marker nor
   * content. Checking and deleting are two requests: a file put into it in between stays, with its
   * directory then implied by its name.
   */
  async rmdir(relPath: string): Promise<void> {
    const path = parseClientPath(relPath);
    if (path.segments.length === 0) throw new FileError('EINVAL', 'the root directory cannot be removed');
    const what = `removing ${showPath(path.rel)}`;
    this.#requireWritable(what);
    if ((await this.#bucket.head(this.#bucket.key(path), what)) !== undefined) {
      throw new FileError('ENOTDIR', `${showPath(path.rel)} is not a directory`);
    }
    const prefix = this.#bucket.dirPrefix(path);
    let marker = false;
    let out: ListObjectsV2CommandOutput;
    try {
      out = await this.#bucket.client.send(
        new ListObjectsV2Command({ Bucket: this.#bucket.bucket, Prefix: prefix, MaxKeys: 1000 }),
      );
    } catch (error) {
      throw this.#bucket.error(error, what);
    }
    for (const object of out.Contents ?? []) {
      const suffix = (object.Key ?? '').slice(prefix.length);
      if (suffix === '') marker = true;
      else if (!suffix.split('/').some(isPartialName)) {
        throw new FileError('ENOTEMPTY', `${showPath(path.rel)} is not empty`);
      }
    }
    if (!marker) throw new FileError('ENOENT', `${showPath(path.rel)}: no such file or directory`);
    await this.#bucket.delete(prefix, what);
  }

  /**
   * One page of the tree below `dir`, in key order (see Storage.walk): a directory is an entry before
   * the first key below it (from its marker, or implied by a file's name); each key is an entry once.
   * The cursor is the last key done, so a walk goes on after a restart of the server.
   */
  async walk(dirPath: string, options: WalkOptions = {}): Promise<WalkPage> {
    const path = parseClientPath(dirPath);
    const limit = pageLimit(options.limit, 'walk');
    const tag = `walk\0${path.rel}`;
    const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor, tag);
    const what = `walking ${showPath(path.rel)}`;
    if (path.segments.length > 0 && after === undefined) {
      if ((await this.#bucket.head(this.#bucket.key(path), what)) !== undefined) {
        throw new FileError('ENOTDIR', `${showPath(path.rel)} is not a directory`);
      }
      if ((await this.#bucket.dir(path, what)) === undefined) {
        throw new FileError('ENOENT', `${showPath(path.rel)}: no such file or directory`);
      }
    }
    const prefix = this.#bucket.dirPrefix(path);
    const entries: WalkEntry[] = [];
    let bytes = 2 + 64; // the page's brackets and its cursor's room
    let previous = after ?? '';
    let done: string | undefined;
    let more = false;
    const listing = {
      prefix,
      ...(after !== undefined ? { startAfter: prefix + after } : {}),
      maxKeys: () => 1000,
    };
    pages: for await (const out of this.#bucket.objectPages(listing, what)) {
      for (const object of out.Contents ?? []) {
        const suffix = (object.Key ?? '').slice(prefix.length);
        const names = suffix.split('/');
        if (suffix === '' || names.some(isPartialName)) continue; // the directory's marker; ferry's own
        if (names.length - (suffix.endsWith('/') ? 1 : 0) > MAX_WALK_DEPTH) {
          throw new FileError('ETOOBIG', `${showPath(path.rel)} is more than ${MAX_WALK_DEPTH} levels deep`);
        }
        // Keys below one directory are contiguous in key order: a directory is new unless the key
        // before this one was below it too.
        const found: WalkEntry[] = [];
        const dirs = names.length - 1;
        for (let i = 1; i <= dirs; i++) {
          const dir = names.slice(0, i).join('/');
          if (!previous.startsWith(`${dir}/`)) {
            const mtimeMs = i === dirs && suffix.endsWith('/') ? (object.LastModified?.getTime() ?? 0) : 0;
            found.push({ path: dir, type: 'dir', size: 0, mtimeMs });
          }
        }
        if (!suffix.endsWith('/')) {
          found.push({
            path: suffix,
            type: 'file',
            size: object.Size ?? 0,
            mtimeMs: object.LastModified?.getTime() ?? 0,
          });
        }
        const size = found.reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e)) + 1, 0);
        const full =
          entries.length + found.length > limit ||
          (options.maxBytes !== undefined && bytes + size > options.maxBytes);
        if (entries.length > 0 && full) {
          more = true;
          break pages;
        }
        entries.push(...found);
        bytes += size;
        previous = suffix;
        done = suffix;
      }
    }
    const page: WalkPage = { entries };
    if (more && done !== undefined) page.next = encodeCursor(tag, done);
    return page;
  }

  /** Small files through uploads, one after another (S3 has no faster way to write them whole). */
  writeFiles(
    files: readonly WholeFile[],
    options: { overwrite: boolean },
  ): Promise<Array<FileError | undefined>> {
    return writeFilesThroughUploads(this, files, options);
  }

  /** Small files through reads, one after another, within `maxBytes` in all. */
  readFiles(
    paths: readonly string[],
    options: { maxBytes: number },
  ): Promise<Array<FileContent | FileError>> {
    return readFilesThroughReads(this, paths, options);
  }

  /** Writes the marker object of directory `path` (`name/`, empty); `exclusive`: EEXIST if it is there. */
  async #marker(path: ClientPath, exclusive: boolean, what: string): Promise<void> {
    try {
      await this.#bucket.client.send(
        new PutObjectCommand({
          Bucket: this.#bucket.bucket,
          Key: this.#bucket.dirPrefix(path),
          Body: Buffer.alloc(0),
          ContentLength: 0,
          ...(exclusive ? { IfNoneMatch: '*' } : {}),
        }),
      );
    } catch (error) {
      if (isPreconditionFailed(error)) throw new FileError('EEXIST', `${showPath(path.rel)} already exists`);
      throw this.#bucket.error(error, what);
    }
  }

  /**
   * Removes what uploads left under `.ferry-partial-uploads/` and did not touch for `maxAgeMs`:
   * multipart uploads (by their newest part, or their start if they have none) and staged or lock
   * objects; uploads being written by this process are kept. Returns the keys removed, relative to the
   * prefix. Uploads of other servers sharing the bucket are expired by the same rule.
   */
  async sweepUploads(maxAgeMs: number, now: number = (this.#options.now ?? Date.now)()): Promise<string[]> {
    const bucket = this.#bucket;
    const hidden = bucket.hiddenPrefix;
    const removed: string[] = [];
    const what = 'removing expired uploads';
    const old = (ms: number | undefined): boolean => now - (ms ?? 0) > maxAgeMs;
    try {
      for await (const out of bucket.uploadPages(hidden, what, 1000)) {
        for (const upload of out.Uploads ?? []) {
          const { Key: key, UploadId: id } = upload;
          if (key === undefined || id === undefined || this.#activeUploads.has(id)) continue;
          if (!old(upload.Initiated?.getTime())) continue;
          const parts = await bucket.client.send(
            new ListPartsCommand({ Bucket: bucket.bucket, Key: key, UploadId: id, MaxParts: 1000 }),
          );
          const newest = Math.max(0, ...(parts.Parts ?? []).map((p) => p.LastModified?.getTime() ?? 0));
          if (newest > 0 && !old(newest)) continue;
          await bucket.abortUpload(key, id);
          removed.push(key.slice(bucket.prefix.length));
        }
      }
      for await (const out of bucket.objectPages({ prefix: hidden }, what)) {
        for (const object of out.Contents ?? []) {
          if (object.Key === undefined || !old(object.LastModified?.getTime())) continue;
          const inUse = [...this.#inUse].some((k) => object.Key!.startsWith(k));
          if (inUse) continue;
          await bucket.deleteQuietly(object.Key);
          removed.push(object.Key.slice(bucket.prefix.length));
        }
      }
    } catch (error) {
      throw bucket.error(error, what);
    }
    return removed;
  }

  #requireWritable(what: string): void {
    if (!this.#writable)
      throw new FileError('EACCES', `${what}: the bucket does not accept writes with these credentials`);
  }
}

/** The modification time the client gave at commit, else the store's LastModified. */
function mtimeOf(object: ObjectInfo): number {
  const given = Number(object.metadata[META_MTIME]);
  return object.metadata[META_MTIME] !== undefined && Number.isFinite(given) ? given : object.lastModifiedMs;
}
