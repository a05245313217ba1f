import {
  deriveSessionKeys,
  Fernet,
  type FernetKey,
  generateX25519,
  randomBytesPooled,
  x25519SharedSecret,
} from '@ferry/crypto';
import {
  ALL_FEATURES,
  type ErrorName,
  FEATURES_VERSION,
  handshakeContext,
  resetTokenFor,
} from '@ferry/protocol';
import type { CiphertextBuffers } from './ciphertext-buffers.js';
import { Connection, type ConnectionOptions } from './connection.js';
import { announcedReceiveWindow, effectiveReceiveWindow } from './flow-reports.js';
import {
  decodeHandshakePacket,
  decodeReject,
  decodeReset,
  decodeVersionNegotiation,
  encodeHello,
  openToken,
  PROTOCOL_VERSION,
  type Prefix,
  readPrefix,
  SPACE,
  sealHandshake,
  tokenTime,
} from './wire.js';

/** Parameters both sides put into the handshake. */
export interface SessionParameters {
  /** Largest block (DATA payload) this side accepts / offers. */
  maxBlockSize: number;
  /** Receive window per transfer, in bytes. */
  receiveWindow: number;
  idleTimeoutMs: number;
}

export type Access = 'read-only' | 'read-write';

export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
export const DEFAULT_RECEIVE_WINDOW = 16 * 1024 * 1024;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
export const INITIAL_HANDSHAKE_RTO_MS = 250;
/** Hello retransmissions back off from INITIAL_HANDSHAKE_RTO_MS up to this interval. */
export const MAX_HANDSHAKE_RTO_MS = 1_000;
/**
 * REJECT and VERSION NEGOTIATION datagrams carry no token, so one may be forged, or answer a hello
 * damaged in transit (a flipped bit fails the MAC: the server cannot tell that from a wrong key). So a
 * refusal is a strong hint, not a verdict: the client resends its hello at once after each one, and fails
 * with the refusal's code only once REFUSALS_TO_FAIL hellos in a row were refused (each refusal counted
 * only if it comes at least ~one round trip after the previous, so duplicates do not count) and no
 * WELCOME arrived within REJECT_GRACE_MS of the first. A wrong key thus fails in max(0.5 s, 3 RTT).
 */
export const REFUSALS_TO_FAIL = 3;
export const REJECT_GRACE_MS = 500;

/** Token a server hands out so that, after losing a session (restart), it can end it at once. */
export function resetToken(serverKey: FernetKey, sessionConnId: bigint): Buffer {
  return resetTokenFor(serverKey.signingKey, sessionConnId);
}

export function randomConnId(): bigint {
  return randomBytesPooled(8).readBigUInt64BE(0);
}

export type HandshakeOutcome =
  | {
      type: 'established';
      connection: Connection;
      access: Access;
      resetToken: Buffer;
      /** The server's clock minus this one's, in seconds, when the server said its hello was stale. */
      clockOffsetSeconds: number;
      /** The protocol version of the handshake (1 or 2). */
      version: number;
      /** Features the session may use (bits of @ferry/protocol's Feature); 0 in a version-1 session. */
      features: number;
    }
  | { type: 'failed'; code: ErrorName; message: string };

/** Times a client re-stamps its hello by the server's clock (SERVER_TIME) in one handshake. */
export const MAX_CLOCK_CORRECTIONS = 2;

export interface ClientHandshakeOptions extends SessionParameters {
  key: FernetKey;
  now: number;
  wallClock: () => number;
  handshakeTimeoutMs?: number;
  /**
   * Features to ask for (default: every feature this build implements). The hello is a version-2 one
   * carrying them; a server that speaks only version 1 answers VERSION NEGOTIATION and the handshake
   * starts again in version 1, without features.
   */
  features?: number;
  connection?: Partial<
    Pick<
      ConnectionOptions,
      'congestion' | 'readAheadBytes' | 'maxAckDelayMs' | 'receiveRateBytesPerMs' | 'socketReceiveBufferBytes'
    >
  >;
  /** Buffers for the session's DATA ciphertext, which the driver gives back once each datagram is sent. */
  ciphertextBuffers?: CiphertextBuffers;
}

