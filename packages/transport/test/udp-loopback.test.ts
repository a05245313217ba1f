import { createHash } from 'node:crypto';
import * as dgram from 'node:dgram';
import { FerryError } from '@ferry/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import type { BlockSink, BlockSource, Session } from '../src/session.js';
import { connect, UdpServer } from '../src/udp.js';
import { randomKey, seededBytes, TEST_KEY } from './helpers/sim-harness.js';

/**
 * The Node adapter on real sockets (loopback): connect() and UdpServer over IPv4 and IPv6, control
 * messages, a multi-megabyte transfer each way with in-memory sources and sinks, and the failures a
 * user meets first (wrong key, nothing listening, server going away). Every wait is bounded, and
 * generously: the bounds only catch a hang. Where a test means "at once", the slow path it rules out
 * (a handshake or idle timeout) is made far longer than the bound, so the wall clock of a busy machine
 * cannot be mistaken for it.
 */
const BLOCK = 16 * 1024;
const SIZE = 8 * 1024 * 1024 + 123;

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function memorySource(data: Buffer): BlockSource {
  return {
    size: data.length,
    read: async (index, blockSize) =>
      data.subarray(index * blockSize, Math.min((index + 1) * blockSize, data.length)),
  };
}

function memorySink(into: Buffer, blockSize: number): BlockSink {
  return {
    write: async (index, block) => {
      block.copy(into, index * blockSize);
    },
  };
}

/** Rejects with a clear message if `promise` takes longer than `ms`. */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function failure(promise: Promise<unknown>): Promise<FerryError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FerryError);
  return error as FerryError;
}

/** Whether this machine can bind a UDP socket on ::1 (some containers have no IPv6 loopback). */
async function ipv6LoopbackWorks(): Promise<boolean> {
  const socket = dgram.createSocket('udp6');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '::1', () => resolve());
    });
    return true;
  } catch {
    return false;
  } finally {
    socket.close();
  }
}
const IPV6 = await ipv6LoopbackWorks();
if (!IPV6) console.log('skipping the ::1 tests: this machine cannot bind a UDP socket on the IPv6 loopback');

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Message = Record<string, unknown> & { op: string; id?: number; transferId?: number };
const encode = (m: object): Buffer => Buffer.from(JSON.stringify(m));

/**
 * A server on `host` answering a small subset of the real control protocol from memory: stat echoes
 * the path's last component, put receives into memory, get sends seeded bytes then their digest.
 */
async function startServer(host: string, options: Partial<ConstructorParameters<typeof UdpServer>[0]> = {}) {
  const server = new UdpServer({
    host,
    port: 0,
    keys: [{ name: 'test', key: TEST_KEY, access: 'read-write' }],
    maxBlockSize: BLOCK,
    ...options,
  });
  const sessions: Session[] = [];
  const stored = new Map<number, Buffer>();
  const uploads: Array<Promise<void>> = [];
  server.onSession((session) => {
    sessions.push(session);
    session.onMessage((body) => {
      const m = JSON.parse(body.toString()) as Message & { path: string; size: number };
      const id = m.id!;
      const blockSize = session.blockSize;
      if (m.op === 'stat') {
        const name = m.path.split('/').pop()!;
        const entry = { name, type: 'file', size: Buffer.byteLength(m.path), mtimeMs: 0 };
        session.send(encode({ op: 'reply', id, ok: true, entry }));
      } else if (m.op === 'put') {
        const into = Buffer.alloc(m.size);
        uploads.push(
          session.receiveBlocks(id, m.size, memorySink(into, blockSize)).then(() => {
            stored.set(id, into);
          }),
        );
        const blockCount = Math.ceil(m.size / blockSize);
        session.send(encode({ op: 'reply', id, ok: true, transferId: id, blockSize, blockCount, have: [] }));
      } else if (m.op === 'get') {
        const data = seededBytes(id, SIZE);
        const blockCount = Math.ceil(SIZE / blockSize);
        const reply = {
          op: 'reply',
          id,
          ok: true,
          transferId: id,
          size: SIZE,
          mtimeMs: 0,
          blockSize,
          blockCount,
        };
        const seq = session.send(encode(reply));
        session.sendBlocks(id, memorySource(data), { afterMessage: seq }).then(
          () => session.send(encode({ op: 'digest', transferId: id, sha256: sha256(data) })),
          () => undefined,
        );
      }
    });
  });
  const address = await server.listen();
  cleanups.push(() => server.close());
  return { server, address, sessions, stored, uploads };
}

