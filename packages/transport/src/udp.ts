import * as dgram from 'node:dgram';
import type { LookupOneOptions } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { FernetKey } from '@ferry/crypto';
import { ALL_FEATURES, Feature, FerryError } from '@ferry/protocol';
import { CiphertextBuffers } from './core/ciphertext-buffers.js';
import type { ConnectionOptions } from './core/connection.js';
import {
  type EndpointEvent,
  type PeerAddressing,
  ServerEndpoint,
  type ServerKey,
  type ServerSession,
} from './core/endpoint.js';
import {
  type Access,
  ClientHandshake,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_RECEIVE_WINDOW,
  isResetFor,
} from './core/handshake.js';
import { blockSizeFor } from './core/pmtu.js';
import type { Datagram } from './core/wire.js';
import { type InterfaceMtu, localMaxDatagram } from './interface-mtu.js';
import { Pump } from './pump.js';
import { Session, type SessionDriver } from './session.js';

/**
 * The Node adapter: binds the sans-I/O core to node:dgram and real timers. All protocol decisions live
 * in the core; this file only moves datagrams, arms one timer, and coalesces work with setImmediate so
 * that every datagram read in one event-loop turn is processed before anything is sent (acks coalesce).
 * A server's wake-up runs only the sessions that woke (see ServerEndpoint), and a peer stays the
 * socket's `{address, port}` from receive to send.
 */
export const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

const now = (): number => performance.now();
const wallClock = (): number => Date.now() / 1000;

function enlargeBuffers(socket: dgram.Socket, bytes: number): void {
  for (const set of [socket.setRecvBufferSize, socket.setSendBufferSize]) {
    // The kernel caps the size at net.core.[rw]mem_max; asking for more is refused on some systems.
    for (let size = bytes; size >= 256 * 1024; size /= 2) {
      try {
        set.call(socket, size);
        break;
      } catch {
        /* try a smaller size */
      }
    }
  }
}

/** The largest block this side may send: the session's, or one that fills the interface's MTU. */
function largestBlock(maxBlockSize: number, maxDatagram: number | undefined): number {
  return maxDatagram === undefined ? maxBlockSize : Math.max(maxBlockSize, blockSizeFor(maxDatagram));
}

export interface TransportTuning {
  /** Largest block this side accepts/offers (the server's is the cap). */
  maxBlockSize: number;
  receiveWindow?: number;
  idleTimeoutMs?: number;
  connection?: Partial<
    Pick<ConnectionOptions, 'congestion' | 'readAheadBytes' | 'maxAckDelayMs' | 'receiveRateBytesPerMs'>
  >;
  /**
   * Discover how large a datagram the path carries (path MTU discovery, feature PathMtu, with a peer
   * that has it too), within the local interface's MTU, so that transfers can use larger blocks than
   * the base. Default true; false leaves PathMtu out of the features asked for or granted, which keeps
   * every transfer at the session's block size.
   */
  discoverPathMtu?: boolean;
  /**
   * How this side learns a local interface's MTU (the transport reads no files: on Linux the
   * application reads /sys/class/net/NAME/mtu, as @ferry/cli-kit's interfaceMtu does). Without it
   * this side never probes, though its sessions still have feature PathMtu unless `discoverPathMtu`
   * is false: the peer may still discover, and this side's transfers keep the session's block size.
   */
  interfaceMtu?: InterfaceMtu;
}

/** The largest datagram this side may probe from `localAddress`, or undefined: no discovery. */
function maxDatagramFrom(localAddress: string, options: TransportTuning): number | undefined {
  if (options.discoverPathMtu === false || options.interfaceMtu === undefined) return undefined;
  return localMaxDatagram(localAddress, options.interfaceMtu);
}

/** The features to ask for or grant: `features` (default all), without PathMtu when not discovering. */
function featuresFor(options: TransportTuning & { features?: number }): number {
  const features = options.features ?? ALL_FEATURES;
  return options.discoverPathMtu === false ? features & ~Feature.PathMtu : features;
}

export interface ConnectOptions extends TransportTuning {
  host: string;
  port: number;
  key: FernetKey;
  handshakeTimeoutMs?: number;
  /** Features to ask for (default: all this build implements); see ClientHandshakeOptions.features. */
  features?: number;
  /** Abort the handshake. */
  signal?: AbortSignal;
}

