/**
 * A UDP relay between clients and a server on 127.0.0.1, for tests: it sees (and may drop, inject or
 * record) every datagram on the path, and it can hold a transfer part-way. Its sockets are closed when
 * the test file ends.
 */
import * as dgram from 'node:dgram';
import { onCleanup } from './cleanup.js';

const HOST = '127.0.0.1';
/** Datagrams a hold keeps at most (a stopped sender retransmits with backoff, so few arrive). */
const MAX_HELD = 65_536;

/** A UDP socket bound to a free port on 127.0.0.1, closed when the test file ends. */
export function bindSocket(): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  onCleanup(() => {
    try {
      socket.close();
    } catch {
      /* already closed */
    }
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, HOST, () => {
      socket.off('error', reject);
      socket.on('error', () => {});
      resolve(socket);
    });
  });
}

export type Direction = 'up' | 'down';

interface Hold {
  /** Bytes this direction may still carry before it is held. */
  allowance: number;
  /** Forwardings waiting for release(), in arrival order. */
  held: Array<() => void>;
  began: () => void;
}

/**
 * Clients send to `port`; each client address gets its own upstream socket, so the server sees one
 * address per client. Every datagram is forwarded unchanged and, up to `maxCapture`, recorded in order.
 * `tap` sees each datagram first and may drop it (return false) — an on-path attacker's view.
 * `inject` sends a datagram as if it came from one side: towards the server from a client's upstream
 * socket, or towards a client from the relay's own address (which the client takes for the server's).
 */
export class UdpRelay {
  readonly captured: Array<{ direction: Direction; data: Buffer; client: string }> = [];
  tap: ((direction: Direction, data: Buffer, client: string) => boolean) | undefined;
  forwarding = true;
  private readonly upstreams = new Map<string, Promise<dgram.Socket>>();
  private readonly bound = new Map<string, dgram.Socket>();
  private readonly holds = new Map<Direction, Hold>();

  private constructor(
    readonly front: dgram.Socket,
    readonly serverPort: number,
    readonly maxCapture: number,
  ) {
    front.on('message', (data, rinfo) => {
      const client = `${rinfo.address}:${rinfo.port}`;
      void this.upstream(client, rinfo.port).then((up) =>
        this.pass('up', data, client, () => up.send(data, this.serverPort, HOST)),
      );
    });
  }

  static async open(serverPort: number, maxCapture = 20_000): Promise<UdpRelay> {
    return new UdpRelay(await bindSocket(), serverPort, maxCapture);
  }

  /**
   * A relay to the server at `serverPort` that records nothing and holds `direction` once it has
   * carried `bytes` (see holdAfter); `held` resolves then.
   */
  static async holding(
    serverPort: number,
    direction: Direction,
    bytes: number,
  ): Promise<UdpRelay & { held: Promise<void> }> {
    const relay = await UdpRelay.open(serverPort, 0);
    return Object.assign(relay, { held: relay.holdAfter(direction, bytes) });
  }

  get port(): number {
    return this.front.address().port;
  }

  /** The relay's address, HOST:PORT, for a client to talk to the server through it. */
  get address(): string {
    return `${HOST}:${this.port}`;
  }

  get clients(): string[] {
    return [...this.upstreams.keys()];
  }

  /**
   * Lets `direction` carry `bytes` more bytes (whole datagrams), then holds it: its datagrams wait,
   * in order, until release(). Resolves when the first datagram is held. A test that must catch a
   * transfer in the middle (to kill a process there) holds it instead of racing it: however fast
   * or slow the machine, the transfer stops at this point and stays there.
   */
  holdAfter(direction: Direction, bytes: number): Promise<void> {
    return new Promise((began) => {
      this.holds.set(direction, { allowance: bytes, held: [], began });
    });
  }

  /** Sends every held datagram, in order, and forwards everything from now on. */
  release(): void {
    const holds = [...this.holds.values()];
    this.holds.clear();
    for (const hold of holds) for (const forward of hold.held) forward();
  }

  private pass(direction: Direction, data: Buffer, client: string, forward: () => void): void {
    if (this.captured.length < this.maxCapture)
      this.captured.push({ direction, data: Buffer.from(data), client });
    if (this.tap !== undefined && !this.tap(direction, data, client)) return;
    if (!this.forwarding) return;
    const hold = this.holds.get(direction);
    if (hold !== undefined) {
      if (hold.allowance <= 0) {
        if (hold.held.length < MAX_HELD) hold.held.push(forward);
        hold.began();
        return;
      }
      hold.allowance -= data.length;
    }
    forward();
  }

  private upstream(client: string, clientPort: number): Promise<dgram.Socket> {
    const known = this.upstreams.get(client);
    if (known !== undefined) return known;
    const up = bindSocket().then((socket) => {
      this.bound.set(client, socket);
      socket.on('message', (data) =>
        this.pass('down', data, client, () => this.front.send(data, clientPort, HOST)),
      );
      return socket;
    });
    this.upstreams.set(client, up);
    return up;
  }

  /** Sends `data` to the server from `client`'s upstream socket (the server sees the client's relayed address). */
  injectToServer(client: string, data: Buffer): Promise<void> {
    const up = this.bound.get(client);
    if (up === undefined) throw new Error(`no upstream for ${client}`);
    return new Promise((resolve) => up.send(data, this.serverPort, HOST, () => resolve()));
  }

  /** Sends `data` to `client` from the relay's front socket (the client takes it for the server's). */
  injectToClient(client: string, data: Buffer): Promise<void> {
    const port = Number(client.split(':').pop());
    return new Promise((resolve) => this.front.send(data, port, HOST, () => resolve()));
  }

  /** Captured datagrams of one direction (and optionally one client). */
  of(direction: Direction, client?: string): Buffer[] {
    return this.captured
      .filter((c) => c.direction === direction && (client === undefined || c.client === client))
      .map((c) => c.data);
  }
}
