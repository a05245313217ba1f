import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListMultipartUploadsCommand,
  type ListMultipartUploadsCommandOutput,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  type S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { FileError } from '../errors.js';
import { type ClientPath, PARTIAL_PREFIX, showPath } from '../paths.js';
import { isNotFound, isPreconditionFailed, toS3FileError } from './errors.js';

/** S3's longest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;
/** The largest object one CopyObject may copy; larger ones are copied part by part. */
const MAX_SINGLE_COPY_BYTES = 5 * 1024 ** 3;
/** Part size of a copy of an object larger than MAX_SINGLE_COPY_BYTES. */
const COPY_PART_BYTES = 1024 ** 3;
/** Hidden objects of ferry under the prefix: uploads in progress, staged files, name locks. */
export const HIDDEN_DIR = `${PARTIAL_PREFIX}uploads/`;
/** User metadata: the verified SHA-256 of the whole file, and the modification time the client gave. */
export const META_SHA256 = 'ferry-sha256';
export const META_MTIME = 'ferry-mtime';
/** A name lock older than this was left by a server that stopped while placing a file. */
const LOCK_STALE_MS = 60_000;
/** How long a placement waits for another one of the same name. */
const LOCK_WAIT_MS = 15_000;

export interface ObjectInfo {
  size: number;
  etag: string;
  lastModifiedMs: number;
  metadata: Record<string, string>;
}

/**
 * One bucket prefix, and the requests S3Storage and its uploads make of it: keys for client paths,
 * existence checks that know S3 has no directories (a directory is a marker object `name/` or any key
 * below it), and placing an object under a name without replacing one that exists.
 */
export class S3Bucket {
  constructor(
    readonly client: S3Client,
    readonly bucket: string,
    /** '' or a prefix ending in '/'. */
    readonly prefix: string,
    /** For messages: the endpoint, or "the object store". */
    readonly endpoint: string,
  ) {}

  /** The object key of a client path ('' = the prefix itself). ENAMETOOLONG past S3's limit. */
  key(path: ClientPath): string {
    const key = this.prefix + path.rel;
    if (Buffer.byteLength(key, 'utf8') + 1 > MAX_KEY_BYTES) {
      throw new FileError(
        'ENAMETOOLONG',
        `${showPath(path.rel)}: the path is too long for the object store (a key is at most ${MAX_KEY_BYTES} bytes)`,
      );
    }
    return key;
  }

  /** The key prefix of the directory `path` ('' = the prefix). */
  dirPrefix(path: ClientPath): string {
    return path.segments.length === 0 ? this.prefix : `${this.key(path)}/`;
  }

  get hiddenPrefix(): string {
    return this.prefix + HIDDEN_DIR;
  }

  error(error: unknown, what: string): FileError {
    return toS3FileError(error, what, this.endpoint);
  }

