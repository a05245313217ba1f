import {
  deriveSessionKeys,
  Fernet,
  type FernetKey,
  generateX25519,
  randomBytesPooled,
  x25519SharedSecret,
} from '@ferry/crypto';
import type { ErrorName } from '@ferry/protocol';
import { ALL_FEATURES, FEATURES_VERSION, handshakeContext, SUPPORTED_VERSIONS } from '@ferry/protocol';
import type { CiphertextBuffers } from './ciphertext-buffers.js';
import { Connection, type ConnectionOptions, MAX_DATAGRAMS_PER_POLL } from './connection.js';
import { DeadlineHeap, type HeapItem } from './deadline-heap.js';
import { announcedReceiveWindow, effectiveReceiveWindow } from './flow-reports.js';
import {
  type Access,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  randomConnId,
  resetToken,
  type SessionParameters,
} from './handshake.js';
import {
  DEFAULT_MAX_BUFFERED_BYTES,
  DEFAULT_MAX_SESSION_BUFFERED_BYTES,
  SharedBufferBudget,
} from './send-buffers.js';
import { emptyDrops } from './stats.js';
import {
  type Datagram,
  decodeHandshakePacket,
  encodeReject,
  encodeReset,
  encodeServerTime,
  encodeVersionNegotiation,
  encodeWelcome,
  HANDSHAKE_TTL_SECONDS,
  MIN_HELLO_DATAGRAM,
  openToken,
  PROTOCOL_VERSION,
  RESET_DATAGRAM_LENGTH,
  readPrefix,
  SPACE,
  sealHandshake,
} from './wire.js';

/**
 * The server side, sans-I/O: many sessions on one socket, routed by connection id. Handles hellos
 * (trying each configured key), keeps half-open sessions bounded, answers replays of a hello it still
 * holds with the same welcome and nothing more, rejects stale and replayed hellos, and sends no more
 * bytes to an address than it received until that address has proved it holds the session key.
 *
 * A wake-up costs what it wakes: `poll` runs only the sessions that received a datagram, were
 * woken by their application (`wake`) or whose deadline came (`handleTimeout`, from a heap of
 * deadlines), never every session. Peers are opaque values of the driver's choosing (`peers` says
 * how they compare): the UDP adapter passes the socket's `{address, port}` through unchanged.
 */
export interface ServerKey {
  name: string;
  key: FernetKey;
  access: Access;
}

/** How the driver's peer addresses compare, and how logs name them. */
export interface PeerAddressing<Peer> {
  equal(a: Peer, b: Peer): boolean;
  /** Text for logs; computed once per change of a session's peer, not per datagram. */
  label(peer: Peer): string;
}

/** Peers as strings, compared with === (the simulator's addresses). */
export const STRING_PEERS: PeerAddressing<string> = { equal: (a, b) => a === b, label: (peer) => peer };

export interface ServerEndpointOptions<Peer = string> extends SessionParameters {
  keys: readonly ServerKey[];
  /** How peers compare (default: STRING_PEERS, for string peers). */
  peers?: PeerAddressing<Peer>;
  wallClock: () => number;
  maxSessions?: number;
  maxHalfOpen?: number;
  handshakeTimeoutMs?: number;
  /** Per-second budget for tokenless replies (reject, reset, version negotiation). */
  statelessRepliesPerSecond?: number;
  /** Most bytes of block data all sessions hold at once (read ahead, in flight); default 256 MiB. */
  maxBufferedBytes?: number;
  /** Most bytes of block data one session holds at once; default 16 MiB. */
  maxSessionBufferedBytes?: number;
  /**
   * Protocol versions to accept, most preferred first (default: all this build speaks). [1] makes the
   * endpoint behave as a server from before version 2 (tests of older servers).
   */
  versions?: readonly number[];
  /** Features a version-2 session may be granted (default: all this build implements). */
  features?: number;
  connection?: Partial<
    Pick<ConnectionOptions, 'congestion' | 'readAheadBytes' | 'maxAckDelayMs' | 'receiveRateBytesPerMs'>
  >;
  /** Buffers for the sessions' DATA ciphertext, which the driver gives back once each datagram is sent. */
  ciphertextBuffers?: CiphertextBuffers;
}

