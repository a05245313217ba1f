import { randomBytes, randomInt } from 'node:crypto';
import { join } from 'node:path';
import { generateKey, parseKey } from '@ferry/crypto';
import { describe, expect, it } from 'vitest';
import {
  AttackerSocket,
  ChildServer,
  connectClient,
  drained,
  flood,
  helloUnder,
  MB,
  newKey,
  partialFiles,
  prefix,
  randomConnId,
  randomFile,
  SPACE,
  sandbox,
  sha256File,
  spaceOf,
  trackPeak,
  UdpRelay,
  waitUntil,
  within,
} from './helpers.js';

/**
 * Fuzzing during a real transfer. A client puts and gets a multi-megabyte file through a relay that
 * records every datagram, while attacker sockets send the server's port at least 100,000 datagrams
 * made from random bytes, truncations and bit-flips of the live session's packets, replays of an
 * earlier session, valid-looking prefixes with unknown connection ids, and hellos sealed with a
 * wrong key. The server runs in its own process so that its memory is measured alone.
 */
const FLOOD = Number(process.env.FERRY_FUZZ_DATAGRAMS ?? 100_000);
/** Upper bound on the flood's wall time (100,000 datagrams take about 10 s on 2 cores). */
const FLOOD_MS = 80_000 + FLOOD;
const FILE_SIZE = 6 * MB + 12_345;
/** The server's peak RSS during the fuzzing must stay under this (see docs/SECURITY.md). */
const RSS_BOUND = 256 * MB;

function pick<T>(items: readonly T[]): T {
  return items[randomInt(items.length)]!;
}

function flipBits(d: Buffer, flips: number): Buffer {
  const copy = Buffer.from(d);
  for (let i = 0; i < flips; i++) {
    const at = randomInt(copy.length);
    copy[at] = copy[at]! ^ (1 << randomInt(8));
  }
  return copy;
}

function wrongKeyHello(): Buffer {
  return helloUnder(parseKey(generateKey()));
}