/**
 * The client side of the 1-RTT handshake: sends CLIENT_HELLO (retransmitted with backoff), accepts the
 * SERVER_WELCOME that echoes its nonce, derives the session keys and hands over a Connection.
 */
export class ClientHandshake {
  readonly initialConnId = randomConnId();
  private readonly fernet: Fernet;
  private nonce = randomBytesPooled(16);
  private readonly ephemeral = generateX25519();
  private hello: Buffer;
  private helloPlaintext: Buffer;
  /** The version of the hello being sent: 2 until a server says it speaks only version 1. */
  private version = FEATURES_VERSION;
  /** Seconds to add to the local clock to stamp a hello the server accepts (from SERVER_TIME). */
  private clockOffset = 0;
  private clockCorrections = 0;
  private readonly started: number;
  private readonly timeoutMs: number;
  /** The receive window announced (the server may choose a smaller block: see effectiveReceiveWindow). */
  private readonly receiveWindow: number;
  private nextSend: number;
  private lastSent = Number.NEGATIVE_INFINITY;
  private rto = INITIAL_HANDSHAKE_RTO_MS;
  /** The first unauthenticated refusal (REJECT or version negotiation); see REJECT_GRACE_MS. */
  private refusal:
    | { code: ErrorName; message: string; deadline: number; rtt: number; nextCountAt: number; count: number }
    | undefined;
  outcome: HandshakeOutcome | undefined;
  helloSent = 0;

  constructor(private readonly options: ClientHandshakeOptions) {
    this.fernet = new Fernet(options.key);
    this.started = options.now;
    this.nextSend = options.now;
    this.timeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.receiveWindow = effectiveReceiveWindow(
      options.receiveWindow,
      options.connection?.socketReceiveBufferBytes,
      options.maxBlockSize,
    );
    this.helloPlaintext = this.encodeHello();
    this.hello = this.sealHello();
  }

  /** The hello sealed now, stamped by the server's clock once it told us ours is off. */
  private sealHello(): Buffer {
    return sealHandshake(this.fernet, this.helloPlaintext, this.options.wallClock() + this.clockOffset);
  }

  private encodeHello(): Buffer {
    return encodeHello(this.initialConnId, {
      clientNonce: this.nonce,
      publicKey: this.ephemeral.publicKey,
      maxBlockSize: this.options.maxBlockSize,
      // A rate-limited client announces a small window: the server may send that much before any flow
      // entry, and the client grants the rest at its rate.
      receiveWindow: announcedReceiveWindow(
        this.receiveWindow,
        this.options.connection?.receiveRateBytesPerMs ??
          this.options.connection?.congestion?.maxRateBytesPerMs,
      ),
      idleTimeoutMs: this.options.idleTimeoutMs,
      ...(this.version === FEATURES_VERSION ? { features: this.options.features ?? ALL_FEATURES } : {}),
    });
  }

  /**
   * The server speaks version 1 only (an older ferry-server): say hello again in version 1, at once.
   * A forged VERSION NEGOTIATION can cause this too; it costs the session its features, nothing else
   * (docs/PROTOCOL.md §18).
   */
  private fallBackToVersion1(now: number): void {
    this.version = PROTOCOL_VERSION;
    this.nonce = randomBytesPooled(16); // a new hello, not a retransmission of the old one
    this.helloPlaintext = this.encodeHello();
    this.hello = this.sealHello();
    this.helloSent = 0;
    this.nextSend = now;
    this.rto = INITIAL_HANDSHAKE_RTO_MS;
  }

  poll(now: number): Buffer[] {
    if (this.outcome !== undefined || now < this.nextSend) return [];
    this.nextSend = now + this.rto;
    this.rto = Math.min(this.rto * 2, MAX_HANDSHAKE_RTO_MS);
    this.helloSent++;
    this.lastSent = now;
    return [this.hello];
  }

