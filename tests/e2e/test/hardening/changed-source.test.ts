import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryServer } from '@ferry/server-cli';
import { describe, expect, it } from 'vitest';
import {
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
  waitUntil,
} from './helpers.js';

/**
 * A put whose local file changes while it is sent fails with EFILECHANGED; what the server received of
 * the old contents is worthless, so it is removed at once instead of waiting a day for expiry, and the
 * put run again (with or without --resume) sends the new contents whole and leaves nothing behind.
 */
describe('a put whose source changes during the transfer', () => {
  it('fails with EFILECHANGED, leaves no partial on the server, and a rerun lands the new file', {
    timeout: 60_000,
  }, async () => {
    const { root, work } = await sandbox();
    const key = newKey();
    const server = new FerryServer({ root, port: 0, host: HOST, keys: [key], partialTtlMs: 24 * 3_600_000 });
    onCleanup(() => server.close(0));
    const { port } = await server.listen();
    const client = await connectClient({ port, key: key.key, rateLimit: 16 * MB });
    const local = join(work, 'growing.bin');
    await randomFile(local, 12 * MB);
    let changed = false;
    const failed = codeOf(
      client.put(local, 'growing.bin', {
        resume: true,
        onProgress: (p) => {
          if (changed || p.phase !== 'transferring' || p.bytes < 2 * MB) return;
          changed = true;
          void appendFile(local, 'more');
        },
      }),
    );
    expect(await failed).toBe('EFILECHANGED');
    expect(changed).toBe(true);
    await waitUntil('the stale partial to be removed', async () =>
      (await partialFiles(root)).length === 0 ? true : undefined,
    );
    const rerun = await client.put(local, 'growing.bin', { resume: true });
    expect(rerun.resumedBytes).toBe(0);
    expect(await sha256File(join(root, 'growing.bin'))).toBe(await sha256File(local));
    expect(await partialFiles(root)).toEqual([]);
  });
});
