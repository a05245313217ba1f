import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeNewKeyFile } from '@ferry/crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  binEnv,
  CLIENT_BIN,
  MB,
  partialFiles,
  randomFile,
  runBin,
  sha256File,
  spawnBin,
  startServerBin,
  tempDir,
  waitUntil,
} from './helpers.js';

/**
 * Crashes, with the real bins: the client or the server SIGKILLed in the middle of a transfer, then
 * the transfer resumed (bit-exact, moving noticeably less than the whole file), and no temporary
 * file left behind, after completion or, for an abandoned put, after the partial-file lifetime.
 */
let dir: string;
let root: string;
let work: string;
let keyFile: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  dir = await tempDir();
  root = join(dir, 'root');
  work = join(dir, 'work');
  await mkdir(root);
  await mkdir(work);
  keyFile = join(dir, 'key');
  await writeNewKeyFile(keyFile);
  env = binEnv(dir);
});

const ferry = (args: readonly string[]) =>
  spawnBin(CLIENT_BIN, [...args, '--key', keyFile, '--json'], { cwd: work, env });
const ferryDone = (args: readonly string[]) =>
  runBin(CLIENT_BIN, [...args, '--key', keyFile, '--json'], { cwd: work, env, timeoutMs: 60_000 });
const progressed = (bytes: number) => (e: Record<string, unknown>) =>
  e.type === 'progress' && Number(e.bytes) >= bytes;

/**
 * Waits until a partial file in `where` has persisted some progress (its sidecar records at least
 * one block; the first sidecar, written at the start, records none): a kill then loses little.
 */
function persisted(where: string): Promise<true> {
  const holdsBlocks = async (sidecar: string): Promise<boolean> => {
    try {
      const state = JSON.parse(await readFile(sidecar, 'utf8')) as { bitmap?: string };
      return Buffer.from(state.bitmap ?? '', 'base64').some((byte) => byte !== 0);
    } catch {
      return false; // being replaced, or gone: look again
    }
  };
  return waitUntil(
    `a partial in ${where} that has persisted progress`,
    async () => {
      for (const p of await partialFiles(where)) {
        if (p.endsWith('.state') && (await holdsBlocks(join(where, p)))) return true;
      }
      return undefined;
    },
    30_000,
  );
}

async function noTemporaryFiles(): Promise<void> {
  expect(await partialFiles(root)).toEqual([]);
  expect(await partialFiles(work)).toEqual([]);
}

