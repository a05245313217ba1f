import { encodeControlMessage, FerryError, MAX_BLOCK_SIZE } from '@ferry/protocol';
import { LocalDiskStorage, type LocalDiskStorageOptions, type Storage } from '@ferry/storage';
import { type ServerKey, UdpServer } from '@ferry/transport';
import { type ServerLogEvent, SessionHandler, type SessionHost } from './session-handler.js';

export { MAX_TRANSFERS_PER_SESSION, type ServerLogEvent } from './session-handler.js';

/**
 * FerryServer: serves one store (a directory by default) to clients holding a key. Each session gets a
 * SessionHandler that answers its requests; the server owns the socket, the sessions, the partial
 * uploads' expiry sweep, put take-overs between sessions, and a graceful close.
 */
export interface FerryServerOptions {
  /** The directory to serve (as LocalDiskStorage), unless `store` is given. */
  root?: string;
  /** An opened store to serve instead of `root`; the server closes it when it closes. */
  store?: Storage;
  port: number;
  host?: string;
  keys: ServerKey[];
  readOnly?: boolean;
  maxSessions?: number;
  partialTtlMs?: number;
  blockSize?: number;
  idleTimeoutMs?: number;
  log?: (event: ServerLogEvent) => void;
  /** Options of the root's LocalDiskStorage, e.g. `fs` to inject file-system faults in tests. */
  localStorage?: LocalDiskStorageOptions;
  /**
   * Protocol versions to accept (default: every version this build speaks). [1] behaves exactly as a
   * server from before version 2, without directory operations: for compatibility tests.
   */
  versions?: readonly number[];
}

export const DEFAULT_PARTIAL_TTL_MS = 24 * 60 * 60 * 1000;

export class FerryServer implements SessionHost {
  private udp: UdpServer | undefined;
  private storage: Storage | undefined;
  private readonly handlers = new Set<SessionHandler>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(private readonly options: FerryServerOptions) {
    if (options.keys.length === 0) throw new FerryError('EINVAL', 'the server needs at least one key');
    if (options.store === undefined && options.root === undefined) {
      throw new FerryError('EINVAL', 'the server needs a directory or a store to serve');
    }
  }

  emit(event: ServerLogEvent): void {
    this.options.log?.(event);
  }

  async listen(): Promise<{ address: string; port: number; family: string }> {
    this.storage =
      this.options.store ?? (await LocalDiskStorage.open(this.options.root!, this.options.localStorage));
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
      ...(this.options.versions !== undefined ? { versions: this.options.versions } : {}),
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
        ?.sweepUploads(ttl)
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
        encodeControlMessage(
          new FerryError('ECANCELED', 'a newer put of the same file took over').toAbort(entry.transferId),
        ),
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
    await this.storage?.close();
  }

  stats(): Record<string, unknown> {
    let transfers = 0;
    for (const h of this.handlers) transfers += h.activeTransfers;
    return { sessions: this.handlers.size, transfers, endpoint: this.udp?.stats() ?? {} };
  }
}