  /** The object at `key`, or undefined if there is none. */
  async head(key: string, what: string, ifMatch?: string): Promise<ObjectInfo | undefined> {
    let out: HeadObjectCommandOutput;
    try {
      out = await this.client.send(
        new HeadObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(ifMatch !== undefined ? { IfMatch: ifMatch } : {}),
        }),
      );
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.error(error, what);
    }
    return {
      size: out.ContentLength ?? 0,
      etag: out.ETag ?? '',
      lastModifiedMs: out.LastModified?.getTime() ?? 0,
      metadata: out.Metadata ?? {},
    };
  }

  /**
   * Whether a directory exists at `path`: its marker, or any key below it. Its time is the marker's
   * (0 for a directory known only by what is in it). The root always exists.
   */
  async dir(path: ClientPath, what: string): Promise<{ mtimeMs: number } | undefined> {
    if (path.segments.length === 0) return { mtimeMs: 0 };
    const prefix = this.dirPrefix(path);
    try {
      const out = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, MaxKeys: 1 }),
      );
      const first = out.Contents?.[0];
      if (first === undefined) return undefined;
      return { mtimeMs: first.Key === prefix ? (first.LastModified?.getTime() ?? 0) : 0 };
    } catch (error) {
      throw this.error(error, what);
    }
  }

  /**
   * The pages of a listing of the keys under `prefix` (ListObjectsV2, continued by its token), at most
   * `maxPages` requests; the caller may stop early. `maxKeys` is asked before each request. A failed
   * request is a FileError about `what`.
   */
  async *objectPages(
    listing: { prefix: string; delimiter?: string; startAfter?: string; maxKeys?: () => number },
    what: string,
    maxPages = 1000,
  ): AsyncGenerator<ListObjectsV2CommandOutput> {
    let token: string | undefined;
    for (let page = 0; page < maxPages; page++) {
      let out: ListObjectsV2CommandOutput;
      try {
        out = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: listing.prefix,
            ...(listing.delimiter !== undefined ? { Delimiter: listing.delimiter } : {}),
            ...(listing.maxKeys !== undefined ? { MaxKeys: listing.maxKeys() } : {}),
            ...(token !== undefined
              ? { ContinuationToken: token }
              : listing.startAfter !== undefined
                ? { StartAfter: listing.startAfter }
                : {}),
          }),
        );
      } catch (error) {
        throw this.error(error, what);
      }
      yield out;
      if (out.IsTruncated !== true || out.NextContinuationToken === undefined) return;
      token = out.NextContinuationToken;
    }
  }

  /**
   * The pages of a listing of the multipart uploads under `prefix` (continued by key and upload id
   * markers), at most `maxPages` requests. A failed request is a FileError about `what`.
   */
  async *uploadPages(
    prefix: string,
    what: string,
    maxPages: number,
  ): AsyncGenerator<ListMultipartUploadsCommandOutput> {
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (let page = 0; page < maxPages; page++) {
      let out: ListMultipartUploadsCommandOutput;
      try {
        out = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: prefix,
            ...(keyMarker !== undefined ? { KeyMarker: keyMarker } : {}),
            ...(idMarker !== undefined ? { UploadIdMarker: idMarker } : {}),
          }),
        );
      } catch (error) {
        throw this.error(error, what);
      }
      yield out;
      if (out.IsTruncated !== true) return;
      keyMarker = out.NextKeyMarker;
      idMarker = out.NextUploadIdMarker;
    }
  }

  /** ENOENT unless the directory that would hold `path` exists; ENOTDIR if it is a file. */
  async requireParent(path: ClientPath, what: string): Promise<void> {
    if (path.segments.length <= 1) return;
    const segments = path.segments.slice(0, -1);
    const parent = { rel: segments.join('/'), segments };
    if ((await this.dir(parent, what)) !== undefined) return;
    if ((await this.head(this.key(parent), what)) !== undefined) {
      throw new FileError('ENOTDIR', `${what}: ${showPath(parent.rel)} is a file, not a directory`);
    }
    throw new FileError('ENOENT', `${what}: the directory ${showPath(parent.rel)} does not exist`);
  }

  async delete(key: string, what: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      if (!isNotFound(error)) throw this.error(error, what);
    }
  }

  /** Deletes quietly (on error paths, and for objects the sweep removes later anyway). */
  async deleteQuietly(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })).catch(() => {});
  }

  async abortUpload(key: string, uploadId: string): Promise<void> {
    await this.client
      .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }))
      .catch(() => {});
  }

  /**
   * Places an object under `path` through `steps.place(ifNoneMatch)`. Without `overwrite` an existing
   * file is never replaced (EEXIST): the placement sends `If-None-Match: *`, which S3 honours; because
   * some stores (Ceph RGW before 19) ignore it on copies and multipart completions, every no-replace
   * placement also holds a name lock (an object created with `If-None-Match: *`, which they do honour)
   * while it checks the name and places the object, so two ferry servers never both place one name.
   * A directory is never replaced (EISDIR). `steps.prepare` (short: it runs while the lock is taken)
   * and `steps.cleanup` (after a placement, beside the lock's release) save round trips.
   */
  async placeNoReplace(
    path: ClientPath,
    overwrite: boolean,
    what: string,
    steps: {
      prepare?: () => Promise<void>;
      place: (ifNoneMatch: string | undefined) => Promise<void>;
      cleanup?: () => Promise<void>;
    },
  ): Promise<void> {
    const key = this.key(path);
    // A directory created while the file was on its way: its marker (mkdir writes one at every level).
    // A listing would also see a directory known only by what is in it, but is the slowest request of
    // most stores; beginning an upload checks with one.
    const checkDir = async (): Promise<void> => {
      if ((await this.head(this.dirPrefix(path), what)) !== undefined) {
        throw new FileError(
          'EISDIR',
          `${showPath(path.rel)} exists and is a directory; it cannot be replaced by a file`,
        );
      }
    };
    const prepare = steps.prepare?.() ?? Promise.resolve();
    if (overwrite) {
      await firstFailure([prepare, checkDir()]);
      await steps.place(undefined);
      await steps.cleanup?.();
      return;
    }
    // The directory check (a listing, the slowest request) needs no lock: it goes out with it.
    const [locked, prepared, dirChecked] = await Promise.allSettled([
      this.#lock(key, what),
      prepare,
      checkDir(),
    ]);
    let placed = false;
    try {
      if (prepared.status === 'rejected') throw prepared.reason;
      if (locked.status === 'rejected') throw locked.reason;
      if (dirChecked.status === 'rejected') throw dirChecked.reason;
      if ((await this.head(key, what)) !== undefined) throw exists(path);
      try {
        await steps.place('*');
      } catch (error) {
        if (isPreconditionFailed(error)) throw exists(path);
        throw error;
      }
      placed = true;
    } finally {
      await Promise.all([
        locked.status === 'fulfilled' ? this.deleteQuietly(locked.value) : undefined,
        placed ? steps.cleanup?.() : undefined,
      ]);
    }
  }

  /** Takes the name lock of `key`; EBUSY if another placement holds it for longer than LOCK_WAIT_MS. */
  async #lock(key: string, what: string): Promise<string> {
    const lock = `${this.hiddenPrefix}lock-${nameHash(key)}`;
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (let wait = 20; ; wait = Math.min(500, wait * 2)) {
      try {
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: lock,
            Body: randomBytes(8).toString('hex'),
            IfNoneMatch: '*',
          }),
        );
        return lock;
      } catch (error) {
        if (!isPreconditionFailed(error)) throw this.error(error, what);
      }
      const held = await this.head(lock, what);
      if (held !== undefined && Date.now() - held.lastModifiedMs > LOCK_STALE_MS) {
        await this.deleteQuietly(lock); // left by a server that stopped while placing this name
        continue;
      }
      if (Date.now() >= deadline) {
        throw new FileError('EBUSY', `${what}: another transfer is saving the same name; try again`);
      }
      await sleep(wait);
    }
  }

  /**
   * Copies `from` to `to` (in this bucket): one CopyObject up to 5 GiB, a multipart copy beyond.
   * `metadata` replaces the object's metadata; without it the metadata is copied. `ifMatch` copies only
   * that version of the source (else 412); `ifNoneMatch` is sent with the write.
   */
  async copy(
    from: string,
    to: string,
    size: number,
    options: { metadata?: Record<string, string>; ifMatch?: string; ifNoneMatch?: string },
  ): Promise<void> {
    const source = `${this.bucket}/${encodeURIComponent(from).replaceAll('%2F', '/')}`;
    const conditions = {
      ...(options.ifMatch !== undefined ? { CopySourceIfMatch: options.ifMatch } : {}),
    };
    if (size <= MAX_SINGLE_COPY_BYTES) {
      await this.client.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: to,
          CopySource: source,
          ...conditions,
          ...(options.metadata !== undefined
            ? { Metadata: options.metadata, MetadataDirective: 'REPLACE' }
            : {}),
          ...(options.ifNoneMatch !== undefined ? { IfNoneMatch: options.ifNoneMatch } : {}),
        }),
      );
      return;
    }
    let metadata = options.metadata;
    if (metadata === undefined) metadata = (await this.head(from, `copying ${from}`))?.metadata ?? {};
    const { UploadId } = await this.client.send(
      new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: to, Metadata: metadata }),
    );
    try {
      const parts: Array<{ PartNumber: number; ETag: string }> = [];
      for (let start = 0, n = 1; start < size; start += COPY_PART_BYTES, n++) {
        const end = Math.min(size, start + COPY_PART_BYTES) - 1;
        const out = await this.client.send(
          new UploadPartCopyCommand({
            Bucket: this.bucket,
            Key: to,
            UploadId,
            PartNumber: n,
            CopySource: source,
            CopySourceRange: `bytes=${start}-${end}`,
            ...conditions,
          }),
        );
        parts.push({ PartNumber: n, ETag: out.CopyPartResult?.ETag ?? '' });
      }
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: to,
          UploadId,
          MultipartUpload: { Parts: parts },
          ...(options.ifNoneMatch !== undefined ? { IfNoneMatch: options.ifNoneMatch } : {}),
        }),
      );
    } catch (error) {
      if (UploadId !== undefined) await this.abortUpload(to, UploadId);
      throw error;
    }
  }
}

/** Waits for all of `promises`; throws the failure of the first (in order) that failed. */
export async function firstFailure<T extends readonly unknown[]>(
  promises: readonly [...{ [K in keyof T]: Promise<T[K]> }],
): Promise<T> {
  const settled = await Promise.allSettled(promises);
  for (const outcome of settled) if (outcome.status === 'rejected') throw outcome.reason;
  return settled.map((outcome) => (outcome as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

function exists(path: ClientPath): FileError {
  return new FileError(
    'EEXIST',
    `${showPath(path.rel)} already exists; it was not replaced (ask to overwrite to replace it; the received data is kept for that)`,
  );
}

/** A short stable name made of `parts`, for hidden objects that belong to them. */
export function nameHash(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\0'), 'utf8').digest('hex').slice(0, 32);
}
