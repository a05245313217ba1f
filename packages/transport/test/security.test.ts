import { Fernet, type FernetKey, generateX25519 } from '@ferry/crypto';
import type { LinkConfig, SimTraceEvent } from '@ferry/netsim';
import { ALL_FEATURES, type ErrorName, FEATURES_VERSION } from '@ferry/protocol';
import { describe, expect, it } from 'vitest';
import type { Connection } from '../src/core/connection.js';
import { ServerEndpoint } from '../src/core/endpoint.js';
import {
  decodeHandshakePacket,
  encodeAck,
  encodeControl,
  encodeHello,
  encodeReject,
  encodeVersionNegotiation,
  openToken,
  PROTOCOL_VERSION,
  SPACE,
  sealDatagram,
  sealHandshake,
  sessionPrefix,
} from '../src/core/wire.js';
import {
  CLIENT_ADDRESS,
  describeRun,
  randomKey,
  runSimTransfer,
  SERVER_ADDRESS,
  type SimContext,
  TEST_KEY,
} from './helpers/sim-harness.js';

/**
 * Security properties on the simulated network: replays, forgeries, amplification, authentication
 * failure, and address changes. An attacker is one more endpoint on the network that can capture what
 * crosses the link (the trace) and inject datagrams from its own address.
 */
const LINK: LinkConfig = { delayMs: 10, rateBitsPerSecond: 10e6 };
const ATTACKER = '10.6.6.6:666';
const WALL_EPOCH = 1_800_000_000;

const space = (d: Buffer): number => d[3]!;
const connIdOf = (d: Buffer): bigint => d.readBigUInt64BE(4);

function addAttacker(ctx: SimContext, address = ATTACKER) {
  const attacker = ctx.net.addEndpoint(address);
  ctx.net.connect(address, SERVER_ADDRESS, { delayMs: 2 });
  ctx.net.connect(address, CLIENT_ADDRESS, { delayMs: 2 });
  let received = 0;
  attacker.onDatagram = () => {
    received++;
  };
  return { attacker, received: () => received };
}

/** Records every datagram delivered on the client-server link, in order. */
function capture() {
  const upstream: Buffer[] = [];
  const downstream: Buffer[] = [];
  const onTrace = (e: SimTraceEvent): void => {
    if (e.type !== 'deliver') return;
    if (e.from === CLIENT_ADDRESS && e.to === SERVER_ADDRESS) upstream.push(Buffer.from(e.datagram));
    if (e.from === SERVER_ADDRESS && e.to === CLIENT_ADDRESS) downstream.push(Buffer.from(e.datagram));
  };
  return { upstream, downstream, onTrace };
}

function endpointInternals(endpoint: ServerEndpoint): {
  nonces: Map<string, unknown>;
  halfOpen: Map<bigint, unknown>;
} {
  return endpoint as unknown as { nonces: Map<string, unknown>; halfOpen: Map<bigint, unknown> };
}

