import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CLIENT_BIN,
  MB,
  mountTmpfs,
  onCleanup,
  partialFiles,
  randomFile,
  run,
  sandbox,
  sha256File,
  startServerBin,
} from './helpers.js';

/**
 * Concurrent puts into a file system too small for all of them, with the real bins: space is promised
 * to the puts the server accepts, so the ones it admits finish; the others are refused up front with
 * ENOSPC (exit 6), nothing is left taking room, and a small put right after succeeds.
 */
const ROUNDS = 10;

describe('three 12 MiB puts at once into a 20 MiB file system', () => {
  it(`${ROUNDS} rounds: at least one completes every time, the others fail with exit 6, a small put follows`, async (context) => {
    const { root: mountPoint, work, keyFile, env } = await sandbox();
    mountTmpfs(mountPoint, '20m', context);
    const server = await startServerBin(mountPoint, keyFile, { env });
    onCleanup(async () => {
      server.child.kill('SIGTERM');
      await server.exited;
    });
    const digests: string[] = [];
    for (let i = 0; i < 3; i++) digests.push(await randomFile(join(work, `big${i}.bin`), 12 * MB));
    await randomFile(join(work, 'small.bin'), 1000);
    await randomFile(join(work, 'empty.bin'), 0);
    const ferry = (args: readonly string[]) =>
      run(CLIENT_BIN, [...args, '--key', keyFile], { cwd: work, env, timeoutMs: 120_000 });
    const tally: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const results = await Promise.all(
        [0, 1, 2].map((i) => ferry(['put', `127.0.0.1:${server.port}`, `big${i}.bin`])),
      );
      const codes = results.map((r) => r.code);
      tally.push(codes.join('/'));
      expect(codes.filter((code) => code === 0).length, `round ${round}: ${codes}`).toBeGreaterThanOrEqual(1);
      for (const [i, result] of results.entries()) {
        if (result.code === 0) {
          expect(await sha256File(join(mountPoint, `big${i}.bin`))).toBe(digests[i]);
        } else {
          expect(result.code, result.stderr).toBe(6);
          expect(result.stderr).toMatch(/space/);
          expect(existsSync(join(mountPoint, `big${i}.bin`))).toBe(false);
        }
      }
      // Nothing of the refused puts takes room: a small and an empty put succeed at once.
      expect(await partialFiles(mountPoint)).toEqual([]);
      for (const name of ['small.bin', 'empty.bin']) {
        const small = await ferry(['put', `127.0.0.1:${server.port}`, name]);
        expect(small.code, small.stderr).toBe(0);
      }
      for (const name of await readdir(mountPoint)) await rm(join(mountPoint, name), { force: true });
    }
    console.log(`three puts into 20 MiB, exit codes per round: ${tally.join(', ')}`);
  }, 600_000);
});
