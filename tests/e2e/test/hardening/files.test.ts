import { execFileSync } from 'node:child_process';
import { existsSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryServer, type FerryServerOptions } from '@ferry/server-cli';
import { failPartialWritesAfter } from '@ferry/storage/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChildServer,
  type Client,
  codeOf,
  connectClient,
  HOST,
  MB,
  mountTmpfs,
  newKey,
  onCleanup,
  partialFiles,
  randomFile,
  sha256File,
  type TestKey,
  tempDir,
  within,
} from './helpers.js';

/**
 * The served directory under attack by key holders, over the wire: paths that try to leave the root,
 * symlinks leading out (also swapped in during a transfer), special files, a disk that fills up
 * during a put, and a root that disappears or becomes unreadable while the server runs.
 *
 * The server and the client run in this process, so a change made synchronously in a progress
 * callback (a directory swapped, a disk filled) is complete before the transfer moves on.
 */

async function serve(
  root: string,
  key: TestKey,
  extra: Partial<FerryServerOptions> = {},
): Promise<FerryServer> {
  const server = new FerryServer({ root, port: 0, host: HOST, keys: [key], ...extra });
  onCleanup(() => server.close(0));
  return server;
}

let dir: string;
let root: string;
let outside: string;
let work: string;
let key: TestKey;
let server: FerryServer;
let client: Client;
const SECRET = 'outside the root: never served, never written\n';

/** What lies outside the root must be exactly as it was. */
async function outsideUntouched(): Promise<void> {
  expect((await readdir(outside)).sort()).toEqual(['secret.txt', 'sub']);
  expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe(SECRET);
  expect(await readdir(join(outside, 'sub'))).toEqual([]);
  expect((await readdir(dir)).sort()).toEqual(['outside', 'root', 'work']);
}

beforeAll(async () => {
  dir = await tempDir();
  root = join(dir, 'root');
  outside = join(dir, 'outside');
  work = join(dir, 'work');
  await mkdir(root);
  await mkdir(join(outside, 'sub'), { recursive: true });
  await mkdir(work);
  await writeFile(join(outside, 'secret.txt'), SECRET);
  await writeFile(join(root, 'inside.txt'), 'inside\n');
  await writeFile(join(work, 'small.txt'), 'small\n');
  key = newKey();
  server = await serve(root, key);
  const { port } = await server.listen();
  client = await connectClient({ port, key: key.key });
});

afterAll(async () => {
  await outsideUntouched();
});

describe('paths that try to leave the root', () => {
  const escapes = [
    '..',
    '../secret.txt',
    '../outside/secret.txt',
    'a/../../outside/secret.txt',
    'a/./b',
    './inside.txt',
    '/etc/passwd',
    `/${'x'}`,
    'C:/Windows',
    '..\\outside\\secret.txt',
    'a\\..\\..\\x',
    'inside.txt/',
    'a//b',
    'nul\0byte',
    '.ferry-partial-0123456789abcdef0123456789abcdef',
  ];

  it('are refused with EINVAL by get, put, stat, list, rename and delete, and nothing outside is touched', async () => {
    for (const path of escapes) {
      const local = join(work, 'never.bin');
      expect(await codeOf(client.stat(path)), `stat ${JSON.stringify(path)}`).toBe('EINVAL');
      expect(await codeOf(client.get(path, local)), `get ${JSON.stringify(path)}`).toBe('EINVAL');
      expect(
        await codeOf(client.put(join(work, 'small.txt'), path, { overwrite: true })),
        `put ${path}`,
      ).toBe('EINVAL');
      expect(await codeOf(client.list(path)), `list ${JSON.stringify(path)}`).toMatch(/^(EINVAL|ENOTDIR)$/);
      expect(await codeOf(client.delete(path)), `delete ${JSON.stringify(path)}`).toBe('EINVAL');
      expect(await codeOf(client.rename('inside.txt', path)), `rename to ${JSON.stringify(path)}`).toBe(
        'EINVAL',
      );
      expect(await codeOf(client.rename(path, 'moved.txt')), `rename ${JSON.stringify(path)}`).toBe('EINVAL');
      expect(existsSync(local)).toBe(false);
    }
    expect(await codeOf(client.stat('x'.repeat(256)))).toBe('ENAMETOOLONG');
    expect(await codeOf(client.stat('a/'.repeat(2100)))).toMatch(/^(ENAMETOOLONG|EINVAL)$/);
    expect((await readdir(root)).sort()).toEqual(['inside.txt']);
    await outsideUntouched();
  });

  it('percent-encoded dots are an ordinary name inside the root, never a parent directory', async () => {
    expect(await codeOf(client.get('%2e%2e%2fsecret.txt', join(work, 'pct.bin')))).toBe('ENOENT');
    expect(await codeOf(client.get('%2e%2e/secret.txt', join(work, 'pct.bin')))).toBe('ENOENT');
    await client.put(join(work, 'small.txt'), '%2e%2e%2fescaped.txt');
    expect((await readdir(root)).sort()).toEqual(['%2e%2e%2fescaped.txt', 'inside.txt']);
    await client.delete('%2e%2e%2fescaped.txt');
    await outsideUntouched();
  });
});

