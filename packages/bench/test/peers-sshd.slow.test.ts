import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitUntil } from '@ferry/e2e-tests/wait';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SSHD_PATH, startSshd } from '../src/peers/sshd.js';
import {
  PEER_TOOLS,
  type PeerTool,
  peerInvocation,
  peerUnavailable,
  runPeerTransfer,
} from '../src/peers/tools.js';
import { alive } from './alive.js';

const here = dirname(fileURLToPath(import.meta.url));
const NO_SSHD = existsSync(SSHD_PATH) ? undefined : `${SSHD_PATH} is not installed (openssh-server)`;
if (NO_SSHD) console.warn(`peers-sshd tests skipped: ${NO_SSHD}`);

const sha256 = async (path: string) =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');

/** Runs a peer command as the bench does; resolves with its exit code and stderr. */
function run(
  tool: PeerTool,
  op: 'put' | 'get',
  client: Parameters<typeof peerInvocation>[2],
  l: string,
  r: string,
) {
  const inv = peerInvocation(tool, op, client, l, r);
  return new Promise<{ code: number | null; stderr: string }>((resolvePromise) => {
    const child = execFile(inv.file, inv.args, { timeout: 60_000 }, (error, _stdout, stderr) =>
      resolvePromise({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stderr }),
    );
    child.stdin!.end(inv.input ?? '');
  });
}

/** Whether a TCP connect to 127.0.0.1:port succeeds. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolvePromise(true);
    });
    socket.once('error', () => resolvePromise(false));
  });
}

describe('throwaway sshd for the scp / sftp / rsync peers', () => {
  let dir: string;
  beforeAll(async () => {
    // A space in the path: sshd_config, ssh -o values and rsync -e all split on spaces unless quoted.
    dir = await mkdtemp(join(tmpdir(), 'ferry bench sshd-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('serves scp both ways on 127.0.0.1 with its own keys (SHA-256 intact) and is gone after stop()', async (ctx) => {
    if (NO_SSHD) ctx.skip(NO_SSHD);
    const sshd = await startSshd(join(dir, 'sshd-a'));
    const files = join(dir, 'files-a');
    await mkdir(files);
    try {
      expect(alive(sshd.pid)).toBe(true);
      expect(await accepts(sshd.port)).toBe(true);
      const original = join(files, 'small.bin');
      await writeFile(original, randomBytes(200_000));
      const expected = await sha256(original);

      const up = await run('scp', 'put', sshd.client, original, join(files, 'uploaded.bin'));
      expect(up, up.stderr).toMatchObject({ code: 0 });
      expect(await sha256(join(files, 'uploaded.bin'))).toBe(expected);

      const down = await run('scp', 'get', sshd.client, join(files, 'downloaded.bin'), original);
      expect(down, down.stderr).toMatchObject({ code: 0 });
      expect(await sha256(join(files, 'downloaded.bin'))).toBe(expected);
    } finally {
      await sshd.stop();
    }
    expect(alive(sshd.pid)).toBe(false);
    expect(await accepts(sshd.port)).toBe(false);
  }, 60_000);

  it('moves a file both ways with sftp and rsync too, and flags a SHA-256 mismatch', async (ctx) => {
    if (NO_SSHD) ctx.skip(NO_SSHD);
    const sshd = await startSshd(join(dir, 'sshd-b'));
    const files = join(dir, 'files-b');
    await mkdir(files);
    try {
      const path = join(files, 'source.bin');
      await writeFile(path, randomBytes(300_000));
      const source = { path, size: 300_000, sha256: await sha256(path), remote: path };
      const spec = { source, client: sshd.client, remoteDir: files, localDir: files, timeoutMs: 60_000 };
      const tools = PEER_TOOLS.filter((tool) => peerUnavailable(tool) === undefined);
      expect(tools).toContain('sftp');
      for (const tool of tools) {
        for (const op of ['put', 'get'] as const) {
          const r = await runPeerTransfer({ ...spec, tool, op });
          expect(r, `${tool} ${op}: ${r.error}`).toMatchObject({ ok: true, bytes: 300_000 });
          expect(r.wallSeconds).toBeGreaterThan(0);
        }
      }
      const wrong = { ...source, sha256: '0'.repeat(64) };
      const bad = await runPeerTransfer({ ...spec, source: wrong, tool: 'scp', op: 'get' });
      expect(bad).toMatchObject({ ok: false, failure: 'integrity' });
      expect(bad.error).toMatch(/SHA-256 MISMATCH/);
    } finally {
      await sshd.stop();
    }
  }, 90_000);

  it('stops sshd when the process that started it gets SIGINT', async (ctx) => {
    if (NO_SSHD) ctx.skip(NO_SSHD);
    const module = resolve(here, '../dist/peers/sshd.js');
    if (!existsSync(module))
      throw new Error(`not built: ${module} — run \`pnpm --filter @ferry/bench build\``);
    // A stand-in for the bench: starts sshd, says its pid, then waits to be interrupted.
    const script = `
      const { startSshd } = await import(${JSON.stringify(module)});
      const sshd = await startSshd(${JSON.stringify(join(dir, 'sshd-c'))});
      process.stdout.write('sshd ' + sshd.pid + '\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((r) =>
      child.once('close', (_code, signal) => r(signal)),
    );
    let pid: number | undefined;
    try {
      pid = await waitUntil('the sshd pid', () => {
        const m = /sshd (\d+)/.exec(out);
        if (!m && child.exitCode !== null)
          throw new Error(`the starting process exited ${child.exitCode}: ${out}`);
        return m ? Number(m[1]) : undefined;
      });
      expect(alive(pid)).toBe(true);
      child.kill('SIGINT');
      expect(await exited).toBe('SIGINT');
      const started = pid;
      await waitUntil(`sshd ${started} to exit`, () => !alive(started));
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
    }
  }, 60_000);
});