  nextTimeout(): number {
    if (this.outcome !== undefined) return Number.POSITIVE_INFINITY;
    const deadline = Math.min(this.nextSend, this.started + this.timeoutMs);
    return this.refusal !== undefined && this.refusalFinal()
      ? Math.min(deadline, this.refusal.deadline)
      : deadline;
  }

  handleTimeout(now: number): void {
    if (this.outcome !== undefined) return;
    const r = this.refusal;
    if (r !== undefined && this.refusalFinal() && now >= r.deadline) {
      this.outcome = { type: 'failed', code: r.code, message: r.message };
    } else if (now >= this.started + this.timeoutMs) {
      this.outcome = r
        ? { type: 'failed', code: r.code, message: r.message }
        : {
            type: 'failed',
            code: 'ETIMEDOUT',
            message:
              this.clockCorrections > 0
                ? `no answer from the server within ${Math.round(this.timeoutMs / 1000)} s, after it said this machine's clock is ${describeOffset(this.clockOffset)}`
                : `no answer from the server within ${Math.round(this.timeoutMs / 1000)} s (is ferry-server running there, is UDP let through, and are both clocks right?)`,
          };
    }
  }

  private refusalFinal(): boolean {
    return this.refusal !== undefined && this.refusal.count >= REFUSALS_TO_FAIL;
  }

  /** An unauthenticated refusal: counted (see REFUSALS_TO_FAIL) and the hello resent at once. */
  private refused(code: ErrorName, message: string, now: number): void {
    let r = this.refusal;
    if (r === undefined) {
      const rtt = Math.max(now - this.lastSent, 1);
      r = { code, message, deadline: now + REJECT_GRACE_MS, rtt, nextCountAt: now, count: 0 };
      this.refusal = r;
    }
    if (now < r.nextCountAt) return; // a duplicate, or an answer to a hello sent before the last refusal
    r.count++;
    r.nextCountAt = now + 0.75 * r.rtt;
    this.nextSend = now;
    this.rto = INITIAL_HANDSHAKE_RTO_MS;
    this.handleTimeout(now);
  }

  /** Feeds a datagram from the server; returns true if it was consumed. */
  receive(datagram: Buffer, now: number): boolean {
    if (this.outcome !== undefined) return false;
    const prefix = readPrefix(datagram);
    if (prefix === undefined || prefix.connId !== this.initialConnId) return false;
    if (prefix.space === SPACE.versionNegotiation) {
      const versions = decodeVersionNegotiation(datagram);
      // A list holding our own version answers a damaged hello, or is forged (RFC 9000 §6.2): ignore it.
      if (versions === undefined || versions.includes(this.version)) return false;
      if (this.version === FEATURES_VERSION && versions.includes(PROTOCOL_VERSION)) {
        this.fallBackToVersion1(now);
        return true;
      }
      this.refused(
        'EVERSION',
        `the server speaks protocol version(s) ${versions.join(', ') || 'none'}, this client speaks ${FEATURES_VERSION} and ${PROTOCOL_VERSION}; upgrade the older side`,
        now,
      );
      return true;
    }
    if (prefix.space === SPACE.reject) {
      const code = decodeReject(datagram);
      if (code === undefined) return false;
      this.refused(code, rejectMessage(code), now);
      return true;
    }
    if (prefix.space !== SPACE.handshake) return false;
    // No TTL here: an answer that echoes this handshake's fresh nonce cannot be a replay, whatever
    // its timestamp, and a server whose clock differs from ours still answers in time.
    const plaintext = openToken(this.fernet, datagram);
    if (typeof plaintext === 'string') return false;
    const decoded = decodeHandshakePacket(plaintext, datagram);
    if (!decoded.ok) return false;
    const p = decoded.value;
    if (p.type === 'server-time') {
      if (!Buffer.from(p.clientNonce).equals(this.nonce)) return false;
      this.onServerTime(tokenTime(datagram), now);
      return true;
    }
    if (p.type !== 'server-welcome') return false;
    return this.onWelcome(p, plaintext, prefix, now);
  }

