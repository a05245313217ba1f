import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  sandbox as baseSandbox,
  CLIENT_BIN,
  expectResumed,
  MB,
  partialFiles,
  persistedPartial,
  randomFile,
  run,
  sha256File,
  spawnBin,
  startServerBin,
  UdpRelay,
} from './helpers.js';

/**
 * Crashes, with the real bins: the client or the server SIGKILLed in the middle of a transfer, then
 * the transfer resumed (bit-exact, moving noticeably less than the whole file), and no temporary
 * file left behind, after completion or, for an abandoned put, after the partial-file lifetime.
 *
 * "In the middle" is made certain, not raced: the client talks to the server through a relay that
 * lets part of the file through and then holds the rest, so the transfer stands still there however
 * fast or busy the machine is, until the test has killed what it means to kill.
 */

/** A test's own root, working directory and key: what one test leaves behind never fails another. */
async function sandbox() {
  const box = await baseSandbox();
  const { root, work, keyFile, env } = box;
  return {
    ...box,
    /** `ferry ARGS… --key KEY --json`, left running. */
    ferry: (args: readonly string[]) =>
      spawnBin(CLIENT_BIN, [...args, '--key', keyFile, '--json'], { cwd: work, env }),
    /** `ferry ARGS… --key KEY --json`, run to completion. */
    ferryDone: (args: readonly string[]) =>
      run(CLIENT_BIN, [...args, '--key', keyFile, '--json'], { cwd: work, env, timeoutMs: 90_000 }),
    async noTemporaryFiles(): Promise<void> {
      expect(await partialFiles(root)).toEqual([]);
      expect(await partialFiles(work)).toEqual([]);
    },
  };
}

describe('the client killed mid-transfer', () => {
  it('put: SIGKILL half-way, then put --resume completes bit-exact, sending only the rest', async () => {
    const box = await sandbox();
    const server = await startServerBin(box.root, box.keyFile, { env: box.env });
    const size = 24 * MB + 11;
    const digest = await randomFile(join(box.work, 'up.bin'), size);
    const relay = await UdpRelay.holding(server.port, 'up', 12 * MB);
    const first = box.ferry(['put', relay.address, 'up.bin']);
    await relay.held;
    await persistedPartial(box.root);
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    expect(existsSync(join(box.root, 'up.bin'))).toBe(false);

    const resumed = await box.ferryDone(['put', `127.0.0.1:${server.port}`, 'up.bin', '--resume']);
    const done = await expectResumed(resumed, join(box.root, 'up.bin'), { sha256: digest });
    console.log(
      `client killed mid-put: resumed with ${done.resumedBytes} of ${size} bytes already on the server`,
    );
    await box.noTemporaryFiles();
    server.child.kill('SIGTERM');
    await server.exited;
  });

  it('get: SIGKILL a third of the way, then get --resume completes bit-exact, fetching only the rest', async () => {
    const box = await sandbox();
    const server = await startServerBin(box.root, box.keyFile, { env: box.env });
    const size = 32 * MB + 5;
    const digest = await randomFile(join(box.root, 'down.bin'), size);
    const relay = await UdpRelay.holding(server.port, 'down', 12 * MB);
    // Small blocks here, the default size on resume: what was held is converted.
    const first = box.ferry(['get', relay.address, 'down.bin', '--block-size', '1024']);
    await relay.held;
    await persistedPartial(box.work);
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    expect(existsSync(join(box.work, 'down.bin'))).toBe(false);
    expect((await partialFiles(box.work)).length).toBeGreaterThan(0);

    const resumed = await box.ferryDone(['get', `127.0.0.1:${server.port}`, 'down.bin', '--resume']);
    const done = await expectResumed(resumed, join(box.work, 'down.bin'), { sha256: digest });
    console.log(`client killed mid-get: resumed with ${done.resumedBytes} of ${size} bytes already here`);
    await box.noTemporaryFiles();
    server.child.kill('SIGTERM');
    await server.exited;
  });
});

describe('starting over instead of resuming', () => {
  it('a get and a put killed, then run again without --resume: bit-exact, and the old partial files are gone', async () => {
    const box = await sandbox();
    const server = await startServerBin(box.root, box.keyFile, { env: box.env });
    const size = 24 * MB + 1;
    const getDigest = await randomFile(join(box.root, 'again-down.bin'), size);
    const putDigest = await randomFile(join(box.work, 'again-up.bin'), size);
    // Each through its own relay, held a quarter of the way: neither can finish before it is killed.
    const down = await UdpRelay.holding(server.port, 'down', 6 * MB);
    const up = await UdpRelay.holding(server.port, 'up', 6 * MB);
    const get = box.ferry(['get', down.address, 'again-down.bin', '--block-size', '1024']);
    const put = box.ferry(['put', up.address, 'again-up.bin']);
    await Promise.all([down.held, up.held]);
    get.child.kill('SIGKILL');
    put.child.kill('SIGKILL');
    expect((await get.exited).signal).toBe('SIGKILL');
    expect((await put.exited).signal).toBe('SIGKILL');
    expect((await partialFiles(box.work)).length).toBeGreaterThan(0);
    expect((await partialFiles(box.root)).length).toBeGreaterThan(0);
    const [got, sent] = await Promise.all([
      box.ferryDone(['get', `127.0.0.1:${server.port}`, 'again-down.bin']),
      box.ferryDone(['put', `127.0.0.1:${server.port}`, 'again-up.bin']),
    ]);
    expect(got.code, got.stderr).toBe(0);
    expect(sent.code, sent.stderr).toBe(0);
    expect(await sha256File(join(box.work, 'again-down.bin'))).toBe(getDigest);
    expect(await sha256File(join(box.root, 'again-up.bin'))).toBe(putDigest);
    await box.noTemporaryFiles();
    server.child.kill('SIGTERM');
    await server.exited;
  });
});