async function startClient(host: string, port: number, extra: Partial<Parameters<typeof connect>[0]> = {}) {
  const client = await within(
    45_000,
    'connect',
    connect({ host, port, key: TEST_KEY, maxBlockSize: BLOCK, handshakeTimeoutMs: 30_000, ...extra }),
  );
  cleanups.push(() => client.end());
  let nextId = 1;
  const waiting = new Map<string, (m: Message) => void>();
  client.onMessage((body) => {
    const m = JSON.parse(body.toString()) as Message;
    const key = m.op === 'reply' ? `reply ${m.id}` : `${m.op} ${m.transferId}`;
    waiting.get(key)?.(m);
    waiting.delete(key);
  });
  const expectMessage = (key: string): Promise<Message> =>
    within(30_000, key, new Promise<Message>((resolve) => waiting.set(key, resolve)));
  const request = (op: string, fields: object = {}): { id: number; reply: Promise<Message> } => {
    const id = nextId++;
    const reply = expectMessage(`reply ${id}`);
    client.send(encode({ op, id, ...fields }));
    return { id, reply };
  };
  return { client, request, expectMessage };
}

/** Simulates a crashed server process: its socket closes and it never says a word. */
function crash(server: UdpServer): void {
  const internals = server as unknown as { pump: { stop(): void }; sockets: dgram.Socket[] };
  internals.pump.stop();
  for (const socket of internals.sockets.splice(0)) socket.close();
}

describe('UDP server wake-ups', () => {
  it('runs only the sessions that woke: 500 idle sessions are not polled while one transfers', async () => {
    const { address, sessions, stored, uploads } = await startServer('127.0.0.1', { maxSessions: 1_000 });
    const IDLE = 500;
    for (let opened = 0; opened < IDLE; ) {
      const batch = Math.min(50, IDLE - opened);
      await Promise.all(Array.from({ length: batch }, () => startClient('127.0.0.1', address.port)));
      opened += batch;
    }
    await within(
      30_000,
      'sessions open',
      waitFor(() => sessions.length === IDLE),
    );
    const polls = new Map<Session, number>();
    const count = (session: Session): void => {
      const connection = session.connection;
      const poll = connection.poll.bind(connection);
      polls.set(session, 0);
      connection.poll = (now) => {
        polls.set(session, polls.get(session)! + 1);
        return poll(now);
      };
    };
    for (const s of sessions) count(s);
    const idle = [...sessions];

    const { client, request } = await startClient('127.0.0.1', address.port);
    await within(
      30_000,
      'active session',
      waitFor(() => sessions.length === IDLE + 1),
    );
    const active = sessions[IDLE]!;
    count(active);
    const data = seededBytes(5, SIZE);
    const put = request('put', { path: 'up', size: SIZE, overwrite: false, resume: false });
    expect((await put.reply).ok).toBe(true);
    await within(60_000, 'upload', client.sendBlocks(put.id, memorySource(data)));
    await within(10_000, 'upload write', Promise.all(uploads));
    expect(sha256(stored.get(put.id)!)).toBe(sha256(data));

    const activePolls = polls.get(active)!;
    const idlePolls = idle.map((s) => polls.get(s)!);
    // Many wake-ups for the transfer (fewer on a busy machine, where each handles more datagrams); an
    // idle session runs only for its own keep-alive (every 10 s). Before, every wake-up polled all 500:
    // each idle session as often as the active one.
    expect(activePolls).toBeGreaterThan(20);
    expect(Math.max(...idlePolls)).toBeLessThanOrEqual(6);
    expect(idlePolls.reduce((a, b) => a + b, 0)).toBeLessThan((IDLE * activePolls) / 4);
  }, 180_000);
});

describe('UDP rate limit', () => {
  it('a client rate limit holds for a get too: the server sends no faster than the client grants', async () => {
    const { address } = await startServer('127.0.0.1');
    const rate = 4_000_000; // bytes per second
    const { client, request, expectMessage } = await startClient('127.0.0.1', address.port, {
      connection: { congestion: { maxRateBytesPerMs: rate / 1000 } },
    });
    const get = request('get', { path: 'limited' });
    const reply = await get.reply;
    const digest = expectMessage(`digest ${get.id}`);
    const into = Buffer.alloc(SIZE);
    const started = performance.now();
    await within(60_000, 'download', client.receiveBlocks(get.id, SIZE, memorySink(into, client.blockSize)));
    const seconds = (performance.now() - started) / 1000;
    expect(reply.size).toBe(SIZE);
    expect(sha256(into)).toBe((await digest).sha256);
    // 8 MiB at 4 MB/s: at least 2.1 s (less the first 50 ms worth the hello announces).
    expect(seconds).toBeGreaterThanOrEqual((0.9 * SIZE) / rate);
  }, 90_000);
});

/** Resolves once `condition` holds (checked every 10 ms). */
async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
}

