import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ChildServer,
  connectClient,
  MB,
  newKey,
  partialFiles,
  randomFile,
  sandbox,
  sha256File,
  trackPeak,
  within,
} from './helpers.js';

/**
 * Load: many clients at once, each putting and getting its own file, against one server process
 * whose peak RSS (VmHWM) is measured and bounded. FERRY_LOAD_CLIENTS overrides the count.
 */
const CLIENTS = Number(process.env.FERRY_LOAD_CLIENTS ?? 50);
/** The server's peak RSS under this load must stay under this: 400 MiB for 50 clients (docs/SECURITY.md). */
const RSS_BOUND = 100 * MB + CLIENTS * 6 * MB;
/** Upper bound on the clients' wall time (50 clients take about 10 s on 2 cores). */
const LOAD_MS = 100_000 + 2_000 * CLIENTS;

/** 2 to 8 MiB, spread over the clients, none a multiple of the block size. */
function sizeOf(i: number): number {
  return 2 * MB + Math.floor((((i * 7919) % 997) / 997) * 6 * MB) + 1 + i;
}

describe('load', () => {
  it(
    `${CLIENTS} concurrent clients each put and get a distinct 2–8 MiB file; every digest matches; the server's RSS stays bounded`,
    async () => {
      const { root, work } = await sandbox();
      const key = newKey();
      const server = await ChildServer.start({ root, keys: [key] });
      const files = await Promise.all(
        Array.from({ length: CLIENTS }, async (_, i) => {
          const size = sizeOf(i);
          return { i, size, digest: await randomFile(join(work, `file-${i}.bin`), size) };
        }),
      );
      const total = files.reduce((n, f) => n + f.size, 0);
      const baseline = await server.memory();

      const rss = trackPeak(async () => (await server.memory()).peakRss);
      const started = performance.now();
      let putDone = 0;
      const results = await within(
        'the clients',
        LOAD_MS,
        Promise.all(
          files.map(async (f) => {
            const client = await connectClient({
              port: server.port,
              key: key.key,
              handshakeTimeoutMs: 30_000,
            });
            const put = await client.put(join(work, `file-${f.i}.bin`), `file-${f.i}.bin`);
            putDone = Math.max(putDone, performance.now());
            const back = join(work, `back-${f.i}.bin`);
            const got = await client.get(`file-${f.i}.bin`, back);
            await client.close();
            return { put: put.sha256, got: got.sha256, onDisk: await sha256File(back), f };
          }),
        ),
      );
      const seconds = (performance.now() - started) / 1000;
      const peakRss = await rss.stop();
      const stats = (await server.stats()).stats;
      console.log(
        `load: ${CLIENTS} clients moved ${(total / MB).toFixed(0)} MiB each way (${((2 * total) / MB).toFixed(0)} MiB in all) in ${seconds.toFixed(1)} s: ` +
          `${((2 * total) / MB / seconds).toFixed(1)} MiB/s aggregate; puts done after ${((putDone - started) / 1000).toFixed(1)} s; ` +
          `server RSS ${(baseline.rss / MB).toFixed(0)} MiB idle, peak ${(peakRss / MB).toFixed(0)} MiB (bound ${(RSS_BOUND / MB).toFixed(0)} MiB); ` +
          `server drops ${JSON.stringify(stats.endpoint.drops)}`,
      );
      for (const r of results) {
        expect(r.put, `put ${r.f.i}`).toBe(r.f.digest);
        expect(r.got, `get ${r.f.i}`).toBe(r.f.digest);
        expect(r.onDisk, `file ${r.f.i}`).toBe(r.f.digest);
        expect(await sha256File(join(root, `file-${r.f.i}.bin`))).toBe(r.f.digest);
      }
      expect(peakRss).toBeLessThan(RSS_BOUND);
      expect(await partialFiles(root)).toEqual([]);
      expect(await partialFiles(work)).toEqual([]);
      expect(server.alive).toBe(true);
      await server.close();
    },
    LOAD_MS + 60_000,
  );
});
