import { randomBytes, randomInt } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Fernet, generateKey, parseKey } from '@ferry/crypto';
import { encodeAck, encodeClose, encodeData } from '@ferry/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AttackerSocket,
  ChildServer,
  type Client,
  connectClient,
  connIdOf,
  drained,
  helloUnder,
  MB,
  newKey,
  onCleanup,
  PREFIX_LENGTH,
  partialFiles,
  prefix,
  randomConnId,
  randomFile,
  type ServerStats,
  SPACE,
  sandbox,
  sha256File,
  sleep,
  spaceOf,
  type TestKey,
  UdpRelay,
  waitUntil,
  within,
} from './helpers.js';

/**
 * Attacks by someone without the key, against a real server on loopback: forged ACKs and DATA injected
 * into a live session (on the path, with the peers' own addresses, and off it), an earlier session
 * replayed, and a handshake flood from hundreds of source ports. The server runs in its own process.
 */
let root: string;
let work: string;
let key: TestKey;
let server: ChildServer;

beforeAll(async () => {
  ({ root, work } = await sandbox());
  key = newKey();
  server = await ChildServer.start({ root, keys: [key] });
});

afterAll(async () => {
  expect(server.alive, server.stderr()).toBe(true);
  await server.close();
});

const stats = async (): Promise<ServerStats> => (await server.stats()).stats;
const delta = (after: ServerStats, before: ServerStats, reason: string): number =>
  (after.endpoint.drops[reason] ?? 0) - (before.endpoint.drops[reason] ?? 0);

/** A SESSION datagram for `connId` sealed with a key nobody else holds: well-formed inside, wrong MAC. */
function forged(connId: bigint, plaintext: Buffer): Buffer {
  const datagram = new Fernet(parseKey(generateKey())).seal(plaintext, {
    headroom: PREFIX_LENGTH,
    now: Date.now() / 1000,
  });
  prefix(SPACE.session, connId).copy(datagram, 0);
  return datagram;
}

/** An ACK claiming every packet number and every block of transfers 1..4 (the ids a session uses first). */
function forgedAck(connId: bigint): Buffer {
  return forged(
    connId,
    encodeAck(connId, {
      packetNumber: randomInt(1_000_000),
      tsEcho: 0,
      ackDelay: 0,
      ranges: [[0, 0xffff_fff0]],
      flows: [1, 2, 3, 4].map((transferId) => ({
        transferId,
        cumulativeBlocks: 0xffff_fff0,
        blockLimit: 0xffff_fff0,
      })),
    }),
  );
}

function forgedData(connId: bigint, size: number): Buffer {
  return forged(
    connId,
    encodeData(connId, {
      packetNumber: randomInt(1_000_000),
      sendTime: 0,
      transferId: 1 + randomInt(4),
      blockIndex: randomInt(64),
      payload: randomBytes(size),
    }),
  );
}

function forgedClose(connId: bigint): Buffer {
  return forged(
    connId,
    encodeClose(connId, { packetNumber: randomInt(1_000_000), errorCode: 0, reason: '' }),
  );
}

/** The live session's connection id, as an on-path observer reads it from the cleartext prefix. */
function sessionIdOf(relay: UdpRelay, client: string): bigint | undefined {
  const d = relay.of('up', client).find((x) => spaceOf(x) === SPACE.session);
  return d === undefined ? undefined : connIdOf(d);
}

async function roundTrip(client: Client, name: string, size: number): Promise<void> {
  const digest = await randomFile(join(work, name), size);
  const put = await client.put(join(work, name), name);
  expect(put.sha256).toBe(digest);
  const back = join(work, `${name}.back`);
  const got = await client.get(name, back);
  expect(got.sha256).toBe(digest);
  expect(await sha256File(back)).toBe(digest);
}