const HOSTS = [
  { host: '127.0.0.1', available: true },
  { host: '::1', available: IPV6 },
];

describe.each(HOSTS)('UDP loopback on $host', ({ host, available }) => {
  it.skipIf(!available)('connects and exchanges control messages', async () => {
    const { address, sessions } = await startServer(host);
    const { client, request } = await startClient(host, address.port);
    expect(client.access).toBe('read-write');
    expect(client.blockSize).toBe(BLOCK);
    for (const path of ['hello', 'dïr/ünïcödé', `${'d/'.repeat(1000)}x`]) {
      const reply = (await request('stat', { path }).reply) as Message & {
        entry: { name: string; size: number };
      };
      expect(reply.entry.name).toBe(path.split('/').pop());
      expect(reply.entry.size).toBe(Buffer.byteLength(path));
    }
    // A message the peer would refuse is refused here, at once, with a typed error.
    expect(() => client.send(encode({ op: 'echo', id: 1 }))).toThrow(FerryError);
    expect(sessions).toHaveLength(1);
  });

  it.skipIf(!available)(
    `moves ${SIZE} B each way bit-exact (sendBlocks / receiveBlocks)`,
    async () => {
      const { address, stored, uploads } = await startServer(host);
      const { client, request, expectMessage } = await startClient(host, address.port);

      // Upload: the server opens the receive before it replies, so blocks may follow the reply at once.
      const data = seededBytes(77, SIZE);
      const put = request('put', { path: 'up', size: SIZE, overwrite: false, resume: false });
      expect((await put.reply).ok).toBe(true);
      await within(45_000, 'upload', client.sendBlocks(put.id, memorySource(data)));
      await within(30_000, 'upload write', Promise.all(uploads));
      expect(sha256(stored.get(put.id)!)).toBe(sha256(data));

      // Download: the server holds its blocks until the reply is acknowledged.
      const get = request('get', { path: 'down' });
      const into = Buffer.alloc(SIZE);
      const reply = await get.reply;
      expect(reply.size).toBe(SIZE);
      const digest = expectMessage(`digest ${get.id}`);
      await within(
        45_000,
        'download',
        client.receiveBlocks(get.id, SIZE, memorySink(into, client.blockSize)),
      );
      expect(sha256(into)).toBe((await digest).sha256);

      const stats = client.stats() as {
        bytesReceived: number;
        bytesSent: number;
        drops: Record<string, number>;
      };
      expect(stats.bytesReceived).toBeGreaterThan(SIZE);
      expect(stats.bytesSent).toBeGreaterThan(SIZE);
      expect(stats.drops['bad-mac']).toBe(0);
    },
    120_000,
  );

  it.skipIf(!available)('a wrong key fails the handshake quickly with EAUTH', async () => {
    const { address, server } = await startServer(host);
    // Quickly: the server's REJECT ends it, long before the handshake would time out.
    const error = await failure(
      within(
        30_000,
        'connect',
        connect({
          host,
          port: address.port,
          key: randomKey(),
          maxBlockSize: BLOCK,
          handshakeTimeoutMs: 120_000,
        }),
      ),
    );
    expect(error.code).toBe('EAUTH');
    expect(server.sessionCount).toBe(0);
    expect((server.stats() as { rejectsSent: number }).rejectsSent).toBeGreaterThanOrEqual(1);
  });

  it.skipIf(!available)('nothing listening: a clear FerryError, without a hang', async () => {
    // A port that was just free: bind, note it, close.
    const probe = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const port = await new Promise<number>((resolve) =>
      probe.bind(0, host, () => resolve(probe.address().port)),
    );
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    // Refused at once (ICMP), or given up after the handshake timeout: either way, no hang.
    const error = await failure(
      within(
        30_000,
        'connect',
        connect({ host, port, key: TEST_KEY, maxBlockSize: BLOCK, handshakeTimeoutMs: 2_000 }),
      ),
    );
    expect(['ECONNREFUSED', 'ETIMEDOUT']).toContain(error.code);
    expect(error.message).toMatch(/listening|answer|refused/);
  });

  it.skipIf(!available)('server close ends the client session', async () => {
    const { address, server } = await startServer(host);
    // The server's CLOSE ends it (remote, OK), long before the idle timeout would.
    const { client, request } = await startClient(host, address.port, { idleTimeoutMs: 120_000 });
    await request('stat', { path: 'up' }).reply;
    const closed = client.closed();
    await server.close();
    const info = await within(30_000, 'client session end', closed);
    expect(info.remote).toBe(true);
    expect(info.code).toBe('OK');
    expect(client.isClosed).toBe(true);
    // Its API now refuses work with a typed error.
    expect(() => client.send(Buffer.from('{}'))).toThrow(FerryError);
  });
});