/** A client-side session over UDP. */
export class ClientSession extends Session {
  /**
   * The server's clock minus this machine's, in seconds, when the server had to say so (this
   * machine's hello was stamped outside its window, PROTOCOL.md §7.7); 0 otherwise.
   */
  clockOffsetSeconds = 0;

  constructor(
    connection: ConstructorParameters<typeof Session>[0],
    private readonly clientDriver: SessionDriver,
    access: Access,
    readonly remote: { address: string; port: number },
    private readonly shutdown: () => void,
    /** Resolves once every datagram handed to the socket has left it (bounded wait). */
    private readonly flushed: () => Promise<void> = async () => undefined,
    features = 0,
  ) {
    super(connection, clientDriver, access, features);
  }

  /** Closes the session: sends CLOSE and releases the socket without waiting out the draining period. */
  async end(reason = ''): Promise<void> {
    if (!this.isClosed) {
      this.connection.close(performance.now(), 'OK', reason);
      // Run the connection so that the CLOSE is sent (the pump runs before this immediate), and let it
      // leave the socket before the socket is closed under it.
      this.clientDriver.kick();
      await new Promise<void>((resolve) => setImmediate(resolve));
      await this.flushed();
    }
    this.shutdown();
    // The application's view: closed (pending transfers fail with ECANCELED), without a draining period.
    this.terminate('OK', reason || 'the session was closed');
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/**
 * Hands datagrams to a socket. A send normally completes at once (the kernel takes the datagram) and
 * then needs no completion callback: a callback costs a tick per datagram, which the profile of a
 * 1,200-byte-block transfer showed. What libuv had to queue (a full socket buffer) the socket counts
 * itself (getSendQueueCount), so a close can still let it leave first. Errors: a datagram that cannot
 * be sent is lost like one dropped on the way, except where `report` asks for a callback (a client
 * before its session opens: an unreachable network should fail at once, not time out).
 */
class SendTracker {
  private readonly done = (error: Error | null): void => {
    if (error) this.onError?.(error);
  };

  constructor(
    private readonly onError?: (e: Error) => void,
    /** Where a DATA datagram's ciphertext buffer goes back once the datagram has left. */
    private readonly buffers?: CiphertextBuffers,
  ) {}

  /** Sends on a connected socket (`port` undefined) or to `address`:`port`. */
  send(socket: dgram.Socket, datagram: Datagram, port?: number, address?: string, report = false): void {
    // A DATA datagram's ciphertext buffer of ours goes back only once the socket is done with it (a
    // send libuv had to queue still reads it), so it always asks for a callback.
    const buffers = this.buffers;
    const done = buffers?.holds(datagram)
      ? (error: Error | null): void => {
          buffers.sent(datagram);
          if (report) this.done(error);
        }
      : report
        ? this.done
        : undefined;
    try {
      if (port === undefined) {
        if (done) socket.send(datagram, done);
        else socket.send(datagram);
      } else if (done) socket.send(datagram, port, address, done);
      else socket.send(datagram, port, address);
    } catch (error) {
      if (done) done(error as Error); // the socket is already closed
    }
  }

  /** Resolves once `socket` has no send queued, or after `maxMs`. */
  flushed(socket: dgram.Socket | undefined, maxMs = 500): Promise<void> {
    const until = performance.now() + maxMs;
    return new Promise<void>((resolve) => {
      const check = (): void => {
        let queued = 0;
        try {
          queued = socket?.getSendQueueCount() ?? 0;
        } catch {
          // Closed: nothing can leave any more.
        }
        if (queued === 0 || performance.now() >= until) resolve();
        else setTimeout(check, 1);
      };
      check();
    });
  }
}

/**
 * The address lookup of a server's socket. A server only ever sends to the address a datagram came
 * from (an IP literal), and Node's default lookup answers even those a tick later, per datagram.
 */
function literalAddress(
  address: string,
  _options: LookupOneOptions,
  callback: (error: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  callback(null, address, isIP(address) === 6 ? 6 : 4);
}

function describeAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Opens a session to a ferry server. Rejects with a FerryError: EHOSTUNREACH, ETIMEDOUT, EAUTH, EBUSY, … */
export async function connect(options: ConnectOptions): Promise<ClientSession> {
  let address: string;
  let family: 4 | 6;
  try {
    const found = isIP(options.host)
      ? { address: options.host, family: isIP(options.host) }
      : await lookup(options.host);
    address = found.address;
    family = found.family === 6 ? 6 : 4;
  } catch (error) {
    throw new FerryError(
      'EHOSTUNREACH',
      `cannot resolve host "${options.host}": ${(error as Error).message}`,
    );
  }
  const socket = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
  const where = describeAddress(address, options.port);
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.connect(options.port, address, () => {
      socket.off('error', reject);
      resolve();
    });
  }).catch((error: unknown) => {
    socket.close();
    throw new FerryError('EHOSTUNREACH', `cannot reach ${where}: ${(error as Error).message}`);
  });
  enlargeBuffers(socket, SOCKET_BUFFER_BYTES);
  const maxDatagram = maxDatagramFrom(socket.address().address, options);

  const ciphertextBuffers = new CiphertextBuffers(largestBlock(options.maxBlockSize, maxDatagram));
  const handshake = new ClientHandshake({
    key: options.key,
    now: now(),
    wallClock,
    ciphertextBuffers,
    maxBlockSize: options.maxBlockSize,
    receiveWindow: options.receiveWindow ?? DEFAULT_RECEIVE_WINDOW,
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    ...(options.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: options.handshakeTimeoutMs } : {}),
    features: featuresFor(options),
    connection: { ...options.connection, socketReceiveBufferBytes: socket.getRecvBufferSize() },
    ...(maxDatagram !== undefined ? { maxDatagram } : {}),
  });