describe('replayed handshakes', () => {
  it('a hello replayed from another address after the session is open creates nothing and gets no answer', () => {
    const cap = capture();
    let attack: ReturnType<typeof addAttacker> | undefined;
    let before: { sessions: number; nonces: number; halfOpen: number } | undefined;
    const r = runSimTransfer({
      seed: 1,
      size: 64 * 1024,
      up: LINK,
      onTrace: cap.onTrace,
      stopWhen: 'both-closed',
      maxTimeMs: 3_000,
      setup: (ctx) => {
        attack = addAttacker(ctx);
        ctx.net.schedule(2_000, () => {
          const internals = endpointInternals(ctx.endpoint);
          before = {
            sessions: ctx.endpoint.sessions.size,
            nonces: internals.nonces.size,
            halfOpen: internals.halfOpen.size,
          };
          const hello = cap.upstream.find((d) => space(d) === SPACE.handshake)!;
          for (let i = 0; i < 5; i++) attack!.attacker.send(hello, SERVER_ADDRESS);
        });
      },
    });
    expect(r.ok, describeRun(r)).toBe(true);
    const internals = endpointInternals(r.endpoint);
    expect(before).toEqual({ sessions: 1, nonces: 1, halfOpen: 0 });
    expect(r.endpoint.sessions.size).toBe(1);
    expect(internals.nonces.size).toBe(1);
    expect(internals.halfOpen.size).toBe(0);
    expect(r.endpoint.counters.handshakes).toBe(1);
    expect(r.endpoint.counters.drops.replay).toBe(5);
    expect(attack!.received()).toBe(0);
  });

  it('a hello replayed after its token has expired is dropped as stale', () => {
    const cap = capture();
    let attack: ReturnType<typeof addAttacker> | undefined;
    const r = runSimTransfer({
      seed: 2,
      size: 1024,
      up: LINK,
      onTrace: cap.onTrace,
      stopWhen: 'both-closed',
      idleTimeoutMs: 60_000,
      maxTimeMs: 300_000,
      setup: (ctx) => {
        attack = addAttacker(ctx);
        // Past the token TTL (120 s) and the nonce cache's lifetime (2 x TTL).
        ctx.net.schedule(250_000, () => {
          const hello = cap.upstream.find((d) => space(d) === SPACE.handshake)!;
          attack!.attacker.send(hello, SERVER_ADDRESS);
        });
      },
    });
    expect(r.ok, describeRun(r)).toBe(true);
    expect(r.endpoint.counters.drops['stale-handshake']).toBe(1);
    expect(r.endpoint.counters.handshakes).toBe(1);
    expect(r.endpoint.sessions.size).toBe(1);
    expect(endpointInternals(r.endpoint).halfOpen.size).toBe(0);
    // It is told the server's time (SERVER_TIME, sealed: 101 bytes for its 1,205), and nothing else.
    expect(attack!.received()).toBe(1);
    expect(r.endpoint.counters.serverTimesSent).toBe(1);
  });
});

describe('replayed session data', () => {
  // Datagrams of a first session, captured on the wire.
  const first = capture();
  const firstRun = runSimTransfer({ seed: 3, size: 200 * 1024, up: LINK, onTrace: first.onTrace });
  const oldUp = first.upstream.filter((d) => space(d) === SPACE.session);
  const oldDown = first.downstream.filter((d) => space(d) === SPACE.session);

  it('the captured first session completed', () => {
    expect(firstRun.ok).toBe(true);
    expect(oldUp.length).toBeGreaterThan(100);
    expect(oldDown.length).toBeGreaterThan(10);
  });

  it('has no effect on a later session: unknown as they are, and bad MACs once re-addressed', () => {
    let attack: ReturnType<typeof addAttacker> | undefined;
    const r = runSimTransfer({
      seed: 4,
      size: 200 * 1024,
      up: LINK,
      setup: (ctx) => {
        attack = addAttacker(ctx);
        ctx.net.schedule(60, () => {
          const session = ctx.serverSession()!;
          const client = ctx.clientConnection()!;
          expect(session).toBeDefined();
          for (const d of oldUp) {
            // As captured (the old connection id), then rewritten to the new session's id.
            attack!.attacker.send(d, SERVER_ADDRESS);
            const readdressed = Buffer.from(d);
            readdressed.writeBigUInt64BE(session.connection.connId, 4);
            attack!.attacker.send(readdressed, SERVER_ADDRESS);
          }
          for (const d of oldDown) {
            const readdressed = Buffer.from(d);
            readdressed.writeBigUInt64BE(client.connId, 4);
            attack!.attacker.send(readdressed, CLIENT_ADDRESS);
          }
        });
      },
    });
    expect(r.ok, describeRun(r)).toBe(true);
    expect(r.endpoint.counters.drops['unknown-connection']).toBe(oldUp.length);
    expect(r.receiver!.stats.drops['bad-mac']).toBe(oldUp.length);
    expect(r.sender!.stats.drops['bad-mac']).toBe(oldDown.length);
    // The server's answer to unknown connection ids (RESET) is smaller than each datagram and rate-limited.
    expect(r.endpoint.counters.resetsSent).toBeLessThanOrEqual(oldUp.length);
    expect(r.serverSession!.address).toBe(CLIENT_ADDRESS);
    void attack;
  });

  it('replays within a session are dropped as replays and never move its address', () => {
    const cap = capture();
    const r = runSimTransfer({
      seed: 5,
      size: 200 * 1024,
      up: LINK,
      onTrace: cap.onTrace,
      setup: (ctx) => {
        const attack = addAttacker(ctx);
        ctx.net.schedule(150, () => {
          for (const d of cap.upstream.filter((x) => space(x) === SPACE.session)) {
            attack.attacker.send(d, SERVER_ADDRESS);
          }
        });
      },
    });
    expect(r.ok, describeRun(r)).toBe(true);
    expect(r.receiver!.stats.drops.replay).toBeGreaterThan(50);
    expect(r.serverSession!.address).toBe(CLIENT_ADDRESS);
  });
});

