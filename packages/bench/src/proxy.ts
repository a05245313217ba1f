import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  EventQueue,
  type LinkConfig,
  LinkModel,
  type LinkStatsSnapshot,
  Rng,
  type Seed,
} from '@ferry/netsim';

export interface ProxyEndpoint {
  host: string;
  /** 0 = ephemeral (listen only). */
  port: number;
}

export interface ImpairmentProxyOptions {
  listen: ProxyEndpoint;
  target: ProxyEndpoint;
  /** Client -> target direction. */
  upstream: LinkConfig;
  /** Target -> client direction; omitted = the same conditions as upstream (its own model). */
  downstream?: LinkConfig;
  seed?: Seed;
  /** Requested SO_RCVBUF / SO_SNDBUF of every socket (default 4 MiB; the kernel may cap it). */
  socketBufferBytes?: number;
  /** A client silent this long loses its upstream socket (default 120 s). */
  clientIdleTimeoutMs?: number;
  /** Datagrams from further distinct client addresses are refused (default 256). */
  maxClients?: number;
}

export interface ProxyDirectionStats extends LinkStatsSnapshot {
  /** Datagrams handed to the kernel after impairment. */
  forwarded: number;
  forwardedBytes: number;
}

export interface ImpairmentProxyStats {
  upstream: ProxyDirectionStats;
  downstream: ProxyDirectionStats;
  /** Client addresses currently mapped to an upstream socket. */
  clients: number;
  clientsTotal: number;
  refusedClients: number;
  /** Datagrams reaching an upstream socket from anywhere but the target. */
  strays: number;
  /** Deliveries waiting for their time. */
  pending: number;
  sendErrors: number;
}

export type ProxyDirection = 'upstream' | 'downstream';

export const DEFAULT_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

interface ClientFlow {
  readonly key: string;
  readonly address: string;
  readonly port: number;
  readonly socket: Socket;
  lastSeenMs: number;
  closed: boolean;
}

interface PendingSend {
  socket: Socket;
  port: number;
  address: string;
  datagram: Buffer;
  flow: ClientFlow;
  direction: ProxyDirection;
}

function socketType(address: string): 'udp4' | 'udp6' {
  return isIP(address) === 6 ? 'udp6' : 'udp4';
}

async function resolveHost(host: string): Promise<string> {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return isIP(bare) ? bare : (await lookup(bare)).address;
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.');
}

function setBuffers(socket: Socket, bytes: number): void {
  // The kernel caps (or refuses) sizes above its limit; the default size still works.
  try {
    socket.setRecvBufferSize(bytes);
  } catch {}
  try {
    socket.setSendBufferSize(bytes);
  } catch {}
}

function bindSocket(socket: Socket, port: number, address: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    socket.once('error', onError);
    socket.bind({ port, address }, () => {
      socket.off('error', onError);
      resolve();
    });
  });
}

/**
 * A user-space impairment proxy for real UDP on one machine: datagrams from clients to the
 * target pass through the upstream LinkModel, replies through the downstream one (the same model
 * as the simulated network, on a real clock: ms since start()). Each client address gets its
 * own upstream socket, so the target sees one source port per client and replies route back.
 *
 * Deliveries wait in one time-ordered queue released by a single timer armed for the earliest due
 * time; each wake-up sends everything due. Node's timers are about 1 ms granular, so datagrams may
 * leave up to ~1 ms late (in bursts at high rates), never early.
 */
export class ImpairmentProxy {
  private readonly options: ImpairmentProxyOptions;
  private readonly upstreamLink: LinkModel;
  private readonly downstreamLink: LinkModel;
  private readonly queue = new EventQueue<PendingSend>();
  private readonly flows = new Map<string, ClientFlow>();
  private readonly forwarded = {
    upstream: { count: 0, bytes: 0 },
    downstream: { count: 0, bytes: 0 },
  };
  private clientSocket: Socket | undefined;
  private targetAddress = '';
  private flowBindAddress: string | undefined;
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerDueMs = Number.POSITIVE_INFINITY;
  private sweeper: NodeJS.Timeout | undefined;
  private state: 'idle' | 'starting' | 'running' | 'stopped' = 'idle';
  private clientsTotal = 0;
  private refusedClients = 0;
  private strays = 0;
  private sendErrors = 0;

  constructor(options: ImpairmentProxyOptions) {
    this.options = options;
    const rng = new Rng(options.seed ?? 1);
    this.upstreamLink = new LinkModel(options.upstream, rng.fork());
    this.downstreamLink = new LinkModel(options.downstream ?? options.upstream, rng.fork());
  }

  /** Binds the client-facing socket; resolves with its port. */
  async start(): Promise<{ host: string; port: number }> {
    if (this.state !== 'idle') throw new Error(`ImpairmentProxy.start: already ${this.state}`);
    this.state = 'starting';
    const listenAddress = await resolveHost(this.options.listen.host);
    this.targetAddress = await resolveHost(this.options.target.host);
    this.flowBindAddress = isLoopback(this.targetAddress) ? this.targetAddress : undefined;
    const socket = createSocket({ type: socketType(listenAddress) });
    socket.on('error', () => this.sendErrors++);
    socket.on('message', (datagram, rinfo) => this.fromClient(datagram, rinfo));
    try {
      await bindSocket(socket, this.options.listen.port, listenAddress);
    } catch (error) {
      this.state = 'stopped';
      socket.close();
      throw error;
    }
    setBuffers(socket, this.bufferBytes);
    this.clientSocket = socket;
    this.startedAt = performance.now();
    const idle = this.options.clientIdleTimeoutMs ?? 120_000;
    this.sweeper = setInterval(() => this.closeIdleFlows(idle), Math.min(idle, 10_000));
    this.sweeper.unref();
    this.state = 'running';
    return { host: listenAddress, port: socket.address().port };
  }