describe('fuzzing the server while it transfers', () => {
  it(
    `survives ${FLOOD.toLocaleString('en')} hostile datagrams during a put and a get, bit-exact, bounded memory, drops counted by reason`,
    async () => {
      const { root, work } = await sandbox();
      const key = newKey();
      const server = await ChildServer.start({ root, keys: [key] });
      const relay = await UdpRelay.open(server.port, 30_000);

      // An earlier session, recorded in full: its datagrams are replayed at the server later. 4 MiB
      // is about 65 DATA datagrams each way at the loopback block size, plus their ACKs.
      const earlierDigest = await randomFile(join(work, 'earlier.bin'), 4 * MB);
      const earlier = await connectClient({ port: relay.port, key: key.key });
      await earlier.put(join(work, 'earlier.bin'), 'earlier.bin');
      await earlier.get('earlier.bin', join(work, 'earlier-back.bin'));
      await earlier.close();
      const recorded = relay.captured.map((c) => c.data);
      expect(recorded.length).toBeGreaterThan(50);

      const digest = await randomFile(join(work, 'payload.bin'), FILE_SIZE);
      const client = await connectClient({ port: relay.port, key: key.key });
      const mainClient = relay.clients.at(-1)!;
      const live = (): Buffer[] => relay.of('up', mainClient).concat(relay.of('down', mainClient));
      const wrongHellos = Array.from({ length: 32 }, wrongKeyHello);

      // Memory: sampled from /proc while everything runs.
      const rss = trackPeak(async () => (await server.memory()).peakRss);

      let flooding = true;
      const rounds: Array<{ put: number; get: number }> = [];
      const transfers = (async () => {
        // Put and get back until the flood is over (at least once, at most 20 rounds).
        for (let round = 0; round < Math.max(20, FLOOD / 5_000) && (round === 0 || flooding); round++) {
          const name = `payload-${round}.bin`;
          const put = await client.put(join(work, 'payload.bin'), name);
          expect(put.sha256).toBe(digest);
          const got = await client.get(name, join(work, `back-${round}.bin`));
          expect(got.sha256).toBe(digest);
          expect(await sha256File(join(work, `back-${round}.bin`))).toBe(digest);
          rounds.push({ put: put.seconds, get: got.seconds });
        }
      })();
      await waitUntil(
        'the main session to carry 100 datagrams to mutate',
        () => live().length >= 100 || undefined,
      );

      const attackers = await Promise.all(Array.from({ length: 8 }, () => AttackerSocket.open(server.port)));
      const kinds = [
        'random',
        'random-prefix',
        'unknown-connection',
        'truncated-live',
        'bit-flipped-live',
        'earlier-replay',
        'wrong-key-hello',
        'random-hello',
        'bit-flipped-earlier',
        'truncated-hello',
      ] as const;
      const made: Record<(typeof kinds)[number], number> = Object.fromEntries(
        kinds.map((k) => [k, 0]),
      ) as never;
      const liveSample = live().slice(-2000);
      const make = (i: number): Buffer => {
        const kind = kinds[i % kinds.length]!;
        made[kind]++;
        switch (kind) {
          case 'random':
            return randomBytes(1 + randomInt(1500));
          case 'random-prefix': {
            const p = prefix(randomInt(256), randomConnId());
            p[2] = randomInt(3);
            return Buffer.concat([p, randomBytes(randomInt(1400))]);
          }
          case 'unknown-connection':
            return Buffer.concat([
              prefix(SPACE.session, randomConnId()),
              randomBytes(89 + 16 * randomInt(80)),
            ]);
          case 'truncated-live': {
            const d = pick(liveSample);
            return d.subarray(0, randomInt(d.length));
          }
          case 'bit-flipped-live':
            return flipBits(pick(liveSample), 1 + randomInt(3));
          case 'earlier-replay':
            return pick(recorded);
          case 'wrong-key-hello':
            return pick(wrongHellos);
          case 'random-hello':
            return Buffer.concat([
              prefix(SPACE.handshake, randomConnId()),
              randomBytes(1200 + randomInt(200)),
            ]);
          case 'bit-flipped-earlier':
            return flipBits(pick(recorded), 1 + randomInt(8));
          case 'truncated-hello':
            return pick(wrongHellos).subarray(0, 12 + randomInt(1188));
        }
      };
      const before = (await server.stats()).stats.endpoint;
      const sent = await within(
        'the flood',
        FLOOD_MS + 10_000,
        flood(attackers, server.port, FLOOD, make, { timeoutMs: FLOOD_MS }),
      );
      flooding = false;
      await within('the transfers', 90_000, transfers);
      // The server has read (and counted) every datagram of the flood.
      await drained([server.port]);
      const after = await server.stats();
      const peakRss = await rss.stop();

      const drops = after.stats.endpoint.drops;
      const counted = Object.fromEntries(
        Object.entries(drops).map(([reason, n]) => [reason, n - (before.drops[reason] ?? 0)]),
      );
      const totalDrops = Object.entries(counted)
        .filter(([reason]) => reason !== 'rate-limited')
        .reduce((n, [, v]) => n + v, 0);
      const attackerBytesIn = attackers.reduce((n, a) => n + a.bytesReceived, 0);
      console.log(
        `fuzz: ${sent.sent} datagrams (${(sent.bytes / MB).toFixed(1)} MiB) in ${sent.seconds.toFixed(1)} s; ` +
          `kernel drops ${sent.kernelDrops}; transfer rounds ${rounds.length} ` +
          `(${rounds.map((r) => `put ${r.put.toFixed(1)} s / get ${r.get.toFixed(1)} s`).join(', ')}); ` +
          `server peak RSS ${(peakRss / MB).toFixed(0)} MiB; attackers received ${attackerBytesIn} bytes`,
      );
      console.log(`fuzz: sent by kind ${JSON.stringify(made)}`);
      console.log(
        `fuzz: drops by reason ${JSON.stringify(counted)}; endpoint ${JSON.stringify({ ...after.stats.endpoint, drops: undefined })}`,
      );

      expect(server.alive, server.stderr()).toBe(true);
      expect(sent.sent).toBe(FLOOD);
      expect(rounds.length).toBeGreaterThanOrEqual(1);
      expect(peakRss).toBeLessThan(RSS_BOUND);
      // Every kind of garbage lands in its own counter.
      expect(counted['bad-mac']).toBeGreaterThan(0);
      expect(counted.malformed).toBeGreaterThan(0);
      expect(counted['unknown-connection']).toBeGreaterThan(0);
      expect(counted.replay).toBeGreaterThan(0);
      expect(counted.version).toBeGreaterThan(0);
      // Nearly every datagram is accounted for (the rest were dropped by the kernel or are still queued).
      expect(totalDrops).toBeGreaterThanOrEqual(0.9 * (sent.sent - sent.kernelDrops));
      // No garbage opened anything: the only sessions ever made are the two clients'.
      expect(after.stats.endpoint.handshakes - before.handshakes).toBe(0);
      expect(after.stats.endpoint.halfOpen).toBe(0);
      // Answers (REJECT, RESET, version negotiation) never outweigh what provoked them.
      expect(attackerBytesIn).toBeLessThan(sent.bytes);
      for (const a of attackers) expect(a.bytesReceived).toBeLessThanOrEqual(a.bytesSent);
      expect(spaceOf(recorded[0]!)).toBe(SPACE.handshake);

      // Drop counters only ever grow: a session's drops stay counted after it ends.
      await client.close();
      const closed = await waitUntil('the session to end', async () => {
        const s = (await server.stats()).stats;
        return s.endpoint.sessions === 0 ? s : undefined;
      });
      for (const [reason, n] of Object.entries(drops))
        expect(closed.endpoint.drops[reason], reason).toBeGreaterThanOrEqual(n);
      await server.close();
      expect(await partialFiles(root)).toEqual([]);
      expect(earlierDigest).toBe(await sha256File(join(work, 'earlier-back.bin')));
    },
    FLOOD_MS + 100_000,
  );
});
