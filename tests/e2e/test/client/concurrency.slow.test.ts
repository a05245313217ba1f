import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ferry,
  randomFile,
  type Sandbox,
  type ServerProcess,
  servedSandbox,
  sha256File,
} from '../../src/harness.js';

let box: Sandbox;
let server: ServerProcess;

beforeAll(async () => {
  ({ box, server } = await servedSandbox());
});

const CLIENTS = 20;

describe('many clients at once', () => {
  it(`${CLIENTS} concurrent clients each put and get their own file; every digest matches`, async () => {
    const clients = await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        const dir = join(box.work, `client-${i}`);
        await mkdir(dir);
        const name = `file-${i} ü.bin`;
        // Sizes differ so that transfers end at different times and overlap in every phase.
        const digest = await randomFile(join(dir, name), 256 * 1024 + i * 97_531);
        return { i, dir, name, digest };
      }),
    );
    const key = ['--key', box.keyFile, '--json'];
    const options = (c: { dir: string }) => ({ cwd: c.dir, env: box.env, timeoutMs: 60_000 });
    // Each client puts, then gets its file back under another name; as the clients finish at
    // different times, uploads and downloads of different clients overlap.
    const results = await Promise.all(
      clients.map(async (c) => {
        const put = await ferry(['put', server.address, c.name, ...key], options(c));
        const get = await ferry(['get', server.address, c.name, 'back.bin', ...key], options(c));
        return { put, get };
      }),
    );
    for (const [i, { put, get }] of results.entries()) {
      expect(put.code, `client ${i} put: ${put.stderr}`).toBe(0);
      expect(put.events.find((e) => e.type === 'done')?.sha256).toBe(clients[i]!.digest);
      expect(get.code, `client ${i} get: ${get.stderr}`).toBe(0);
      expect(get.events.find((e) => e.type === 'done')?.sha256).toBe(clients[i]!.digest);
    }
    for (const c of clients) {
      expect(await sha256File(join(box.root, c.name))).toBe(c.digest);
      expect(await sha256File(join(c.dir, 'back.bin'))).toBe(c.digest);
    }
  }, 120_000);

  it('several files through one session at once (get A B C … -d DIR) all arrive intact', async () => {
    const names = Array.from({ length: 8 }, (_, i) => `parallel-${i}.bin`);
    const digests = await Promise.all(
      names.map((n, i) => randomFile(join(box.root, n), 1_000_000 + i * 12_345)),
    );
    await mkdir(join(box.work, 'parallel'));
    const r = await ferry(['get', server.address, ...names, '-d', 'parallel', '--key', box.keyFile], {
      cwd: box.work,
      env: box.env,
      timeoutMs: 60_000,
    });
    expect(r.code, r.stderr).toBe(0);
    for (const [i, n] of names.entries())
      expect(await sha256File(join(box.work, 'parallel', n))).toBe(digests[i]);
  });
});