describe('forged acknowledgements', () => {
  const forgedAck = (key: FernetKey, connId: bigint, largest: number, blockCount: number): Buffer =>
    sealDatagram(
      new Fernet(key),
      sessionPrefix(connId),
      [
        encodeAck(
          sessionPrefix(connId),
          1_000_000,
          0,
          0,
          [[0, largest]],
          [{ transferId: 1, cumulativeBlocks: blockCount, blockLimit: blockCount }],
        ),
      ],
      WALL_EPOCH,
    );

  for (const forger of ['a random key', 'the pre-shared key']) {
    it(`an ACK sealed with ${forger}, claiming everything, cannot make the sender skip data`, () => {
      const size = 300 * 1024;
      const blockCount = Math.ceil(size / 1024);
      let injected = 0;
      const key = forger === 'a random key' ? randomKey() : TEST_KEY;
      const r = runSimTransfer({
        seed: 6,
        size,
        up: { ...LINK, loss: 0.2 },
        down: LINK,
        setup: (ctx) => {
          const attack = addAttacker(ctx);
          const tick = (): void => {
            const sender = ctx.clientConnection();
            if (sender !== undefined && sender.state === 'open') {
              const largest = Math.max(0, sender.stats.datagramsSent - 1);
              attack.attacker.send(forgedAck(key, sender.connId, largest, blockCount), CLIENT_ADDRESS);
              injected++;
            }
            if (ctx.net.now() < 5_000) ctx.net.schedule(ctx.net.now() + 2, tick);
          };
          ctx.net.schedule(40, tick);
        },
      });
      expect(r.ok, describeRun(r)).toBe(true);
      expect(injected).toBeGreaterThan(20);
      // Injections after the sender finished never reach the run; every one before did, and failed the MAC.
      expect(r.sender!.stats.drops['bad-mac']).toBeGreaterThan(0);
      expect(r.sender!.stats.drops['bad-mac']).toBeLessThanOrEqual(injected);
      expect(r.sender!.stats.retransmits).toBeGreaterThan(0);
    });
  }

  it('real ACKs with a flipped bit fail the MAC and change nothing', () => {
    const cap = capture();
    let flipped = 0;
    const r = runSimTransfer({
      seed: 7,
      size: 300 * 1024,
      up: { ...LINK, loss: 0.1 },
      down: LINK,
      onTrace: cap.onTrace,
      setup: (ctx) => {
        const attack = addAttacker(ctx);
        let next = 0;
        const tick = (): void => {
          // Each ACK the server sent since the last tick, once per bit position class.
          for (; next < cap.downstream.length; next++) {
            const d = Buffer.from(cap.downstream[next]!);
            if (space(d) !== SPACE.session) continue;
            const bit = (next * 7919) % ((d.length - 12) * 8);
            d[12 + (bit >> 3)]! ^= 1 << (bit & 7);
            attack.attacker.send(d, CLIENT_ADDRESS);
            flipped++;
          }
          if (ctx.clientConnection()?.state !== 'closed') ctx.net.schedule(ctx.net.now() + 1, tick);
        };
        ctx.net.schedule(40, tick);
      },
    });
    expect(r.ok, describeRun(r)).toBe(true);
    expect(flipped).toBeGreaterThan(20);
    expect(r.sender!.stats.drops['bad-mac']).toBeGreaterThan(20);
    expect(r.sender!.stats.drops['bad-mac']).toBeLessThanOrEqual(flipped);
  });
});

