import { createHash } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import { basename, dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { FernetKey } from '@ferry/crypto';
import {
  type ControlMessage,
  DEFAULT_BLOCK_SIZE,
  decodeControlMessage,
  type Entry,
  encodeControlMessage,
  encodeRequest,
  Feature,
  FerryError,
  type GetFilesItem,
  INTERNET_BLOCK_SIZE,
  isReplyTo,
  type ReplyByOp,
  type RequestFields,
  type SuccessReply,
  type WalkEntry,
  type WalkReply,
} from '@ferry/protocol';
// Loaded by the transfers that use it (see loadStorage): a stat or list never needs it.
import type { LocalDiskStorage, Upload } from '@ferry/storage';
import {
  IncomingBundle,
  IncomingFile,
  joinBundle,
  OutgoingBundle,
  OutgoingFile,
  resumeOffer,
  splitBundle,
} from '@ferry/transfer';
import { type ClientSession, connect } from '@ferry/transport';

/**
 * FerryClient: one session with a ferry server, and the file operations of the seed (get, put,
 * rename, list) plus stat and delete, each verified, atomic and resumable where it moves data; with
 * a server of feature Trees also mkdir, rmdir, walk, hash and batches of small files (putFiles,
 * getFiles), on which tree.ts builds put -r and get -r.
 */
export interface FerryClientOptions {
  host: string;
  port: number;
  key: FernetKey;
  /** Block size to ask for: default DEFAULT_BLOCK_SIZE (64512) towards loopback addresses, INTERNET_BLOCK_SIZE otherwise. */
  blockSize?: number;
  idleTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  /** Cap on the sending rate, in bytes per second. */
  rateLimit?: number;
  /**
   * A fixed window of this many packets (1 = the seed's stop-and-wait), for comparisons: this
   * client's congestion window, and its receive window (so the server's sending is held to it too).
   */
  fixedWindowPackets?: number;
}

export interface TransferProgress {
  phase: 'hashing' | 'transferring' | 'verifying';
  bytes: number;
  size: number;
}

export interface TransferResult {
  remote: string;
  local: string;
  size: number;
  /** Bytes moved over the network in this run (excludes what a resume skipped). */
  bytesTransferred: number;
  resumedBytes: number;
  sha256: string;
  seconds: number;
  stats: Record<string, unknown>;
}

export interface TransferOptions {
  overwrite?: boolean;
  resume?: boolean;
  /** Keep the file's permission bits (put: give the server's copy the local file's; get: the reverse). */
  preserveMode?: boolean;
  onProgress?: (progress: TransferProgress) => void;
  signal?: AbortSignal;
}

/** A small file of a putFiles batch, read whole. */
export interface BatchFile {
  path: string;
  data: Buffer;
  sha256: string;
  mtimeMs?: number;
  mode?: number;
}

/** How each file of a putFiles batch ended: placed, skipped (already there, identical) or failed. */
export type BatchOutcome = { kind: 'placed' } | { kind: 'skipped' } | { kind: 'failed'; error: FerryError };

/** A file of a getFiles batch: its bytes (or `same`: the local copy already matched), or why not. */
export type FetchedFile =
  | { kind: 'file'; data: Buffer; mtimeMs: number; mode?: number; sha256: string }
  | { kind: 'same'; mtimeMs: number; mode?: number }
  | { kind: 'failed'; error: FerryError };

export interface BatchOptions {
  /** Bytes moved so far in this batch (of its bundle). */
  onBytes?: (bytes: number) => void;
  signal?: AbortSignal;
}

const PROGRESS_INTERVAL_MS = 100;

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

type Waiter = { resolve: (reply: SuccessReply) => void; reject: (error: FerryError) => void };

export class FerryClient {
  private nextId = 1;
  private readonly waiting = new Map<number, Waiter>();
  private readonly digests = new Map<
    number,
    { resolve: (sha: string) => void; reject: (e: FerryError) => void }
  >();
  private readonly earlyDigests = new Map<number, string>();
  private readonly aborts = new Map<number, FerryError>();
  private closedError: FerryError | undefined;

  private constructor(
    private readonly session: ClientSession,
    readonly remoteAddress: string,
  ) {
    session.onMessage((body) => this.onMessage(body));
    void session.closed().then((closed) => {
      this.closedError = new FerryError(
        closed.code === 'OK' ? 'ECONNRESET' : closed.code,
        closed.code === 'OK' ? 'the session was closed' : closed.message,
      );
      for (const w of this.waiting.values()) w.reject(this.closedError);
      this.waiting.clear();
      for (const d of this.digests.values()) d.reject(this.closedError);
      this.digests.clear();
    });
  }

  static async connect(options: FerryClientOptions): Promise<FerryClient> {
    let address = options.host;
    if (isIP(options.host) === 0) {
      try {
        address = (await lookup(options.host)).address;
      } catch {
        throw new FerryError('EHOSTUNREACH', `unknown host "${options.host}"`);
      }
    }
    const blockSize = options.blockSize ?? (isLoopback(address) ? DEFAULT_BLOCK_SIZE : INTERNET_BLOCK_SIZE);
    const congestion = {
      ...(options.fixedWindowPackets !== undefined ? { fixedWindowPackets: options.fixedWindowPackets } : {}),
      ...(options.rateLimit !== undefined ? { maxRateBytesPerMs: options.rateLimit / 1000 } : {}),
    };
    const session = await connect({
      host: address,
      port: options.port,
      key: options.key,
      maxBlockSize: blockSize,
      ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
      ...(options.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: options.handshakeTimeoutMs } : {}),
      // A fixed window holds in both directions: what this client sends (its congestion window) and
      // what the server may send it (the receive window, in blocks), so a get is stop-and-wait too.
      ...(options.fixedWindowPackets !== undefined
        ? { receiveWindow: Math.min(0xffff_ffff, options.fixedWindowPackets * blockSize) }
        : {}),
      connection: { congestion },
    });
    return new FerryClient(session, address);
  }

  get access(): 'read-only' | 'read-write' {
    return this.session.access;
  }

  get blockSize(): number {
    return this.session.blockSize;
  }

  get closed(): boolean {
    return this.session.isClosed;
  }

  /** Features this session may use (bits of Feature): 0 with a server that speaks version 1 only. */
  get features(): number {
    return this.session.features;
  }

  /** Throws EVERSION, naming `what`, unless the server has feature Trees (directories and batches). */
  requireTrees(what: string): void {
    if ((this.session.features & Feature.Trees) !== 0) return;
    throw new FerryError(
      'EVERSION',
      `${what} is not supported by this server (an older ferry-server, without directory operations); upgrade ferry-server`,
    );
  }

  stats(): Record<string, unknown> {
    return this.session.stats();
  }

  private onMessage(body: Buffer): void {
    const decoded = decodeControlMessage(body);
    if (!decoded.ok) return;
    const m = decoded.value;
    if (m.op === 'reply') {
      const w = this.waiting.get(m.id);
      if (w === undefined) return;
      this.waiting.delete(m.id);
      if (m.ok) w.resolve(m);
      else w.reject(new FerryError(m.code, m.message));
    } else if (m.op === 'digest') {
      const d = this.digests.get(m.transferId);
      if (d !== undefined) d.resolve(m.sha256);
      else this.earlyDigests.set(m.transferId, m.sha256);
    } else if (m.op === 'abort') {
      const error = new FerryError(m.code, m.message);
      this.aborts.set(m.transferId, error);
      this.session.cancel(m.transferId, error);
      this.digests.get(m.transferId)?.reject(error);
    }
  }

  private assertOpen(): void {
    if (this.closedError !== undefined) throw this.closedError;
  }

  private send(message: ControlMessage): number {
    return this.session.send(encodeControlMessage(message));
  }

  /**
   * Sends request `op` and waits for its reply; FerryError on an error reply or a lost session, EPROTO
   * for a reply that is not of the kind `op` gets.
   */
  private request<Op extends keyof ReplyByOp>(op: Op, fields: RequestFields<Op>): Promise<ReplyByOp[Op]> {
    this.assertOpen();
    const id = this.nextId++;
    return new Promise<ReplyByOp[Op]>((resolve, reject) => {
      const answered = (reply: SuccessReply): void => {
        if (isReplyTo(op, reply)) resolve(reply);
        else reject(new FerryError('EPROTO', `the server answered ${op} with a reply of another kind`));
      };
      this.waiting.set(id, { resolve: answered, reject });
      try {
        this.session.send(encodeRequest(op, id, fields));
      } catch (error) {
        this.waiting.delete(id);
        // Refused before sending (a NUL in a path, a path over the limit): the request is invalid.
        if (error instanceof FerryError && error.code === 'EPROTO' && !this.session.isClosed) {
          reject(new FerryError('EINVAL', `invalid request: ${error.message}`));
        } else {
          reject(error);
        }
      }
    });
  }

  /** Every entry of a directory ('' = the root), all pages. */
  async list(path = ''): Promise<Entry[]> {
    const entries: Entry[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 1_000_000; page++) {
      const reply = await this.request('list', {
        path,
        ...(cursor !== undefined ? { cursor } : {}),
      });
      entries.push(...reply.entries);
      if (reply.next === undefined) return entries;
      cursor = reply.next;
    }
    return entries;
  }

  async stat(path: string): Promise<Entry> {
    const reply = await this.request('stat', { path });
    return reply.entry;
  }

  async rename(from: string, to: string, options: { overwrite?: boolean } = {}): Promise<void> {
    await this.request('rename', { from, to, overwrite: options.overwrite ?? false });
  }

  async delete(path: string): Promise<void> {
    await this.request('delete', { path });
  }

  /** Creates a directory; with `parents`, missing parents too, and an existing directory is fine. */
  async mkdir(path: string, options: { parents?: boolean; mode?: number } = {}): Promise<void> {
    this.requireTrees('mkdir');
    await this.request('mkdir', {
      path,
      parents: options.parents ?? false,
      ...(options.mode !== undefined ? { mode: options.mode } : {}),
    });
  }

  /** Removes an empty directory. */
  async rmdir(path: string): Promise<void> {
    this.requireTrees('rmdir');
    await this.request('rmdir', { path });
  }

  /**
   * Everything below the directory `path`, a page at a time (pre-order; paths relative to `path`):
   * the next page is asked for while the caller handles this one.
   */
  async *walk(path: string): AsyncGenerator<WalkEntry[]> {
    this.requireTrees('a recursive listing');
    let next: Promise<WalkReply> | undefined = this.request('walk', { path });
    for (let page = 0; page < 100_000_000 && next !== undefined; page++) {
      const reply: WalkReply = await next;
      next = reply.next === undefined ? undefined : this.request('walk', { path, cursor: reply.next });
      next?.catch(() => {}); // reported when awaited
      yield reply.entries;
    }
  }

  /** SHA-256 and size of a file on the server (resuming a tree: is the copy there complete?). */
  async hash(path: string): Promise<{ sha256: string; size: number }> {
    this.requireTrees('hash');
    const reply = await this.request('hash', { path });
    return { sha256: reply.sha256, size: reply.size };
  }

  /**
   * Sends small files whole in one batch (one bundle, one transfer): each is verified and placed by
   * the server, or refused on its own. With `skipIdentical`, files the server already holds are not
   * sent. Returns one outcome per file.
   */
  async putFiles(
    files: readonly BatchFile[],
    options: BatchOptions & { overwrite: boolean; skipIdentical: boolean },
  ): Promise<BatchOutcome[]> {
    this.requireTrees('sending a directory');
    const reply = await this.request('putFiles', {
      files: files.map((f) => ({
        path: f.path,
        size: f.data.length,
        ...(f.mtimeMs !== undefined ? { mtimeMs: f.mtimeMs } : {}),
        ...(f.mode !== undefined ? { mode: f.mode } : {}),
        sha256: f.sha256,
      })),
      overwrite: options.overwrite,
      skipIdentical: options.skipIdentical,
    });
    const outcomes: BatchOutcome[] = files.map(() => ({ kind: 'placed' }));
    for (const i of reply.skipped) outcomes[i] = { kind: 'skipped' };
    for (const f of reply.failed)
      outcomes[f.index] = { kind: 'failed', error: new FerryError(f.code, f.message) };
    const bundle = joinBundle(files.filter((_, i) => outcomes[i]!.kind === 'placed').map((f) => f.data));
    const outgoing = new OutgoingBundle(this.session, reply.transferId, bundle);
    await this.track(reply.transferId, outgoing.sent, 0, bundle.length, {
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
      ...(options.onBytes !== undefined
        ? { onProgress: (p: TransferProgress) => options.onBytes?.(p.bytes) }
        : {}),
    });
    const committed = await this.request('commitFiles', {
      transferId: reply.transferId,
    });
    for (const f of committed.failed) {
      outcomes[f.index] = { kind: 'failed', error: new FerryError(f.code, f.message) };
    }
    return outcomes;
  }

  /**
   * Fetches small files whole in one batch (one bundle, one transfer). A file given with the SHA-256
   * of a local copy is not sent if that is what the server holds. Returns one result per file, each
   * verified by its SHA-256.
   */
  async getFiles(
    files: ReadonlyArray<{ path: string; sha256?: string }>,
    options: BatchOptions = {},
  ): Promise<FetchedFile[]> {
    this.requireTrees('fetching a directory');
    const reply = await this.request('getFiles', {
      files: files.map((f) => ({ path: f.path, ...(f.sha256 !== undefined ? { sha256: f.sha256 } : {}) })),
    });
    const sizes = reply.files.filter(isSent).map((f) => f.size);
    const total = sizes.reduce((a, b) => a + b, 0);
    // Opened at once: the blocks follow the reply a round trip later.
    const incoming = new IncomingBundle(this.session, reply.transferId, total);
    await this.track(
      reply.transferId,
      incoming.received.then(() => {}),
      0,
      total,
      {
        ...(options.signal !== undefined ? { signal: options.signal } : {}),
        ...(options.onBytes !== undefined
          ? { onProgress: (p: TransferProgress) => options.onBytes?.(p.bytes) }
          : {}),
      },
    );
    const parts = splitBundle(await incoming.received, sizes);
    let next = 0;
    return reply.files.map((item): FetchedFile => {
      if ('code' in item) return { kind: 'failed', error: new FerryError(item.code, item.message) };
      const mode = item.mode !== undefined ? { mode: item.mode } : {};
      if (!item.sent) return { kind: 'same', mtimeMs: item.mtimeMs, ...mode };
      const data = parts[next++]!;
      if (sha256Of(data) !== item.sha256) {
        return {
          kind: 'failed',
          error: new FerryError('EINTEGRITY', `SHA-256 mismatch: the data received is not the data sent`),
        };
      }
      return { kind: 'file', data, mtimeMs: item.mtimeMs, ...mode, sha256: item.sha256 };
    });
  }

  /** Downloads `remote` to the file `local`: verified, atomic, resumable. */
  async get(remote: string, local: string, options: TransferOptions = {}): Promise<TransferResult> {
    this.assertOpen();
    const started = performance.now();
    const overwrite = options.overwrite ?? false;
    await refuseExisting(local, overwrite);
    const store = await openLocalStore(local);
    const openUpload = (size: number, mtimeMs: number, resume: boolean): Promise<Upload> =>
      store
        .beginUpload(basename(local), {
          size,
          blockSize: this.blockSize,
          identity: `ferry get\n${remote}\n${size}\n${mtimeMs}`,
          overwrite,
          resume,
        })
        .catch((error: unknown) => {
          throw localError(error, local);
        });
    // Resuming needs what is already here before asking, so it looks the file up first; a plain
    // get asks at once and learns the size and time from the reply.
    let upload: Upload | undefined;
    let entry: Entry | undefined;
    let incoming: IncomingFile | undefined;
    let committed = false;
    try {
      if (options.resume) {
        entry = await this.stat(remote);
        if (entry.type === 'dir') throw new FerryError('EISDIR', `${remote} is a directory on the server`);
        if (entry.type !== 'file') {
          throw new FerryError('EINVAL', `${remote} is not a regular file on the server`);
        }
        upload = await openUpload(entry.size, entry.mtimeMs, true);
      }
      let offer = upload === undefined ? undefined : resumeOffer(upload.held(), this.blockSize, upload.size);
      const reply = await this.request('get', {
        path: remote,
        ...(entry !== undefined && offer !== undefined && offer.have.length > 0
          ? { resume: { size: entry.size, mtimeMs: entry.mtimeMs, have: offer.have } }
          : {}),
      });
      const size = reply.size;
      if (upload !== undefined && (reply.size !== entry?.size || reply.restarted)) {
        // The file changed since stat: what we hold is stale.
        await upload.abort({ keep: false });
        upload = undefined;
        offer = undefined;
      }
      // The receive transfer must be open before the first block arrives (a round trip after the
      // reply): open it right away, the local upload possibly still opening.
      const opening = upload ?? openUpload(size, reply.mtimeMs, false);
      try {
        incoming = new IncomingFile(this.session, reply.transferId, size, opening, offer?.have ?? []);
      } catch (error) {
        // The session ended at this moment: the upload, once open, is kept for a resume.
        await Promise.resolve(opening).then(
          (u) => u.abort({ keep: true }),
          () => {},
        );
        upload = undefined;
        throw error;
      }
      try {
        upload = await opening;
      } catch (error) {
        this.stopTransfer(reply.transferId, error instanceof Error ? error : new Error(String(error)));
        throw error;
      }
      const resumedBytes = offer?.bytes ?? 0;
      const digest = this.waitDigest(reply.transferId);
      await this.track(reply.transferId, incoming.received, resumedBytes, size, options);
      const sha256 = await digest;
      options.onProgress?.({ phase: 'verifying', bytes: 0, size });
      await incoming.commit({
        sha256,
        overwrite,
        mtimeMs: reply.mtimeMs,
        ...(options.preserveMode === true && reply.mode !== undefined ? { mode: reply.mode } : {}),
        onProgress: (done, total) => options.onProgress?.({ phase: 'verifying', bytes: done, size: total }),
      });
      committed = true;
      return {
        remote,
        local,
        size,
        bytesTransferred: size - resumedBytes,
        resumedBytes,
        sha256,
        seconds: (performance.now() - started) / 1000,
        stats: this.stats(),
      };
    } finally {
      // Keep what arrived for `--resume` (a failed verification already discarded it).
      if (!committed) await (incoming?.abort({ keep: true }) ?? upload?.abort({ keep: true }));
      await store.close();
    }
  }

  /** Uploads the file `local` as `remote`: verified by the server, atomic, resumable. */
  async put(local: string, remote: string, options: TransferOptions = {}): Promise<TransferResult> {
    this.assertOpen();
    const started = performance.now();
    const { LocalFile } = await loadStorage();
    const file = await LocalFile.open(local, { displayName: local });
    try {
      const reply = await this.request('put', {
        path: remote,
        size: file.size,
        mtimeMs: file.mtimeMs,
        overwrite: options.overwrite ?? false,
        resume: options.resume ?? false,
        ...(options.preserveMode === true && (this.features & Feature.Trees) !== 0
          ? { mode: file.mode }
          : {}),
      });
      const resumedBytes = resumeOffer(reply.have, this.blockSize, file.size).bytes;
      const outgoing = new OutgoingFile(this.session, reply.transferId, file, { have: reply.have });
      let sha256: string;
      try {
        await this.track(reply.transferId, outgoing.sent, resumedBytes, file.size, options);
        options.onProgress?.({ phase: 'verifying', bytes: 0, size: file.size });
        sha256 = await outgoing.digest((done, total) =>
          options.onProgress?.({ phase: 'hashing', bytes: done, size: total }),
        );
      } catch (error) {
        // The file changed under the transfer: what the server holds of it is stale; it discards it.
        if (error instanceof FerryError && error.code === 'EFILECHANGED')
          this.abortRemote(reply.transferId, error);
        throw error;
      }
      await this.request('commit', { transferId: reply.transferId, sha256 });
      return {
        remote,
        local,
        size: file.size,
        bytesTransferred: file.size - resumedBytes,
        resumedBytes,
        sha256,
        seconds: (performance.now() - started) / 1000,
        stats: this.stats(),
      };
    } finally {
      await file.close().catch(() => {});
    }
  }

  private waitDigest(transferId: number): Promise<string> {
    const early = this.earlyDigests.get(transferId);
    if (early !== undefined) {
      this.earlyDigests.delete(transferId);
      return Promise.resolve(early);
    }
    const p = new Promise<string>((resolve, reject) => {
      this.digests.set(transferId, {
        resolve: (sha) => {
          this.digests.delete(transferId);
          resolve(sha);
        },
        reject: (e) => {
          this.digests.delete(transferId);
          reject(e);
        },
      });
    });
    p.catch(() => {});
    return p;
  }

  /** Waits for a transfer with progress reports and cancellation. */
  private async track(
    transferId: number,
    done: Promise<void>,
    resumedBytes: number,
    size: number,
    options: TransferOptions,
  ): Promise<void> {
    const report = (): void => {
      const p = this.session.progress(transferId);
      if (p !== undefined)
        options.onProgress?.({ phase: 'transferring', bytes: Math.min(size, resumedBytes + p.bytes), size });
    };
    const timer = options.onProgress ? setInterval(report, PROGRESS_INTERVAL_MS) : undefined;
    const onAbort = (): void =>
      this.stopTransfer(transferId, new FerryError('ECANCELED', 'transfer cancelled'));
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      report();
      await done;
      options.onProgress?.({ phase: 'transferring', bytes: size, size });
    } catch (error) {
      throw this.aborts.get(transferId) ?? error;
    } finally {
      if (timer !== undefined) clearInterval(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Tells the peer a transfer failed here, with why (an abort message); the session goes on. */
  private abortRemote(transferId: number, error: FerryError): void {
    try {
      this.send(error.toAbort(transferId));
    } catch {
      /* the session is gone anyway */
    }
    this.session.cancel(transferId, error);
  }

  /** Stops a transfer on both sides: tells the peer, and fails it here with `error`. */
  private stopTransfer(transferId: number, error: Error): void {
    try {
      this.send({ op: 'cancel', transferId });
    } catch {
      /* the session is gone anyway */
    }
    this.session.cancel(transferId, error);
  }

  /** Ends the session (never the server). */
  async close(): Promise<void> {
    await this.session.end('client closed the session');
  }
}

function isSent(item: GetFilesItem): item is Extract<GetFilesItem, { sent: boolean }> {
  return 'sent' in item && item.sent;
}

function sha256Of(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function refuseExisting(local: string, overwrite: boolean): Promise<void> {
  try {
    const s = await stat(local);
    if (s.isDirectory()) throw new FerryError('EISDIR', `${local} is a directory`);
    if (!overwrite) {
      throw new FerryError('EEXIST', `${local} already exists; use --force to overwrite it`);
    }
  } catch (error) {
    if (error instanceof FerryError) throw error;
    // ENOENT is the normal case; other errors surface when the partial file is opened.
  }
}

/**
 * @ferry/storage, loaded when a transfer first needs the local disk: a command that moves no file
 * does not load it (nor the built-in modules it needs), a few milliseconds of its start-up.
 */
function loadStorage(): Promise<typeof import('@ferry/storage')> {
  return import('@ferry/storage');
}

/** The directory a download goes to, as a store (the client's own files: no confinement races to fear). */
async function openLocalStore(local: string): Promise<LocalDiskStorage> {
  const { LocalDiskStorage } = await loadStorage();
  try {
    return await LocalDiskStorage.open(dirname(local), { allowPathRaces: true });
  } catch (error) {
    throw localError(error, local);
  }
}

/** A local file error, named as the user named the file (not as a store's client path). */
function localError(error: unknown, local: string): unknown {
  if (!(error instanceof FerryError)) return error;
  const message = error.message.replace(/^(serving |writing )?("[^"]*"|\S+?)(:| )/, '');
  return new FerryError(error.code, `${local}: ${message}`, { cause: error });
}

/** The name a file gets by default on the other side: its base name. */
export function defaultTargetName(path: string): string {
  return basename(path);
}