  /**
   * The server refused our hello as stamped outside its window, and told us its time: stamp the
   * hello by its clock and send it again at once (at most MAX_CLOCK_CORRECTIONS times).
   */
  private onServerTime(serverSeconds: number, now: number): void {
    if (this.clockCorrections >= MAX_CLOCK_CORRECTIONS) return;
    this.clockCorrections++;
    // Fernet timestamps are whole seconds (rounded down): the server's clock is up to 1 s later.
    this.clockOffset = serverSeconds + 0.5 - this.options.wallClock();
    this.hello = this.sealHello();
    this.nextSend = now;
    this.rto = INITIAL_HANDSHAKE_RTO_MS;
  }

  private onWelcome(
    w: Extract<ReturnType<typeof decodeHandshakePacket>, { ok: true }>['value'] & { type: 'server-welcome' },
    plaintext: Buffer,
    prefix: Prefix,
    now: number,
  ): boolean {
    if (!Buffer.from(w.clientNonce).equals(this.nonce)) return false;
    // A welcome answers a hello of its own version (the nonce echo already ties it to this hello).
    if (prefix.version !== this.version) return false;
    let shared: Buffer;
    try {
      shared = x25519SharedSecret(this.ephemeral.privateKey, w.publicKey);
    } catch {
      this.outcome = { type: 'failed', code: 'EAUTH', message: 'the server sent an invalid key exchange' };
      return true;
    }
    const keys = deriveSessionKeys({
      psk: this.options.key,
      sharedSecret: shared,
      clientNonce: this.nonce,
      serverNonce: w.serverNonce,
      context: handshakeContext(this.helloPlaintext, plaintext),
    });
    const connection = new Connection({
      role: 'client',
      connId: w.sessionConnId,
      sendKey: new Fernet(keys.clientToServer),
      receiveKey: new Fernet(keys.serverToClient),
      blockSize: w.blockSize,
      peerReceiveWindow: w.receiveWindow,
      receiveWindow: this.receiveWindow,
      idleTimeoutMs: w.idleTimeoutMs,
      now,
      wallClock: this.options.wallClock,
      ...this.options.connection,
      ...(this.options.ciphertextBuffers !== undefined
        ? { ciphertextBuffers: this.options.ciphertextBuffers }
        : {}),
      // Karn's rule: a retransmitted hello makes the sample ambiguous; then the default initial RTT.
      ...(this.helloSent === 1 ? { initialRttMs: Math.max(1, now - this.lastSent) } : {}),
    });
    // Key confirmation and address validation: the server counts the session as open once it sees this.
    connection.ping();
    this.outcome = {
      type: 'established',
      connection,
      access: w.access,
      resetToken: Buffer.from(w.resetToken),
      clockOffsetSeconds: this.clockCorrections > 0 ? Math.round(this.clockOffset) : 0,
      version: this.version,
      features: w.features ?? 0,
    };
    return true;
  }
}

/** "70 s behind the server's" / "70 s ahead of the server's". */
export function describeOffset(offsetSeconds: number): string {
  const s = Math.round(Math.abs(offsetSeconds));
  return offsetSeconds >= 0 ? `${s} s behind the server's` : `${s} s ahead of the server's`;
}

export function rejectMessage(code: ErrorName): string {
  switch (code) {
    case 'EAUTH':
      return 'the server does not accept this key';
    case 'EBUSY':
      return 'the server is at its session limit; try again later';
    case 'EVERSION':
      return 'the server does not speak this protocol version';
    default:
      return `the server refused the session (${code})`;
  }
}

/** A client's expected reset token matched: the server lost the session. */
export function isResetFor(datagram: Buffer, connId: bigint, token: Buffer): boolean {
  const prefix = readPrefix(datagram);
  if (prefix === undefined || prefix.space !== SPACE.reset || prefix.connId !== connId) return false;
  const got = decodeReset(datagram);
  return got?.equals(token) ?? false;
}