describe('no amplification', () => {
  it('the server never sends an unvalidated address more bytes than it received from it', () => {
    const received = new Map<string, number>();
    const sentBefore = new Map<string, number>();
    const validated = new Set<string>();
    const violations: string[] = [];
    let ctxRef: SimContext | undefined;
    const cap = capture();
    const victim = '10.9.9.9:9';
    const wrongKeyClient = '10.7.7.7:7';
    const onTrace = (e: SimTraceEvent): void => {
      cap.onTrace(e);
      if (e.type === 'deliver' && e.to === SERVER_ADDRESS) {
        received.set(e.from, (received.get(e.from) ?? 0) + e.datagram.length);
      }
      if (e.type === 'send' && e.from === SERVER_ADDRESS && !validated.has(e.to)) {
        const sessions = ctxRef?.endpoint.sessions.values() ?? [];
        for (const s of sessions) if (s.validated && s.address === e.to) validated.add(e.to);
        if (validated.has(e.to)) return;
        const total = (sentBefore.get(e.to) ?? 0) + e.bytes;
        sentBefore.set(e.to, total);
        const got = received.get(e.to) ?? 0;
        if (total > got)
          violations.push(`${e.timeMs.toFixed(1)} ms: ${total} B sent to ${e.to}, ${got} B received`);
      }
    };
    const r = runSimTransfer({
      seed: 8,
      size: 200 * 1024,
      up: { ...LINK, loss: 0.2, duplicate: 0.1 },
      onTrace,
      setup: (ctx) => {
        ctxRef = ctx;
        const attack = addAttacker(ctx, victim);
        const other = addAttacker(ctx, wrongKeyClient);
        // The hello is delivered at 10 ms; the session is validated when the client's PING arrives (30 ms).
        ctx.net.schedule(11, () => {
          const hello = cap.upstream.find((d) => space(d) === SPACE.handshake);
          if (hello === undefined) return;
          // The victim's address "sends" replayed hellos (a spoofing attacker), a wrong-key client
          // hellos, and both send garbage for unknown connections and a version the server lacks.
          for (let i = 0; i < 20; i++) attack.attacker.send(hello, SERVER_ADDRESS);
          const foreign = Buffer.from(hello);
          foreign[2] = PROTOCOL_VERSION + 1;
          attack.attacker.send(foreign, SERVER_ADDRESS);
          const garbage = Buffer.alloc(40, 7);
          garbage.set(sessionPrefix(12345n));
          for (let i = 0; i < 20; i++) attack.attacker.send(garbage.subarray(0, 29 + i), SERVER_ADDRESS);
          const badHello = Buffer.from(hello);
          badHello[100]! ^= 1;
          for (let i = 0; i < 5; i++) other.attacker.send(badHello, SERVER_ADDRESS);
        });
      },
    });
    expect(r.ok, describeRun(r)).toBe(true);
    expect(violations).toEqual([]);
    expect(validated.has(CLIENT_ADDRESS)).toBe(true);
    expect(validated.has(victim)).toBe(false);
    expect(sentBefore.get(victim) ?? 0).toBeGreaterThan(0); // it did answer, within the limit
  });
});

