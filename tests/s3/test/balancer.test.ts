/**
 * Two ferry servers sharing one bucket behind nginx's UDP load balancer (the `stream` module,
 * `hash $remote_addr$remote_port consistent`; scripts/nginx): clients reach either through one
 * address, each session stays on one server, and a put broken off on one server resumes on the other.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  ferry,
  randomFile,
  type Sandbox,
  ServerProcess,
  sandbox,
  sha256File,
  spawnFerry,
  waitUntil,
} from '@ferry/e2e-tests';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyPrefix, freshPrefix, type S3TestEnv, s3 } from './s3-env.js';

const runScript = promisify(execFile);
const scripts = fileURLToPath(new URL('../../../scripts/nginx/', import.meta.url));
const MB = 1024 * 1024;

/** nginx's port, or why it cannot run here (the packages are missing; .ci/run installs them). */
async function startBalancer(dir: string, upstreams: number[]): Promise<number | string> {
  try {
    const { stdout } = await runScript(join(scripts, 'start.sh'), [dir, '0', ...upstreams.map(String)], {
      timeout: 30_000,
    });
    return Number(stdout.trim());
  } catch (error) {
    const e = error as { code?: unknown; stderr?: string };
    if (e.code === 3) return e.stderr?.trim() ?? 'nginx is not installed';
    throw error;
  }
}

describe.skipIf(s3 === null)(
  'two ferry servers on one bucket behind nginx (UDP, hash of address and port)',
  () => {
    const env = s3 as S3TestEnv;
    let box: Sandbox;
    let prefix: string;
    let nginxDir: string;
    let servers: ServerProcess[] = [];
    let address = '';
    let missing: string | undefined;

    beforeAll(async () => {
      box = await sandbox();
      prefix = freshPrefix('balanced');
      nginxDir = await mkdtemp(join(tmpdir(), 'ferry-nginx-'));
      const serverEnv = {
        ...box.env,
        AWS_ACCESS_KEY_ID: env.accessKeyId,
        AWS_SECRET_ACCESS_KEY: env.secretAccessKey,
        AWS_REGION: env.region,
      };
      servers = await Promise.all(
        [0, 1].map(() =>
          ServerProcess.start({
            root: box.root,
            storage: `s3://${env.bucket}/${prefix.slice(0, -1)}`,
            keyFile: box.keyFile,
            env: serverEnv,
            args: ['--s3-endpoint', env.endpoint, '--s3-force-path-style'],
          }),
        ),
      );
      const started = await startBalancer(
        nginxDir,
        servers.map((s) => s.port),
      );
      if (typeof started === 'string') {
        missing = started;
        process.stderr.write(`slow-s3: ${missing}\n`);
      } else {
        address = `127.0.0.1:${started}`;
      }
    });

    afterAll(async () => {
      await runScript(join(scripts, 'stop.sh'), [nginxDir]).catch(() => {});
      await rm(nginxDir, { recursive: true, force: true });
      for (const server of servers) await server.stop();
      await emptyPrefix(env, prefix);
    });

    const client = (args: string[], timeoutMs = 120_000) =>
      ferry([...args, '--key', box.keyFile, '--json'], { cwd: box.work, env: box.env, timeoutMs });
    const sessionsOn = (server: ServerProcess): number =>
      server.lines.filter((line) => / session opened /.test(line)).length;

    it('20 clients at once, puts then gets of distinct files: spread over both servers, none lost or corrupted', async () => {
      expect(missing, missing).toBeUndefined();
      const count = 20;
      const names = Array.from({ length: count }, (_, i) => `file-${String(i).padStart(2, '0')}.bin`);
      // A few MiB each, some of one S3 part, some of several (8 MiB parts).
      const digests = await Promise.all(
        names.map((name, i) => randomFile(join(box.work, name), (1 + (i % 5) * 3) * MB + i)),
      );
      const puts = await Promise.all(names.map((name) => client(['put', address, name])));
      for (const [i, put] of puts.entries()) {
        expect(put.code, `${names[i]}: ${put.stderr}`).toBe(0);
        expect(put.events.find((e) => e.type === 'done')).toMatchObject({ sha256: digests[i] });
      }
      const gets = await Promise.all(names.map((name) => client(['get', address, name, `back-${name}`])));
      for (const [i, get] of gets.entries()) {
        expect(get.code, `${names[i]}: ${get.stderr}`).toBe(0);
        expect(await sha256File(join(box.work, `back-${names[i]}`))).toBe(digests[i]);
      }
      const listed = await client(['ls', address]);
      expect(listed.events.filter((e) => e.type === 'entry').map((e) => e.name)).toEqual(names);
      // Each one-shot command is one session, held by one server from its first datagram to its close.
      await waitUntil(
        'both servers to log the 41 sessions',
        () => servers.reduce((n, s) => n + sessionsOn(s), 0) === 2 * count + 1,
      );
      const [a, b] = servers.map(sessionsOn) as [number, number];
      expect(a).toBeGreaterThan(0);
      expect(b).toBeGreaterThan(0);
    }, 300_000);

    it('a put killed after half on one server resumes through the other and lands bit-exact', async () => {
      expect(missing, missing).toBeUndefined();
      const size = 40 * MB + 9;
      const digest = await randomFile(join(box.work, 'halfway.bin'), size);
      const first = spawnFerry(
        ['put', address, 'halfway.bin', '--key', box.keyFile, '--json', '--limit', '16M'],
        {
          cwd: box.work,
          env: box.env,
        },
      );
      await first.waitFor((e) => e.type === 'progress' && Number(e.bytes) >= size / 2, 60_000);
      first.child.kill('SIGKILL');
      expect((await first.exited).signal).toBe('SIGKILL');
      // The server that had the put goes away: the balancer sends the resumed put to the other one.
      const had = servers.findIndex((s) => s.lines.some((line) => / put halfway\.bin /.test(line)));
      expect(had).toBeGreaterThanOrEqual(0);
      const gone = servers[had]!;
      const other = servers[1 - had]!;
      await gone.stop();
      const resumed = await client(['put', address, 'halfway.bin', '--resume']);
      expect(resumed.code, resumed.stderr).toBe(0);
      const done = resumed.events.find((e) => e.type === 'done')!;
      expect(done).toMatchObject({ op: 'put', bytes: size, sha256: digest });
      expect(Number(done.resumedBytes)).toBeGreaterThanOrEqual(8 * MB);
      expect(other.lines.some((line) => /put halfway\.bin .*resuming with \d+ bytes held/.test(line))).toBe(
        true,
      );
      const back = await client(['get', address, 'halfway.bin', 'halfway-back.bin']);
      expect(back.code, back.stderr).toBe(0);
      expect(await sha256File(join(box.work, 'halfway-back.bin'))).toBe(digest);
    }, 300_000);
  },
);