export interface ServerSession<Peer = unknown> {
  readonly connection: Connection;
  readonly id: string;
  /** Current peer (follows NAT rebinding). */
  readonly peer: Peer;
  /** The current peer as text, for logs. */
  readonly address: string;
  readonly keyName: string;
  readonly access: Access;
  /** Features the session may use (bits of @ferry/protocol's Feature); 0 in a version-1 session. */
  readonly features: number;
  readonly openedAt: number;
  /** The client proved it holds the session key (its first SESSION packet arrived). */
  readonly validated: boolean;
}

/** A session as the endpoint keeps it: its place in the deadline heap and the wake list, its path. */
class SessionEntry<Peer> implements ServerSession<Peer>, HeapItem {
  validated = false;
  deadline = Number.POSITIVE_INFINITY;
  heapIndex = -1;
  /** In the list of sessions the next poll runs. */
  woken = false;
  /** Path validation: the peer last proven to reach the client (set once the session is validated). */
  validatedPeer: Peer;
  /** Checking a new peer: the first packet number sent to it; an ACK of it proves the peer. */
  checkFrom: number | undefined;

  constructor(
    readonly connection: Connection,
    readonly id: string,
    public peer: Peer,
    public address: string,
    readonly keyName: string,
    readonly access: Access,
    readonly features: number,
    readonly openedAt: number,
  ) {
    this.validatedPeer = peer;
  }
}

interface HalfOpen<Peer> {
  session: SessionEntry<Peer>;
  welcome: Buffer;
  expires: number;
  nonce: string;
}

/** A session sends an unvalidated new peer address at most this many times the bytes it got from it. */
export const AMPLIFICATION_FACTOR = 3;

export type EndpointEvent<Peer = unknown> =
  | { type: 'session'; session: ServerSession<Peer> }
  | { type: 'session-closed'; session: ServerSession<Peer> };

export const DEFAULT_MAX_SESSIONS = 256;

export class ServerEndpoint<Peer = string> {
  readonly sessions = new Map<bigint, ServerSession<Peer>>();
  /** The same sessions, as kept here (sessions is the read-only view). */
  private readonly entries = new Map<bigint, SessionEntry<Peer>>();
  private readonly halfOpen = new Map<bigint, HalfOpen<Peer>>();
  /** Nonces of hellos seen within twice the handshake TTL (replay protection). */
  private readonly nonces = new Map<string, { expires: number; connId: bigint }>();
  private readonly events: Array<EndpointEvent<Peer>> = [];
  private readonly outbox: Array<{ to: Peer; datagram: Datagram }> = [];
  /** Validated sessions by their connection's next deadline. */
  private readonly deadlines = new DeadlineHeap<SessionEntry<Peer>>();
  /** Validated sessions the next poll runs (each once: see SessionEntry.woken). */
  private readonly woken: Array<SessionEntry<Peer>> = [];
  private readonly peers: PeerAddressing<Peer>;
  /** The block data every session's sends hold, shared (see SendBuffers). */
  readonly buffers: SharedBufferBudget;
  private readonly fernets: Array<{ key: ServerKey; fernet: Fernet }>;
  private statelessBudget: number;
  private statelessStamp = 0;
  /**
   * The size of the socket datagrams arrive on, as the kernel accounts it (getRecvBufferSize()), set
   * by the driver once it has one: sessions' receive windows never grant more than it can queue.
   */
  socketReceiveBufferBytes: number | undefined;
  private accepting = true;
  readonly counters = {
    handshakes: 0,
    handshakesRejected: 0,
    resetsSent: 0,
    rejectsSent: 0,
    serverTimesSent: 0,
    drops: emptyDrops(),
  };

  constructor(private readonly options: ServerEndpointOptions<Peer>) {
    if (options.keys.length === 0) throw new Error('a server needs at least one key');
    this.peers = options.peers ?? (STRING_PEERS as unknown as PeerAddressing<Peer>);
    this.buffers = new SharedBufferBudget(options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES);
    this.fernets = options.keys.map((key) => ({ key, fernet: new Fernet(key.key) }));
    this.statelessBudget = options.statelessRepliesPerSecond ?? 200;
  }