describe('authentication', () => {
  it('a client with the wrong key fails fast with EAUTH (the server sends REJECT) and leaves nothing behind', () => {
    const r = runSimTransfer({
      seed: 9,
      size: 1024,
      up: LINK,
      key: randomKey(),
      serverKeys: [{ name: 'default', key: TEST_KEY, access: 'read-write' }],
    });
    expect(r.handshakeError).toBe<ErrorName>('EAUTH');
    expect(r.timeMs).toBeLessThan(1_000);
    expect(r.endpoint.counters.rejectsSent).toBeGreaterThanOrEqual(1);
    expect(r.endpoint.counters.drops['bad-mac']).toBeGreaterThanOrEqual(1);
    expect(r.endpoint.sessions.size).toBe(0);
  });

  it('a server with several keys accepts the client holding any of them', () => {
    const r = runSimTransfer({
      seed: 10,
      size: 10_000,
      up: LINK,
      serverKeys: [
        { name: 'other', key: randomKey(), access: 'read-only' },
        { name: 'test', key: TEST_KEY, access: 'read-write' },
      ],
    });
    expect(r.ok, describeRun(r)).toBe(true);
    expect(r.serverSession!.keyName).toBe('test');
  });

  it('one forged REJECT or a version list naming our version does not stop a handshake', () => {
    const cap = capture();
    const r = runSimTransfer({
      seed: 11,
      size: 10_000,
      up: { delayMs: 20 },
      onTrace: cap.onTrace,
      setup: (ctx) => {
        const attack = addAttacker(ctx);
        // The hello reaches the server at 20 ms and the welcome the client at 40 ms; the attacker saw the
        // hello (and so the client's initial id) and, 2 ms from the client, answers first.
        ctx.net.schedule(21, () => {
          const id = connIdOf(firstHello(cap.upstream)!);
          attack.attacker.send(encodeReject(id, 'EAUTH'), CLIENT_ADDRESS);
          attack.attacker.send(
            encodeVersionNegotiation(id, [FEATURES_VERSION, PROTOCOL_VERSION, 9]),
            CLIENT_ADDRESS,
          );
        });
      },
    });
    expect(r.handshakeError).toBeUndefined();
    expect(r.ok, describeRun(r)).toBe(true);
    expect(r.clientVersion).toBe(FEATURES_VERSION);
  });
});

describe('versions and features', () => {
  it('a client and server of this build agree on version 2 and every feature, both sides alike', () => {
    const r = runSimTransfer({ seed: 40, size: 10_000, up: LINK });
    expect(r.ok, describeRun(r)).toBe(true);
    expect(r.clientVersion).toBe(FEATURES_VERSION);
    expect(r.clientFeatures).toBe(ALL_FEATURES);
    expect(r.serverSession!.features).toBe(ALL_FEATURES);
  });

  it('the server grants only features the client asked for', () => {
    const r = runSimTransfer({ seed: 41, size: 10_000, up: LINK, clientFeatures: 0 });
    expect(r.ok, describeRun(r)).toBe(true);
    expect(r.clientVersion).toBe(FEATURES_VERSION);
    expect(r.clientFeatures).toBe(0);
    expect(r.serverSession!.features).toBe(0);
  });

  it('a server from before version 2 answers VERSION NEGOTIATION; the client says hello again in version 1 at once, without features', () => {
    const cap = capture();
    const r = runSimTransfer({
      seed: 42,
      size: 10_000,
      up: { delayMs: 20 },
      serverVersions: [PROTOCOL_VERSION],
      onTrace: cap.onTrace,
    });
    expect(r.ok, describeRun(r)).toBe(true);
    expect(r.clientVersion).toBe(PROTOCOL_VERSION);
    expect(r.clientFeatures).toBe(0);
    expect(r.serverSession!.features).toBe(0);
    // Two round trips (VERSION NEGOTIATION, then the version-1 welcome), not a wait for a timer.
    expect(r.establishedAt).toBeLessThan(4 * 20 + 10);
    const hellos = cap.upstream.filter((d) => space(d) === SPACE.handshake);
    expect(hellos.map((d) => d[2])).toEqual([FEATURES_VERSION, PROTOCOL_VERSION]);
    expect(cap.downstream.filter((d) => space(d) === SPACE.versionNegotiation)).toHaveLength(1);
  });
});

