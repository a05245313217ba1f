import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ferry,
  randomFile,
  ServerProcess,
  sandbox,
  sha256File,
  spawnFerry,
} from '../../cli-kit/testing/harness.js';

const MB = 1024 * 1024;

describe('the server killed in the middle of a transfer, restarted, and the transfer resumed', () => {
  it('put: the client learns at once that the session is gone; put --resume completes bit-exact', async () => {
    const box = await sandbox();
    const first = await ServerProcess.start({ root: box.root, keyFile: box.keyFile, env: box.env });
    const port = first.port;
    const size = 24 * MB + 3;
    const digest = await randomFile(join(box.work, 'big.bin'), size);
    const client = spawnFerry(
      ['put', first.address, 'big.bin', '--key', box.keyFile, '--json', '--limit', '6M', '--timeout', '15'],
      { cwd: box.work, env: box.env },
    );
    await client.waitFor((e) => e.type === 'progress' && Number(e.bytes) >= 8 * MB);
    first.child.kill('SIGKILL');
    await first.exited;
    const second = await ServerProcess.start({ root: box.root, keyFile: box.keyFile, env: box.env, port });
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
  }, 90_000);

  it('get: the partial download survives; get --resume from the restarted server completes bit-exact', async () => {
    const box = await sandbox();
    const first = await ServerProcess.start({ root: box.root, keyFile: box.keyFile, env: box.env });
    const port = first.port;
    const size = 40 * MB + 1;
    const digest = await randomFile(join(box.root, 'movie.bin'), size);
    const client = spawnFerry(
      [
        'get',
        first.address,
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
    await client.waitFor((e) => e.type === 'progress' && Number(e.bytes) >= 10 * MB);
    first.child.kill('SIGKILL');
    await first.exited;
    const second = await ServerProcess.start({ root: box.root, keyFile: box.keyFile, env: box.env, port });
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
  }, 90_000);
});
