import {
  blockCountFor,
  type CommitFilesReply,
  type ControlMessage,
  decodeControlMessage,
  encodeControlMessage,
  Feature,
  FerryError,
  type GetReply,
  type HashReply,
  type ListReply,
  MAX_CONTROL_BYTES,
  type OkReply,
  type PutFilesReply,
  type PutReply,
  type StatReply,
  type WalkReply,
} from '@ferry/protocol';
import type { ReadableFile, Storage, Upload } from '@ferry/storage';
import { IncomingFile, OutgoingFile, resumeOffer } from '@ferry/transfer';
import type { ServerSession, Session } from '@ferry/transport';
import { TreeRequests } from './trees.js';

/**
 * Gets and puts one session may run at once (the reference client runs 4). Each holds a descriptor
 * and up to about a MiB of buffers, so without a cap one key holder could exhaust the server's file
 * descriptors and memory with a burst of requests; beyond it a request is refused with EBUSY.
 */
export const MAX_TRANSFERS_PER_SESSION = 16;
/** Room left in a list reply for its envelope ({"op":"reply","id":…,"ok":true,"entries":[…],"next":…}). */
const LIST_ENVELOPE_BYTES = 2048;
/** Failed puts remembered per session, so a commit that crossed the failure gets its real cause. */
const FAILED_PUTS_REMEMBERED = 64;

export interface ServerLogEvent {
  type: string;
  level: 'info' | 'warn' | 'error';
  msg: string;
  [key: string]: unknown;
}

/** What a session handler needs of its server. */
export interface SessionHost {
  emit(event: ServerLogEvent): void;
  /** Ends another session's put of `path` by the same key; true if there was one to end. */
  releasePut(keyName: string, path: string, requester: SessionHandler): Promise<boolean>;
  registerPut(keyName: string, path: string, handler: SessionHandler, transferId: number): void;
  unregisterPut(keyName: string, path: string, handler: SessionHandler): void;
  sessionEnded(handler: SessionHandler): void;
  /** A get or put of this session ended (its file closed, its memory no longer needed). */
  transferEnded(): void;
  /** Work that must end before the store closes (an upload being put away for a resume). */
  track(work: Promise<unknown>): void;
}

type Request = Extract<ControlMessage, { id: number }>;
type Reply =
  | ListReply
  | StatReply
  | GetReply
  | PutReply
  | OkReply
  | WalkReply
  | HashReply
  | PutFilesReply
  | CommitFilesReply;

interface PutState {
  incoming: IncomingFile;
  upload: Upload;
  overwrite: boolean;
  mtimeMs: number | undefined;
  mode: number | undefined;
  path: string;
}

/**
 * One client session: its requests arrive as control messages and are answered from the store. A get
 * is the sending half of the transfer layer (then a digest message), a put its receiving half (then the
 * commit request's verify-and-place). A session's end never stops the server; an interrupted put keeps
 * its upload for a resume.
 */
export class SessionHandler {
  private nextTransferId = 1;
  /** Gets and puts accepted but not yet registered (opening their file). */
  private starting = 0;
  private readonly puts = new Map<number, PutState>();
  private readonly gets = new Map<number, ReadableFile>();
  /** Why recent puts failed, by transfer id (a bounded, oldest-first map). */
  private readonly failedPuts = new Map<number, FerryError>();
  /** Requests of feature Trees (directories, walks, batches of small files). */
  private readonly trees: TreeRequests;
  readonly label: string;

  constructor(
    private readonly host: SessionHost,
    readonly session: Session,
    readonly info: ServerSession,
    private readonly storage: Storage,
    private readonly readOnly: boolean,
  ) {
    this.label = `${info.id.slice(0, 8)} ${info.keyName}@${info.address.replace('|', ' port ')}`;
    this.trees = new TreeRequests({
      storage,
      session,
      label: this.label,
      send: (message) => this.send(message),
      log: (type, level, msg, extra) => this.host.emit({ type, level, msg, ...extra }),
      writable: (what) => this.writable(what),
      nextTransferId: () => this.nextTransferId++,
    });
    session.onMessage((body) => this.onMessage(body));
    void session.closed().then((closed) => this.onClosed(closed.code, closed.message));
  }

