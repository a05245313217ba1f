import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { interfaceMtu } from '@ferry/cli-kit';
import { encodeControlMessage, FerryError, MAX_BLOCK_SIZE } from '@ferry/protocol';
import { LocalDiskStorage, type LocalDiskStorageOptions, type Storage } from '@ferry/storage';
import { type ServerKey, UdpServer } from '@ferry/transport';
import {
  type SeedCompatAddress,
  SeedCompatListener,
  type SeedCompatOptions,
} from './seed-compat/listener.js';
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
  /** Most bytes of file data held for sending, all sessions together (default 256 MiB). */
  maxBufferedBytes?: number;
  /** Most bytes of file data held for sending by one session (default 16 MiB). */
  maxSessionBufferedBytes?: number;
  log?: (event: ServerLogEvent) => void;
  /** Options of the root's LocalDiskStorage, e.g. `fs` to inject file-system faults in tests. */
  localStorage?: LocalDiskStorageOptions;
  /** Also serve the store to the seed's own client, on a port of its own (see seed-compat/). */
  seedCompat?: SeedCompatOptions;
  /**
   * Protocol versions to accept (default: every version this build speaks). [1] behaves exactly as a
   * server from before version 2, without directory operations: for compatibility tests.
   */
  versions?: readonly number[];
  /**
   * Features a version-2 session may be granted (default: every feature this build implements); one
   * left out behaves as a server without it: for compatibility tests.
   */
  features?: number;
}

export const DEFAULT_PARTIAL_TTL_MS = 24 * 60 * 60 * 1000;
/** How long the server waits, once its last transfer has ended, before it hands memory back. */
const RECLAIM_AFTER_MS = 2000;
/**
 * When it collects once more, still idle. V8 shrinks its young generation (up to 2 x 16 MiB) at a
 * full collection only if little was allocated over its last ~5 s, which the first collection, just
 * after the transfers, does not see (measured: 16.8 MB of young generation kept after the first,
 * 1 MB after the second).
 */
const SHRINK_AFTER_MS = 6000;

/** A full garbage collection (V8 exposes it to a new context once --expose-gc is set, at any time). */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

export class FerryServer implements SessionHost {
  private udp: UdpServer | undefined;
  private seedCompat: SeedCompatListener | undefined;
  private seedCompatBound: SeedCompatAddress | undefined;
  private storage: Storage | undefined;
  private readonly handlers = new Set<SessionHandler>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private reclaimTimer: NodeJS.Timeout | undefined;
  /** Uploads being put away for a resume: the store closes only once they are. */
  private readonly pending = new Set<Promise<unknown>>();
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
      // A block size set by the operator is the block size: no per-transfer sizes from path MTU discovery.
      discoverPathMtu: this.options.blockSize === undefined,
      interfaceMtu,
      ...(this.options.maxSessions !== undefined ? { maxSessions: this.options.maxSessions } : {}),
      ...(this.options.idleTimeoutMs !== undefined ? { idleTimeoutMs: this.options.idleTimeoutMs } : {}),
      ...(this.options.maxBufferedBytes !== undefined
        ? { maxBufferedBytes: this.options.maxBufferedBytes }
        : {}),
      ...(this.options.maxSessionBufferedBytes !== undefined
        ? { maxSessionBufferedBytes: this.options.maxSessionBufferedBytes }
        : {}),
      ...(this.options.versions !== undefined ? { versions: this.options.versions } : {}),
      ...(this.options.features !== undefined ? { features: this.options.features } : {}),
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
    if (this.options.seedCompat !== undefined) {
      const seedCompat = new SeedCompatListener(
        this.storage,
        {
          ...this.options.seedCompat,
          writable: this.options.seedCompat.writable === true && this.options.readOnly !== true,
        },
        (event) => this.emit(event),
      );
      try {
        this.seedCompatBound = await seedCompat.listen();
      } catch (error) {
        await udp.close();
        throw error;
      }
      this.seedCompat = seedCompat;
    }
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

  /** Where the seed-compatible listener is bound, when it runs. */
  seedCompatAddress(): SeedCompatAddress | undefined {
    return this.seedCompatBound;
  }

  sessionEnded(handler: SessionHandler): void {
    this.handlers.delete(handler);
    this.transferEnded();
  }

  /**
   * Once no transfer has run for RECLAIM_AFTER_MS, the memory of the last ones is handed back to the
   * system: a full garbage collection frees their file buffers, whose memory is unmapped as they are
   * freed (an idle process allocates nothing, so its collector would not run for a long while); a
   * second one SHRINK_AFTER_MS later lets V8 shrink its young generation. Each transfer that ends
   * starts the wait again.
   */
  track(work: Promise<unknown>): void {
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work)).catch(() => {});
  }

  transferEnded(): void {
    if (this.closing) return;
    clearTimeout(this.reclaimTimer);
    this.reclaimAfter(RECLAIM_AFTER_MS, () => this.reclaimAfter(SHRINK_AFTER_MS));
  }

  private reclaimAfter(ms: number, then?: () => void): void {
    this.reclaimTimer = setTimeout(() => {
      this.reclaimTimer = undefined;
      if ([...this.handlers].some((h) => h.activeTransfers > 0)) return; // the last transfer to end calls again
      collectGarbage();
      then?.();
    }, ms);
    this.reclaimTimer.unref();
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
    if (this.reclaimTimer !== undefined) clearTimeout(this.reclaimTimer);
    const udp = this.udp;
    if (udp === undefined) return;
    udp.stopAccepting();
    const seedCompatClosed = this.seedCompat?.close(graceMs);
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && [...this.handlers].some((h) => h.activeTransfers > 0)) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await seedCompatClosed;
    await udp.close();
    // Every session is closed now; their uploads are being put away (a final persist for a resume).
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    await this.storage?.close();
  }

  stats(): Record<string, unknown> {
    let transfers = 0;
    for (const h of this.handlers) transfers += h.activeTransfers;
    return {
      sessions: this.handlers.size,
      transfers,
      endpoint: this.udp?.stats() ?? {},
      ...(this.seedCompat !== undefined ? { seedCompat: this.seedCompat.stats() } : {}),
    };
  }
}