describe('injection into a live session', () => {
  it('forged ACKs, DATA and CLOSE injected on the path, both ways, with the peers’ addresses, are dropped and the transfer is bit-exact', async () => {
    const relay = await UdpRelay.open(server.port);
    // Small blocks: more datagrams to forge against.
    const client = await connectClient({ port: relay.port, key: key.key, blockSize: 4096 });
    onCleanup(() => client.close());
    const me = relay.clients[0]!;
    const connId = await waitUntil('the session id', () => sessionIdOf(relay, me));
    const before = await stats();
    let toServer = 0;
    let toClient = 0;
    let seen = 0;
    const injections: Promise<void>[] = [];
    relay.tap = (direction) => {
      // After every 4th datagram, one forgery towards its receiver, from its peer's address.
      if (++seen % 4 !== 0) return true;
      const kind = randomInt(3);
      const d =
        kind === 0
          ? forgedAck(connId)
          : kind === 1
            ? forgedData(connId, 1 + randomInt(32_768))
            : forgedClose(connId);
      if (direction === 'up') {
        toServer++;
        injections.push(relay.injectToServer(me, d));
      } else {
        toClient++;
        injections.push(relay.injectToClient(me, d));
      }
      return true;
    };
    await within('the transfers', 90_000, roundTrip(client, 'injected.bin', 8 * MB + 5));
    relay.tap = undefined;
    // Every forgery sent, and read by its receiver (which counts a drop as it reads), before counting.
    await Promise.all(injections);
    await drained([server.port, Number(me.split(':').pop())]);
    const after = await stats();
    const clientDrops = (client.stats().drops ?? {}) as Record<string, number>;
    console.log(
      `injection: ${toServer} forgeries to the server, ${toClient} to the client; server bad-mac drops +${delta(after, before, 'bad-mac')}, client bad-mac drops ${clientDrops['bad-mac']}`,
    );
    expect(toServer).toBeGreaterThan(100);
    expect(toClient).toBeGreaterThan(100);
    expect(delta(after, before, 'bad-mac')).toBeGreaterThanOrEqual(toServer);
    expect(clientDrops['bad-mac']).toBeGreaterThanOrEqual(toClient * 0.95);
    expect(client.closed).toBe(false);
    await client.close();
  }, 120_000);

  it('forged ACKs and DATA from an off-path address, and forged RESETs and REJECTs to the client, change nothing', async () => {
    const relay = await UdpRelay.open(server.port);
    const client = await connectClient({ port: relay.port, key: key.key });
    onCleanup(() => client.close());
    const me = relay.clients[0]!;
    const connId = await waitUntil('the session id', () => sessionIdOf(relay, me));
    const attacker = await AttackerSocket.open(server.port);
    const before = await stats();
    let stop = false;
    let forgedToServer = 0;
    const attack = (async () => {
      for (let i = 0; i < 20_000 && !stop; i++) {
        await attacker.send(i % 2 === 0 ? forgedAck(connId) : forgedData(connId, 1024));
        forgedToServer++;
        if (i % 16 === 0) {
          // To the client, from the server's address: a RESET with a guessed token, a REJECT.
          const reset = Buffer.concat([prefix(3, connId), randomBytes(16)]);
          const reject = Buffer.concat([prefix(4, connId), Buffer.from([0, 13])]);
          await relay.injectToClient(me, i % 32 === 0 ? reset : reject);
          await sleep(1);
        }
      }
    })();
    await within('the transfers', 90_000, roundTrip(client, 'offpath.bin', 6 * MB + 7));
    stop = true;
    await attack;
    await drained([server.port]);
    const after = await stats();
    console.log(
      `off-path: ${forgedToServer} forgeries; server bad-mac drops +${delta(after, before, 'bad-mac')}`,
    );
    expect(forgedToServer).toBeGreaterThan(100);
    expect(delta(after, before, 'bad-mac')).toBeGreaterThanOrEqual(forgedToServer);
    // The forgeries' address never became the session's: nothing came back to it.
    expect(attacker.bytesReceived).toBe(0);
    expect(client.closed).toBe(false);
    await client.close();
  }, 120_000);
});

describe('an on-path attacker diverting authentic datagrams', () => {
  let diverted: { sent: number; received: number } | undefined;

  it('a client datagram forwarded from another address moves the return path only until the client’s next one: the get completes bit-exact', async () => {
    const digest = await randomFile(join(root, 'diverted.bin'), 48 * MB);
    const relay = await UdpRelay.open(server.port);
    const client = await connectClient({ port: relay.port, key: key.key });
    onCleanup(() => client.close());
    const attacker = await AttackerSocket.open(server.port);
    let session = 0;
    relay.tap = (direction, data) => {
      if (direction !== 'up' || spaceOf(data) !== SPACE.session) return true;
      // Every 50th client datagram reaches the server from the attacker's address instead.
      if (++session % 50 !== 0 || attacker.datagramsSent >= 20) return true;
      void attacker.send(data);
      return false;
    };
    const got = await within('the get', 90_000, client.get('diverted.bin', join(work, 'diverted.bin')));
    relay.tap = undefined;
    expect(got.sha256).toBe(digest);
    expect(await sha256File(join(work, 'diverted.bin'))).toBe(digest);
    diverted = { sent: attacker.bytesSent, received: attacker.bytesReceived };
    console.log(
      `diversion: the attacker forwarded ${attacker.datagramsSent} datagrams (${attacker.bytesSent} bytes) and was sent ` +
        `${attacker.datagramsReceived} datagrams (${attacker.bytesReceived} bytes) before the client's next datagrams took the path back`,
    );
    expect(attacker.datagramsSent).toBeGreaterThan(0);
    await client.close();
  }, 120_000);

  // A session follows an authentic datagram to a new address at once, but sends an unvalidated
  // address at most 3x what it received from it (RFC 9000, 8.2 and 9.3), so an on-path attacker
  // cannot reflect session traffic at a third party (before this cap: over 100 times).
  it('a new, unvalidated address is sent at most 3x what came from it', () => {
    expect(diverted).toBeDefined();
    expect(diverted!.received).toBeLessThanOrEqual(3 * diverted!.sent);
  });
});