  /** Stops accepting new sessions (graceful shutdown); existing ones go on. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** A datagram from `from`. Only the session it belongs to (if any) runs at the next poll. */
  receive(datagram: Buffer, from: Peer, now: number): void {
    const prefix = readPrefix(datagram);
    if (prefix === undefined) {
      this.counters.drops.malformed++;
      return;
    }
    const versions = this.options.versions ?? SUPPORTED_VERSIONS;
    // Version 2 changes only the handshake: a version-2 hello is answered, every other datagram is version 1.
    const helloV2 =
      prefix.version === FEATURES_VERSION &&
      prefix.space === SPACE.handshake &&
      versions.includes(FEATURES_VERSION);
    if (prefix.version !== PROTOCOL_VERSION && !helloV2) {
      this.counters.drops.version++;
      if (prefix.space === SPACE.handshake && datagram.length >= MIN_HELLO_DATAGRAM) {
        this.sendStateless(from, encodeVersionNegotiation(prefix.connId, versions), datagram.length, now);
      }
      return;
    }
    if (prefix.space === SPACE.session) {
      const session = this.entries.get(prefix.connId);
      if (session === undefined) {
        this.counters.drops['unknown-connection']++;
        // A session we do not know (we restarted, or it expired): tell the client at once.
        if (datagram.length > RESET_DATAGRAM_LENGTH) {
          const primary = this.options.keys[0]!.key;
          if (
            this.sendStateless(
              from,
              encodeReset(prefix.connId, resetToken(primary, prefix.connId)),
              datagram.length,
              now,
            )
          ) {
            this.counters.resetsSent++;
          }
        }
        return;
      }
      const authenticBefore = session.connection.authenticBytesReceived;
      const fresh = session.connection.receiveDatagram(datagram, now);
      if (!fresh) {
        // Authentic but not the newest (reordered, or the session is closing): it still counts
        // towards what its address may be sent, if that is where the session now sends.
        const authentic = session.connection.authenticBytesReceived - authenticBefore;
        if (authentic > 0 && this.peers.equal(from, session.peer))
          session.connection.allowSending(AMPLIFICATION_FACTOR * authentic);
        this.wakeEntry(session);
        return;
      }
      if (!session.validated) {
        session.validated = true;
        this.halfOpen.delete(prefix.connId);
        this.events.push({ type: 'session', session });
        // The welcome went to the hello's address and the client holds its keys: that peer is proven.
        session.validatedPeer = session.peer;
      }
      this.followPeer(session, from, datagram.length);
      this.wakeEntry(session);
      return;
    }
    if (prefix.space === SPACE.handshake) {
      this.onHello(datagram, prefix.connId, from, now);
      return;
    }
    this.counters.drops.malformed++;
  }

  /**
   * Path validation (RFC 9000 §8.2, §9.3, without new frames). A session follows an authentic, newest
   * datagram to a new source address at once (NAT rebinding), but sends there at most
   * AMPLIFICATION_FACTOR times what came from that address until the peer proves it receives there: an
   * ACK from that address of a packet first sent after the move (the connection sends a PING at
   * once to draw one). An on-path attacker who races captured datagrams from another address (a
   * third party's, spoofed) therefore cannot aim more than that at it; going back to an address
   * already proven lifts the cap at once.
   */
  private followPeer(session: SessionEntry<Peer>, from: Peer, length: number): void {
    const connection = session.connection;
    if (!this.peers.equal(session.peer, from)) {
      session.peer = from;
      session.address = this.peers.label(from);
      connection.peerAddressChanged();
      if (this.peers.equal(from, session.validatedPeer)) {
        session.checkFrom = undefined;
        connection.limitSending(undefined);
      } else {
        session.checkFrom = connection.nextPacketNumber;
        connection.limitSending(AMPLIFICATION_FACTOR * length);
      }
      return;
    }
    if (session.checkFrom === undefined) return;
    if (connection.largestAckedPacket >= session.checkFrom) {
      session.validatedPeer = from;
      session.checkFrom = undefined;
      connection.limitSending(undefined);
    } else {
      connection.allowSending(AMPLIFICATION_FACTOR * length);
    }
  }