describe('symlinks and special files', () => {
  beforeAll(async () => {
    await symlink(outside, join(root, 'out-dir'));
    await symlink(join(outside, 'secret.txt'), join(root, 'out-file'));
    await symlink('../outside/secret.txt', join(root, 'out-relative'));
    await symlink('/dev/null', join(root, 'null'));
    await symlink('inside.txt', join(root, 'in-link'));
    execFileSync('mkfifo', [join(root, 'fifo')]);
  });

  it('a symlink leading out of the root is neither read, listed through, written through nor renamed into', async () => {
    for (const path of ['out-file', 'out-relative', 'out-dir/secret.txt', 'null']) {
      expect(await codeOf(client.get(path, join(work, 'leak.bin'))), `get ${path}`).toBe('EINVAL');
      expect(existsSync(join(work, 'leak.bin'))).toBe(false);
    }
    expect(await codeOf(client.list('out-dir'))).toBe('EINVAL');
    expect(await codeOf(client.stat('out-dir/secret.txt'))).toBe('EINVAL');
    expect(await codeOf(client.put(join(work, 'small.txt'), 'out-dir/planted.txt'))).toBe('EINVAL');
    expect(await codeOf(client.put(join(work, 'small.txt'), 'out-dir/sub/planted.txt'))).toBe('EINVAL');
    expect(await codeOf(client.put(join(work, 'small.txt'), 'out-file', { overwrite: true }))).toBe('EINVAL');
    expect(await codeOf(client.rename('inside.txt', 'out-dir/moved.txt'))).toBe('EINVAL');
    // A symlink that stays inside is followed; one that leads out is listed as "other".
    expect(await readFile(join(work, 'small.txt'), 'utf8')).toBe('small\n');
    const got = await client.get('in-link', join(work, 'in-link.txt'));
    expect(got.size).toBe(7);
    const listed = Object.fromEntries((await client.list()).map((e) => [e.name, e.type]));
    expect(listed).toMatchObject({
      'out-dir': 'other',
      'out-file': 'other',
      null: 'other',
      'in-link': 'file',
    });
    await outsideUntouched();
  });

  it('a FIFO and a device are refused at once (no hang), and never replaced or deleted', async () => {
    const specials = ['fifo'];
    try {
      execFileSync('mknod', [join(root, 'zero'), 'c', '1', '5'], { stdio: 'pipe' });
      specials.push('zero');
    } catch (error) {
      console.log(`device part skipped: cannot mknod here (${(error as Error).message.split('\n')[0]})`);
    }
    try {
      for (const path of specials) {
        // A FIFO opened for reading would block for ever: any bound tells the refusal from a hang.
        expect(await within(`get ${path}`, 30_000, codeOf(client.get(path, join(work, `${path}.bin`))))).toBe(
          'EINVAL',
        );
        expect((await client.stat(path)).type).toBe('other');
        expect(
          await codeOf(client.put(join(work, 'small.txt'), path, { overwrite: true })),
          `put over ${path}`,
        ).toBe('EINVAL');
        expect(await codeOf(client.delete(path)), `delete ${path}`).toBe('EINVAL');
        expect(existsSync(join(work, `${path}.bin`))).toBe(false);
      }
      // The server is as good as before.
      expect((await client.stat('inside.txt')).size).toBe(7);
    } finally {
      await rm(join(root, 'zero'), { force: true });
    }
  });

  it('a directory swapped for a symlink out of the root during a put: the file lands in the directory opened, nothing goes outside', async () => {
    await mkdir(join(root, 'drop'));
    const size = 16 * MB;
    const digest = await randomFile(join(work, 'swap.bin'), size);
    let swapped = false;
    const put = client.put(join(work, 'swap.bin'), 'drop/swap.bin', {
      onProgress: (p) => {
        if (swapped || p.phase !== 'transferring' || p.bytes < 2 * MB) return;
        swapped = true;
        // Between progress reports: the directory moves away and a symlink out takes its name.
        renameSync(join(root, 'drop'), join(root, 'drop-moved'));
        symlinkSync(join(outside, 'sub'), join(root, 'drop'));
      },
    });
    const result = await within('the put', 60_000, put);
    expect(swapped).toBe(true);
    expect(result.sha256).toBe(digest);
    // Everything (data, progress sidecar, the final file) went through the descriptor of the directory
    // the put opened, which is still inside the root under its new name.
    expect(await readdir(join(outside, 'sub'))).toEqual([]);
    expect(await sha256File(join(root, 'drop-moved', 'swap.bin'))).toBe(digest);
    await rm(join(root, 'drop'));
    await rm(join(root, 'drop-moved'), { recursive: true });
    await outsideUntouched();
  });

  it('a file swapped for a symlink out of the root during a get: the client never receives outside bytes', async () => {
    const size = 24 * MB;
    const digest = await randomFile(join(root, 'swap-get.bin'), size);
    const local = join(work, 'swap-get.bin');
    let swapped = false;
    const got = client.get('swap-get.bin', local, {
      onProgress: (p) => {
        if (swapped || p.phase !== 'transferring' || p.bytes < 1 * MB) return;
        swapped = true;
        renameSync(join(root, 'swap-get.bin'), join(root, 'swap-get.old'));
        symlinkSync(join(outside, 'secret.txt'), join(root, 'swap-get.bin'));
      },
    });
    const outcome = await within(
      'the get',
      60_000,
      got.then(
        (r) => r.sha256,
        (e: { code?: string }) => e.code,
      ),
    );
    expect(swapped).toBe(true);
    // Either the whole original file (read from the descriptor opened before the swap), or a refusal.
    expect([digest, 'EFILECHANGED']).toContain(outcome);
    if (outcome === digest) expect(await sha256File(local)).toBe(digest);
    else expect(existsSync(local)).toBe(false);
    // The symlink itself is refused from now on.
    expect(await codeOf(client.get('swap-get.bin', join(work, 'again.bin')))).toBe('EINVAL');
    await rm(join(root, 'swap-get.bin'));
    await rm(join(root, 'swap-get.old'));
    await outsideUntouched();
  });
});

