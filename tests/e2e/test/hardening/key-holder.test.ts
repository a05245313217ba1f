import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ControlMessage, decodeControlMessage, encodeControlMessage } from '@ferry/protocol';
import { MAX_TRANSFERS_PER_SESSION } from '@ferry/server-cli';
import { connect } from '@ferry/transport';
import { describe, expect, it } from 'vitest';
import {
  ChildServer,
  codeOf,
  connectClient,
  HOST,
  MB,
  newKey,
  onCleanup,
  partialFiles,
  randomFile,
  sandbox,
  sha256File,
  sleep,
  waitUntil,
  within,
} from './helpers.js';

/**
 * What a key holder can do to the server's resources: a burst of transfer requests in one session,
 * and more sessions than the server allows. Both must stay within stated bounds while other clients
 * are served.
 */
const BURST = 3000;

async function setup(options: { maxSessions?: number } = {}) {
  const { root, work } = await sandbox();
  const reader = newKey('reader', 'read-only');
  const writer = newKey('writer', 'read-write');
  const server = await ChildServer.start({ root, keys: [reader, writer], ...options });
  return { root, work, reader, writer, server };
}

describe('a key holder’s burst of requests in one session', () => {
  for (const op of ['get', 'put'] as const) {
    it(`${BURST} ${op} requests at once: at most ${MAX_TRANSFERS_PER_SESSION} run, the rest get EBUSY; descriptors and memory stay bounded; others are served`, async () => {
      const { root, work, reader, writer, server } = await setup();
      await writeFile(join(root, 'f.bin'), Buffer.alloc(1 * MB, 1));
      const fds = async (): Promise<number> => (await readdir(`/proc/${server.child.pid}/fd`)).length;
      const fdsBefore = await fds();
      const session = await connect({
        host: HOST,
        port: server.port,
        key: (op === 'get' ? reader : writer).key,
        maxBlockSize: 32_768,
      });
      const replies = new Map<string, number>();
      session.onMessage((body) => {
        const m = decodeControlMessage(body);
        if (!m.ok || m.value.op !== 'reply') return;
        const code = m.value.ok ? 'OK' : m.value.code;
        replies.set(code, (replies.get(code) ?? 0) + 1);
      });
      // The requests are sent and never followed up: no blocks accepted, no blocks sent.
      for (let id = 1; id <= BURST; id++) {
        const request =
          op === 'get'
            ? { op, id, path: 'f.bin' }
            : { op, id, path: `p-${id}.bin`, size: 1 * MB, overwrite: false, resume: false };
        session.send(encodeControlMessage(request as ControlMessage));
        if (id % 100 === 0) await sleep(2);
      }
      const total = (): number => [...replies.values()].reduce((n, v) => n + v, 0);
      await waitUntil(`${BURST} replies`, () => (total() === BURST ? true : undefined), 30_000);
      const peak = await server.memory();
      const fdsDuring = await fds();
      // Someone else, meanwhile.
      const other = await connectClient({ port: server.port, key: writer.key });
      const digest = await randomFile(join(work, 'other.bin'), 2 * MB);
      await within('the other client', 90_000, other.put(join(work, 'other.bin'), 'other.bin'));
      expect(await sha256File(join(root, 'other.bin'))).toBe(digest);
      await other.close();
      console.log(
        `${op} burst: replies ${JSON.stringify(Object.fromEntries(replies))}; server descriptors ${fdsBefore} before, ${fdsDuring} during; ` +
          `peak RSS ${(peak.peakRss / MB).toFixed(0)} MiB`,
      );
      expect(replies.get('OK')).toBe(MAX_TRANSFERS_PER_SESSION);
      expect(replies.get('EBUSY')).toBe(BURST - MAX_TRANSFERS_PER_SESSION);
      expect(fdsDuring).toBeLessThanOrEqual(fdsBefore + 2 * MAX_TRANSFERS_PER_SESSION + 8);
      expect(peak.peakRss).toBeLessThan(256 * MB);
      if (op === 'put')
        expect((await partialFiles(root)).length).toBeLessThanOrEqual(2 * MAX_TRANSFERS_PER_SESSION);
      // Ending the session releases everything.
      await session.end();
      await waitUntil('descriptors released', async () =>
        (await fds()) <= fdsBefore + 2 ? true : undefined,
      );
      expect(server.alive).toBe(true);
      await server.close();
    }, 90_000);
  }
});