  let session: ClientSession | undefined;
  let resetTokenValue: Buffer | undefined;
  let finished = false;
  let settle: { resolve: (s: ClientSession) => void; reject: (e: Error) => void } | undefined;
  const result = new Promise<ClientSession>((resolve, reject) => {
    settle = { resolve, reject };
  });

  const sends = new SendTracker((error) => {
    if (session === undefined)
      fail(new FerryError('EHOSTUNREACH', `cannot send to ${where}: ${error.message}`));
  }, ciphertextBuffers);
  const send = (datagram: Datagram): void => sends.send(socket, datagram, undefined, undefined, !session);

  const shutdown = (): void => {
    if (finished) return;
    finished = true;
    pump.stop();
    options.signal?.removeEventListener('abort', onAbort);
    try {
      socket.close();
    } catch {
      /* already closed */
    }
  };

  const fail = (error: Error): void => {
    if (session !== undefined) {
      session.terminate((error as FerryError).code ?? 'EINTERNAL', error.message);
      shutdown();
      return;
    }
    shutdown();
    settle?.reject(error);
  };

  const driver: SessionDriver = { now, kick: () => pump.kick() };

  const pump = new Pump(() => {
    const t = now();
    if (session === undefined) {
      handshake.handleTimeout(t);
      for (const d of handshake.poll(t)) send(d);
      const outcome = handshake.outcome;
      if (outcome?.type === 'failed') {
        fail(new FerryError(outcome.code, outcome.message));
        return Number.POSITIVE_INFINITY;
      }
      if (outcome?.type === 'established') {
        resetTokenValue = outcome.resetToken;
        session = new ClientSession(
          outcome.connection,
          driver,
          outcome.access,
          { address, port: options.port },
          shutdown,
          () => sends.flushed(socket),
          outcome.features,
        );
        session.clockOffsetSeconds = outcome.clockOffsetSeconds;
        settle?.resolve(session);
      } else {
        return handshake.nextTimeout();
      }
    }
    const conn = session.connection;
    if (t >= conn.nextTimeout()) conn.handleTimeout(t);
    for (;;) {
      const batch = conn.poll(t);
      for (const d of batch) send(d);
      if (batch.length < 128) break;
    }
    session.dispatch();
    if (conn.state === 'closed') {
      shutdown();
      return Number.POSITIVE_INFINITY;
    }
    return conn.nextTimeout();
  });

