/**
 * ferry-server serving a bucket of a real S3 (Ceph RGW): start-up errors, a session's requests, a put
 * broken off on one server and resumed through another, and the server's memory during a large put.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ferry,
  randomFile,
  run,
  type Sandbox,
  SERVER_BIN,
  ServerProcess,
  sandbox,
  sha256File,
  spawnFerry,
} from '@ferry/e2e-tests';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyPrefix, freshPrefix, keysUnder, type S3TestEnv, s3 } from './s3-env.js';

const MB = 1024 * 1024;

describe.skipIf(s3 === null)('ferry-server --storage s3://… on Ceph RGW', () => {
  const env = s3 as S3TestEnv;
  let box: Sandbox;
  let serverEnv: NodeJS.ProcessEnv;
  let prefix: string;
  const servers: ServerProcess[] = [];

  const s3Args = (): string[] => ['--s3-endpoint', env.endpoint, '--s3-force-path-style'];
  async function startServer(): Promise<ServerProcess> {
    const server = await ServerProcess.start({
      root: box.root,
      storage: `s3://${env.bucket}/${prefix.slice(0, -1)}`,
      keyFile: box.keyFile,
      env: serverEnv,
      args: s3Args(),
    });
    servers.push(server);
    return server;
  }
  const client = (args: string[], timeoutMs = 60_000) =>
    ferry([...args, '--key', box.keyFile, '--json'], { cwd: box.work, env: box.env, timeoutMs });

  beforeAll(async () => {
    box = await sandbox();
    prefix = freshPrefix('server');
    serverEnv = {
      ...box.env,
      AWS_ACCESS_KEY_ID: env.accessKeyId,
      AWS_SECRET_ACCESS_KEY: env.secretAccessKey,
      AWS_REGION: env.region,
    };
  });

  afterAll(async () => {
    for (const server of servers) await server.stop();
    await emptyPrefix(env, prefix);
  }, 300_000);

  it('start-up problems are one line: exit 2 for a missing bucket or refused credentials, 6 for an unreachable endpoint', async () => {
    const cases: Array<{ args: string[]; env: NodeJS.ProcessEnv; code: number; says: RegExp }> = [
      {
        args: ['--storage', 's3://no-such-bucket', ...s3Args()],
        env: serverEnv,
        code: 2,
        says: /the bucket no-such-bucket does not exist/,
      },
      {
        args: ['--storage', `s3://${env.bucket}`, ...s3Args()],
        env: { ...serverEnv, AWS_SECRET_ACCESS_KEY: 'not-the-secret' },
        code: 2,
        says: /refused access to the bucket.*AWS_ACCESS_KEY_ID/,
      },
      {
        // A port nothing listens on (the discard port; connections are refused on loopback).
        args: [
          '--storage',
          `s3://${env.bucket}`,
          '--s3-endpoint',
          'http://127.0.0.1:9',
          '--s3-force-path-style',
        ],
        env: serverEnv,
        code: 6,
        says: /cannot reach http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\)/,
      },
    ];
    for (const c of cases) {
      const r = await run(SERVER_BIN, ['0', '--key', box.keyFile, ...c.args], {
        env: c.env,
        timeoutMs: 60_000,
      });
      expect(r.code, r.stderr).toBe(c.code);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(/^ferry-server: serving s3:\/\//);
      expect(r.stderr).toMatch(c.says);
    }
  }, 300_000);

  it('serves the bucket: put, ls without ferry’s hidden objects, get bit-exact, rename, delete', async () => {
    const server = await startServer();
    expect(server.lines[0]).toMatch(
      new RegExp(`serving s3://${env.bucket}/server-\\w+ at ${env.endpoint} on udp://`),
    );
    const digest = await randomFile(join(box.work, 'twenty.bin'), 20 * MB + 3);
    const put = await client(['put', server.address, 'twenty.bin']);
    expect(put.code, put.stderr).toBe(0);
    expect(put.events.find((e) => e.type === 'done')).toMatchObject({ sha256: digest });
    const listed = await client(['ls', server.address]);
    expect(listed.events.filter((e) => e.type === 'entry').map((e) => e.name)).toEqual(['twenty.bin']);
    // Only the file itself is in the bucket once the put is done: no staging object, lock or upload left.
    expect(await keysUnder(env, prefix)).toEqual([`${prefix}twenty.bin`]);
    const got = await client(['get', server.address, 'twenty.bin', 'back.bin']);
    expect(got.code, got.stderr).toBe(0);
    expect(await sha256File(join(box.work, 'back.bin'))).toBe(digest);
    expect((await client(['rename', server.address, 'twenty.bin', 'renamed.bin'])).code).toBe(0);
    expect((await client(['delete', server.address, 'renamed.bin'])).code).toBe(0);
    expect(await keysUnder(env, prefix)).toEqual([]);
  }, 300_000);

  it('a put broken off on one server resumes through another sharing the bucket, and lands bit-exact', async () => {
    const [a, b] = [await startServer(), await startServer()];
    const size = 40 * MB + 5;
    const digest = await randomFile(join(box.work, 'moved.bin'), size);
    // A rate cap keeps the upload going long enough to be killed in the middle.
    const first = spawnFerry(
      ['put', a.address, 'moved.bin', '--key', box.keyFile, '--json', '--limit', '16M'],
      {
        cwd: box.work,
        env: box.env,
      },
    );
    await first.waitFor((e) => e.type === 'progress' && Number(e.bytes) >= size / 2, 60_000);
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    const listing = await client(['ls', b.address]);
    expect(listing.events.filter((e) => e.type === 'entry').map((e) => e.name)).not.toContain('moved.bin');

    const resumed = await client(['put', b.address, 'moved.bin', '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const done = resumed.events.find((e) => e.type === 'done')!;
    expect(done).toMatchObject({ op: 'put', bytes: size, sha256: digest });
    // What server A had stored as whole parts was not sent again.
    expect(Number(done.resumedBytes)).toBeGreaterThanOrEqual(8 * MB);
    expect(Number(done.transferred)).toBeLessThan(size);
    const back = await client(['get', a.address, 'moved.bin', 'moved-back.bin']);
    expect(back.code, back.stderr).toBe(0);
    expect(await sha256File(join(box.work, 'moved-back.bin'))).toBe(digest);
  }, 300_000);

  it('a 1 GiB put keeps the server within 200 MB of memory (parts go out as they fill, never the whole file)', async () => {
    const server = await startServer();
    const size = 1024 * MB;
    const digest = await randomFile(join(box.work, 'gib.bin'), size);
    const put = spawnFerry(['put', server.address, 'gib.bin', '--key', box.keyFile, '--json'], {
      cwd: box.work,
      env: box.env,
    });
    let peakKb = 0;
    let finished = false;
    const exited = put.exited.finally(() => {
      finished = true;
    });
    const deadline = Date.now() + 300_000;
    while (!finished && Date.now() < deadline) {
      const status = await readFile(`/proc/${server.child.pid}/status`, 'utf8');
      peakKb = Math.max(peakKb, Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const result = await exited;
    expect(result.code, result.stderr).toBe(0);
    const done = await put.waitFor((e) => e.type === 'done');
    expect(done).toMatchObject({ bytes: size, sha256: digest });
    process.stderr.write(
      `slow-s3: server RSS peak during a 1 GiB put: ${(peakKb / 1024).toFixed(0)} MiB (${((peakKb * 1024) / 1e6).toFixed(0)} MB)\n`,
    );
    // The target is 200 MB (10^6 bytes).
    expect(peakKb * 1024).toBeLessThanOrEqual(200e6);
  }, 400_000);
});
