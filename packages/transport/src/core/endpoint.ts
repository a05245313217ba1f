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
import { Connection, type ConnectionOptions } from './connection.js';
import {
  type Access,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  randomConnId,
  resetToken,
  type SessionParameters,
} from './handshake.js';
import { emptyDrops } from './stats.js';
import {
  type Datagram,
  decodeHandshakePacket,
  encodeReject,
  encodeReset,
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
 */
export interface ServerKey {
  name: string;
  key: FernetKey;
  access: Access;
}

export interface ServerEndpointOptions extends SessionParameters {
  keys: readonly ServerKey[];
  wallClock: () => number;
  maxSessions?: number;
  maxHalfOpen?: number;
  handshakeTimeoutMs?: number;
  /** Per-second budget for tokenless replies (reject, reset, version negotiation). */
  statelessRepliesPerSecond?: number;
  /**
   * Protocol versions to accept, most preferred first (default: all this build speaks). [1] makes the
   * endpoint behave as a server from before version 2 (tests of older servers).
   */
  versions?: readonly number[];
  /** Features a version-2 session may be granted (default: all this build implements). */
  features?: number;
  connection?: Partial<Pick<ConnectionOptions, 'congestion' | 'readAheadBytes' | 'maxAckDelayMs'>>;
}

export interface ServerSession {
  readonly connection: Connection;
  readonly id: string;
  /** Current peer address (follows NAT rebinding). */
  address: string;
  readonly keyName: string;
  readonly access: Access;
  /** Features the session may use (bits of @ferry/protocol's Feature); 0 in a version-1 session. */
  readonly features: number;
  readonly openedAt: number;
  validated: boolean;
}

interface HalfOpen {
  session: ServerSession;
  welcome: Buffer;
  expires: number;
  nonce: string;
}

/** A session sends an unvalidated new peer address at most this many times the bytes it got from it. */
export const AMPLIFICATION_FACTOR = 3;

export type EndpointEvent =
  | { type: 'session'; session: ServerSession }
  | { type: 'session-closed'; session: ServerSession };

export const DEFAULT_MAX_SESSIONS = 256;

export class ServerEndpoint {
  readonly sessions = new Map<bigint, ServerSession>();
  private readonly halfOpen = new Map<bigint, HalfOpen>();
  /** Nonces of hellos seen within twice the handshake TTL (replay protection). */
  private readonly nonces = new Map<string, { expires: number; connId: bigint }>();
  private readonly events: EndpointEvent[] = [];
  private readonly outbox: Array<{ to: string; datagram: Datagram }> = [];
  /** Per session: the address last proven to reach the client, and the check of a new one in progress. */
  private readonly paths = new WeakMap<
    ServerSession,
    { validatedAddress: string; checkFrom: number | undefined }
  >();
  private readonly fernets: Array<{ key: ServerKey; fernet: Fernet }>;
  private statelessBudget: number;
  private statelessStamp = 0;
  private accepting = true;
  readonly counters = {
    handshakes: 0,
    handshakesRejected: 0,
    resetsSent: 0,
    rejectsSent: 0,
    drops: emptyDrops(),
  };

  constructor(private readonly options: ServerEndpointOptions) {
    if (options.keys.length === 0) throw new Error('a server needs at least one key');
    this.fernets = options.keys.map((key) => ({ key, fernet: new Fernet(key.key) }));
    this.statelessBudget = options.statelessRepliesPerSecond ?? 200;
  }

  /** Stops accepting new sessions (graceful shutdown); existing ones go on. */
  stopAccepting(): void {
    this.accepting = false;
  }

  receive(datagram: Buffer, from: string, now: number): void {
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
      const session = this.sessions.get(prefix.connId);
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
        if (authentic > 0 && from === session.address)
          session.connection.allowSending(AMPLIFICATION_FACTOR * authentic);
        return;
      }
      if (!session.validated) {
        session.validated = true;
        this.halfOpen.delete(prefix.connId);
        this.events.push({ type: 'session', session });
        // The welcome went to the hello's address and the client holds its keys: that address is proven.
        this.paths.set(session, { validatedAddress: session.address, checkFrom: undefined });
      }
      this.followPeer(session, from, datagram.length);
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
  private followPeer(session: ServerSession, from: string, length: number): void {
    const path = this.paths.get(session);
    if (path === undefined) return;
    const connection = session.connection;
    if (session.address !== from) {
      session.address = from;
      connection.peerAddressChanged();
      if (from === path.validatedAddress) {
        path.checkFrom = undefined;
        connection.limitSending(undefined);
      } else {
        path.checkFrom = connection.nextPacketNumber;
        connection.limitSending(AMPLIFICATION_FACTOR * length);
      }
      return;
    }
    if (path.checkFrom === undefined) return;
    if (connection.largestAckedPacket >= path.checkFrom) {
      path.validatedAddress = from;
      path.checkFrom = undefined;
      connection.limitSending(undefined);
    } else {
      connection.allowSending(AMPLIFICATION_FACTOR * length);
    }
  }

  private onHello(datagram: Buffer, initialConnId: bigint, from: string, now: number): void {
    if (datagram.length < MIN_HELLO_DATAGRAM) {
      this.counters.drops.malformed++;
      return;
    }
    const wall = this.options.wallClock();
    let matched: { key: ServerKey; fernet: Fernet } | undefined;
    let plaintext: Buffer | undefined;
    let stale = false;
    for (const candidate of this.fernets) {
      const opened = openToken(candidate.fernet, datagram, { ttl: HANDSHAKE_TTL_SECONDS, now: wall });
      if (opened === 'EEXPIRED') stale = true;
      else if (opened !== 'EBADTOKEN') {
        plaintext = opened;
        matched = candidate;
        break;
      }
    }
    if (matched === undefined || plaintext === undefined) {
      if (stale) {
        this.counters.drops['stale-handshake']++;
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
    while (this.sessions.has(sessionConnId)) sessionConnId = randomConnId();
    const serverNonce = randomBytesPooled(16);
    const blockSize = Math.min(this.options.maxBlockSize, hello.maxBlockSize);
    const idleTimeoutMs = Math.min(this.options.idleTimeoutMs, hello.idleTimeoutMs);
    // A version-2 hello gets a version-2 welcome granting the features both sides have.
    const features =
      hello.features === undefined ? undefined : hello.features & (this.options.features ?? ALL_FEATURES);
    const welcomePlaintext = encodeWelcome(initialConnId, {
      clientNonce: hello.clientNonce,
      serverNonce,
      publicKey: ephemeral.publicKey,
      sessionConnId,
      blockSize,
      receiveWindow: this.options.receiveWindow,
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
    const connection = new Connection({
      role: 'server',
      connId: sessionConnId,
      sendKey: new Fernet(keys.serverToClient),
      receiveKey: new Fernet(keys.clientToServer),
      blockSize,
      peerReceiveWindow: hello.receiveWindow,
      receiveWindow: this.options.receiveWindow,
      idleTimeoutMs,
      now,
      wallClock: this.options.wallClock,
      ...this.options.connection,
    });
    const welcome = sealHandshake(matched.fernet, welcomePlaintext, wall);
    const session: ServerSession = {
      connection,
      id: sessionConnId.toString(16).padStart(16, '0'),
      address: from,
      keyName: matched.key.name,
      access: matched.key.access,
      features: features ?? 0,
      openedAt: now,
      validated: false,
    };
    this.sessions.set(sessionConnId, session);
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

  /** Sends a tokenless reply if it is smaller than what provoked it and the budget allows. */
  private sendStateless(to: string, datagram: Buffer, receivedLength: number, now: number): boolean {
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
    if (this.sessions.delete(connId)) this.keepDrops(h.session);
  }

  /** A session leaving the table: its drop counts move into the endpoint's, so totals never go down. */
  private keepDrops(session: ServerSession): void {
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

  poll(now: number): Array<{ to: string; datagram: Datagram }> {
    const out = this.outbox.splice(0, this.outbox.length);
    for (const session of this.sessions.values()) {
      if (!session.validated) continue;
      for (;;) {
        const batch = session.connection.poll(now);
        for (const datagram of batch) out.push({ to: session.address, datagram });
        if (batch.length < 128) break;
      }
    }
    this.reap();
    return out;
  }

  /** Polls one session only (after its application queued work). */
  pollSession(session: ServerSession, now: number): Array<{ to: string; datagram: Datagram }> {
    const out: Array<{ to: string; datagram: Datagram }> = [];
    if (!session.validated) return out;
    for (const datagram of session.connection.poll(now)) out.push({ to: session.address, datagram });
    return out;
  }

  nextTimeout(): number {
    let t = this.outbox.length > 0 ? 0 : Number.POSITIVE_INFINITY;
    for (const h of this.halfOpen.values()) {
      t = Math.min(t, h.expires);
      break;
    }
    for (const session of this.sessions.values()) {
      if (session.validated) t = Math.min(t, session.connection.nextTimeout());
    }
    return t;
  }

  handleTimeout(now: number): void {
    this.expire(now);
    for (const session of this.sessions.values()) {
      if (session.validated) session.connection.handleTimeout(now);
    }
    this.reap();
  }

  private reap(): void {
    for (const [connId, session] of this.sessions) {
      if (session.connection.state === 'closed') {
        this.sessions.delete(connId);
        this.keepDrops(session);
        this.events.push({ type: 'session-closed', session });
      }
    }
  }

  pollEvent(): EndpointEvent | undefined {
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
      drops,
    };
  }
}

export type { ErrorName };