  private onHello(datagram: Buffer, initialConnId: bigint, from: Peer, now: number): void {
    if (datagram.length < MIN_HELLO_DATAGRAM) {
      this.counters.drops.malformed++;
      return;
    }
    const wall = this.options.wallClock();
    let matched: { key: ServerKey; fernet: Fernet } | undefined;
    let plaintext: Buffer | undefined;
    let stale: { key: ServerKey; fernet: Fernet } | undefined;
    for (const candidate of this.fernets) {
      const opened = openToken(candidate.fernet, datagram, { ttl: HANDSHAKE_TTL_SECONDS, now: wall });
      if (opened === 'EEXPIRED') {
        stale = candidate; // authentic under this key (the MAC is checked first), but out of the window
        break;
      }
      if (opened !== 'EBADTOKEN') {
        plaintext = opened;
        matched = candidate;
        break;
      }
    }
    if (matched === undefined || plaintext === undefined) {
      if (stale !== undefined) {
        this.counters.drops['stale-handshake']++;
        this.answerStaleHello(datagram, stale.fernet, initialConnId, from, now, wall);
        return;
      }
      this.counters.drops['bad-mac']++;
      this.counters.handshakesRejected++;
      if (this.sendStateless(from, encodeReject(initialConnId, 'EAUTH'), datagram.length, now)) {
        this.counters.rejectsSent++;
      }
      return;
    }
    const decoded = decodeHandshakePacket(plaintext, datagram);
    if (!decoded.ok || decoded.value.type !== 'client-hello') {
      this.counters.drops.malformed++;
      return;
    }
    const hello = decoded.value;
    this.expire(now);
    const nonce = Buffer.from(hello.clientNonce).toString('hex');
    const seen = this.nonces.get(nonce);
    if (seen !== undefined) {
      const pending = this.halfOpen.get(seen.connId);
      if (pending !== undefined && pending.nonce === nonce && seen.connId !== undefined) {
        // Our welcome was lost (or this is a replay): the same bytes again, never more than received.
        if (pending.welcome.length <= datagram.length)
          this.outbox.push({ to: from, datagram: pending.welcome });
        return;
      }
      this.counters.drops.replay++;
      return;
    }
    const maxSessions = this.options.maxSessions ?? DEFAULT_MAX_SESSIONS;
    if (!this.accepting || this.sessions.size >= maxSessions) {
      this.counters.handshakesRejected++;
      if (this.sendStateless(from, encodeReject(initialConnId, 'EBUSY'), datagram.length, now))
        this.counters.rejectsSent++;
      return;
    }
    const maxHalfOpen = this.options.maxHalfOpen ?? 1024;
    if (this.halfOpen.size >= maxHalfOpen) {
      const oldest = this.halfOpen.keys().next();
      if (!oldest.done) this.dropHalfOpen(oldest.value);
    }
    const ephemeral = generateX25519();
    let shared: Buffer;
    try {
      shared = x25519SharedSecret(ephemeral.privateKey, hello.publicKey);
    } catch {
      this.counters.drops.malformed++;
      return;
    }
    let sessionConnId = randomConnId();
    while (this.entries.has(sessionConnId)) sessionConnId = randomConnId();
    const serverNonce = randomBytesPooled(16);
    const blockSize = Math.min(this.options.maxBlockSize, hello.maxBlockSize);
    const idleTimeoutMs = Math.min(this.options.idleTimeoutMs, hello.idleTimeoutMs);
    // A version-2 hello gets a version-2 welcome granting the features both sides have.
    const features =
      hello.features === undefined ? undefined : hello.features & (this.options.features ?? ALL_FEATURES);
    const receiveWindow = effectiveReceiveWindow(
      this.options.receiveWindow,
      this.socketReceiveBufferBytes,
      blockSize,
    );
    const welcomePlaintext = encodeWelcome(initialConnId, {
      clientNonce: hello.clientNonce,
      serverNonce,
      publicKey: ephemeral.publicKey,
      sessionConnId,
      blockSize,
      receiveWindow: announcedReceiveWindow(
        receiveWindow,
        this.options.connection?.receiveRateBytesPerMs ??
          this.options.connection?.congestion?.maxRateBytesPerMs,
      ),
      idleTimeoutMs,
      access: matched.key.access,
      resetToken: resetToken(this.options.keys[0]!.key, sessionConnId),
      ...(features !== undefined ? { features } : {}),
    });
    const keys = deriveSessionKeys({
      psk: matched.key.key,
      sharedSecret: shared,
      clientNonce: hello.clientNonce,
      serverNonce,
      context: handshakeContext(plaintext, welcomePlaintext),
    });
    let entry: SessionEntry<Peer> | undefined;
    const connection = new Connection({
      role: 'server',
      connId: sessionConnId,
      sendKey: new Fernet(keys.serverToClient),
      receiveKey: new Fernet(keys.clientToServer),
      blockSize,
      peerReceiveWindow: hello.receiveWindow,
      receiveWindow,
      idleTimeoutMs,
      now,
      wallClock: this.options.wallClock,
      ...this.options.connection,
      maxBufferedBytes: this.options.maxSessionBufferedBytes ?? DEFAULT_MAX_SESSION_BUFFERED_BYTES,
      sharedBuffers: this.buffers,
      ...(this.options.ciphertextBuffers !== undefined
        ? { ciphertextBuffers: this.options.ciphertextBuffers }
        : {}),
      onBuffersAvailable: () => {
        if (entry !== undefined) this.wakeEntry(entry);
      },
    });
    const welcome = sealHandshake(matched.fernet, welcomePlaintext, wall);
    const session = new SessionEntry(
      connection,
      sessionConnId.toString(16).padStart(16, '0'),
      from,
      this.peers.label(from),
      matched.key.name,
      matched.key.access,
      features ?? 0,
      now,
    );
    entry = session;
    this.sessions.set(sessionConnId, session);
    this.entries.set(sessionConnId, session);
    this.halfOpen.set(sessionConnId, {
      session,
      welcome,
      // The client counts the session open once it has our welcome, and keeps confirming it (PING) with
      // backoff until the idle timeout; forgetting it earlier would turn a few lost PINGs into a RESET.
      // Only a client holding the key gets here (the hello authenticated, its nonce is new), so this
      // costs an attacker nothing they could not do by completing handshakes. (One lifetime for all, the
      // server's idle timeout, so that insertion order stays expiry order for expire().)
      expires:
        now +
        Math.max(this.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, this.options.idleTimeoutMs),
      nonce,
    });
    this.nonces.set(nonce, { expires: now + 2 * HANDSHAKE_TTL_SECONDS * 1000, connId: sessionConnId });
    this.counters.handshakes++;
    if (welcome.length <= datagram.length) this.outbox.push({ to: from, datagram: welcome });
  }