  get activeTransfers(): number {
    return this.puts.size + this.gets.size + this.trees.activeTransfers;
  }

  private send(message: ControlMessage): number | undefined {
    if (this.session.isClosed) return undefined;
    return this.session.send(encodeControlMessage(message));
  }

  private onMessage(body: Buffer): void {
    const decoded = decodeControlMessage(body);
    if (!decoded.ok) {
      this.host.emit({
        type: 'bad-message',
        level: 'warn',
        msg: `malformed control message from ${this.label}`,
      });
      return;
    }
    const m = decoded.value;
    switch (m.op) {
      case 'list':
      case 'stat':
      case 'get':
      case 'put':
      case 'commit':
      case 'rename':
      case 'delete':
      case 'mkdir':
      case 'rmdir':
      case 'walk':
      case 'hash':
      case 'putFiles':
      case 'commitFiles':
      case 'getFiles':
        this.handle(m).then(
          (reply) => {
            if (reply !== undefined) this.send(reply);
          },
          (error: unknown) => {
            const e = FerryError.from(error);
            // Every refused request ends here. A lookup finding nothing is an answer, not a refusal,
            // and a failed commit was logged as put-failed: log the rest, with the code.
            if (
              m.op !== 'list' &&
              m.op !== 'stat' &&
              m.op !== 'commit' &&
              m.op !== 'walk' &&
              m.op !== 'hash' &&
              m.op !== 'commitFiles'
            ) {
              const target =
                m.op === 'rename'
                  ? { from: m.from, to: m.to }
                  : m.op === 'putFiles' || m.op === 'getFiles'
                    ? { path: `${m.files[0]!.path} and ${m.files.length - 1} more` }
                    : { path: m.path };
              this.host.emit({
                type: 'refused',
                level: 'warn',
                msg: `${this.label} ${m.op} ${Object.values(target).join(' -> ')} refused (${e.code}): ${e.message}`,
                op: m.op,
                ...target,
                code: e.code,
              });
            }
            this.send(e.toReply(m.id));
          },
        );
        return;
      case 'cancel':
        if (this.trees.cancel(m.transferId)) return;
        void this.cancelTransfer(m.transferId, 'cancelled by the client');
        return;
      case 'abort':
        if (this.trees.cancel(m.transferId)) return;
        // A source that changed makes what was received of it worthless: nothing is kept to resume.
        void this.cancelTransfer(m.transferId, `client aborted: ${m.message}`, {
          keep: m.code !== 'EFILECHANGED',
        });
        return;
      default:
        return;
    }
  }

  private writable(what: string): void {
    if (this.readOnly || this.info.access === 'read-only') {
      throw new FerryError(
        'EACCES',
        `permission denied: ${what} needs a read-write key; this key is read-only`,
      );
    }
  }