  /** Closes every socket; datagrams still waiting are discarded. Idempotent. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    if (this.timer) clearTimeout(this.timer);
    if (this.sweeper) clearInterval(this.sweeper);
    this.timer = undefined;
    this.queue.clear();
    const sockets = [...[...this.flows.values()].map((f) => f.socket), this.clientSocket];
    for (const flow of this.flows.values()) flow.closed = true;
    this.flows.clear();
    await Promise.all(
      sockets.map((s) => (s ? new Promise<void>((resolve) => s.close(() => resolve())) : Promise.resolve())),
    );
  }

  /** The model of one direction, e.g. to reconfigure it mid-run (its clock: ms since start()). */
  link(direction: ProxyDirection): LinkModel {
    return direction === 'upstream' ? this.upstreamLink : this.downstreamLink;
  }

  /** Milliseconds since start(): the clock of both link models. */
  now(): number {
    return performance.now() - this.startedAt;
  }

  stats(): ImpairmentProxyStats {
    return {
      upstream: {
        ...this.upstreamLink.stats.toJSON(),
        forwarded: this.forwarded.upstream.count,
        forwardedBytes: this.forwarded.upstream.bytes,
      },
      downstream: {
        ...this.downstreamLink.stats.toJSON(),
        forwarded: this.forwarded.downstream.count,
        forwardedBytes: this.forwarded.downstream.bytes,
      },
      clients: this.flows.size,
      clientsTotal: this.clientsTotal,
      refusedClients: this.refusedClients,
      strays: this.strays,
      pending: this.queue.size,
      sendErrors: this.sendErrors,
    };
  }

  private get bufferBytes(): number {
    return this.options.socketBufferBytes ?? DEFAULT_SOCKET_BUFFER_BYTES;
  }

  private fromClient(datagram: Buffer, rinfo: RemoteInfo): void {
    if (this.state !== 'running') return;
    const now = this.now();
    const key = `${rinfo.address} ${rinfo.port}`;
    const flow = this.flows.get(key) ?? this.openFlow(key, rinfo);
    if (!flow) return;
    flow.lastSeenMs = now;
    const deliveries = this.upstreamLink.offer(datagram, now);
    if (deliveries.length === 0) return;
    const port = this.options.target.port;
    for (const d of deliveries) {
      this.queue.push(d.atMs, {
        socket: flow.socket,
        port,
        address: this.targetAddress,
        datagram: d.datagram,
        flow,
        direction: 'upstream',
      });
    }
    this.release();
  }

  private fromTarget(flow: ClientFlow, datagram: Buffer, rinfo: RemoteInfo): void {
    if (this.state !== 'running' || flow.closed) return;
    if (rinfo.port !== this.options.target.port || rinfo.address !== this.targetAddress) {
      this.strays++;
      return;
    }
    const now = this.now();
    flow.lastSeenMs = now;
    const deliveries = this.downstreamLink.offer(datagram, now);
    if (deliveries.length === 0) return;
    const socket = this.clientSocket!;
    for (const d of deliveries) {
      this.queue.push(d.atMs, {
        socket,
        port: flow.port,
        address: flow.address,
        datagram: d.datagram,
        flow,
        direction: 'downstream',
      });
    }
    this.release();
  }

  private openFlow(key: string, rinfo: RemoteInfo): ClientFlow | undefined {
    if (this.flows.size >= (this.options.maxClients ?? 256)) {
      this.refusedClients++;
      return undefined;
    }
    const socket = createSocket({ type: socketType(this.targetAddress) });
    const flow: ClientFlow = {
      key,
      address: rinfo.address,
      port: rinfo.port,
      socket,
      lastSeenMs: this.now(),
      closed: false,
    };
    socket.on('error', () => this.sendErrors++);
    socket.on('message', (datagram, from) => this.fromTarget(flow, datagram, from));
    // Sends issued while the bind is pending are queued by the socket.
    socket.bind({ port: 0, address: this.flowBindAddress }, () => setBuffers(socket, this.bufferBytes));
    this.flows.set(key, flow);
    this.clientsTotal++;
    return flow;
  }

  /** Sends everything due, then arms the one timer for the next due delivery. */
  private release(): void {
    const now = this.now();
    for (let next = this.queue.peek(); next !== undefined && next.atMs <= now; next = this.queue.peek()) {
      this.queue.pop();
      const send = next.value;
      if (send.flow.closed) continue;
      try {
        send.socket.send(send.datagram, send.port, send.address);
        const counter = this.forwarded[send.direction];
        counter.count++;
        counter.bytes += send.datagram.length;
      } catch {
        this.sendErrors++;
      }
    }
    this.arm(this.queue.peekTime(), now);
  }

  private arm(dueMs: number, now: number): void {
    if (dueMs === Number.POSITIVE_INFINITY || dueMs >= this.timerDueMs) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDueMs = dueMs;
    // Node rounds up to whole milliseconds (>= 1), so the wake-up is never early.
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerDueMs = Number.POSITIVE_INFINITY;
        if (this.state === 'running') this.release();
      },
      Math.ceil(dueMs - now),
    );
  }

  private closeIdleFlows(idleMs: number): void {
    const now = this.now();
    for (const flow of this.flows.values()) {
      if (now - flow.lastSeenMs < idleMs) continue;
      flow.closed = true;
      this.flows.delete(flow.key);
      flow.socket.close();
    }
  }
}
