import {
  blockCountFor,
  type ControlMessage,
  decodeControlMessage,
  type ErrorName,
  encodeControlMessage,
  FerryError,
  MAX_BLOCK_SIZE,
  MAX_CONTROL_BYTES,
  MAX_RESUME_RANGES,
  type Reply,
} from '@ferry/protocol';
import {
  type FileBlockSource,
  type PartialFile,
  type ServerKey,
  type ServerSession,
  type Session,
  UdpServer,
} from '@ferry/transport';
import { LocalDiskStorage, type LocalDiskStorageOptions } from './storage/index.js';

/**
 * FerryServer: serves one directory to clients holding a key. Requests arrive as control messages
 * on a transport session; gets stream blocks from a FileBlockSource, puts write blocks into a
 * PartialFile that is verified and renamed into place on commit. A session's end never stops the
 * server; an interrupted put leaves a resumable partial that expires after `partialTtlMs`.
 */
export interface ServerLogEvent {
  type: string;
  level: 'info' | 'warn' | 'error';
  msg: string;
  [key: string]: unknown;
}

export interface FerryServerOptions {
  root: string;
  port: number;
  host?: string;
  keys: ServerKey[];
  readOnly?: boolean;
  maxSessions?: number;
  partialTtlMs?: number;
  blockSize?: number;
  idleTimeoutMs?: number;
  /** Most bytes of file data held for sending, all sessions together (default 256 MiB). */
  maxBufferedBytes?: number;
  /** Most bytes of file data held for sending by one session (default 16 MiB). */
  maxSessionBufferedBytes?: number;
  log?: (event: ServerLogEvent) => void;
  /** Options of the root's LocalDiskStorage, e.g. `fs` to inject file-system faults in tests. */
  storage?: LocalDiskStorageOptions;
}

export const DEFAULT_PARTIAL_TTL_MS = 24 * 60 * 60 * 1000;
/**
 * Gets and puts one session may run at once (the reference client runs 4). Each holds a descriptor
 * and up to about a MiB of buffers, so without a cap one key holder could exhaust the server's file
 * descriptors and memory with a burst of requests; beyond it a request is refused with EBUSY.
 */
export const MAX_TRANSFERS_PER_SESSION = 16;
/** Room left in a list reply for its envelope ({"op":"reply","id":…,"ok":true,"entries":[…],"next":…}). */
const LIST_ENVELOPE_BYTES = 2048;

type Outgoing =
  | Reply
  | { op: 'digest'; transferId: number; sha256: string }
  | {
      op: 'abort';
      transferId: number;
      code: Exclude<ErrorName, 'OK' | 'EUSAGE' | 'EHOSTUNREACH' | 'ECONNREFUSED'>;
      message: string;
    };

interface PutState {
  partial: PartialFile;
  received: Promise<void>;
  overwrite: boolean;
  mtimeMs: number | undefined;
  path: string;
}

class SessionHandler {
  private nextTransferId = 1;
  /** Gets and puts accepted but not yet registered (opening their file). */
  private starting = 0;
  private readonly puts = new Map<number, PutState>();
  private readonly gets = new Map<number, FileBlockSource>();
  readonly label: string;

  constructor(
    private readonly server: FerryServer,
    readonly session: Session,
    readonly info: ServerSession,
    private readonly storage: LocalDiskStorage,
    private readonly readOnly: boolean,
  ) {
    this.label = `${info.id.slice(0, 8)} ${info.keyName}@${info.address.replace('|', ' port ')}`;
    session.onMessage((body) => this.onMessage(body));
    void session.closed().then((closed) => this.onClosed(closed.code, closed.message));
  }

  get activeTransfers(): number {
    return this.puts.size + this.gets.size;
  }

  private send(message: Outgoing): number | undefined {
    if (this.session.isClosed) return undefined;
    return this.session.send(encodeControlMessage(message as ControlMessage));
  }