  /**
   * An authentic hello stamped outside the window (a replay, or a client whose clock is off): no state,
   * the hello is not accepted, but its sender is told the server's time, sealed with the same key and
   * echoing the hello's nonce (SERVER_TIME), so that a key holder with a wrong clock can stamp its hello
   * by the server's clock and try again. Smaller than the hello, and rate-limited as tokenless replies
   * are; a replay earns the attacker a datagram it cannot read.
   */
  private answerStaleHello(
    datagram: Buffer,
    fernet: Fernet,
    initialConnId: bigint,
    from: Peer,
    now: number,
    wall: number,
  ): void {
    const plaintext = openToken(fernet, datagram);
    if (typeof plaintext === 'string') return;
    const decoded = decodeHandshakePacket(plaintext, datagram);
    if (!decoded.ok || decoded.value.type !== 'client-hello') return;
    const reply = sealHandshake(fernet, encodeServerTime(initialConnId, decoded.value.clientNonce), wall);
    if (this.sendStateless(from, reply, datagram.length, now)) this.counters.serverTimesSent++;
  }

  /** Sends a tokenless reply if it is smaller than what provoked it and the budget allows. */
  private sendStateless(to: Peer, datagram: Buffer, receivedLength: number, now: number): boolean {
    if (datagram.length >= receivedLength) return false;
    const perSecond = this.options.statelessRepliesPerSecond ?? 200;
    this.statelessBudget = Math.min(
      perSecond,
      this.statelessBudget + ((now - this.statelessStamp) * perSecond) / 1000,
    );
    this.statelessStamp = now;
    if (this.statelessBudget < 1) {
      this.counters.drops['rate-limited']++;
      return false;
    }
    this.statelessBudget--;
    this.outbox.push({ to, datagram });
    return true;
  }

  private dropHalfOpen(connId: bigint): void {
    const h = this.halfOpen.get(connId);
    if (h === undefined) return;
    this.halfOpen.delete(connId);
    this.entries.delete(connId);
    if (this.sessions.delete(connId)) this.keepDrops(h.session);
  }

  /** A session leaving the table: its drop counts move into the endpoint's, so totals never go down. */
  private keepDrops(session: ServerSession<Peer>): void {
    for (const [k, v] of Object.entries(session.connection.stats.drops)) {
      this.counters.drops[k as keyof typeof this.counters.drops] += v;
    }
  }