  socket.on('message', (datagram) => {
    const t = now();
    if (session === undefined) {
      handshake.receive(datagram, t);
    } else if (
      resetTokenValue !== undefined &&
      isResetFor(datagram, session.connection.connId, resetTokenValue)
    ) {
      session.terminate(
        'ECONNRESET',
        'the server no longer knows this session (it restarted?); reconnect to resume',
      );
      shutdown();
      return;
    } else {
      session.connection.receiveDatagram(datagram, t);
    }
    pump.kick();
  });
  socket.on('error', (error: NodeJS.ErrnoException) => {
    // A connected socket reports an ICMP "fragmentation needed" / "packet too big" answer as EMSGSIZE:
    // a datagram larger than a hop on the way was dropped there. That is a lost datagram (path MTU
    // discovery and loss recovery deal with it), not the end of the session.
    if (error.code === 'EMSGSIZE') return;
    if (error.code === 'ECONNREFUSED') {
      fail(new FerryError('ECONNREFUSED' as never, `nothing is listening at ${where} (connection refused)`));
    } else {
      fail(new FerryError('EHOSTUNREACH', `network error talking to ${where}: ${error.message}`));
    }
  });
  const onAbort = (): void => fail(new FerryError('ECANCELED', 'cancelled'));
  options.signal?.addEventListener('abort', onAbort, { once: true });
  pump.kick();
  return result;
}

export interface ListenOptions extends TransportTuning {
  /** Address to bind; default '::' (all interfaces, IPv4 and IPv6). */
  host?: string;
  port: number;
  keys: readonly ServerKey[];
  maxSessions?: number;
  /**
   * Most bytes of block data (read from sources for sending, not yet acknowledged) all sessions hold
   * at once; a session waits for its turn beyond it. Default 256 MiB.
   */
  maxBufferedBytes?: number;
  /** Most bytes of block data one session holds at once. Default 16 MiB. */
  maxSessionBufferedBytes?: number;
  /** Protocol versions to accept (default: all); [1] behaves as a server from before version 2. */
  versions?: readonly number[];
  /** Features a version-2 session may be granted (default: all this build implements). */
  features?: number;
}

/** A server's peer: the address and port a datagram came from, as node:dgram reports them. */
export interface UdpPeer {
  readonly address: string;
  readonly port: number;
}

const UDP_PEERS: PeerAddressing<UdpPeer> = {
  equal: (a, b) => a.port === b.port && a.address === b.address,
  label: (peer) => formatPeer(peer.address, peer.port),
};

/** A ferry server socket: many sessions, routed by connection id. */
export class UdpServer {
  private readonly endpoint: ServerEndpoint<UdpPeer>;
  private readonly sockets: dgram.Socket[] = [];
  private readonly sessions = new Map<ServerSession<UdpPeer>, Session>();
  private readonly pump: Pump;
  private readonly sends: SendTracker;
  /** Sessions that ran in the current wake-up, whose events are dispatched after it. */
  private readonly ran: Array<ServerSession<UdpPeer>> = [];
  private readonly sendTo = (datagram: Datagram, to: UdpPeer): void => {
    const socket = this.sockets[0];
    if (socket !== undefined) this.sends.send(socket, datagram, to.port, to.address);
  };
  private readonly visit = (session: ServerSession<UdpPeer>): void => {
    this.ran.push(session);
  };
  private onSessionListener: ((session: Session, info: ServerSession<UdpPeer>) => void) | undefined;
  address: { address: string; port: number; family: string } | undefined;

  constructor(private readonly options: ListenOptions) {
    const maxDatagram = maxDatagramFrom(options.host ?? '::', options);
    const ciphertextBuffers = new CiphertextBuffers(largestBlock(options.maxBlockSize, maxDatagram));
    this.sends = new SendTracker(undefined, ciphertextBuffers);
    this.endpoint = new ServerEndpoint<UdpPeer>({
      ciphertextBuffers,
      keys: options.keys,
      peers: UDP_PEERS,
      wallClock,
      maxBlockSize: options.maxBlockSize,
      receiveWindow: options.receiveWindow ?? DEFAULT_RECEIVE_WINDOW,
      idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      ...(options.maxSessions !== undefined ? { maxSessions: options.maxSessions } : {}),
      ...(options.maxBufferedBytes !== undefined ? { maxBufferedBytes: options.maxBufferedBytes } : {}),
      ...(options.maxSessionBufferedBytes !== undefined
        ? { maxSessionBufferedBytes: options.maxSessionBufferedBytes }
        : {}),
      ...(options.versions !== undefined ? { versions: options.versions } : {}),
      features: featuresFor(options),
      ...(options.connection !== undefined ? { connection: options.connection } : {}),
      ...(maxDatagram !== undefined ? { maxDatagram } : {}),
    });
    this.pump = new Pump(() => this.run());
  }