describe('a disk that fills up during a put', () => {
  it('simulated (writes fail with ENOSPC after 3 MiB): the client gets ENOSPC at once, nothing appears, the session goes on', async () => {
    const full = join(dir, 'work', 'full-root');
    await mkdir(full);
    const fullServer = await serve(full, key, { localStorage: { fs: failPartialWritesAfter(3 * MB) } });
    const { port } = await fullServer.listen();
    // A client that sent into a transfer that no longer takes blocks would wait out its idle timeout:
    // that is made far longer than the bound below, so meeting the bound means it was told at once.
    const c = await connectClient({ port, key: key.key, idleTimeoutMs: 600_000 });
    const digest = await randomFile(join(work, 'big-put.bin'), 8 * MB);
    const started = Date.now();
    const error = await within(
      'the put',
      90_000,
      c.put(join(work, 'big-put.bin'), 'big.bin').then(
        () => undefined,
        (e: { code?: string; message?: string }) => e,
      ),
    );
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `ENOSPC (simulated): the client got ${error?.code} after ${seconds.toFixed(1)} s: ${error?.message}`,
    );
    expect(error?.code).toBe('ENOSPC');
    expect(error?.message).toMatch(/no space left/);
    expect(error?.message).not.toContain(full); // never the server's own paths
    expect(await c.list()).toEqual([]);
    expect(existsSync(join(full, 'big.bin'))).toBe(false);
    expect(c.closed).toBe(false);
    expect((await c.stat('')).type).toBe('dir');
    await c.close();
    await fullServer.close(0);
    await rm(full, { recursive: true });
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a real 4 MiB tmpfs: refused up front when too big, ENOSPC mid-put when filled meanwhile, resumable once there is room', async (context) => {
    const mountPoint = join(await tempDir(), 'tmpfs');
    await mkdir(mountPoint);
    mountTmpfs(mountPoint, '4m', context);
    const small = await serve(mountPoint, key);
    const { port } = await small.listen();
    // Rate-limited, so that the disk fills while the put is under way.
    const c = await connectClient({ port, key: key.key, rateLimit: 2 * MB });
    // Too big for the free space: refused before a byte moves.
    await randomFile(join(work, 'too-big.bin'), 6 * MB);
    expect(await codeOf(c.put(join(work, 'too-big.bin'), 'too-big.bin'))).toBe('ENOSPC');
    // Fits when it starts; then another writer takes the room.
    const digest = await randomFile(join(work, 'fits.bin'), 3 * MB);
    let filled = false;
    const put = c.put(join(work, 'fits.bin'), 'fits.bin', {
      onProgress: (p) => {
        if (filled || p.phase !== 'transferring' || p.bytes < 256 * 1024) return;
        filled = true;
        try {
          writeFileSync(join(mountPoint, 'filler'), Buffer.alloc(4 * MB));
        } catch {
          // ENOSPC: the filler took what room there was, which is the point
        }
      },
    });
    const code = await within('the put', 60_000, codeOf(put));
    console.log(`ENOSPC (tmpfs): the client got ${code}`);
    expect(code).toBe('ENOSPC');
    expect((await c.list()).map((e) => e.name)).toEqual(['filler']);
    expect(existsSync(join(mountPoint, 'fits.bin'))).toBe(false);
    // Room again: the put resumes and completes, bit-exact; no partial file is left.
    await rm(join(mountPoint, 'filler'));
    const resumed = await within(
      'the resumed put',
      60_000,
      c.put(join(work, 'fits.bin'), 'fits.bin', { resume: true }),
    );
    expect(resumed.sha256).toBe(digest);
    expect(await sha256File(join(mountPoint, 'fits.bin'))).toBe(digest);
    expect(await partialFiles(mountPoint)).toEqual([]);
    await c.close();
    await small.close(0);
  });
});