describe('UDP loopback sessions', () => {
  it('a client end() closes the server side of the session', async () => {
    const { address, sessions } = await startServer('127.0.0.1');
    const { client, request } = await startClient('127.0.0.1', address.port);
    await request('stat', { path: 'up' }).reply;
    const serverSide = sessions[0]!.closed();
    await client.end('done');
    const info = await within(30_000, 'server session end', serverSide);
    expect(info.code).toBe('OK');
    expect(info.remote).toBe(true);
  });

  it('a server that vanishes without a word ends the client session promptly (ICMP refusal)', async () => {
    const { address, server } = await startServer('127.0.0.1');
    // Promptly: long before the idle timeout, which could otherwise end it too.
    const { client, request } = await startClient('127.0.0.1', address.port, { idleTimeoutMs: 120_000 });
    await request('stat', { path: 'up' }).reply;
    crash(server);
    const closed = client.closed();
    client.send(encode({ op: 'stat', id: 99, path: 'anyone?' }));
    const info = await within(30_000, 'client session end', closed);
    expect(['ECONNREFUSED', 'ECONNRESET']).toContain(info.code);
  });

  it('a restarted server resets the old session at once (RESET with the reset token)', async () => {
    const first = await startServer('127.0.0.1');
    const { client, request } = await startClient('127.0.0.1', first.address.port);
    await request('stat', { path: 'up' }).reply;
    crash(first.server);
    // A new server on the same port and key knows nothing of the session.
    const second = new UdpServer({
      host: '127.0.0.1',
      port: first.address.port,
      keys: [{ name: 'test', key: TEST_KEY, access: 'read-write' }],
      maxBlockSize: BLOCK,
    });
    await second.listen();
    cleanups.push(() => second.close());
    const closed = client.closed();
    client.send(encode({ op: 'stat', id: 99, path: 'anyone?' }));
    const info = await within(30_000, 'client session end', closed);
    expect(info.code).toBe('ECONNRESET');
    expect((second.stats() as { resetsSent: number }).resetsSent).toBeGreaterThanOrEqual(1);
  });

  it('a server bound by host name (localhost) serves a client that names it too', async () => {
    const { address } = await startServer('localhost');
    expect(['127.0.0.1', '::1']).toContain(address.address);
    const { request } = await startClient('localhost', address.port);
    const reply = await request('stat', { path: 'by/name' }).reply;
    expect(reply).toMatchObject({ ok: true, entry: { name: 'name' } });
  });

  it('an ICMP "too big" answer (EMSGSIZE on the connected socket) costs a datagram, not the session', async () => {
    const { address } = await startServer('127.0.0.1');
    // The client's socket, caught as it connects to the server.
    const sockets: dgram.Socket[] = [];
    const connectSocket = dgram.Socket.prototype.connect;
    dgram.Socket.prototype.connect = function (this: dgram.Socket, ...args: unknown[]) {
      sockets.push(this);
      return (connectSocket as (...a: unknown[]) => void).apply(this, args);
    } as typeof connectSocket;
    let started: Awaited<ReturnType<typeof startClient>>;
    try {
      started = await startClient('127.0.0.1', address.port);
    } finally {
      dgram.Socket.prototype.connect = connectSocket;
    }
    expect(sockets).toHaveLength(1);
    const { client, request, expectMessage } = started;
    const { id, reply } = request('get', { path: 'big' });
    const m = await reply;
    const into = Buffer.alloc(SIZE);
    const receiving = client.receiveBlocks(id, SIZE, memorySink(into, m.blockSize as number));
    // What Linux reports when a hop answers a datagram with ICMP "fragmentation needed".
    const tooBig = Object.assign(new Error('send EMSGSIZE 127.0.0.1'), { code: 'EMSGSIZE', errno: -90 });
    sockets[0]!.emit('error', tooBig);
    await within(60_000, 'the get', receiving);
    const digest = await expectMessage(`digest ${id}`);
    expect(digest.sha256).toBe(sha256(into));
    expect(sha256(into)).toBe(sha256(seededBytes(id, SIZE)));
    await request('stat', { path: 'still/here' }).reply;
  });

  it('several clients share one server socket', async () => {
    const { address, sessions } = await startServer('127.0.0.1');
    const clients = await Promise.all([1, 2, 3].map(() => startClient('127.0.0.1', address.port)));
    const replies = await Promise.all(
      clients.map((c, i) => c.request('stat', { path: `client ${i}` }).reply),
    );
    expect(replies.map((r) => (r.entry as { name: string }).name)).toEqual([
      'client 0',
      'client 1',
      'client 2',
    ]);
    expect(sessions).toHaveLength(3);
  });
});