function firstHello(upstream: Buffer[]): Buffer | undefined {
  return upstream.find((d) => space(d) === SPACE.handshake);
}

describe('half-open sessions', () => {
  it('a welcome never confirmed by the client leaves no state once its lifetime is over', () => {
    const snapshots: Array<[number, number, number]> = [];
    const r = runSimTransfer({
      seed: 15,
      size: 1024,
      idleTimeoutMs: 5_000,
      // The hello gets through; nothing from the client after it does.
      up: { delayMs: 10, blackouts: [{ fromMs: 1, toMs: 1e9 }] },
      down: { delayMs: 10 },
      stopWhen: 'both-closed',
      maxTimeMs: 15_000,
      setup: (ctx) => {
        for (const at of [100, 9_000, 10_500]) {
          ctx.net.schedule(at, () => {
            ctx.endpoint.handleTimeout(ctx.net.now());
            const internals = endpointInternals(ctx.endpoint);
            snapshots.push([at, ctx.endpoint.sessions.size, internals.halfOpen.size]);
          });
        }
      },
    });
    // Half-open for max(handshake timeout 10 s, idle timeout), then gone; the client timed out.
    expect(snapshots).toEqual([
      [100, 1, 1],
      [9_000, 1, 1],
      [10_500, 0, 0],
    ]);
    expect(r.clientClosed).toBe<ErrorName>('ETIMEDOUT');
    expect(r.endpoint.counters.handshakes).toBe(1);
  });
});

describe('protocol violations', () => {
  it('an authenticated but malformed packet ends the session on both sides with EPROTO, at once', () => {
    let injectedAt = 0;
    const r = runSimTransfer({
      seed: 13,
      size: 1024 * 1024,
      up: LINK,
      stopWhen: 'both-closed',
      maxTimeMs: 10_000,
      setup: (ctx) => {
        const attack = addAttacker(ctx);
        ctx.net.schedule(100, () => {
          // Only a holder of the session key can produce this: a peer with a bug.
          const client = ctx.clientConnection()!;
          const key = (client as unknown as { sendKey: Fernet }).sendKey;
          const prefix = sessionPrefix(client.connId);
          const body = Buffer.from('{"op":"no-such-op","id":1}');
          const datagram = sealDatagram(key, prefix, [encodeControl(prefix, 1_000_000, 0, body)], WALL_EPOCH);
          attack.attacker.send(datagram, SERVER_ADDRESS);
          injectedAt = ctx.net.now();
        });
      },
    });
    expect(r.reason, describeRun(r)).toBe('until');
    expect(r.serverClosed).toBe<ErrorName>('EPROTO');
    expect(r.clientClosed).toBe<ErrorName>('EPROTO');
    expect(r.receiver!.stats.drops.malformed).toBe(1);
    // The server ends it on receipt; the client hears its CLOSE one way-delay later.
    expect(r.serverClosedAt! - injectedAt).toBeLessThan(10);
    expect(r.clientClosedAt! - injectedAt).toBeLessThan(100);
    // The datagram came from another address, and did not move the session.
    expect(r.serverSession!.address).toBe(CLIENT_ADDRESS);
  });

  it('a control message the peer would refuse is refused when queued', () => {
    const r = runSimTransfer({ seed: 14, size: 0, up: LINK });
    const conn: Connection = r.clientConnection!;
    expect(() => conn.sendMessage(Buffer.from('not json'))).toThrow(/not a valid control message/);
    expect(() => conn.sendMessage(Buffer.from('{"op":"stat","id":1,"path":"a","extra":1}'))).toThrow(
      /control/,
    );
    expect(() => conn.sendMessage(Buffer.from('x'.repeat(20_000)))).toThrow();
    expect(conn.sendMessage(Buffer.from('{"op":"stat","id":1,"path":"a"}'))).toBe(0);
  });
});