describe('the client killed mid-transfer', () => {
  it('put: SIGKILL a third of the way, then put --resume completes bit-exact, sending only the rest', async () => {
    const server = await startServerBin(root, keyFile, { env });
    const size = 24 * MB + 11;
    const digest = await randomFile(join(work, 'up.bin'), size);
    const first = ferry(['put', `127.0.0.1:${server.port}`, 'up.bin', '--limit', '8M']);
    await first.waitFor(progressed(8 * MB));
    await persisted(root);
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    expect(existsSync(join(root, 'up.bin'))).toBe(false);

    const resumed = await ferryDone(['put', `127.0.0.1:${server.port}`, 'up.bin', '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const done = resumed.events.find((e) => e.type === 'done')!;
    console.log(
      `client killed mid-put: resumed with ${done.resumedBytes} of ${size} bytes already on the server`,
    );
    expect(done).toMatchObject({ sha256: digest });
    expect(Number(done.resumedBytes)).toBeGreaterThan(0);
    expect(await sha256File(join(root, 'up.bin'))).toBe(digest);
    await noTemporaryFiles();
    server.child.kill('SIGTERM');
    await server.exited;
  }, 90_000);

  it('get: SIGKILL a third of the way, then get --resume completes bit-exact, fetching only the rest', async () => {
    const server = await startServerBin(root, keyFile, { env });
    const size = 32 * MB + 5;
    const digest = await randomFile(join(root, 'down.bin'), size);
    // Small blocks keep the download going long enough to be killed in the middle.
    const first = ferry(['get', `127.0.0.1:${server.port}`, 'down.bin', '--block-size', '1024']);
    await first.waitFor(progressed(8 * MB));
    await persisted(work);
    first.child.kill('SIGKILL');
    await first.exited;
    expect(existsSync(join(work, 'down.bin'))).toBe(false);
    expect((await partialFiles(work)).length).toBeGreaterThan(0);

    const resumed = await ferryDone(['get', `127.0.0.1:${server.port}`, 'down.bin', '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const done = resumed.events.find((e) => e.type === 'done')!;
    console.log(`client killed mid-get: resumed with ${done.resumedBytes} of ${size} bytes already here`);
    expect(done).toMatchObject({ sha256: digest });
    expect(Number(done.resumedBytes)).toBeGreaterThan(0);
    expect(await sha256File(join(work, 'down.bin'))).toBe(digest);
    await noTemporaryFiles();
    server.child.kill('SIGTERM');
    await server.exited;
  }, 90_000);
});

describe('starting over instead of resuming', () => {
  it('a get and a put killed, then run again without --resume: bit-exact, and the old partial files are gone', async () => {
    const server = await startServerBin(root, keyFile, { env });
    const size = 24 * MB + 1;
    const getDigest = await randomFile(join(root, 'again-down.bin'), size);
    const putDigest = await randomFile(join(work, 'again-up.bin'), size);
    const get = ferry(['get', `127.0.0.1:${server.port}`, 'again-down.bin', '--block-size', '1024']);
    const put = ferry(['put', `127.0.0.1:${server.port}`, 'again-up.bin', '--limit', '8M']);
    await Promise.all([get.waitFor(progressed(4 * MB)), put.waitFor(progressed(4 * MB))]);
    get.child.kill('SIGKILL');
    put.child.kill('SIGKILL');
    await Promise.all([get.exited, put.exited]);
    expect((await partialFiles(work)).length).toBeGreaterThan(0);
    expect((await partialFiles(root)).length).toBeGreaterThan(0);
    const [got, sent] = await Promise.all([
      ferryDone(['get', `127.0.0.1:${server.port}`, 'again-down.bin']),
      ferryDone(['put', `127.0.0.1:${server.port}`, 'again-up.bin']),
    ]);
    expect(got.code, got.stderr).toBe(0);
    expect(sent.code, sent.stderr).toBe(0);
    expect(await sha256File(join(work, 'again-down.bin'))).toBe(getDigest);
    expect(await sha256File(join(root, 'again-up.bin'))).toBe(putDigest);
    await noTemporaryFiles();
    server.child.kill('SIGTERM');
    await server.exited;
  }, 90_000);
});

describe('the server killed mid-put', () => {
  it('SIGKILL, restart on the same root and port, put --resume: bit-exact, only the rest sent, nothing left over', async () => {
    const first = await startServerBin(root, keyFile, { env });
    const port = first.port;
    const size = 24 * MB + 3;
    const digest = await randomFile(join(work, 'crash.bin'), size);
    const client = ferry(['put', `127.0.0.1:${port}`, 'crash.bin', '--limit', '8M', '--timeout', '10']);
    await client.waitFor(progressed(8 * MB));
    await persisted(root);
    first.child.kill('SIGKILL');
    await first.exited;
    const second = await startServerBin(root, keyFile, { env, port });
    // The interrupted client learns of the restart (RESET) or times out; either way it says --resume.
    const ended = await client.exited;
    expect(ended.code).toBe(8);
    expect(existsSync(join(root, 'crash.bin'))).toBe(false);
    expect((await partialFiles(root)).length).toBeGreaterThan(0);

    const resumed = await ferryDone(['put', `127.0.0.1:${port}`, 'crash.bin', '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const done = resumed.events.find((e) => e.type === 'done')!;
    console.log(
      `server killed mid-put: resumed with ${done.resumedBytes} of ${size} bytes kept across the restart`,
    );
    expect(done).toMatchObject({ sha256: digest });
    expect(Number(done.resumedBytes)).toBeGreaterThan(0);
    expect(await sha256File(join(root, 'crash.bin'))).toBe(digest);
    await noTemporaryFiles();
    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  }, 90_000);
});

describe('abandoned partial files expire', () => {
  it('a put whose client was killed and never came back: its partial file is removed after --partial-ttl', async () => {
    const expiring = join(dir, 'expiring');
    await mkdir(expiring);
    const server = await startServerBin(expiring, keyFile, {
      env,
      args: ['--partial-ttl', '2s', '--timeout', '2'],
    });
    await randomFile(join(work, 'abandoned.bin'), 16 * MB);
    const client = ferry(['put', `127.0.0.1:${server.port}`, 'abandoned.bin', '--limit', '8M']);
    await client.waitFor(progressed(4 * MB));
    client.child.kill('SIGKILL');
    await client.exited;
    expect((await partialFiles(expiring)).length).toBeGreaterThan(0);
    const started = Date.now();
    // Idle timeout (2 s) ends the session; 2 s later the partial is stale; the sweep runs every second.
    await waitUntil(
      'the partial file to expire',
      async () => ((await partialFiles(expiring)).length === 0 ? true : undefined),
      15_000,
    );
    console.log(
      `abandoned put: partial removed ${((Date.now() - started) / 1000).toFixed(1)} s after the client died`,
    );
    expect(server.events.some((e) => e.type === 'sweep')).toBe(true);
    expect(existsSync(join(expiring, 'abandoned.bin'))).toBe(false);
    server.child.kill('SIGTERM');
    await server.exited;
  }, 60_000);

  it('a partial left by a killed server is removed by the restarted server once expired', async () => {
    const stale = join(dir, 'stale');
    await mkdir(stale);
    const first = await startServerBin(stale, keyFile, { env });
    await randomFile(join(work, 'orphan.bin'), 16 * MB);
    const client = ferry(['put', `127.0.0.1:${first.port}`, 'orphan.bin', '--limit', '8M', '--timeout', '3']);
    await client.waitFor(progressed(4 * MB));
    first.child.kill('SIGKILL');
    client.child.kill('SIGKILL');
    await Promise.all([first.exited, client.exited]);
    expect((await partialFiles(stale)).length).toBeGreaterThan(0);
    const second = await startServerBin(stale, keyFile, { env, args: ['--partial-ttl', '1s'] });
    await waitUntil(
      'the orphaned partial to be swept',
      async () => ((await partialFiles(stale)).length === 0 ? true : undefined),
      10_000,
    );
    expect(existsSync(join(stale, 'orphan.bin'))).toBe(false);
    second.child.kill('SIGTERM');
    await second.exited;
  }, 60_000);
});
