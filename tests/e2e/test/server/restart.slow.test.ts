import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  expectResumed,
  ferry,
  persistedPartial,
  randomFile,
  type Sandbox,
  type ServerProcess,
  servedSandbox,
  serveSandbox,
  spawnFerry,
  UdpRelay,
} from '../../src/harness.js';

const MB = 1024 * 1024;

/**
 * The client talks to the server through a relay that lets part of the file through and then holds
 * the rest (UdpRelay.holding): the transfer stands still in the middle, however fast or busy the
 * machine, while this kills the server and starts another on the same root and port (a kill racing
 * the transfer could come after its end). Released, what the client sent meanwhile reaches the
 * restarted server, which answers RESET.
 */
async function restartBehind(relay: UdpRelay, box: Sandbox, first: ServerProcess): Promise<ServerProcess> {
  first.child.kill('SIGKILL');
  await first.exited;
  const second = await serveSandbox(box, { port: first.port });
  relay.release();
  return second;
}

describe('the server killed in the middle of a transfer, restarted, and the transfer resumed', () => {
  it('put: the client learns at once that the session is gone; put --resume completes bit-exact', async () => {
    const { box, server: first } = await servedSandbox();
    const size = 24 * MB + 3;
    const digest = await randomFile(join(box.work, 'big.bin'), size);
    const relay = await UdpRelay.holding(first.port, 'up', 12 * MB);
    const client = spawnFerry(
      ['put', relay.address, 'big.bin', '--key', box.keyFile, '--json', '--timeout', '15'],
      { cwd: box.work, env: box.env },
    );
    await relay.held;
    // The server keeps, across its crash, what its partial file's sidecar recorded.
    await persistedPartial(box.root);
    const second = await restartBehind(relay, box, first);
    const ended = await client.exited;
    expect(ended.code).toBe(8);
    expect(ended.stderr).toMatch(/--resume/);
    await expect(stat(join(box.root, 'big.bin'))).rejects.toThrow();

    const resumed = await ferry(
      ['put', second.address, 'big.bin', '--key', box.keyFile, '--json', '--resume'],
      { cwd: box.work, env: box.env, timeoutMs: 60_000 },
    );
    await expectResumed(resumed, join(box.root, 'big.bin'), { bytes: size, sha256: digest });
    await second.stop();
  });

  it('get: the partial download survives; get --resume from the restarted server completes bit-exact', async () => {
    const { box, server: first } = await servedSandbox();
    const size = 40 * MB + 1;
    const digest = await randomFile(join(box.root, 'movie.bin'), size);
    const relay = await UdpRelay.holding(first.port, 'down', 12 * MB);
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
    const second = await restartBehind(relay, box, first);
    const ended = await client.exited;
    expect(ended.code).toBe(8);
    await expect(stat(join(box.work, 'movie.bin'))).rejects.toThrow();

    const resumed = await ferry(
      ['get', second.address, 'movie.bin', '--key', box.keyFile, '--json', '--resume'],
      { cwd: box.work, env: box.env, timeoutMs: 60_000 },
    );
    await expectResumed(resumed, join(box.work, 'movie.bin'), { bytes: size, sha256: digest });
    await second.stop();
  });
});
