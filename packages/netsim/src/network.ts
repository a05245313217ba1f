import { EventQueue, type ScheduledEvent } from './event-queue.js';
import { type LinkConfig, LinkModel, type LinkStats } from './link.js';
import { Rng, type Seed } from './rng.js';

/** A datagram socket on the simulated network, bound to one address. */
export interface SimEndpoint {
  /** Current address (changes on SimNetwork.rebind). */
  readonly address: string;
  readonly closed: boolean;
  /**
   * Queues a copy of the datagram on the link to `to`; never delivers synchronously. A list of
   * buffers is one datagram, gathered (as `socket.send(list)` sends it).
   */
  send(datagram: Uint8Array | readonly Uint8Array[], to: string): void;
  /** Called once per delivered datagram, from inside SimNetwork.run. */
  onDatagram?: ((datagram: Buffer, from: string) => void) | undefined;
  /** Frees the address; later sends are dropped (counted as dropped.closed). */
  close(): void;
}

/** A timer on the virtual clock, for SimNetwork.cancel. */
export type SimTimer = ScheduledEvent<() => void>;

export type SimTraceEvent =
  | { type: 'send'; timeMs: number; from: string; to: string; bytes: number }
  | { type: 'deliver'; timeMs: number; from: string; to: string; datagram: Buffer }
  | { type: 'drop'; timeMs: number; from: string; to: string; bytes: number; reason: SimDropReason };

/** 'link': the link model dropped it (its stats say why); the others happen outside links. */
export type SimDropReason = 'link' | 'noRoute' | 'unknownAddress' | 'closed';

export interface SimNetworkOptions {
  seed?: Seed;
  /** Link used (both directions) between addresses never connect()ed; omitted = no route. */
  defaultLink?: LinkConfig;
  /** Sees every send, delivery and drop: for packet traces when a seed fails. */
  onTrace?: (event: SimTraceEvent) => void;
}

export interface SimRunOptions {
  /** Checked before each event; stops the run when true. */
  until?: () => boolean;
  /** Virtual time budget from the start of this run (default 1 hour). */
  maxTimeMs?: number;
  /** Event budget for this run (default 50 million). */
  maxEvents?: number;
}

export interface SimRunResult {
  reason: 'until' | 'idle' | 'maxTime' | 'maxEvents';
  timeMs: number;
  events: number;
}

export interface SimNetworkStatsSnapshot {
  sent: number;
  delivered: number;
  /** Delivered to an endpoint without an onDatagram handler. */
  unhandled: number;
  dropped: { link: number; noRoute: number; unknownAddress: number; closed: number };
}

export class SimNetworkStats implements SimNetworkStatsSnapshot {
  sent = 0;
  delivered = 0;
  unhandled = 0;
  readonly dropped = { link: 0, noRoute: 0, unknownAddress: 0, closed: 0 };

  toJSON(): SimNetworkStatsSnapshot {
    return {
      sent: this.sent,
      delivered: this.delivered,
      unhandled: this.unhandled,
      dropped: { ...this.dropped },
    };
  }
}

export const DEFAULT_MAX_EVENTS = 50_000_000;
export const DEFAULT_MAX_TIME_MS = 60 * 60 * 1000;

function linkKey(from: string, to: string): string {
  return `${from}\u0000${to}`;
}

interface EndpointHooks {
  transmit(source: Endpoint, datagram: Uint8Array, to: string): void;
  release(endpoint: Endpoint): void;
}

class Endpoint implements SimEndpoint {
  onDatagram: ((datagram: Buffer, from: string) => void) | undefined = undefined;
  closed = false;

  constructor(
    private readonly hooks: EndpointHooks,
    public address: string,
  ) {}

  send(datagram: Uint8Array | readonly Uint8Array[], to: string): void {
    this.hooks.transmit(this, isGathered(datagram) ? Buffer.concat(datagram) : datagram, to);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.hooks.release(this);
  }
}