  private async handle(m: Request): Promise<Reply | undefined> {
    switch (m.op) {
      case 'list': {
        const page = await this.storage.list(m.path, {
          ...(m.cursor !== undefined ? { cursor: m.cursor } : {}),
          ...(m.limit !== undefined ? { limit: m.limit } : {}),
          maxBytes: MAX_CONTROL_BYTES - LIST_ENVELOPE_BYTES,
        });
        return {
          op: 'reply',
          id: m.id,
          ok: true,
          entries: page.entries,
          ...(page.next ? { next: page.next } : {}),
        };
      }
      case 'stat':
        return { op: 'reply', id: m.id, ok: true, entry: await this.storage.stat(m.path) };
      case 'get':
        await this.withTransferSlot(() => this.startGet(m));
        return undefined;
      case 'put':
        return this.withTransferSlot(() => this.startPut(m));
      case 'commit':
        await this.commit(m);
        return { op: 'reply', id: m.id, ok: true };
      case 'rename':
        this.writable('rename');
        await this.storage.rename(m.from, m.to, { overwrite: m.overwrite });
        this.host.emit({ type: 'rename', level: 'info', msg: `${this.label} renamed ${m.from} -> ${m.to}` });
        return { op: 'reply', id: m.id, ok: true };
      case 'delete':
        this.writable('delete');
        await this.storage.delete(m.path);
        this.host.emit({ type: 'delete', level: 'info', msg: `${this.label} deleted ${m.path}` });
        return { op: 'reply', id: m.id, ok: true };
      case 'mkdir':
        await this.trees.mkdir(m);
        return { op: 'reply', id: m.id, ok: true };
      case 'rmdir':
        await this.trees.rmdir(m);
        return { op: 'reply', id: m.id, ok: true };
      case 'walk':
        // A page holds a descriptor per directory level it is in (up to MAX_WALK_DEPTH): bounded too.
        return this.withTransferSlot(() => this.trees.walk(m));
      case 'hash':
        return this.withTransferSlot(() => this.trees.hash(m));
      case 'putFiles':
        return this.withTransferSlot(() => this.trees.putFiles(m));
      case 'commitFiles':
        return this.trees.commitFiles(m);
      case 'getFiles':
        await this.withTransferSlot(() => this.trees.getFiles(m));
        return undefined;
      default:
        return undefined;
    }
  }

  /** Runs `start` if the session is under MAX_TRANSFERS_PER_SESSION (counting those still opening), else EBUSY. */
  private async withTransferSlot<T>(start: () => Promise<T>): Promise<T> {
    if (this.activeTransfers + this.starting >= MAX_TRANSFERS_PER_SESSION) {
      throw new FerryError(
        'EBUSY',
        `too many transfers at once in this session (at most ${MAX_TRANSFERS_PER_SESSION}); wait for one to finish`,
      );
    }
    this.starting++;
    try {
      return await start();
    } finally {
      this.starting--;
    }
  }

  /**
   * The block size of a transfer (feature PathMtu). A session without the feature, or a request that
   * names no `maxBlockSize` (a resumed get, whose `have` counts the session's blocks), gets the
   * session's. Otherwise a get (this side sends) uses what the path toward the client was found to
   * carry, once discovery had its first say (a round trip or two), within the client's maximum; a put
   * (the client sends) uses the client's maximum, which says what its path carries.
   */
  private async transferBlockSize(maxBlockSize: number | undefined, sending: boolean): Promise<number> {
    if (maxBlockSize === undefined || (this.session.features & Feature.PathMtu) === 0) {
      return this.session.blockSize;
    }
    if (!sending) return maxBlockSize;
    await this.session.pathSettled();
    return Math.min(maxBlockSize, this.session.connection.pathBlockSize);
  }

  private async startGet(m: Extract<Request, { op: 'get' }>): Promise<void> {
    const file = await this.storage.openRead(m.path);
    const transferId = this.nextTransferId++;
    let blockSize: number;
    try {
      blockSize = await this.transferBlockSize(m.resume === undefined ? m.maxBlockSize : undefined, true);
    } catch (error) {
      await file.close().catch(() => {});
      throw error;
    }
    // A resume is honoured only for the very same file (size and modification time); else from 0.
    const sameFile =
      m.resume !== undefined && m.resume.size === file.size && m.resume.mtimeMs === file.mtimeMs;
    this.gets.set(transferId, file);
    const reply: GetReply = {
      op: 'reply',
      id: m.id,
      ok: true,
      transferId,
      size: file.size,
      mtimeMs: file.mtimeMs,
      blockSize,
      blockCount: blockCountFor(file.size, blockSize),
      ...(m.resume !== undefined && !sameFile ? { restarted: true } : {}),
      // A client of feature Trees learns the file's permission bits (for get -p).
      ...((this.session.features & Feature.Trees) !== 0 && file.mode !== undefined
        ? { mode: file.mode }
        : {}),
    };
    const seq = this.send(reply);
    if (seq === undefined) {
      this.gets.delete(transferId);
      await file.close().catch(() => {});
      return;
    }
    const started = Date.now();
    this.host.emit({
      type: 'get-start',
      level: 'info',
      msg: `${this.label} get ${m.path} (${file.size} bytes)`,
      path: m.path,
    });
    void (async () => {
      try {
        const have = sameFile ? (m.resume?.have ?? []) : [];
        const sha256 = await new OutgoingFile(this.session, transferId, file, {
          have,
          afterMessage: seq,
          blockSize,
        }).digest();
        this.send({ op: 'digest', transferId, sha256 });
        this.host.emit({
          type: 'get-done',
          level: 'info',
          msg: `${this.label} get ${m.path} done in ${((Date.now() - started) / 1000).toFixed(2)} s`,
          path: m.path,
          bytes: file.size,
        });
      } catch (error) {
        const e = FerryError.from(error);
        if (e.code !== 'ECANCELED' && !this.session.isClosed) this.send(e.toAbort(transferId));
        this.host.emit({
          type: 'get-failed',
          level: 'warn',
          msg: `${this.label} get ${m.path} failed: ${e.message}`,
          code: e.code,
        });
      } finally {
        this.gets.delete(transferId);
        await file.close().catch(() => {});
        this.host.transferEnded();
      }
    })();
  }