describe('stalled readers across many sessions (opt-in: FERRY_HARDENING_MEMORY=1, about 1.5 GB of RAM)', () => {
  const SESSIONS = 16;
  it.runIf(process.env.FERRY_HARDENING_MEMORY === '1')(
    `${SESSIONS} sessions × ${MAX_TRANSFERS_PER_SESSION} gets that are never acknowledged: each costs the server at most ~9 MiB (read-ahead and chunk cache), as docs/SECURITY.md states`,
    async () => {
      const { root, reader, server } = await setup();
      for (let i = 0; i < MAX_TRANSFERS_PER_SESSION; i++) {
        await writeFile(join(root, `f${i}.bin`), Buffer.alloc(64 * MB, i));
      }
      const idle = await server.memory();
      const sessions = await Promise.all(
        Array.from({ length: SESSIONS }, () =>
          connect({ host: HOST, port: server.port, key: reader.key, maxBlockSize: 64_512 }),
        ),
      );
      onCleanup(() => Promise.all(sessions.map((s) => s.end())));
      for (const session of sessions) {
        for (let id = 1; id <= MAX_TRANSFERS_PER_SESSION; id++) {
          session.send(encodeControlMessage({ op: 'get', id, path: `f${id - 1}.bin` } as ControlMessage));
        }
      }
      const transfers = SESSIONS * MAX_TRANSFERS_PER_SESSION;
      await waitUntil('every transfer to start', async () =>
        (await server.stats()).stats.transfers === transfers ? true : undefined,
      );
      // Measured once the peak stops rising (three seconds alike): every stalled transfer has then
      // read ahead all it will, however long that took on this machine.
      let last = -1;
      let alike = 0;
      const peak = await waitUntil(
        "the server's peak memory to settle",
        async () => {
          const m = await server.memory();
          alike = m.peakRss === last ? alike + 1 : 0;
          last = m.peakRss;
          return alike >= 3 ? m : undefined;
        },
        60_000,
        1_000,
      );
      const each = (peak.peakRss - idle.rss) / transfers;
      console.log(
        `stalled readers: ${transfers} transfers in ${SESSIONS} sessions; server RSS ${(idle.rss / MB).toFixed(0)} MiB idle, ` +
          `peak ${(peak.peakRss / MB).toFixed(0)} MiB: ${(each / MB).toFixed(1)} MiB per stalled transfer`,
      );
      expect(each).toBeLessThan(9 * MB);
      for (const s of sessions) await s.end();
      await server.close();
    },
    120_000,
  );
});

describe('more sessions than the server allows', () => {
  it('beyond --max-sessions a client is refused with EBUSY; once one ends, a new one is served', async () => {
    const { work, writer, server } = await setup({ maxSessions: 8 });
    const clients = await Promise.all(
      Array.from({ length: 8 }, () => connectClient({ port: server.port, key: writer.key })),
    );
    expect(
      // The refusal ends the handshake at once; its timeout only bounds a failure.
      await codeOf(connectClient({ port: server.port, key: writer.key, handshakeTimeoutMs: 30_000 })),
    ).toBe('EBUSY');
    expect((await server.stats()).stats.endpoint.sessions).toBe(8);
    await clients[0]!.close();
    await waitUntil('a free slot', async () =>
      (await server.stats()).stats.endpoint.sessions < 8 ? true : undefined,
    );
    const late = await connectClient({ port: server.port, key: writer.key });
    const digest = await randomFile(join(work, 'late.bin'), 1 * MB);
    expect((await late.put(join(work, 'late.bin'), 'late.bin')).sha256).toBe(digest);
    for (const c of [late, ...clients.slice(1)]) await c.close();
    await server.close();
  }, 60_000);
});