/**
 * Discrete-event network simulator: endpoints exchange datagrams over LinkModels on a virtual
 * clock (ms, float). Nothing happens between run() calls, and a run is a pure function of the
 * seed and what the callbacks do, so a failure replays exactly from its seed.
 */
export class SimNetwork {
  readonly stats = new SimNetworkStats();
  /** The network's own stream; links get forks of it in connect() order. */
  readonly rng: Rng;
  private nowMs = 0;
  private readonly queue = new EventQueue<() => void>();
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly links = new Map<string, LinkModel>();
  private readonly defaultLink: LinkConfig | undefined;
  private readonly onTrace: ((event: SimTraceEvent) => void) | undefined;
  private running = false;
  private readonly hooks: EndpointHooks = {
    transmit: (source, datagram, to) => this.transmit(source, datagram, to),
    release: (endpoint) => {
      if (this.endpoints.get(endpoint.address) === endpoint) this.endpoints.delete(endpoint.address);
    },
  };

  constructor(options: SimNetworkOptions = {}) {
    this.rng = new Rng(options.seed ?? 0);
    this.defaultLink = options.defaultLink;
    this.onTrace = options.onTrace;
  }

  /** Virtual time in ms. */
  now(): number {
    return this.nowMs;
  }

  /** Pending events (deliveries and timers). */
  get pendingEvents(): number {
    return this.queue.size;
  }

  /** Runs fn at atMs (clamped to now: the past is not schedulable). */
  schedule(atMs: number, fn: () => void): SimTimer {
    return this.queue.push(Math.max(atMs, this.nowMs), fn);
  }

  /** Returns false if the timer already fired or was cancelled. */
  cancel(timer: SimTimer): boolean {
    return this.queue.cancel(timer);
  }

  addEndpoint(address: string): SimEndpoint {
    if (this.endpoints.has(address)) throw new Error(`SimNetwork: address ${address} is already in use`);
    const endpoint = new Endpoint(this.hooks, address);
    this.endpoints.set(address, endpoint);
    return endpoint;
  }

  endpoint(address: string): SimEndpoint | undefined {
    return this.endpoints.get(address);
  }

  /**
   * Links a and b: aToB for datagrams from a to b, bToA (default: the same config) for the reverse.
   * Each direction gets its own model and Rng. Replaces any earlier link between them.
   */
  connect(a: string, b: string, aToB: LinkConfig, bToA: LinkConfig = aToB): void {
    this.links.set(linkKey(a, b), new LinkModel(aToB, this.rng.fork()));
    this.links.set(linkKey(b, a), new LinkModel(bToA, this.rng.fork()));
  }

  /** The model of the direction from -> to (to reconfigure it mid-run), if connected. */
  link(from: string, to: string): LinkModel | undefined {
    return this.links.get(linkKey(from, to));
  }

  linkStats(from: string, to: string): LinkStats {
    const link = this.links.get(linkKey(from, to));
    if (!link) throw new Error(`SimNetwork: no link from ${from} to ${to}`);
    return link.stats;
  }

  /**
   * NAT rebinding: the endpoint at oldAddress now sends from and receives at newAddress, and its
   * links move with it. Datagrams later sent to oldAddress find no route; those already in flight
   * to it are dropped as unknownAddress on arrival.
   */
  rebind(oldAddress: string, newAddress: string): void {
    const endpoint = this.endpoints.get(oldAddress);
    if (!endpoint) throw new Error(`SimNetwork: no endpoint at ${oldAddress}`);
    if (this.endpoints.has(newAddress))
      throw new Error(`SimNetwork: address ${newAddress} is already in use`);
    this.endpoints.delete(oldAddress);
    endpoint.address = newAddress;
    this.endpoints.set(newAddress, endpoint);
    const moved: Array<[string, LinkModel]> = [];
    for (const [key, link] of this.links) {
      const [from = '', to = ''] = key.split('\u0000');
      if (from !== oldAddress && to !== oldAddress) continue;
      this.links.delete(key);
      moved.push([
        linkKey(from === oldAddress ? newAddress : from, to === oldAddress ? newAddress : to),
        link,
      ]);
    }
    for (const [key, link] of moved) this.links.set(key, link);
  }