describe('the root removed or made unreadable while the server runs', () => {
  it('removed: every request gets a clear ENOENT saying so; the server stays up and serves it again once it is back', async () => {
    const gone = join(dir, 'work', 'gone-root');
    await mkdir(gone);
    await writeFile(join(gone, 'a.txt'), 'a\n');
    const s = await serve(gone, key);
    const { port } = await s.listen();
    const c = await connectClient({ port, key: key.key });
    expect((await c.list()).map((e) => e.name)).toEqual(['a.txt']);
    await rm(gone, { recursive: true });
    for (const request of [
      () => c.list(),
      () => c.stat('a.txt'),
      () => c.get('a.txt', join(work, 'gone-a.txt')),
      () => c.put(join(work, 'small.txt'), 'b.txt'),
      () => c.delete('a.txt'),
    ]) {
      const error = await request().then(
        () => undefined,
        (e: { code?: string; message?: string }) => e,
      );
      expect(error?.code).toBe('ENOENT');
      expect(error?.message).toMatch(/served directory no longer exists/);
    }
    expect(c.closed).toBe(false);
    await mkdir(gone);
    await writeFile(join(gone, 'back.txt'), 'back\n');
    expect((await c.list()).map((e) => e.name)).toEqual(['back.txt']);
    await c.close();
    await s.close(0);
  });

  it('unreadable (server running as an unprivileged user): clear EACCES errors, no crash', async (context) => {
    if (process.getuid?.() !== 0) {
      console.log('skipped: needs root to run the server as another user');
      context.skip();
    }
    const parent = await tempDir();
    await chmod(parent, 0o755); // the unprivileged server must reach its root
    const locked = join(parent, 'locked-root');
    await mkdir(locked);
    await writeFile(join(locked, 'a.txt'), 'a\n');
    execFileSync('chown', ['-R', '65534:65534', locked]);
    const child = await ChildServer.start({ root: locked, keys: [key], uid: 65534, gid: 65534 }).catch(
      (error: Error) => error,
    );
    if (child instanceof Error) {
      console.log(`skipped: cannot start the server as uid 65534 (${child.message.split('\n')[0]})`);
      context.skip();
      return;
    }
    const c = await connectClient({ port: child.port, key: key.key });
    expect((await c.list()).map((e) => e.name)).toEqual(['a.txt']);
    await chmod(locked, 0o000);
    try {
      for (const request of [
        () => c.list(),
        () => c.stat('a.txt'),
        () => c.get('a.txt', join(work, 'locked-a.txt')),
      ]) {
        const error = await request().then(
          () => undefined,
          (e: { code?: string; message?: string }) => e,
        );
        expect(error?.code).toBe('EACCES');
        expect(error?.message).toMatch(/permission denied/);
      }
      expect(await codeOf(c.put(join(work, 'small.txt'), 'b.txt'))).toBe('EACCES');
      expect(child.alive).toBe(true);
    } finally {
      await chmod(locked, 0o755);
    }
    expect((await c.list()).map((e) => e.name)).toEqual(['a.txt']);
    await c.close();
    await child.close();
    await rm(locked, { recursive: true });
  });
});

describe('no partial files are left behind', () => {
  it('after all of the above, the root holds no partial file', async () => {
    expect(await partialFiles(root)).toEqual([]);
  });
});