  private expire(now: number): void {
    for (const [nonce, entry] of this.nonces) {
      if (entry.expires > now) break; // insertion order = expiry order
      this.nonces.delete(nonce);
    }
    for (const [connId, h] of this.halfOpen) {
      if (h.expires > now) break;
      this.dropHalfOpen(connId);
    }
  }

  /**
   * Has `session` run at the next poll: its application queued work on its connection (a message,
   * a block read, a write done, a close). Cheap; call it after every such call.
   */
  wake(session: ServerSession<Peer>): void {
    if (session instanceof SessionEntry) this.wakeEntry(session);
  }

  private wakeEntry(entry: SessionEntry<Peer>): void {
    if (entry.woken || !entry.validated) return;
    entry.woken = true;
    this.woken.push(entry);
  }

  /**
   * Hands every datagram to send now to `send`: tokenless replies and welcomes, then those of the
   * sessions woken since the last poll (and only those). `visit` sees each session that ran, so that
   * the driver can deliver its events.
   */
  poll(
    now: number,
    send: (datagram: Datagram, to: Peer) => void,
    visit?: (session: ServerSession<Peer>) => void,
  ): void {
    if (this.outbox.length > 0) {
      const outbox = this.outbox.splice(0, this.outbox.length);
      for (const { to, datagram } of outbox) send(datagram, to);
    }
    const woken = this.woken;
    // By index: a session woken while this runs (by a callback) runs in this poll too.
    for (let i = 0; i < woken.length; i++) {
      const entry = woken[i]!;
      entry.woken = false;
      const connection = entry.connection;
      // As a driver of one connection would: its timers first, if due (a datagram may have made one due).
      if (now >= connection.nextTimeout()) connection.handleTimeout(now);
      for (;;) {
        const batch = connection.poll(now);
        for (const datagram of batch) send(datagram, entry.peer);
        if (batch.length < MAX_DATAGRAMS_PER_POLL) break;
      }
      if (connection.state === 'closed') this.removeClosed(entry);
      else this.deadlines.schedule(entry, connection.nextTimeout());
      visit?.(entry);
    }
    woken.length = 0;
  }

  /** The earliest time something is due: 0 when a poll has work now. */
  nextTimeout(): number {
    if (this.outbox.length > 0 || this.woken.length > 0) return 0;
    let t = this.deadlines.earliest;
    for (const h of this.halfOpen.values()) {
      t = Math.min(t, h.expires);
      break;
    }
    return t;
  }

  /** Expires half-open sessions, and wakes the sessions whose deadline came (the next poll runs them). */
  handleTimeout(now: number): void {
    this.expire(now);
    for (let entry = this.deadlines.peekDue(now); entry !== undefined; entry = this.deadlines.peekDue(now)) {
      this.deadlines.remove(entry);
      this.wakeEntry(entry);
    }
  }

  private removeClosed(entry: SessionEntry<Peer>): void {
    const connId = entry.connection.connId;
    this.deadlines.remove(entry);
    if (this.entries.get(connId) !== entry) return;
    this.entries.delete(connId);
    this.sessions.delete(connId);
    this.keepDrops(entry);
    this.events.push({ type: 'session-closed', session: entry });
  }

  pollEvent(): EndpointEvent<Peer> | undefined {
    return this.events.shift();
  }

  /** Counters for logs: sessions, handshakes, drops by reason (endpoint and sessions combined). */
  toJSON(): Record<string, unknown> {
    const drops = { ...this.counters.drops };
    for (const s of this.sessions.values()) {
      for (const [k, v] of Object.entries(s.connection.stats.drops)) drops[k as keyof typeof drops] += v;
    }
    return {
      sessions: this.sessions.size,
      halfOpen: this.halfOpen.size,
      handshakes: this.counters.handshakes,
      handshakesRejected: this.counters.handshakesRejected,
      resetsSent: this.counters.resetsSent,
      rejectsSent: this.counters.rejectsSent,
      serverTimesSent: this.counters.serverTimesSent,
      bufferedBytes: this.buffers.usedBytes,
      sessionsWaitingForBuffers: this.buffers.waiting,
      drops,
    };
  }
}

export type { ErrorName };