  private onMessage(body: Buffer): void {
    const decoded = decodeControlMessage(body);
    if (!decoded.ok) {
      this.server.emit({
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
        this.handle(m).then(
          (reply) => {
            if (reply !== undefined) this.send(reply);
          },
          (error: unknown) => this.send(asFerryError(error).toReply(m.id)),
        );
        return;
      case 'cancel':
      case 'abort':
        this.cancelTransfer(
          m.transferId,
          m.op === 'abort' ? `client aborted: ${m.message}` : 'cancelled by the client',
        );
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

  private async handle(m: Extract<ControlMessage, { id: number }>): Promise<Reply | undefined> {
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
        } as Reply;
      }
      case 'stat':
        return { op: 'reply', id: m.id, ok: true, entry: await this.storage.stat(m.path) } as Reply;
      case 'get':
        await this.withTransferSlot(() => this.startGet(m));
        return undefined;
      case 'put':
        return this.withTransferSlot(() => this.startPut(m));
      case 'commit':
        return this.commit(m);
      case 'rename':
        this.writable('rename');
        await this.storage.rename(m.from, m.to, { overwrite: m.overwrite });
        this.server.emit({
          type: 'rename',
          level: 'info',
          msg: `${this.label} renamed ${m.from} -> ${m.to}`,
        });
        return { op: 'reply', id: m.id, ok: true } as Reply;
      case 'delete':
        this.writable('delete');
        await this.storage.delete(m.path);
        this.server.emit({ type: 'delete', level: 'info', msg: `${this.label} deleted ${m.path}` });
        return { op: 'reply', id: m.id, ok: true } as Reply;
    }
  }

  /** Runs `start` if the session is under MAX_TRANSFERS_PER_SESSION (counting those still opening), else EBUSY. */
  private async withTransferSlot<T>(start: () => Promise<T>): Promise<T> {
    if (this.puts.size + this.gets.size + this.starting >= MAX_TRANSFERS_PER_SESSION) {
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

  private async startGet(m: Extract<ControlMessage, { op: 'get' }>): Promise<void> {
    const source = await this.storage.openRead(m.path);
    const transferId = this.nextTransferId++;
    const blockSize = this.session.blockSize;
    let have: Array<[number, number]> = [];
    let restarted = false;
    if (m.resume !== undefined) {
      if (m.resume.size === source.size && m.resume.mtimeMs === source.mtimeMs) {
        have = m.resume.have.map(([a, b]) => [a, b] as [number, number]);
      } else {
        restarted = true;
      }
    }
    this.gets.set(transferId, source);
    const reply = {
      op: 'reply',
      id: m.id,
      ok: true,
      transferId,
      size: source.size,
      mtimeMs: source.mtimeMs,
      blockSize,
      blockCount: blockCountFor(source.size, blockSize),
      ...(restarted ? { restarted: true } : {}),
    } as Reply;
    const seq = this.send(reply);
    if (seq === undefined) return;
    const started = Date.now();
    this.server.emit({
      type: 'get-start',
      level: 'info',
      msg: `${this.label} get ${m.path} (${source.size} bytes)`,
      path: m.path,
    });
    void (async () => {
      try {
        await this.session.sendBlocks(transferId, source, { have, afterMessage: seq });
        const sha256 = await source.sha256();
        this.send({ op: 'digest', transferId, sha256 });
        this.server.emit({
          type: 'get-done',
          level: 'info',
          msg: `${this.label} get ${m.path} done in ${((Date.now() - started) / 1000).toFixed(2)} s`,
          path: m.path,
          bytes: source.size,
        });
      } catch (error) {
        const e = asFerryError(error);
        if (e.code !== 'ECANCELED' && !this.session.isClosed) {
          this.send({ op: 'abort', transferId, code: wireable(e.code), message: e.message });
        }
        this.server.emit({
          type: 'get-failed',
          level: 'warn',
          msg: `${this.label} get ${m.path} failed: ${e.message}`,
          code: e.code,
        });
      } finally {
        this.gets.delete(transferId);
        await source.close().catch(() => {});
      }
    })();
  }

  private async startPut(m: Extract<ControlMessage, { op: 'put' }>): Promise<Reply> {
    this.writable('put');
    const blockSize = this.session.blockSize;
    const options = {
      size: m.size,
      blockSize,
      overwrite: m.overwrite,
      resume: m.resume,
      identity: `${this.info.keyName}\n${m.path}\n${m.size}\n${m.mtimeMs ?? ''}`,
    };
    let partial: PartialFile;
    try {
      partial = await this.storage.beginWrite(m.path, options);
    } catch (error) {
      // The same key is putting the same file in another session: typically a client that was killed
      // and is resuming before its old session timed out. The newer put takes the partial over.
      if (!(error instanceof FerryError && error.code === 'EBUSY')) throw error;
      const taken = await this.server.releasePut(this.info.keyName, m.path, this);
      if (!taken) throw error;
      partial = await this.storage.beginWrite(m.path, options);
    }
    const transferId = this.nextTransferId++;
    const have = partial
      .have()
      .ranges()
      .slice(0, MAX_RESUME_RANGES)
      .map(([a, b]) => [a, b] as [number, number]);
    // The receive transfer is open before the reply leaves, so no early block is dropped.
    const received = this.session.receiveBlocks(transferId, m.size, partial, { have });
    received.catch((error: unknown) => this.putFailed(transferId, error));
    this.puts.set(transferId, {
      partial,
      received,
      overwrite: m.overwrite,
      mtimeMs: m.mtimeMs,
      path: m.path,
    });
    this.server.registerPut(this.info.keyName, m.path, this, transferId);
    const resumed = have.reduce((n, [a, b]) => n + (b - a), 0);
    this.server.emit({
      type: 'put-start',
      level: 'info',
      msg: `${this.label} put ${m.path} (${m.size} bytes${resumed > 0 ? `, resuming with ${resumed} blocks held` : ''})`,
      path: m.path,
    });
    return {
      op: 'reply',
      id: m.id,
      ok: true,
      transferId,
      blockSize,
      blockCount: blockCountFor(m.size, blockSize),
      have,
    } as Reply;
  }

  private async commit(m: Extract<ControlMessage, { op: 'commit' }>): Promise<Reply> {
    const put = this.puts.get(m.transferId);
    if (put === undefined)
      throw new FerryError('EINVAL', `no put in progress with transfer id ${m.transferId}`);
    try {
      await put.received;
      await put.partial.commit({
        sha256: m.sha256,
        overwrite: put.overwrite,
        ...(put.mtimeMs !== undefined ? { mtimeMs: put.mtimeMs } : {}),
      });
    } catch (error) {
      const e = asFerryError(error);
      if (this.puts.get(m.transferId) !== put) throw e; // putFailed() already released it
      // EINTEGRITY discards the partial (inside commit); anything else keeps it for a resume.
      if (e.code !== 'EINTEGRITY') await put.partial.abort({ keep: true });
      this.puts.delete(m.transferId);
      this.server.unregisterPut(this.info.keyName, put.path, this);
      this.server.emit({
        type: 'put-failed',
        level: 'warn',
        msg: `${this.label} put ${put.path} failed: ${e.message}`,
        code: e.code,
      });
      throw e;
    }
    this.puts.delete(m.transferId);
    this.server.emit({
      type: 'put-done',
      level: 'info',
      msg: `${this.label} put ${put.path} committed`,
      path: put.path,
    });
    return { op: 'reply', id: m.id, ok: true } as Reply;
  }

  /**
   * A put whose blocks could not be stored (disk full, I/O error): tell the client now, with the cause,
   * instead of letting it send into a transfer that no longer takes blocks. The partial is kept for a
   * resume. Cancellations and ended sessions are handled where they happen.
   */
  private putFailed(transferId: number, error: unknown): void {
    const put = this.puts.get(transferId);
    const e = asFerryError(error);
    if (put === undefined || e.code === 'ECANCELED' || this.session.isClosed) return;
    this.puts.delete(transferId);
    this.server.unregisterPut(this.info.keyName, put.path, this);
    void put.partial.abort({ keep: true });
    this.send({ op: 'abort', transferId, code: wireable(e.code), message: e.message });
    this.server.emit({
      type: 'put-failed',
      level: 'warn',
      msg: `${this.label} put ${put.path} failed: ${e.message}`,
      code: e.code,
    });
  }

  /** Stops a transfer; a put's partial is persisted and kept for a resume. Resolves once it is released. */
  async cancelTransfer(transferId: number, why: string): Promise<void> {
    this.session.cancel(transferId);
    const put = this.puts.get(transferId);
    this.server.emit({ type: 'cancel', level: 'info', msg: `${this.label} transfer ${transferId}: ${why}` });
    if (put !== undefined) {
      this.puts.delete(transferId);
      this.server.unregisterPut(this.info.keyName, put.path, this);
      await put.partial.abort({ keep: true });
    }
  }

  private onClosed(code: ErrorName, message: string): void {
    for (const [id, put] of this.puts) {
      this.puts.delete(id);
      this.server.unregisterPut(this.info.keyName, put.path, this);
      void put.partial.abort({ keep: true });
    }
    for (const source of this.gets.values()) void source.close().catch(() => {});
    this.gets.clear();
    const stats = this.session.stats();
    this.server.emit({
      type: 'session-closed',
      level: code === 'OK' ? 'info' : 'warn',
      msg: `${this.label} session ended${code === 'OK' ? '' : `: ${message}`} (${summarizeStats(stats)})`,
      code,
      stats,
    });
    this.server.sessionEnded(this);
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

function asFerryError(error: unknown): FerryError {
  if (error instanceof FerryError) return error;
  const e = error as { code?: string; message?: string };
  if (e?.code === 'ENOSPC') return new FerryError('ENOSPC', 'no space left on the server');
  return new FerryError('EINTERNAL', `internal server error: ${e?.message ?? String(error)}`);
}

function wireable(code: ErrorName): Exclude<ErrorName, 'OK' | 'EUSAGE' | 'EHOSTUNREACH' | 'ECONNREFUSED'> {
  return code === 'OK' || code === 'EUSAGE' || code === 'EHOSTUNREACH' || code === 'ECONNREFUSED'
    ? 'EINTERNAL'
    : code;
}

export class FerryServer {
  private udp: UdpServer | undefined;
  private storage: LocalDiskStorage | undefined;
  private readonly handlers = new Set<SessionHandler>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(private readonly options: FerryServerOptions) {
    if (options.keys.length === 0) throw new FerryError('EINVAL', 'the server needs at least one key');
  }

  emit(event: ServerLogEvent): void {
    this.options.log?.(event);
  }

  async listen(): Promise<{ address: string; port: number; family: string }> {
    this.storage = await LocalDiskStorage.open(this.options.root, this.options.storage);
    const keys = this.options.readOnly
      ? this.options.keys.map((k) => ({ ...k, access: 'read-only' as const }))
      : this.options.keys;
    const udp = new UdpServer({
      port: this.options.port,
      ...(this.options.host !== undefined ? { host: this.options.host } : {}),
      keys,
      maxBlockSize: this.options.blockSize ?? MAX_BLOCK_SIZE,
      ...(this.options.maxSessions !== undefined ? { maxSessions: this.options.maxSessions } : {}),
      ...(this.options.idleTimeoutMs !== undefined ? { idleTimeoutMs: this.options.idleTimeoutMs } : {}),
      ...(this.options.maxBufferedBytes !== undefined
        ? { maxBufferedBytes: this.options.maxBufferedBytes }
        : {}),
      ...(this.options.maxSessionBufferedBytes !== undefined
        ? { maxSessionBufferedBytes: this.options.maxSessionBufferedBytes }
        : {}),
    });
    udp.onSession((session, info) => {
      const handler = new SessionHandler(this, session, info, this.storage!, this.options.readOnly ?? false);
      this.handlers.add(handler);
      this.emit({
        type: 'session-open',
        level: 'info',
        msg: `${handler.label} session opened (${info.access})`,
        key: info.keyName,
        address: info.address,
      });
    });
    const address = await udp.listen();
    this.udp = udp;
    const ttl = this.options.partialTtlMs ?? DEFAULT_PARTIAL_TTL_MS;
    const sweep = (): void => {
      void this.storage
        ?.sweepPartials(ttl)
        .then((removed) => {
          if (removed.length > 0) {
            this.emit({
              type: 'sweep',
              level: 'info',
              msg: `removed ${removed.length} expired partial file(s)`,
              removed,
            });
          }
        })
        .catch((error: unknown) =>
          this.emit({
            type: 'sweep-failed',
            level: 'warn',
            msg: `sweeping partial files failed: ${(error as Error).message}`,
          }),
        );
    };
    sweep();
    this.sweepTimer = setInterval(sweep, Math.max(1000, Math.min(ttl / 4, 10 * 60 * 1000)));
    this.sweepTimer.unref();
    return address;
  }

  sessionEnded(handler: SessionHandler): void {
    this.handlers.delete(handler);
  }

  /** Puts in progress by key and path, so that a resuming client can take its old put over. */
  private readonly activePuts = new Map<string, { handler: SessionHandler; transferId: number }>();

  registerPut(keyName: string, path: string, handler: SessionHandler, transferId: number): void {
    this.activePuts.set(`${keyName}\n${path}`, { handler, transferId });
  }

  unregisterPut(keyName: string, path: string, handler: SessionHandler): void {
    const k = `${keyName}\n${path}`;
    if (this.activePuts.get(k)?.handler === handler) this.activePuts.delete(k);
  }

  /** Ends another session's put of `path` by the same key; true if there was one to end. */
  async releasePut(keyName: string, path: string, requester: SessionHandler): Promise<boolean> {
    const entry = this.activePuts.get(`${keyName}\n${path}`);
    if (entry === undefined || entry.handler === requester) return false;
    await entry.handler.cancelTransfer(entry.transferId, 'taken over by a newer put of the same file');
    if (!entry.handler.session.isClosed) {
      entry.handler.session.send(
        encodeControlMessage({
          op: 'abort',
          transferId: entry.transferId,
          code: 'ECANCELED',
          message: 'a newer put of the same file took over',
        } as ControlMessage),
      );
    }
    return true;
  }

  /** Stops accepting sessions, lets running transfers finish for up to `graceMs`, then closes. */
  async close(graceMs = 3000): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    const udp = this.udp;
    if (udp === undefined) return;
    udp.stopAccepting();
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && [...this.handlers].some((h) => h.activeTransfers > 0)) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await udp.close();
  }

  stats(): Record<string, unknown> {
    let transfers = 0;
    for (const h of this.handlers) transfers += h.activeTransfers;
    return { sessions: this.handlers.size, transfers, endpoint: this.udp?.stats() ?? {} };
  }
}