  private async startPut(m: Extract<Request, { op: 'put' }>): Promise<PutReply> {
    this.writable('put');
    const blockSize = await this.transferBlockSize(m.maxBlockSize, false);
    const options = {
      size: m.size,
      blockSize,
      overwrite: m.overwrite,
      resume: m.resume,
      identity: `${this.info.keyName}\n${m.path}\n${m.size}\n${m.mtimeMs ?? ''}`,
    };
    let upload: Upload;
    try {
      upload = await this.storage.beginUpload(m.path, options);
    } catch (error) {
      // The same key is putting the same file in another session: typically a client that was killed
      // and is resuming before its old session timed out. The newer put takes the upload over.
      if (!(error instanceof FerryError && error.code === 'EBUSY')) throw error;
      const taken = await this.host.releasePut(this.info.keyName, m.path, this);
      if (!taken) throw error;
      upload = await this.storage.beginUpload(m.path, options);
    }
    const transferId = this.nextTransferId++;
    const offer = resumeOffer(upload.held(), blockSize, m.size);
    // The receive transfer is open before the reply leaves, so no early block is dropped.
    let incoming: IncomingFile;
    try {
      incoming = new IncomingFile(this.session, transferId, m.size, upload, offer.have, blockSize);
    } catch (error) {
      // The session ended while the upload was opening: nobody else will release it.
      await upload.abort({ keep: true });
      throw error;
    }
    incoming.received.catch((error: unknown) => this.putFailed(transferId, error));
    this.puts.set(transferId, {
      incoming,
      upload,
      overwrite: m.overwrite,
      mtimeMs: m.mtimeMs,
      mode: m.mode,
      path: m.path,
    });
    this.host.registerPut(this.info.keyName, m.path, this, transferId);
    this.host.emit({
      type: 'put-start',
      level: 'info',
      msg: `${this.label} put ${m.path} (${m.size} bytes${offer.bytes > 0 ? `, resuming with ${offer.bytes} bytes held` : ''})`,
      path: m.path,
    });
    return {
      op: 'reply',
      id: m.id,
      ok: true,
      transferId,
      blockSize,
      blockCount: blockCountFor(m.size, blockSize),
      have: offer.have,
    };
  }

  private async commit(m: Extract<Request, { op: 'commit' }>): Promise<void> {
    const put = this.puts.get(m.transferId);
    if (put === undefined) {
      throw (
        this.failedPuts.get(m.transferId) ??
        new FerryError('EINVAL', `no put in progress with transfer id ${m.transferId}`)
      );
    }
    try {
      await put.incoming.commit({
        sha256: m.sha256,
        overwrite: put.overwrite,
        ...(put.mtimeMs !== undefined ? { mtimeMs: put.mtimeMs } : {}),
        ...(put.mode !== undefined ? { mode: put.mode } : {}),
      });
    } catch (error) {
      const e = FerryError.from(error);
      if (this.puts.get(m.transferId) !== put) throw this.failedPuts.get(m.transferId) ?? e; // putFailed() ran
      // EINTEGRITY discards the upload (inside commit); anything else keeps it for a resume.
      if (e.code !== 'EINTEGRITY') await put.upload.abort({ keep: true });
      this.endPut(m.transferId, put, e);
      throw e;
    }
    this.puts.delete(m.transferId);
    this.host.unregisterPut(this.info.keyName, put.path, this);
    this.host.transferEnded();
    this.host.emit({
      type: 'put-done',
      level: 'info',
      msg: `${this.label} put ${put.path} committed`,
      path: put.path,
    });
  }

