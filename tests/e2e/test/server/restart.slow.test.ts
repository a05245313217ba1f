import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ferry,
  persistedPartial,
  randomFile,
  ServerProcess,
  sandbox,
  sha256File,
  spawnFerry,
  UdpRelay,
} from '../../src/harness.js';

const MB = 1024 * 1024;

/**
 * The client talks to the server through a relay that lets part of the file through and then holds
 * the rest: the transfer stands still in the middle, however fast or busy the machine, while the
 * server is killed and restarted (a kill racing the transfer could come after its end). Released,
 * what the client sent meanwhile reaches the restarted server, which answers RESET.
 */
async function holdingRelay(port: number, direction: 'up' | 'down', bytes: number) {
  const relay = await UdpRelay.open(port, 0);
  return Object.assign(relay, {
    held: relay.holdAfter(direction, bytes),
    address: `127.0.0.1:${relay.port}`,
  });
}

describe('the server killed in the middle of a transfer, restarted, and the transfer resumed', () => {
  it('put: the client learns at once that the session is gone; put --resume completes bit-exact', async () => {
    const box = await sandbox();
    const first = await ServerProcess.start({ root: box.root, keyFile: box.keyFile, env: box.env });
    const port = first.port;
    const size = 24 * MB + 3;
    const digest = await randomFile(join(box.work, 'big.bin'), size);
    const relay = await holdingRelay(port, 'up', 12 * MB);
    const client = spawnFerry(
      ['put', relay.address, 'big.bin', '--key', box.keyFile, '--json', '--timeout', '15'],
      { cwd: box.work, env: box.env },
    );
    await relay.held;
    // The server keeps, across its crash, what its partial file's sidecar recorded.
    await persistedPartial(box.root);
    first.child.kill('SIGKILL');
    await first.exited;
    const second = await ServerProcess.start({ root: box.root, keyFile: box.keyFile, env: box.env, port });
    relay.release();
    const ended = await client.exited;
    expect(ended.code).toBe(8);
    expect(ended.stderr).toMatch(/--resume/);
    await expect(stat(join(box.root, 'big.bin'))).rejects.toThrow();

    const resumed = await ferry(
      ['put', second.address, 'big.bin', '--key', box.keyFile, '--json', '--resume'],
      {
        cwd: box.work,
        env: box.env,
        timeoutMs: 60_000,
      },
    );
    expect(resumed.code, resumed.stderr).toBe(0);
    const done = resumed.events.find((e) => e.type === 'done')!;
    expect(done).toMatchObject({ bytes: size, sha256: digest });
    expect(Number(done.resumedBytes)).toBeGreaterThan(0);
    expect(await sha256File(join(box.root, 'big.bin'))).toBe(digest);
    await second.stop();
  });

  it('get: the partial download survives; get --resume from the restarted server completes bit-exact', async () => {
    const box = await sandbox();
    const first = await ServerProcess.start({ root: box.root, keyFile: box.keyFile, env: box.env });
    const port = first.port;
    const size = 40 * MB + 1;
    const digest = await randomFile(join(box.root, 'movie.bin'), size);
    const relay = await holdingRelay(port, 'down', 12 * MB);
    const client = spawnFerry(
      [
        'get',
        relay.address,
        'movie.bin',
        '--key',
        box.keyFile,
        '--json',
        '--block-size',
        '1024',
        '--timeout',
        '15',
      ],
      { cwd: box.work, env: box.env },
    );
    await relay.held;
    first.child.kill('SIGKILL');
    await first.exited;
    const second = await ServerProcess.start({ root: box.root, keyFile: box.keyFile, env: box.env, port });
    relay.release();
    const ended = await client.exited;
    expect(ended.code).toBe(8);
    await expect(stat(join(box.work, 'movie.bin'))).rejects.toThrow();

    const resumed = await ferry(
      ['get', second.address, 'movie.bin', '--key', box.keyFile, '--json', '--resume'],
      {
        cwd: box.work,
        env: box.env,
        timeoutMs: 60_000,
      },
    );
    expect(resumed.code, resumed.stderr).toBe(0);
    const done = resumed.events.find((e) => e.type === 'done')!;
    expect(done).toMatchObject({ bytes: size, sha256: digest });
    expect(Number(done.resumedBytes)).toBeGreaterThan(0);
    expect(await sha256File(join(box.work, 'movie.bin'))).toBe(digest);
    await second.stop();
  });
});
