import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ferry,
  randomFile,
  type Sandbox,
  ServerProcess,
  sandbox,
  sha256File,
  spawnFerry,
} from '../../cli-kit/testing/harness.js';

let box: Sandbox;
let server: ServerProcess;

beforeAll(async () => {
  box = await sandbox();
  server = await ServerProcess.start({ root: box.root, keyFile: box.keyFile, env: box.env });
});

afterAll(async () => {
  await server?.stop();
});

const MB = 1024 * 1024;

describe('a client killed in the middle of a transfer resumes with --resume, bit-exact', () => {
  it('put: SIGKILL mid-upload, then put --resume sends only the rest', async () => {
    const size = 24 * MB + 17;
    const digest = await randomFile(join(box.work, 'upload.bin'), size);
    // A rate cap keeps the upload going long enough to be killed in the middle.
    const first = spawnFerry(
      ['put', server.address, 'upload.bin', '--key', box.keyFile, '--json', '--limit', '6M'],
      {
        cwd: box.work,
        env: box.env,
      },
    );
    await first.waitFor((e) => e.type === 'progress' && Number(e.bytes) >= 8 * MB);
    first.child.kill('SIGKILL');
    const killed = await first.exited;
    expect(killed.signal).toBe('SIGKILL');
    // Nothing half-written appears under the real name, and the partial is not listed.
    await expect(stat(join(box.root, 'upload.bin'))).rejects.toThrow();
    const listing = await ferry(['ls', server.address, '--key', box.keyFile, '--json'], {
      cwd: box.work,
      env: box.env,
    });
    expect(listing.events.filter((e) => e.type === 'entry')).toEqual([]);

    const resumed = await ferry(
      ['put', server.address, 'upload.bin', '--key', box.keyFile, '--json', '--resume'],
      {
        cwd: box.work,
        env: box.env,
        timeoutMs: 60_000,
      },
    );
    expect(resumed.code, resumed.stderr).toBe(0);
    const done = resumed.events.find((e) => e.type === 'done')!;
    expect(done).toMatchObject({ op: 'put', bytes: size, sha256: digest });
    expect(Number(done.resumedBytes)).toBeGreaterThan(0);
    expect(Number(done.transferred)).toBeLessThan(size);
    expect(await sha256File(join(box.root, 'upload.bin'))).toBe(digest);
  }, 90_000);

  it('get: SIGKILL mid-download, then get --resume fetches only the rest', async () => {
    const size = 40 * MB + 5;
    const digest = await randomFile(join(box.root, 'download.bin'), size);
    // Small blocks make the download slow enough on loopback to be killed in the middle.
    const first = spawnFerry(
      ['get', server.address, 'download.bin', '--key', box.keyFile, '--json', '--block-size', '1024'],
      { cwd: box.work, env: box.env },
    );
    await first.waitFor((e) => e.type === 'progress' && Number(e.bytes) >= 10 * MB);
    first.child.kill('SIGKILL');
    await first.exited;
    await expect(stat(join(box.work, 'download.bin'))).rejects.toThrow();
    expect((await readdir(box.work)).some((n) => n.startsWith('.ferry-partial-'))).toBe(true);

    // Resumed with the default (larger) block size: what was held is converted, not re-sent.
    const resumed = await ferry(
      ['get', server.address, 'download.bin', '--key', box.keyFile, '--json', '--resume'],
      {
        cwd: box.work,
        env: box.env,
        timeoutMs: 60_000,
      },
    );
    expect(resumed.code, resumed.stderr).toBe(0);
    const done = resumed.events.find((e) => e.type === 'done')!;
    expect(done).toMatchObject({ op: 'get', bytes: size, sha256: digest });
    expect(Number(done.resumedBytes)).toBeGreaterThan(0);
    expect(await sha256File(join(box.work, 'download.bin'))).toBe(digest);
    expect((await readdir(box.work)).filter((n) => n.startsWith('.ferry-partial-'))).toEqual([]);
  }, 90_000);

  it('Ctrl-C (SIGINT) cancels a one-shot transfer with exit 130 and keeps the partial for --resume', async () => {
    const size = 24 * MB;
    const digest = await randomFile(join(box.work, 'interrupted.bin'), size);
    const first = spawnFerry(
      ['put', server.address, 'interrupted.bin', '--key', box.keyFile, '--json', '--limit', '6M'],
      { cwd: box.work, env: box.env },
    );
    await first.waitFor((e) => e.type === 'progress' && Number(e.bytes) >= 4 * MB);
    first.child.kill('SIGINT');
    const ended = await first.exited;
    expect(ended.code).toBe(130);
    expect(ended.stderr).toMatch(/ferry: put interrupted\.bin: .*cancel.*--resume/);
    const resumed = await ferry(
      ['put', server.address, 'interrupted.bin', '--key', box.keyFile, '--resume', '--json'],
      {
        cwd: box.work,
        env: box.env,
        timeoutMs: 60_000,
      },
    );
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(Number(resumed.events.find((e) => e.type === 'done')!.resumedBytes)).toBeGreaterThan(0);
    expect(await sha256File(join(box.root, 'interrupted.bin'))).toBe(digest);
  }, 90_000);
});