describe('replays of an earlier session', () => {
  it('replaying a recorded put (hello and data) after the file was deleted recreates nothing, opens nothing, and leaves a live session intact', async () => {
    const idle = async (): Promise<true | undefined> =>
      (await stats()).endpoint.sessions === 0 ? true : undefined;
    await waitUntil('earlier sessions to end', idle);
    // Record a whole session: hello, put, commit, close.
    const relay = await UdpRelay.open(server.port);
    const recorded = await connectClient({ port: relay.port, key: key.key, blockSize: 4096 });
    const digest = await randomFile(join(work, 'recorded.bin'), 2 * MB + 3);
    await recorded.put(join(work, 'recorded.bin'), 'recorded.bin');
    await recorded.close();
    const me = relay.clients[0]!;
    const up = relay.of('up', me);
    const down = relay.of('down', me);
    expect(spaceOf(up[0]!)).toBe(SPACE.handshake);

    await waitUntil('the recorded session to end', idle);
    // The file is deleted; a second client goes on with its own transfer while the replay runs.
    const liveRelay = await UdpRelay.open(server.port);
    const live = await connectClient({ port: liveRelay.port, key: key.key });
    await live.delete('recorded.bin');
    const before = await stats();
    const stranger = await AttackerSocket.open(server.port);
    const liveClient = liveRelay.clients[0]!;
    const replay = (async () => {
      for (let i = 0; i < up.length; i++) {
        // The same bytes, in order: from the recorded client's own relayed address and from a stranger.
        await relay.injectToServer(me, up[i]!);
        await stranger.send(up[i]!);
        // And the server's half of the recording, at the live client, from the server's address.
        if (i < down.length) await liveRelay.injectToClient(liveClient, down[i]!);
        if (i % 32 === 0) await sleep(1);
      }
    })();
    await within('the live transfer', 90_000, roundTrip(live, 'during-replay.bin', 4 * MB + 1));
    await replay;
    // The server has read (and counted) every replayed datagram, and the stranger every answer.
    await drained([server.port]);
    const after = await stats();
    await drained([stranger.port]);
    const names = (await live.list()).map((e) => e.name);
    console.log(
      `replay: ${up.length} client datagrams replayed twice, ${Math.min(up.length, down.length)} server datagrams at the live client; ` +
        `drops replay +${delta(after, before, 'replay')}, unknown-connection +${delta(after, before, 'unknown-connection')}; ` +
        `stranger got ${stranger.bytesReceived} bytes for ${stranger.bytesSent}`,
    );
    expect(names).not.toContain('recorded.bin');
    expect(await readdir(root)).not.toContain('recorded.bin');
    expect(await partialFiles(root)).toEqual([]);
    expect(after.endpoint.handshakes).toBe(before.endpoint.handshakes);
    expect(after.endpoint.halfOpen).toBe(0);
    expect(after.endpoint.sessions).toBe(1);
    expect(delta(after, before, 'replay')).toBeGreaterThanOrEqual(2); // the hello, from both addresses
    expect(delta(after, before, 'unknown-connection')).toBeGreaterThanOrEqual(2 * (up.length - 1) * 0.95);
    expect(stranger.bytesReceived).toBeLessThanOrEqual(stranger.bytesSent);
    expect(live.closed).toBe(false);
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    await live.close();
  }, 120_000);
});

function randomHello(): Buffer {
  return Buffer.concat([prefix(SPACE.handshake, randomConnId()), randomBytes(1200 + randomInt(100))]);
}

