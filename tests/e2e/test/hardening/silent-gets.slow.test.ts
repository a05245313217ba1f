import * as dgram from 'node:dgram';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type FernetKey, readKeyFile } from '@ferry/crypto';
import { ClientHandshake, type Connection } from '@ferry/transport';
import { describe, expect, it } from 'vitest';
import { ServerProcess, sandbox } from '../../src/harness.js';
import { sleep, waitUntil, within } from '../../src/wait.js';
import { trackPeak } from './helpers.js';

/**
 * The memory of a real ferry-server whose clients fall silent: 200 sessions each start a get of a
 * 64 MiB file, acknowledge the reply (the server starts sending) and never read their socket again.
 * The server's RSS must peak at 400 MB at most, and be back within 50 MB of its baseline within 30 s
 * of the last session timing out: the server gives back what it held, by itself (no collection forced
 * from outside, and the C allocator as it comes).
 */
const SESSIONS = 200;
const FILE_BYTES = 64 * 1024 * 1024;
const IDLE_TIMEOUT_S = 5;
const PEAK_BOUND = 400e6;
const AFTER_BOUND = 50e6;
const SETTLE_MS = 30_000;
const BLOCK = 64_512;

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
}

/**
 * Opens a session, asks for `path`, acknowledges the reply and falls silent. Resolves once silent
 * (with a way to close the socket), rejects if the server does not reply within 60 s.
 */
async function silentGet(key: FernetKey, port: number, path: string): Promise<() => void> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', resolve));
  const now = (): number => performance.now();
  const handshake = new ClientHandshake({
    key,
    now: now(),
    wallClock: () => Date.now() / 1000,
    maxBlockSize: BLOCK,
    receiveWindow: 16 * 1024 * 1024,
    idleTimeoutMs: 600_000,
  });
  let connection: Connection | undefined;
  let timer: NodeJS.Timeout | undefined;
  const send = (datagram: Buffer | Buffer[]): void => socket.send(datagram);
  try {
    await within(
      `the reply to a get on port ${port}`,
      60_000,
      new Promise<void>((resolve, reject) => {
        const run = (): void => {
          const t = now();
          if (connection === undefined) {
            handshake.handleTimeout(t);
            for (const d of handshake.poll(t)) send(d);
            const outcome = handshake.outcome;
            if (outcome?.type === 'failed') {
              reject(new Error(outcome.message));
              return;
            }
            if (outcome?.type !== 'established') {
              arm(handshake.nextTimeout());
              return;
            }
            connection = outcome.connection;
            connection.sendMessage(Buffer.from(JSON.stringify({ op: 'get', id: 1, path })));
          }
          if (t >= connection.nextTimeout()) connection.handleTimeout(t);
          for (const d of connection.poll(t)) send(d);
          for (let e = connection.pollEvent(); e !== undefined; e = connection.pollEvent()) {
            if (e.type === 'message' && JSON.parse(e.body.toString()).op === 'reply') {
              // The reply is acknowledged at once: this poll sends the ACK, and the server starts sending.
              for (const d of connection.poll(t)) send(d);
              resolve();
              return;
            }
          }
          arm(connection.nextTimeout());
        };
        const arm = (at: number): void => {
          clearTimeout(timer);
          if (Number.isFinite(at)) timer = setTimeout(run, Math.max(0, at - now()));
        };
        socket.on('message', (datagram) => {
          if (connection === undefined) handshake.receive(datagram, now());
          else connection.receiveDatagram(datagram, now());
          run();
        });
        run();
      }),
    );
  } catch (error) {
    socket.close();
    throw error;
  } finally {
    clearTimeout(timer);
    socket.removeAllListeners('message');
  }
  // Silent from here on: the socket stays open (its receive queue fills), and nothing is read.
  return () => socket.close();
}

describe('memory of a server whose clients fall silent', () => {
  it(`${SESSIONS} stalled gets of 64 MiB: peak RSS <= 400 MB, back to baseline + 50 MB within 30 s`, async () => {
    const box = await sandbox();
    const handle = await open(join(box.root, 'big.bin'), 'w');
    // Sparse is enough: the server reads (and sends) it all the same.
    await handle.truncate(FILE_BYTES);
    await handle.close();
    const env = { ...box.env };
    delete env.GLIBC_TUNABLES;
    const server = await ServerProcess.start({
      root: box.root,
      keyFile: box.keyFile,
      env,
      args: ['--host', '127.0.0.1', '--json', '--timeout', String(IDLE_TIMEOUT_S)].concat([
        '--max-sessions',
        String(SESSIONS + 10),
      ]),
    });
    const pid = server.child.pid!;
    const key = await readKeyFile(box.keyFile);
    const closers: Array<() => void> = [];
    try {
      // The baseline once start-up has settled: two samples a moment apart agree within 1 MB.
      let last = await rssOf(pid);
      const baseline = await waitUntil('a steady baseline RSS', async () => {
        await sleep(250);
        const rss = await rssOf(pid);
        const steady = Math.abs(rss - last) < 1e6;
        last = rss;
        return steady ? rss : undefined;
      });

      const rss = trackPeak(() => rssOf(pid), baseline);
      let peak: number;
      try {
        for (let i = 0; i < SESSIONS; i += 20) {
          const batch = Array.from({ length: Math.min(20, SESSIONS - i) }, () =>
            silentGet(key, server.port, 'big.bin'),
          );
          closers.push(...(await Promise.all(batch)));
        }
        const closed = (): number => server.lines.filter((l) => l.includes('"session-closed"')).length;
        await waitUntil(
          `the server to time out all ${SESSIONS} sessions`,
          () => closed() >= SESSIONS,
          IDLE_TIMEOUT_S * 1000 + 60_000,
          250,
        );
      } finally {
        peak = await rss.stop();
      }
      expect(peak, `peak RSS (baseline ${baseline})`).toBeLessThanOrEqual(PEAK_BOUND);

      const samples: number[] = [];
      const endedAt = performance.now();
      const settled = await waitUntil(
        'the server to give its memory back',
        async () => {
          const rss = await rssOf(pid);
          samples.push(rss);
          return rss <= baseline + AFTER_BOUND ? rss : undefined;
        },
        SETTLE_MS,
        500,
      ).catch(() => undefined);
      const mb = (n: number): number => Math.round(n / 1e5) / 10;
      expect(
        settled,
        `RSS after the sessions ended (MB): ${samples.map(mb).join(' ')}; baseline ${mb(baseline)}, peak ${mb(peak)}`,
      ).toBeDefined();
      console.log(
        `${SESSIONS} stalled gets: server RSS baseline ${mb(baseline)} MB, peak ${mb(peak)} MB, ` +
          `${mb(settled!)} MB ${((performance.now() - endedAt) / 1000).toFixed(1)} s after the sessions ended`,
      );
    } finally {
      for (const close of closers) close();
      await server.stop();
    }
  }, 180_000);
});
