import { Fernet, generateKey } from '@ferry/crypto';
import {
  ALL_FEATURES,
  dataDatagramLength,
  Feature,
  INTERNET_BLOCK_SIZE,
  PROTOCOL_VERSION,
} from '@ferry/protocol';
import { describe, expect, it } from 'vitest';
import { Connection } from '../src/core/connection.js';
import { alignDatagram, blockSizeFor } from '../src/core/pmtu.js';
import { CLIENT_ADDRESS, runSimTransfer, SERVER_ADDRESS } from './helpers/sim-harness.js';

/**
 * Path MTU discovery end to end on the simulated network, whose links drop datagrams longer than
 * their `mtu` without a word (a black hole, as a path that filters ICMP is). Both sides' interfaces
 * say 1,500 bytes (1,472 of UDP payload); what the path carries is the link's `mtu`.
 */
const ETHERNET = 1472;
const PATH_MTU = { client: ETHERNET, server: ETHERNET };
const FULL_BLOCK = blockSizeFor(ETHERNET); // 1362: a 1461-byte DATA datagram
const MiB = 1024 * 1024;

function pathMtuOf(c: Connection | undefined): Record<string, unknown> | undefined {
  return c?.toJSON().pathMtu as Record<string, unknown> | undefined;
}

describe('path MTU discovery on the simulated network', () => {
  for (const direction of ['put', 'get'] as const) {
    it(`a ${direction} on a 1500-byte path uses ${FULL_BLOCK}-byte blocks, bit-exact`, () => {
      const link = { mtu: ETHERNET, delayMs: 10, rateBitsPerSecond: 50e6 };
      const r = runSimTransfer({
        seed: 11,
        size: 2 * MiB,
        direction,
        blockSize: INTERNET_BLOCK_SIZE,
        up: link,
        pathMtu: PATH_MTU,
      });
      expect(r.ok).toBe(true);
      expect(r.blockSizes).toEqual([FULL_BLOCK]);
      expect(pathMtuOf(r.sender)).toMatchObject({ confirmedDatagram: 1461, phase: 'complete' });
      // The first round costs about a round trip before the transfer starts, no more.
      expect(r.startedAt!).toBeLessThan(4 * 20 + 10);
    });
  }

  it('a path that carries less than the interfaces: probes lost to the black hole, blocks of what it carries', () => {
    const link = { mtu: 1400, delayMs: 5 };
    const r = runSimTransfer({
      seed: 12,
      size: 1 * MiB,
      direction: 'get',
      blockSize: INTERNET_BLOCK_SIZE,
      up: link,
      pathMtu: PATH_MTU,
    });
    expect(r.ok).toBe(true);
    // What the sender had confirmed when the transfer started: larger than the base, within the path.
    const [used] = r.blockSizes;
    expect(used).toBeGreaterThan(INTERNET_BLOCK_SIZE);
    expect(dataDatagramLength(used!)).toBeLessThanOrEqual(1400);
    // The search goes on: the sender ends up with the largest sealed size the path carries.
    expect(pathMtuOf(r.sender)).toMatchObject({ confirmedDatagram: alignDatagram(1400) });
    // The path dropped probes that were too big (the client's, which bound the server's), and no data:
    const dropped = r.net.linkStats(CLIENT_ADDRESS, SERVER_ADDRESS).dropped.mtu;
    expect(dropped).toBeGreaterThan(0);
    expect(r.net.linkStats(SERVER_ADDRESS, CLIENT_ADDRESS).dropped.mtu).toBe(0);
    expect(r.sender!.stats.blocksRetransmitted).toBe(0);
  });

  it('a path that carries only the base keeps the internet block size', () => {
    const r = runSimTransfer({
      seed: 13,
      size: 512 * 1024,
      direction: 'put',
      blockSize: INTERNET_BLOCK_SIZE,
      up: { mtu: 1232, delayMs: 5 },
      pathMtu: PATH_MTU,
    });
    expect(r.ok).toBe(true);
    expect(r.blockSizes).toEqual([INTERNET_BLOCK_SIZE]);
  });

  for (const direction of ['get', 'put'] as const) {
    it(`a ${direction} with a server that does not grant PathMtu (its features leave it out) keeps the session block size; nobody probes`, () => {
      const r = runSimTransfer({
        seed: 14,
        size: 512 * 1024,
        direction,
        blockSize: INTERNET_BLOCK_SIZE,
        up: { mtu: ETHERNET, delayMs: 5 },
        pathMtu: PATH_MTU,
        endpoint: { features: ALL_FEATURES & ~Feature.PathMtu },
      });
      expect(r.ok).toBe(true); // bit-exact
      expect(r.clientFeatures).toBe(Feature.Trees);
      expect(r.blockSizes).toEqual([INTERNET_BLOCK_SIZE]);
      for (const c of [r.clientConnection!, r.serverSession!.connection]) {
        expect(c.pathMtuEnabled).toBe(false);
        expect(pathMtuOf(c)).toBeUndefined();
      }
      expect(r.net.linkStats(CLIENT_ADDRESS, SERVER_ADDRESS).dropped.mtu).toBe(0);
    });

    it(`a ${direction} by a client that does not ask for PathMtu keeps the session block size; the server never probes`, () => {
      const r = runSimTransfer({
        seed: 19,
        size: 512 * 1024,
        direction,
        blockSize: INTERNET_BLOCK_SIZE,
        up: { mtu: ETHERNET, delayMs: 5 },
        pathMtu: PATH_MTU,
        clientFeatures: Feature.Trees,
      });
      expect(r.ok).toBe(true);
      expect(r.serverSession!.features).toBe(Feature.Trees);
      expect(r.blockSizes).toEqual([INTERNET_BLOCK_SIZE]);
      for (const c of [r.clientConnection!, r.serverSession!.connection]) {
        expect(c.pathMtuEnabled).toBe(false);
        expect(pathMtuOf(c)).toBeUndefined();
      }
      expect(r.net.linkStats(SERVER_ADDRESS, CLIENT_ADDRESS).dropped.mtu).toBe(0);
    });
  }

  it('with a server that speaks version 1 only, there are no features and no probing: the session block size', () => {
    const r = runSimTransfer({
      seed: 20,
      size: 512 * 1024,
      direction: 'put',
      blockSize: INTERNET_BLOCK_SIZE,
      up: { mtu: ETHERNET, delayMs: 5 },
      pathMtu: PATH_MTU,
      serverVersions: [PROTOCOL_VERSION],
    });
    expect(r.ok).toBe(true);
    expect(r.clientFeatures).toBe(0);
    expect(r.blockSizes).toEqual([INTERNET_BLOCK_SIZE]);
    expect(pathMtuOf(r.clientConnection)).toBeUndefined();
  });

  it('a server whose interface limit is unknown grants PathMtu but never probes: its gets keep the session block size', () => {
    const r = runSimTransfer({
      seed: 21,
      size: 512 * 1024,
      direction: 'get',
      blockSize: INTERNET_BLOCK_SIZE,
      up: { mtu: ETHERNET, delayMs: 5 },
      pathMtu: { client: ETHERNET, server: 0 },
    });
    expect(r.ok).toBe(true);
    expect(r.serverSession!.connection.pathMtuEnabled).toBe(true);
    expect(pathMtuOf(r.serverSession!.connection)).toBeUndefined();
    expect(r.blockSizes).toEqual([INTERNET_BLOCK_SIZE]);
  });

  it('a client that does not discover (no interface limit) is never probed; the session block size stays', () => {
    const r = runSimTransfer({
      seed: 18,
      size: 512 * 1024,
      direction: 'get',
      blockSize: INTERNET_BLOCK_SIZE,
      up: { mtu: ETHERNET, delayMs: 5 },
      // Both have the feature; only the server could discover, and it waits for the client's probes.
      pathMtu: { client: 0, server: ETHERNET },
    });
    expect(r.ok).toBe(true);
    expect(r.blockSizes).toEqual([INTERNET_BLOCK_SIZE]);
    expect(r.serverSession!.connection.pathMtuEnabled).toBe(true);
    expect(pathMtuOf(r.serverSession!.connection)).toBeUndefined();
    expect(r.net.linkStats(SERVER_ADDRESS, CLIENT_ADDRESS).dropped.mtu).toBe(0);
  });

  it('random loss of 1 % does not keep discovery from the full size, and probes are not counted as congestion', () => {
    const r = runSimTransfer({
      seed: 15,
      size: 2 * MiB,
      direction: 'put',
      blockSize: INTERNET_BLOCK_SIZE,
      up: { mtu: ETHERNET, delayMs: 5, loss: 0.01, rateBitsPerSecond: 100e6 },
      pathMtu: PATH_MTU,
    });
    expect(r.ok).toBe(true);
    expect(r.blockSizes).toEqual([FULL_BLOCK]);
  });

  it('every transfer of a session, either way, uses what discovery found', () => {
    const r = runSimTransfer({
      seed: 16,
      size: 256 * 1024,
      direction: 'get',
      blockSize: INTERNET_BLOCK_SIZE,
      up: { mtu: ETHERNET, delayMs: 5 },
      pathMtu: PATH_MTU,
      sequential: true,
      extraTransfers: [
        { direction: 'put', size: 256 * 1024 },
        { direction: 'get', size: 256 * 1024 },
      ],
    });
    expect(r.ok).toBe(true);
    expect(r.blockSizes).toEqual([FULL_BLOCK, FULL_BLOCK, FULL_BLOCK]);
  });

  for (const direction of ['get', 'put'] as const) {
    it(`an MTU that shrinks in the middle of a ${direction} (a black hole): detected, the transfer finishes in PARTs, nothing lost`, () => {
      const r = runSimTransfer({
        seed: 17,
        size: 3 * MiB,
        direction,
        blockSize: INTERNET_BLOCK_SIZE,
        up: { mtu: ETHERNET, delayMs: 5, rateBitsPerSecond: 50e6 },
        pathMtu: PATH_MTU,
        sequential: true,
        extraTransfers: [{ direction, size: 256 * 1024 }],
        setup: (ctx) => {
          // 200 ms in, the path's MTU drops to 1,300 bytes both ways, without a word (no ICMP).
          ctx.net.schedule(200, () => {
            ctx.net.link(CLIENT_ADDRESS, SERVER_ADDRESS)!.reconfigure({ mtu: 1300 });
            ctx.net.link(SERVER_ADDRESS, CLIENT_ADDRESS)!.reconfigure({ mtu: 1300 });
          });
        },
      });
      expect(r.ok).toBe(true); // both transfers bit-exact
      const [first, second] = r.blockSizes;
      expect(first).toBe(FULL_BLOCK);
      // The next transfer uses what the path carries now.
      expect(dataDatagramLength(second!)).toBeLessThanOrEqual(1300);
      const sender = direction === 'get' ? r.serverSession!.connection : r.clientConnection!;
      expect(pathMtuOf(sender)).toMatchObject({ blackHoles: 1, confirmedDatagram: alignDatagram(1300) });
      expect(sender.stats.partsSent).toBeGreaterThan(0);
      expect(r.completedAt!).toBeLessThan(10_000);
    });
  }
});