  /**
   * A put whose blocks could not be stored (disk full, I/O error): tell the client now, with the cause,
   * instead of letting it send into a transfer that no longer takes blocks; a commit that crossed this
   * gets the same cause. What is held is kept for a resume. Cancellations and ended sessions are
   * handled where they happen.
   */
  private putFailed(transferId: number, error: unknown): void {
    const put = this.puts.get(transferId);
    const e = FerryError.from(error);
    if (put === undefined || e.code === 'ECANCELED' || this.session.isClosed) return;
    this.host.track(put.upload.abort({ keep: true }));
    this.endPut(transferId, put, e);
    this.send(e.toAbort(transferId));
  }

  /** Forgets a failed put (remembering why, for a late commit) and logs it. */
  private endPut(transferId: number, put: PutState, error: FerryError): void {
    this.puts.delete(transferId);
    this.failedPuts.set(transferId, error);
    if (this.failedPuts.size > FAILED_PUTS_REMEMBERED) {
      this.failedPuts.delete(this.failedPuts.keys().next().value!);
    }
    this.host.unregisterPut(this.info.keyName, put.path, this);
    this.host.emit({
      type: 'put-failed',
      level: 'warn',
      msg: `${this.label} put ${put.path} failed: ${error.message}`,
      code: error.code,
    });
  }

  /** Stops a transfer; a put's upload is kept for a resume unless told otherwise. Resolves once it is released. */
  async cancelTransfer(
    transferId: number,
    why: string,
    options: { keep: boolean } = { keep: true },
  ): Promise<void> {
    this.session.cancel(transferId);
    const put = this.puts.get(transferId);
    this.host.emit({ type: 'cancel', level: 'info', msg: `${this.label} transfer ${transferId}: ${why}` });
    if (put !== undefined) {
      this.puts.delete(transferId);
      this.host.unregisterPut(this.info.keyName, put.path, this);
      await put.upload.abort(options);
    }
  }

  private onClosed(code: string, message: string): void {
    this.trees.closed();
    for (const [id, put] of this.puts) {
      this.puts.delete(id);
      this.host.unregisterPut(this.info.keyName, put.path, this);
      this.host.track(put.upload.abort({ keep: true }));
    }
    for (const file of this.gets.values()) void file.close().catch(() => {});
    this.gets.clear();
    const stats = this.session.stats();
    this.host.emit({
      type: 'session-closed',
      level: code === 'OK' ? 'info' : 'warn',
      msg: `${this.label} session ended${code === 'OK' ? '' : `: ${message}`} (${summarizeStats(stats)})`,
      code,
      stats,
    });
    this.host.sessionEnded(this);
  }
}

/** A session's transport counters in a few words, for the text log (--json carries them all). */
function summarizeStats(stats: Record<string, unknown>): string {
  const n = (key: string): number => (typeof stats[key] === 'number' ? (stats[key] as number) : 0);
  const rtt = (stats.rtt as { smoothedMs?: unknown } | undefined)?.smoothedMs;
  const mb = (bytes: number): string =>
    bytes < 1e6 ? `${(bytes / 1e3).toFixed(1)} kB` : `${(bytes / 1e6).toFixed(1)} MB`;
  return [
    `sent ${mb(n('bytesSent'))}`,
    `received ${mb(n('bytesReceived'))}`,
    `${n('blocksRetransmitted')} blocks retransmitted`,
    ...(typeof rtt === 'number' ? [`rtt ${rtt.toFixed(1)} ms`] : []),
  ].join(', ');
}