  onSession(listener: (session: Session, info: ServerSession<UdpPeer>) => void): void {
    this.onSessionListener = listener;
  }

  async listen(): Promise<{ address: string; port: number; family: string }> {
    const name = this.options.host ?? '::';
    // The socket's own lookup answers IP literals only (see literalAddress): a host name is looked up
    // here, once, and the socket binds the address it names.
    let host = name;
    if (isIP(name) === 0) {
      try {
        host = (await lookup(name)).address;
      } catch (error) {
        throw new FerryError(
          'EINVAL',
          `cannot listen on ${describeAddress(name, this.options.port)}: ${(error as Error).message}`,
        );
      }
    }
    const family = isIP(host) === 4 ? 'udp4' : 'udp6';
    const socket = dgram.createSocket({ type: family, ipv6Only: false, lookup: literalAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.options.port, host, () => {
        socket.off('error', reject);
        resolve();
      });
    }).catch((error: NodeJS.ErrnoException) => {
      socket.close();
      const why = error.code === 'EADDRINUSE' ? 'the port is already in use' : error.message;
      throw new FerryError(
        error.code === 'EACCES' ? 'EACCES' : 'EINVAL',
        `cannot listen on ${describeAddress(host, this.options.port)}: ${why}`,
      );
    });
    enlargeBuffers(socket, SOCKET_BUFFER_BYTES);
    this.endpoint.socketReceiveBufferBytes = socket.getRecvBufferSize();
    socket.on('message', (datagram, rinfo) => {
      this.endpoint.receive(datagram, rinfo, now());
      this.pump.kick();
    });
    socket.on('error', () => {
      /* per-datagram errors (e.g. ICMP unreachable) are not fatal for a server */
    });
    this.sockets.push(socket);
    const a = socket.address();
    this.address = { address: a.address, port: a.port, family: a.family };
    return this.address;
  }

  private run(): number {
    const t = now();
    if (t >= this.endpoint.nextTimeout()) this.endpoint.handleTimeout(t);
    this.endpoint.poll(t, this.sendTo, this.visit);
    for (;;) {
      const e: EndpointEvent<UdpPeer> | undefined = this.endpoint.pollEvent();
      if (e === undefined) break;
      if (e.type === 'session') {
        const info = e.session;
        const wake = (): void => {
          this.endpoint.wake(info);
          this.pump.kick();
        };
        const session = new Session(info.connection, { now, kick: wake }, info.access, info.features);
        this.sessions.set(info, session);
        this.onSessionListener?.(session, info);
      } else {
        const s = this.sessions.get(e.session);
        s?.dispatch();
        this.sessions.delete(e.session);
      }
    }
    // Only the sessions that ran have events; a dispatch may wake others (they run next turn).
    const ran = this.ran;
    for (let i = 0; i < ran.length; i++) this.sessions.get(ran[i]!)?.dispatch();
    ran.length = 0;
    return this.endpoint.nextTimeout();
  }

  /** Stops accepting new sessions; existing ones continue. */
  stopAccepting(): void {
    this.endpoint.stopAccepting();
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  stats(): Record<string, unknown> {
    return this.endpoint.toJSON();
  }

  async close(): Promise<void> {
    for (const [info, s] of this.sessions) {
      s.connection.close(now(), 'OK', 'server shutting down');
      this.endpoint.wake(info);
    }
    this.run();
    this.pump.stop();
    // A CLOSE that libuv had to queue (a full socket buffer) would be dropped by closing the socket now,
    // and its client would wait for its idle timeout.
    await this.sends.flushed(this.sockets[0]);
    for (const s of this.sessions.values()) s.terminate('OK', 'server shutting down');
    await Promise.all(this.sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.sockets.length = 0;
  }
}

/** A peer as text for logs ("address|port"; ServerSession.address). */
export function formatPeer(address: string, port: number): string {
  return `${address}|${port}`;
}

export type { ServerKey, ServerSession };