describe('PROBE and PART only in a session with feature PathMtu', () => {
  /** A client that discovers, and a server with (or without) the feature, face to face. */
  function pair(serverHasFeature: boolean): { client: Connection; server: Connection; probes: number } {
    const up = new Fernet(generateKey());
    const down = new Fernet(generateKey());
    const common = {
      connId: 0x1234n,
      blockSize: INTERNET_BLOCK_SIZE,
      peerReceiveWindow: 1 << 20,
      receiveWindow: 1 << 20,
      idleTimeoutMs: 30_000,
      now: 0,
      wallClock: () => 1_800_000_000,
      maxDatagram: ETHERNET,
    };
    const client = new Connection({
      ...common,
      role: 'client',
      sendKey: up,
      receiveKey: down,
      pathMtu: true,
    });
    const server = new Connection({
      ...common,
      role: 'server',
      sendKey: down,
      receiveKey: up,
      pathMtu: serverHasFeature,
    });
    let probes = 0;
    for (const d of client.poll(0)) {
      const datagram = Array.isArray(d) ? Buffer.concat(d) : d;
      if (datagram.length > 200) probes++; // the PING that confirms the session is small
      server.receiveDatagram(datagram, 1);
    }
    return { client, server, probes };
  }

  it('a peer that did not grant the feature drops PROBEs as malformed (as a peer without it would)', () => {
    const { server, probes } = pair(false);
    expect(probes).toBeGreaterThan(0);
    expect(server.stats.drops.malformed).toBe(probes);
    expect(server.largestProbeReceived).toBe(0);
  });

  it('a peer that granted it takes them: nothing dropped, the largest size noted', () => {
    const { server, probes } = pair(true);
    expect(probes).toBeGreaterThan(0);
    expect(server.stats.drops.malformed).toBe(0);
    expect(server.largestProbeReceived).toBe(alignDatagram(ETHERNET));
  });
});
