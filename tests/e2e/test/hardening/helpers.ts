/**
 * Tools for the hardening tests, on top of the end-to-end harness (../../src: the bins, the relay,
 * cleanup, waits): a FerryServer in a child process (memory measured apart, killable), the
 * FerryClient library, attacker sockets that count every byte both ways, and a flood pump that never
 * lets the server's receive queue overflow (so that what the server counts can be compared with what
 * was sent). Everything binds 127.0.0.1 only, and every wait is bounded.
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type * as dgram from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { FerryClient, type FerryClientOptions } from '@ferry/client-cli';
import { type FernetKey, formatKey, generateKey, parseKey } from '@ferry/crypto';
import { ClientHandshake } from '@ferry/transport';
import type { TestContext } from 'vitest';
import {
  type BinProcess,
  bindSocket,
  onCleanup,
  SERVER_BIN,
  sleep,
  spawnBin,
  waitUntil,
  within,
} from '../../src/harness.js';

export const MB = 1024 * 1024;
export const HOST = '127.0.0.1';

const SERVER_CHILD = fileURLToPath(new URL('./server-child.mjs', import.meta.url));

// What these tests share with every end-to-end test: the bins, the cleanup when a file ends
// (children killed, sockets closed, directories removed), waits, files, the relay.
export {
  type BinProcess,
  bindSocket,
  binEnv,
  CLIENT_BIN,
  type Direction,
  expectResumed,
  onCleanup,
  partialFiles,
  persistedPartial,
  randomFile,
  run,
  SERVER_BIN,
  sandbox,
  sha256File,
  sleep,
  spawnBin,
  tempDir,
  UdpRelay,
  waitUntil,
  within,
} from '../../src/harness.js';

// ---- keys ----

export interface TestKey {
  name: string;
  access: 'read-only' | 'read-write';
  key: FernetKey;
}

export function newKey(name = 'default', access: TestKey['access'] = 'read-write'): TestKey {
  return { name, access, key: parseKey(generateKey()) };
}

// ---- the client library (FerryClient) ----

/** What these tests call a client: the library's own. */
export type Client = FerryClient;

export type ClientOptions = Omit<FerryClientOptions, 'host'> & { host?: string };

export async function connectClient(options: ClientOptions): Promise<Client> {
  // The library's 10 s handshake timeout is too tight for a busy machine; tests that mean a timeout say so.
  const client = await FerryClient.connect({ host: HOST, handshakeTimeoutMs: 30_000, ...options });
  onCleanup(() => client.close());
  return client;
}

/** The error code a promise rejects with (fails the test if it resolves). */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return String((error as { code?: unknown }).code ?? (error as Error).message);
  }
  throw new Error('expected a failure, but it succeeded');
}

// ---- file systems ----

/**
 * Mounts a tmpfs of `size` (as mount takes it: '4m') on the directory `at`, unmounted when the test
 * file ends; where this process may not mount (not root), the test is skipped, saying why.
 */
export function mountTmpfs(at: string, size: string, context: TestContext): void {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', at], { stdio: 'pipe' });
  } catch (error) {
    console.log(`skipped: cannot mount a tmpfs here (${(error as Error).message.split('\n')[0]})`);
    context.skip();
  }
  onCleanup(() => execFileSync('umount', ['-l', at]));
}

// ---- a FerryServer in a child process ----

export interface ChildServerOptions {
  root: string;
  keys: TestKey[];
  port?: number;
  maxSessions?: number;
  idleTimeoutMs?: number;
  partialTtlMs?: number;
  uid?: number;
  gid?: number;
}

export interface ServerStats {
  sessions: number;
  transfers: number;
  endpoint: {
    sessions: number;
    halfOpen: number;
    handshakes: number;
    handshakesRejected: number;
    resetsSent: number;
    rejectsSent: number;
    drops: Record<string, number>;
  };
}