/** Datagrams that draw tokenless answers: an unknown session (RESET), a foreign version (version negotiation). */
function provoker(i: number): Buffer {
  const d = Buffer.concat([
    prefix(i % 2 === 0 ? SPACE.session : SPACE.handshake, randomConnId()),
    randomBytes(1200),
  ]);
  if (i % 2 === 1) d[2] = 7;
  return d;
}

describe('a handshake flood from hundreds of source ports', () => {
  it('keeps the server’s state bounded, serves its clients, and sends no unvalidated address more than it sent', async () => {
    const SOCKETS = 300;
    const PER_SOCKET = 40;
    // One valid hello captured from a client that completed its handshake, one from a client whose
    // welcome was lost (its half-open session is still pending), a hello under a wrong key.
    const relay = await UdpRelay.open(server.port);
    const first = await connectClient({ port: relay.port, key: key.key });
    onCleanup(() => first.close());
    const completedHello = relay.of('up')[0]!;
    const pendingHello = helloUnder(key.key);
    const wrongKey = helloUnder(parseKey(generateKey()));
    const before = await stats();
    const open = before.endpoint.sessions; // the first client's

    const attackers = await Promise.all(
      Array.from({ length: SOCKETS }, () => AttackerSocket.open(server.port)),
    );
    let peakHalfOpen = 0;
    let peakSessions = 0;
    let flooding = true;
    const watcher = (async () => {
      while (flooding) {
        const s = await stats();
        peakHalfOpen = Math.max(peakHalfOpen, s.endpoint.halfOpen);
        peakSessions = Math.max(peakSessions, s.endpoint.sessions);
        await sleep(50);
      }
    })();
    const floodDone = (async () => {
      for (let round = 0; round < PER_SOCKET; round++) {
        await Promise.all(
          attackers.map((a, i) => {
            const kind = (round + i) % 5;
            return a.send(
              kind === 0
                ? completedHello
                : kind === 1
                  ? pendingHello
                  : kind === 2
                    ? wrongKey
                    : kind === 3
                      ? randomHello()
                      : provoker(i),
            );
          }),
        );
        await sleep(5);
      }
    })();
    // Legitimate clients, during the flood: new sessions, and the one opened before it.
    const served = await within(
      'the legitimate clients',
      90_000,
      Promise.all([
        roundTrip(first, 'flood-0.bin', 1 * MB),
        ...[1, 2, 3].map(async (n) => {
          const c = await connectClient({ port: server.port, key: key.key });
          onCleanup(() => c.close());
          await roundTrip(c, `flood-${n}.bin`, 2 * MB + n);
          await c.close();
          return n;
        }),
      ]),
    );
    await floodDone;
    flooding = false;
    await watcher;
    // The server has read (and counted) the whole flood, and the attackers every answer to it.
    await drained([server.port]);
    const after = await stats();
    await drained(attackers.map((a) => a.port));
    const sent = attackers.reduce((n, a) => n + a.bytesSent, 0);
    const received = attackers.reduce((n, a) => n + a.bytesReceived, 0);
    const worst = Math.max(...attackers.map((a) => a.bytesReceived / a.bytesSent));
    console.log(
      `handshake flood: ${SOCKETS} sockets, ${attackers.reduce((n, a) => n + a.datagramsSent, 0)} datagrams, ${(sent / MB).toFixed(1)} MiB; ` +
        `answered with ${attackers.reduce((n, a) => n + a.datagramsReceived, 0)} datagrams, ${received} bytes (worst socket ${(100 * worst).toFixed(1)} % of what it sent); ` +
        `peak halfOpen ${peakHalfOpen}, peak sessions ${peakSessions}; handshakes +${after.endpoint.handshakes - before.endpoint.handshakes}; ` +
        `drops ${JSON.stringify(Object.fromEntries(Object.keys(after.endpoint.drops).map((r) => [r, delta(after, before, r)])))}`,
    );
    expect(served).toHaveLength(4);
    // State: only the pending hello's half-open session was ever created by the flood.
    expect(peakHalfOpen).toBeLessThanOrEqual(1 + 3); // the pending hello, plus the three clients' own handshakes
    expect(peakSessions).toBeLessThanOrEqual(open + 1 + 3); // those open before, pending, the three clients
    expect(after.endpoint.handshakes - before.endpoint.handshakes).toBe(1 + 3);
    // No amplification: per unvalidated address, the answers never outweigh what it sent.
    for (const a of attackers) expect(a.bytesReceived).toBeLessThanOrEqual(a.bytesSent);
    expect(received).toBeLessThan(sent / 5);
    await first.close();
    for (const a of attackers) a.close();
  }, 120_000);
});