  /**
   * Processes events in time order until `until` holds, nothing is left, or a budget runs out.
   * On maxTime the clock is left at the budget's end.
   */
  run(options: SimRunOptions = {}): SimRunResult {
    if (this.running) throw new Error('SimNetwork.run: already running (called from inside an event)');
    const until = options.until;
    const maxEvents = options.maxEvents ?? DEFAULT_MAX_EVENTS;
    const deadline = this.nowMs + (options.maxTimeMs ?? DEFAULT_MAX_TIME_MS);
    let events = 0;
    this.running = true;
    try {
      for (;;) {
        if (until?.()) return { reason: 'until', timeMs: this.nowMs, events };
        const next = this.queue.peekTime();
        if (next === Number.POSITIVE_INFINITY) return { reason: 'idle', timeMs: this.nowMs, events };
        if (next > deadline) {
          this.nowMs = deadline;
          return { reason: 'maxTime', timeMs: this.nowMs, events };
        }
        if (events >= maxEvents) return { reason: 'maxEvents', timeMs: this.nowMs, events };
        const event = this.queue.pop()!;
        this.nowMs = event.atMs;
        events++;
        event.value();
      }
    } finally {
      this.running = false;
    }
  }

  private transmit(source: Endpoint, datagram: Uint8Array, to: string): void {
    const from = source.address;
    const bytes = datagram.length;
    const trace = this.onTrace;
    if (source.closed) {
      this.stats.dropped.closed++;
      trace?.({ type: 'drop', timeMs: this.nowMs, from, to, bytes, reason: 'closed' });
      return;
    }
    this.stats.sent++;
    trace?.({ type: 'send', timeMs: this.nowMs, from, to, bytes });
    const link = this.routeFor(from, to);
    if (!link) {
      const reason = this.endpoints.has(to) ? 'noRoute' : 'unknownAddress';
      this.stats.dropped[reason]++;
      trace?.({ type: 'drop', timeMs: this.nowMs, from, to, bytes, reason });
      return;
    }
    // A copy, as a real socket makes: the sender may reuse its buffer at once.
    const deliveries = link.offer(Buffer.from(datagram), this.nowMs);
    if (deliveries.length === 0) {
      this.stats.dropped.link++;
      trace?.({ type: 'drop', timeMs: this.nowMs, from, to, bytes, reason: 'link' });
      return;
    }
    for (const delivery of deliveries) {
      const copy = delivery.datagram;
      this.queue.push(delivery.atMs, () => this.deliver(from, to, copy));
    }
  }

  private routeFor(from: string, to: string): LinkModel | undefined {
    const key = linkKey(from, to);
    const link = this.links.get(key);
    if (link || this.defaultLink === undefined || !this.endpoints.has(to)) return link;
    this.connect(from, to, this.defaultLink);
    return this.links.get(key);
  }

  private deliver(from: string, to: string, datagram: Buffer): void {
    const endpoint = this.endpoints.get(to);
    if (!endpoint) {
      this.stats.dropped.unknownAddress++;
      this.onTrace?.({
        type: 'drop',
        timeMs: this.nowMs,
        from,
        to,
        bytes: datagram.length,
        reason: 'unknownAddress',
      });
      return;
    }
    this.stats.delivered++;
    this.onTrace?.({ type: 'deliver', timeMs: this.nowMs, from, to, datagram });
    if (endpoint.onDatagram) endpoint.onDatagram(datagram, from);
    else this.stats.unhandled++;
  }
}

function isGathered(datagram: Uint8Array | readonly Uint8Array[]): datagram is readonly Uint8Array[] {
  return Array.isArray(datagram);
}
