import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  expectResumed,
  ferry,
  persistedPartial,
  randomFile,
  type Sandbox,
  type ServerProcess,
  servedSandbox,
  spawnFerry,
  UdpRelay,
} from '../../src/harness.js';

let box: Sandbox;
let server: ServerProcess;

beforeAll(async () => {
  ({ box, server } = await servedSandbox());
});

const MB = 1024 * 1024;

/**
 * The first attempt goes through a relay that lets part of the file through and then holds the rest:
 * the transfer stands still in the middle, however fast or busy the machine, until the test has
 * interrupted it (a kill racing a transfer could come after its end).
 */
const holdingRelay = (direction: 'up' | 'down', bytes: number) =>
  UdpRelay.holding(server.port, direction, bytes);

describe('a client killed in the middle of a transfer resumes with --resume, bit-exact', () => {
  it('put: SIGKILL mid-upload, then put --resume sends only the rest', async () => {
    const size = 24 * MB + 17;
    const digest = await randomFile(join(box.work, 'upload.bin'), size);
    const relay = await holdingRelay('up', 8 * MB);
    const first = spawnFerry(['put', relay.address, 'upload.bin', '--key', box.keyFile, '--json'], {
      cwd: box.work,
      env: box.env,
    });
    await relay.held;
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
      { cwd: box.work, env: box.env, timeoutMs: 60_000 },
    );
    const done = await expectResumed(resumed, join(box.root, 'upload.bin'), {
      op: 'put',
      bytes: size,
      sha256: digest,
    });
    expect(Number(done.transferred)).toBeLessThan(size);
  });

  it('get: SIGKILL mid-download, then get --resume fetches only the rest', async () => {
    const size = 40 * MB + 5;
    const digest = await randomFile(join(box.root, 'download.bin'), size);
    const relay = await holdingRelay('down', 16 * MB);
    const first = spawnFerry(
      ['get', relay.address, 'download.bin', '--key', box.keyFile, '--json', '--block-size', '1024'],
      { cwd: box.work, env: box.env },
    );
    await relay.held;
    // Killed, the client keeps only what its partial file's sidecar recorded.
    await persistedPartial(box.work);
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    await expect(stat(join(box.work, 'download.bin'))).rejects.toThrow();
    expect((await readdir(box.work)).some((n) => n.startsWith('.ferry-partial-'))).toBe(true);

    // Resumed with the default (larger) block size: what was held is converted, not re-sent.
    const resumed = await ferry(
      ['get', server.address, 'download.bin', '--key', box.keyFile, '--json', '--resume'],
      { cwd: box.work, env: box.env, timeoutMs: 60_000 },
    );
    await expectResumed(resumed, join(box.work, 'download.bin'), { op: 'get', bytes: size, sha256: digest });
    expect((await readdir(box.work)).filter((n) => n.startsWith('.ferry-partial-'))).toEqual([]);
  });

  it('Ctrl-C (SIGINT) cancels a one-shot transfer with exit 130 and keeps the partial for --resume', async () => {
    const size = 24 * MB;
    const digest = await randomFile(join(box.work, 'interrupted.bin'), size);
    const relay = await holdingRelay('up', 4 * MB);
    const first = spawnFerry(['put', relay.address, 'interrupted.bin', '--key', box.keyFile, '--json'], {
      cwd: box.work,
      env: box.env,
    });
    await relay.held;
    first.child.kill('SIGINT');
    const ended = await first.exited;
    expect(ended.code).toBe(130);
    expect(ended.stderr).toMatch(/ferry: put interrupted\.bin: .*cancel.*--resume/);
    // What it sent meanwhile, its cancel among it, reaches the server now.
    relay.release();
    const resumed = await ferry(
      ['put', server.address, 'interrupted.bin', '--key', box.keyFile, '--resume', '--json'],
      { cwd: box.work, env: box.env, timeoutMs: 60_000 },
    );
    await expectResumed(resumed, join(box.root, 'interrupted.bin'), { sha256: digest });
  });
});