export class ChildServer {
  readonly logs: Array<{ type: string; level: string; msg: string; code?: string }> = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    (m: { stats: ServerStats; memory: NodeJS.MemoryUsage }) => void
  >();

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
  ) {
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  static async start(options: ChildServerOptions): Promise<ChildServer> {
    const config = {
      root: options.root,
      port: options.port ?? 0,
      keys: options.keys.map((k) => ({ name: k.name, access: k.access, key: formatKey(k.key) })),
      maxSessions: options.maxSessions,
      idleTimeoutMs: options.idleTimeoutMs,
      partialTtlMs: options.partialTtlMs,
    };
    const child = fork(SERVER_CHILD, [JSON.stringify(config)], {
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      ...(options.uid !== undefined ? { uid: options.uid } : {}),
      ...(options.gid !== undefined ? { gid: options.gid } : {}),
    });
    onCleanup(() => child.kill('SIGKILL'));
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server child did not start: ${stderr}`)), 30_000);
      child.on('message', (m: { type?: string; port?: number }) => {
        if (m.type === 'listening') {
          clearTimeout(timer);
          resolve(m.port!);
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`server child exited (${code}) before listening: ${stderr}`));
      });
    });
    const server = new ChildServer(child, port);
    child.on('message', (m: { type?: string; id?: number; event?: ChildServer['logs'][number] }) => {
      if (m.type === 'log' && m.event !== undefined) server.logs.push(m.event);
      if (m.type === 'stats') {
        const waiter = server.waiting.get(m.id!);
        server.waiting.delete(m.id!);
        waiter?.(m as unknown as { stats: ServerStats; memory: NodeJS.MemoryUsage });
      }
    });
    server.stderr = () => stderr;
    return server;
  }

  stderr: () => string = () => '';

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The server's counters and memory (via IPC). */
  stats(): Promise<{ stats: ServerStats; memory: NodeJS.MemoryUsage }> {
    const id = this.nextId++;
    return within(
      'server stats',
      30_000,
      new Promise((resolve) => {
        this.waiting.set(id, resolve);
        this.child.send({ type: 'stats', id });
      }),
    );
  }

  /** Peak and current resident set size of the server process, from /proc (bytes). */
  async memory(): Promise<{ rss: number; peakRss: number }> {
    return procMemory(this.child.pid!);
  }

  async close(): Promise<void> {
    if (!this.alive) return;
    this.child.send({ type: 'close', graceMs: 0 });
    await within('server close', 30_000, this.exited);
  }

  async kill(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/**
 * Samples `read` (a process's memory, say) every 100 ms while a test runs, keeping the largest value
 * (a failed sample is skipped); `stop()` ends the sampling and resolves to the largest value, one
 * last sample included (which must not fail).
 */
export function trackPeak(read: () => Promise<number>, initial = 0): { stop(): Promise<number> } {
  let peak = initial;
  const sampler = setInterval(() => {
    read().then(
      (value) => {
        peak = Math.max(peak, value);
      },
      () => {},
    );
  }, 100);
  return {
    async stop() {
      clearInterval(sampler);
      peak = Math.max(peak, await read());
      return peak;
    },
  };
}

/** VmRSS and VmHWM (peak RSS) of a process, in bytes. */
export async function procMemory(pid: number): Promise<{ rss: number; peakRss: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { rss: kb('VmRSS') * 1024, peakRss: kb('VmHWM') * 1024 };
}

/** Every UDP socket's receive queue (bytes waiting) and kernel drop count, by local port. */
async function udpQueues(): Promise<Map<number, { rxQueue: number; drops: number }>> {
  const queues = new Map<number, { rxQueue: number; drops: number }>();
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const port = Number.parseInt(f[1]?.split(':').pop() ?? '', 16);
      if (Number.isNaN(port) || queues.has(port)) continue;
      const [, rx] = (f[4] ?? '0:0').split(':');
      queues.set(port, { rxQueue: Number.parseInt(rx ?? '0', 16), drops: Number(f[12] ?? 0) });
    }
  }
  return queues;
}

/** Bytes waiting in the receive queue of the UDP socket bound to `port`, and its kernel drop count. */
export async function udpQueue(port: number): Promise<{ rxQueue: number; drops: number } | undefined> {
  return (await udpQueues()).get(port);
}

/**
 * Waits until the UDP sockets bound to `ports` have nothing waiting: whatever was sent to them
 * before has been read by their process (which counts a datagram as it reads it).
 */
export function drained(ports: readonly number[], timeoutMs = 30_000): Promise<true> {
  return waitUntil(
    `the receive queues of ports ${ports.length > 4 ? `${ports.slice(0, 4).join(', ')}…` : ports.join(', ')} to drain`,
    async () => {
      const queues = await udpQueues();
      return ports.every((port) => (queues.get(port)?.rxQueue ?? 0) === 0) ? true : undefined;
    },
    timeoutMs,
  );
}

// ---- sockets ----

/** A socket that counts what it sends to and receives from the server, datagrams and bytes. */
export class AttackerSocket {
  bytesSent = 0;
  bytesReceived = 0;
  datagramsSent = 0;
  datagramsReceived = 0;
  readonly received: Buffer[] = [];
  private inFlight = 0;

  private constructor(
    readonly socket: dgram.Socket,
    readonly target: number,
    keep: number,
  ) {
    socket.on('message', (data) => {
      this.bytesReceived += data.length;
      this.datagramsReceived++;
      if (this.received.length < keep) this.received.push(data);
    });
  }

  static async open(targetPort: number, keep = 64): Promise<AttackerSocket> {
    return new AttackerSocket(await bindSocket(), targetPort, keep);
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(datagram: Buffer): Promise<void> {
    this.bytesSent += datagram.length;
    this.datagramsSent++;
    this.inFlight++;
    return new Promise((resolve) =>
      this.socket.send(datagram, this.target, HOST, () => {
        this.inFlight--;
        resolve();
      }),
    );
  }

  get pending(): number {
    return this.inFlight;
  }

  close(): void {
    try {
      this.socket.close();
    } catch {
      /* already closed */
    }
  }
}

/**
 * Sends `count` datagrams made by `make(i)` from `sockets` (round robin) to the server at `port`, as
 * fast as the server drains its receive queue: whenever the queue holds more than `maxQueueBytes`, it
 * waits a millisecond. So the flood is as hard as the server can take, yet the kernel drops (almost)
 * nothing, and the server's own drop counters can be compared with what was sent. Bounded by `timeoutMs`.
 */
export async function flood(
  sockets: AttackerSocket[],
  port: number,
  count: number,
  make: (i: number) => Buffer,
  options: { timeoutMs?: number; maxQueueBytes?: number; batch?: number; stop?: () => boolean } = {},
): Promise<{ sent: number; bytes: number; seconds: number; kernelDrops: number }> {
  const started = Date.now();
  const deadline = started + (options.timeoutMs ?? 60_000);
  const batch = options.batch ?? 64;
  const maxQueue = options.maxQueueBytes ?? 1024 * 1024;
  const before = (await udpQueue(port))?.drops ?? 0;
  let sent = 0;
  let bytes = 0;
  for (let i = 0; i < count; ) {
    if (Date.now() > deadline || options.stop?.()) break;
    const queue = await udpQueue(port);
    if (queue !== undefined && queue.rxQueue > maxQueue) {
      await sleep(1);
      continue;
    }
    const sends: Promise<void>[] = [];
    for (let j = 0; j < batch && i < count; j++, i++) {
      const d = make(i);
      sends.push(sockets[i % sockets.length]!.send(d));
      sent++;
      bytes += d.length;
    }
    await Promise.all(sends);
  }
  const after = (await udpQueue(port))?.drops ?? 0;
  return { sent, bytes, seconds: (Date.now() - started) / 1000, kernelDrops: after - before };
}

// ---- datagram shapes ----

export const SPACE = { handshake: 1, session: 2 } as const;
export const PREFIX_LENGTH = 12;

export function spaceOf(d: Buffer): number {
  return d[3] ?? -1;
}

export function connIdOf(d: Buffer): bigint {
  return d.readBigUInt64BE(4);
}

/** A 12-byte ferry prefix: magic "FY", version 1, the space, the connection id. */
export function prefix(space: number, connId: bigint): Buffer {
  const p = Buffer.alloc(PREFIX_LENGTH);
  p.write('FY', 0, 'latin1');
  p[2] = 1;
  p[3] = space;
  p.writeBigUInt64BE(connId, 4);
  return p;
}

/** The first datagram of a client's handshake under `key` (a hello), with these tests' session settings. */
export function helloUnder(key: FernetKey): Buffer {
  const handshake = new ClientHandshake({
    key,
    now: performance.now(),
    wallClock: () => Date.now() / 1000,
    maxBlockSize: 32_768,
    receiveWindow: 16 * MB,
    idleTimeoutMs: 30_000,
  });
  return handshake.poll(performance.now())[0]!;
}

export function randomConnId(): bigint {
  return randomBytes(8).readBigUInt64BE(0);
}

// ---- the real bins ----

/** A ferry-server bin on 127.0.0.1, started and waited for (its "listening" event gives the port). */
export async function startServerBin(
  root: string,
  keyFile: string,
  options: { port?: number; args?: readonly string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<BinProcess & { port: number }> {
  const p = spawnBin(
    SERVER_BIN,
    [
      String(options.port ?? 0),
      '--host',
      HOST,
      '--root',
      root,
      '--key',
      keyFile,
      '--json',
      ...(options.args ?? []),
    ],
    { env: options.env ?? process.env },
  );
  const listening = await p.waitFor((e) => e.type === 'listening', 30_000);
  return Object.assign(p, { port: Number(listening.port) });
}