describe('the server killed mid-put', () => {
  it('SIGKILL, restart on the same root and port, put --resume: bit-exact, only the rest sent, nothing left over', async () => {
    const box = await sandbox();
    const first = await startServerBin(box.root, box.keyFile, { env: box.env });
    const port = first.port;
    const size = 24 * MB + 3;
    const digest = await randomFile(join(box.work, 'crash.bin'), size);
    const relay = await UdpRelay.holding(port, 'up', 12 * MB);
    const client = box.ferry(['put', relay.address, 'crash.bin', '--timeout', '10']);
    await relay.held;
    await persistedPartial(box.root);
    first.child.kill('SIGKILL');
    await first.exited;
    const second = await startServerBin(box.root, box.keyFile, { env: box.env, port });
    // What the client sent meanwhile reaches the restarted server, which answers RESET; had the
    // restart taken longer than --timeout, the client timed out. Either way it says --resume.
    relay.release();
    const ended = await client.exited;
    expect(ended.code).toBe(8);
    expect(existsSync(join(box.root, 'crash.bin'))).toBe(false);
    expect((await partialFiles(box.root)).length).toBeGreaterThan(0);

    const resumed = await box.ferryDone(['put', `127.0.0.1:${port}`, 'crash.bin', '--resume']);
    const done = await expectResumed(resumed, join(box.root, 'crash.bin'), { sha256: digest });
    console.log(
      `server killed mid-put: resumed with ${done.resumedBytes} of ${size} bytes kept across the restart`,
    );
    await box.noTemporaryFiles();
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  });
});

/** The names a sweep event says it removed. */
const removedBy = (sweep: Record<string, unknown>): string[] => [...(sweep.removed as string[])].sort();
const PARTIAL = /^\.ferry-partial-[0-9a-f]{32}$/;

describe('abandoned partial files expire', () => {
  it('a put whose client was killed and never came back: its partial file is removed after --partial-ttl', async () => {
    const box = await sandbox();
    const server = await startServerBin(box.root, box.keyFile, {
      env: box.env,
      args: ['--partial-ttl', '2s', '--timeout', '2'],
    });
    await randomFile(join(box.work, 'abandoned.bin'), 16 * MB);
    const relay = await UdpRelay.holding(server.port, 'up', 4 * MB);
    const client = box.ferry(['put', relay.address, 'abandoned.bin']);
    await relay.held;
    const killedAt = Date.now();
    client.child.kill('SIGKILL');
    await client.exited;
    // Idle timeout (2 s) ends the session; 2 s later the partial is stale; the sweep runs every second.
    const sweep = await server.waitFor((e) => e.type === 'sweep');
    console.log(
      `abandoned put: partial removed ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the client died`,
    );
    // The sweep removed the put's partial, data file and sidecar, and nothing is left.
    const removed = removedBy(sweep);
    expect(removed).toHaveLength(2);
    expect(removed[0]).toMatch(PARTIAL);
    expect(removed[1]).toBe(`${removed[0]}.state`);
    expect(await partialFiles(box.root)).toEqual([]);
    expect(existsSync(join(box.root, 'abandoned.bin'))).toBe(false);
    server.child.kill('SIGTERM');
    await server.exited;
  });

  it('a partial left by a killed server is removed by the restarted server once expired', async () => {
    const box = await sandbox();
    const first = await startServerBin(box.root, box.keyFile, { env: box.env });
    await randomFile(join(box.work, 'orphan.bin'), 16 * MB);
    const relay = await UdpRelay.holding(first.port, 'up', 4 * MB);
    const client = box.ferry(['put', relay.address, 'orphan.bin', '--timeout', '3']);
    await relay.held;
    first.child.kill('SIGKILL');
    client.child.kill('SIGKILL');
    await Promise.all([first.exited, client.exited]);
    const orphaned = await partialFiles(box.root);
    expect(orphaned.length).toBeGreaterThan(0);
    const second = await startServerBin(box.root, box.keyFile, {
      env: box.env,
      args: ['--partial-ttl', '1s'],
    });
    const sweep = await second.waitFor((e) => e.type === 'sweep');
    expect(removedBy(sweep)).toEqual(orphaned);
    expect(await partialFiles(box.root)).toEqual([]);
    expect(existsSync(join(box.root, 'orphan.bin'))).toBe(false);
    second.child.kill('SIGTERM');
    await second.exited;
  });
});