describe('NAT rebinding', () => {
  it('an idle session whose client moves is validated and does not spin while capped', () => {
    const idle = 3_000;
    const newAddress = '192.0.2.78:40001';
    let serverPolls = 0;
    const r = runSimTransfer({
      seed: 13,
      size: 0,
      up: LINK,
      idleTimeoutMs: idle,
      stopWhen: 'both-closed',
      maxTimeMs: 4 * idle,
      setup: (ctx) => {
        const poll = ctx.endpoint.poll.bind(ctx.endpoint);
        ctx.endpoint.poll = (now, send, visit) => {
          serverPolls++;
          poll(now, send, visit);
        };
        // Idle by then: the client's next keep-alive (every idle/3) comes from the new address.
        ctx.net.schedule(500, () => ctx.net.rebind(CLIENT_ADDRESS, newAddress));
      },
    });
    // Ran to the end of the time given (not out of events), both sides still open.
    expect(r.reason, describeRun(r)).toBe('maxTime');
    expect(r.clientClosed).toBeUndefined();
    expect(r.serverClosed).toBeUndefined();
    expect(r.serverSession!.address).toBe(newAddress);
    expect(r.serverSession!.connection.sendingLimited).toBe(false);
    // A handful of keep-alives and their ACKs over 12 s, not a busy loop.
    expect(serverPolls).toBeLessThan(1_000);
  });

  for (const direction of ['put', 'get'] as const) {
    it(`a client whose address changes mid-transfer keeps its session (${direction})`, () => {
      const newAddress = '192.0.2.77:40000';
      let rebound = false;
      const r = runSimTransfer({
        seed: 12,
        size: 1024 * 1024,
        direction,
        up: { ...LINK, loss: 0.01 },
        setup: (ctx) => {
          ctx.net.schedule(300, () => {
            expect(ctx.serverSession()?.address).toBe(CLIENT_ADDRESS);
            ctx.net.rebind(CLIENT_ADDRESS, newAddress);
            rebound = true;
          });
        },
      });
      expect(rebound).toBe(true);
      expect(r.ok, describeRun(r)).toBe(true);
      expect(r.serverSession!.address).toBe(newAddress);
      // The new address proved itself (it acknowledged what was sent there): no more sending cap.
      expect(r.serverSession!.connection.sendingLimited).toBe(false);
      // It carried on promptly: the path changed, the session did not wait for a keep-alive.
      expect(r.completedAt!).toBeLessThan(3_000);
    });
  }
});

describe('a client from before version 2', () => {
  it('gets a version-1 welcome and a session without features from this server', () => {
    const wallClock = (): number => WALL_EPOCH;
    const endpoint = new ServerEndpoint({
      keys: [{ name: 'k', key: TEST_KEY, access: 'read-write' }],
      wallClock,
      maxBlockSize: 64512,
      receiveWindow: 1 << 20,
      idleTimeoutMs: 30_000,
    });
    const nonce = Buffer.alloc(16, 7);
    const hello = encodeHello(0x1234n, {
      clientNonce: nonce,
      publicKey: generateX25519().publicKey,
      maxBlockSize: 64512,
      receiveWindow: 1 << 20,
      idleTimeoutMs: 30_000,
    });
    expect(hello[2]).toBe(PROTOCOL_VERSION);
    endpoint.receive(sealHandshake(new Fernet(TEST_KEY), hello, WALL_EPOCH), CLIENT_ADDRESS, 0);
    const answers: Buffer[] = [];
    endpoint.poll(0, (datagram) => answers.push(Buffer.concat([datagram].flat())));
    const welcome = answers[0]!;
    expect(welcome[2]).toBe(PROTOCOL_VERSION);
    const plaintext = openToken(new Fernet(TEST_KEY), welcome, { ttl: 120, now: WALL_EPOCH }) as Buffer;
    const decoded = decodeHandshakePacket(plaintext, welcome);
    expect(decoded.ok && decoded.value.type === 'server-welcome' && decoded.value.features).toBe(undefined);
    expect([...endpoint.sessions.values()][0]!.features).toBe(0);
  });
});
