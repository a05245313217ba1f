import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FileError, type FileSystem, LocalDiskStorage, type UploadOptions } from '../src/index.js';
import { failPartialWritesAfter } from '../src/testing/index.js';
import { codeOf, errorOf } from './file-errors.js';

const BLOCK = 1024;
let base: string; // holds root/ and outside/
let root: string;
let outside: string;
let storage: LocalDiskStorage;

beforeEach(async () => {
  base = await fsp.mkdtemp(join(tmpdir(), 'ferry-storage-'));
  root = join(base, 'root');
  outside = join(base, 'outside');
  await fsp.mkdir(root);
  await fsp.mkdir(outside);
  await fsp.writeFile(join(outside, 'secret.txt'), 'outside the root');
  storage = await openStore(root);
});

afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
  await fsp.chmod(root, 0o755).catch(() => {});
  await fsp.rm(base, { recursive: true, force: true });
});

/** Stores a test opened, closed after it (each holds its root open). */
const opened: LocalDiskStorage[] = [];

async function openStore(...args: Parameters<typeof LocalDiskStorage.open>): Promise<LocalDiskStorage> {
  const store = await LocalDiskStorage.open(...args);
  opened.push(store);
  return store;
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Options of an upload of `size` bytes in blocks of BLOCK: fresh (no resume), replacing nothing, unless `changes` say. */
function uploadOf(size: number, changes: Partial<UploadOptions> = {}): UploadOptions {
  return { size, blockSize: BLOCK, overwrite: false, resume: false, identity: 'x', ...changes };
}

async function put(path: string, data: Buffer, overwrite = false, store = storage): Promise<void> {
  const partial = await store.beginUpload(path, uploadOf(data.length, { overwrite, identity: 'test' }));
  for (let i = 0; i * BLOCK < data.length; i++)
    await partial.write(i, data.subarray(i * BLOCK, (i + 1) * BLOCK));
  await partial.commit({ sha256: sha256(data), overwrite });
}

async function outsideUntouched(): Promise<void> {
  expect(await fsp.readdir(outside)).toEqual(['secret.txt']);
  expect(await fsp.readFile(join(outside, 'secret.txt'), 'utf8')).toBe('outside the root');
}

describe('LocalDiskStorage paths', () => {
  it.each([
    ['..', '..', 'EINVAL'],
    ['../outside/secret.txt', '../outside/secret.txt', 'EINVAL'],
    ['a/../../x', 'a/../../x', 'EINVAL'],
    ['a/./b', 'a/./b', 'EINVAL'],
    ['/etc/passwd', '/etc/passwd', 'EINVAL'],
    ['C:/Windows', 'C:/Windows', 'EINVAL'],
    ['a\\..\\..\\x', 'a\\..\\..\\x', 'EINVAL'],
    ['a//b', 'a//b', 'EINVAL'],
    ['a/', 'a/', 'EINVAL'],
    ['a NUL byte', 'a\0b', 'EINVAL'],
    ['a lone surrogate', 'bad\uD800surrogate', 'EINVAL'],
    ['.ferry-partial-0123', '.ferry-partial-0123', 'EINVAL'],
    ['a 256-byte name', 'x'.repeat(256), 'ENAMETOOLONG'],
    ['a 4097-byte path', `${'d/'.repeat(2048)}x`, 'ENAMETOOLONG'],
  ])('refuses %s with %s for every operation', async (_label, path, code) => {
    expect(await codeOf(() => storage.resolve(path))).toBe(code);
    expect(await codeOf(storage.stat(path))).toBe(code);
    expect(await codeOf(storage.list(path))).toBe(code);
    expect(await codeOf(storage.openRead(path))).toBe(code);
    expect(await codeOf(storage.delete(path))).toBe(code);
    expect(await codeOf(storage.rename(path, 'ok', { overwrite: true }))).toBe(code);
    expect(await codeOf(storage.rename('ok', path, { overwrite: true }))).toBe(code);
    expect(await codeOf(storage.beginUpload(path, uploadOf(1, { overwrite: true })))).toBe(code);
    await outsideUntouched();
  });

  it('accepts names at the limits: 255-byte names, multi-byte Unicode', async () => {
    const name = 'é'.repeat(127); // 254 bytes
    await put(name, Buffer.from('x'));
    expect((await storage.stat(name)).size).toBe(1);
  });

  it('treats %2e%2e as a literal name that stays inside the root', async () => {
    await put('%2e%2e', Buffer.from('literal'));
    expect(await fsp.readFile(join(root, '%2e%2e'), 'utf8')).toBe('literal');
    await fsp.mkdir(join(root, '%2e%2e%2f'));
    await put('%2e%2e%2f/%2e%2e', Buffer.from('nested'));
    expect(await fsp.readFile(join(root, '%2e%2e%2f', '%2e%2e'), 'utf8')).toBe('nested');
    await outsideUntouched();
  });

  it('uses names as given: case, spaces and Unicode preserved', async () => {
    const names = ['Report FINAL.PDF', 'report final.pdf', 'Über Café ☕.txt', '日本語 ファイル'];
    for (const name of names) await put(name, Buffer.from(name));
    const page = await storage.list('');
    expect(page.entries.map((e) => e.name).sort()).toEqual([...names].sort());
    for (const name of names) expect(await fsp.readFile(join(root, name), 'utf8')).toBe(name);
  });
});

describe('LocalDiskStorage symlinks and special files', () => {
  it('refuses a symlink to a file outside the root (e.g. /etc/passwd)', async () => {
    await fsp.symlink('/etc/passwd', join(root, 'passwd'));
    await fsp.symlink(join(outside, 'secret.txt'), join(root, 'secret'));
    for (const name of ['passwd', 'secret']) {
      expect(await codeOf(storage.openRead(name))).toBe('EINVAL');
      expect(await codeOf(storage.stat(name))).toBe('EINVAL');
      const error = await errorOf(storage.beginUpload(name, uploadOf(1, { overwrite: true })));
      expect(error.code).toBe('EINVAL');
      expect(error.message).toMatch(/outside the served directory/);
    }
    const listed = await storage.list('');
    expect(listed.entries.find((e) => e.name === 'secret')).toEqual(
      expect.objectContaining({ type: 'other', size: 0 }),
    );
    // Deleting the link removes the link, never its target.
    await storage.delete('secret');
    expect(existsSync(join(root, 'secret'))).toBe(false);
    await outsideUntouched();
  });

  it('refuses paths through a symlinked directory that leads out of the root', async () => {
    await fsp.symlink(outside, join(root, 'out'));
    expect(await codeOf(storage.list('out'))).toBe('EINVAL');
    expect(await codeOf(storage.stat('out/secret.txt'))).toBe('EINVAL');
    expect(await codeOf(storage.openRead('out/secret.txt'))).toBe('EINVAL');
    expect(await codeOf(storage.delete('out/secret.txt'))).toBe('EINVAL');
    expect(await codeOf(storage.beginUpload('out/new.txt', uploadOf(1, { overwrite: true })))).toBe('EINVAL');
    await fsp.writeFile(join(root, 'mine.txt'), 'mine');
    expect(await codeOf(storage.rename('mine.txt', 'out/mine.txt', { overwrite: true }))).toBe('EINVAL');
    expect(await codeOf(storage.rename('out/secret.txt', 'stolen.txt', { overwrite: true }))).toBe('EINVAL');
    await outsideUntouched();
  });

  it('follows symlinks that stay inside the root', async () => {
    await fsp.mkdir(join(root, 'real'));
    await fsp.writeFile(join(root, 'real', 'f.txt'), 'inside');
    await fsp.symlink('real', join(root, 'alias'));
    await fsp.symlink('real/f.txt', join(root, 'f-link'));
    const source = await storage.openRead('alias/f.txt');
    expect((await source.read(0, BLOCK)).toString()).toBe('inside');
    await source.close();
    expect((await storage.stat('f-link')).type).toBe('file');
    expect((await storage.list('alias')).entries.map((e) => e.name)).toEqual(['f.txt']);
  });

  it('catches a symlink swapped in between the check and the open', async () => {
    await fsp.writeFile(join(root, 'swap.txt'), 'original');
    let swapped = false;
    const lstat = (async (path: string) => {
      const stats = await fsp.lstat(path);
      if (!swapped && path.endsWith('swap.txt')) {
        swapped = true; // An attacker replaces the checked file with a link out of the root.
        await fsp.rm(join(root, 'swap.txt'));
        await fsp.symlink(join(outside, 'secret.txt'), join(root, 'swap.txt'));
      }
      return stats;
    }) as FileSystem['lstat'];
    const racy = await openStore(root, { fs: { lstat } });
    const error = await errorOf(racy.openRead('swap.txt'));
    expect(error.code).toBe('EINVAL');
    expect(swapped).toBe(true);
  });

  it('a symlink swapped in after open does not change what is read, and is reported as a change', async () => {
    const data = Buffer.alloc(3 * BLOCK, 7);
    await fsp.writeFile(join(root, 'f.bin'), data);
    const source = await storage.openRead('f.bin');
    await fsp.rm(join(root, 'f.bin'));
    await fsp.symlink(join(outside, 'secret.txt'), join(root, 'f.bin'));
    expect(await source.read(2, BLOCK)).toEqual(data.subarray(2 * BLOCK));
    expect(await codeOf(source.checkUnchanged())).toBe('EFILECHANGED');
    await source.close();
  });

  it('a put whose directory is swapped for a symlink out of the root lands in the directory it opened', async () => {
    await fsp.mkdir(join(root, 'sub'));
    const data = Buffer.from('payload');
    const upload = await storage.beginUpload('sub/f.txt', uploadOf(data.length, { overwrite: true }));
    await upload.write(0, data);
    await fsp.rename(join(root, 'sub'), join(root, 'sub-moved'));
    await fsp.symlink(outside, join(root, 'sub'));
    await upload.commit({ sha256: sha256(data), overwrite: true });
    await outsideUntouched();
    expect(await fsp.readFile(join(root, 'sub-moved', 'f.txt'))).toEqual(data);
  });

  it('refuses to commit a put whose directory was moved out of the root', async () => {
    await fsp.mkdir(join(root, 'sub'));
    const data = Buffer.from('payload');
    const upload = await storage.beginUpload('sub/f.txt', uploadOf(data.length, { overwrite: true }));
    await upload.write(0, data);
    await fsp.rename(join(root, 'sub'), join(outside, 'sub'));
    const error = await errorOf(upload.commit({ sha256: sha256(data), overwrite: true }));
    expect(error.code).toBe('EINVAL');
    expect(error.message).toMatch(/moved out of the served directory/);
    await upload.abort({ keep: false });
    expect(existsSync(join(outside, 'sub', 'f.txt'))).toBe(false);
  });

  it('refuses FIFOs: no read, no overwrite, no delete; listed as other', async () => {
    execFileSync('mkfifo', [join(root, 'pipe')]);
    const error = await errorOf(storage.openRead('pipe'));
    expect(error.code).toBe('EINVAL');
    expect(error.message).toMatch(/FIFO/);
    expect(await codeOf(storage.beginUpload('pipe', uploadOf(1, { overwrite: true })))).toBe('EINVAL');
    expect(await codeOf(storage.delete('pipe'))).toBe('EINVAL');
    expect(await codeOf(storage.rename('pipe', 'p2', { overwrite: false }))).toBe('EINVAL');
    expect((await storage.stat('pipe')).type).toBe('other');
    expect((await storage.list('')).entries).toEqual([
      expect.objectContaining({ name: 'pipe', type: 'other' }),
    ]);
  });

  it('refuses a device reached through a symlink inside the root only because it leaves the root', async () => {
    await fsp.symlink('/dev/null', join(root, 'null'));
    expect(await codeOf(storage.openRead('null'))).toBe('EINVAL');
  });
});

describe('LocalDiskStorage list', () => {
  it('pages 1,000 files in name order with an opaque cursor, hiding partial files', async () => {
    const names = Array.from({ length: 1000 }, (_, i) => `file-${String(i).padStart(4, '0')}.txt`);
    await Promise.all(names.map((name) => fsp.writeFile(join(root, name), name)));
    await fsp.mkdir(join(root, 'a-dir'));
    await fsp.writeFile(join(root, '.ferry-partial-0123456789abcdef0123456789abcdef'), 'x');
    await fsp.writeFile(join(root, '.ferry-partial-0123456789abcdef0123456789abcdef.state'), '{}');
    // And one partial in progress.
    const partial = await storage.beginUpload('incoming.bin', uploadOf(10));

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await storage.list('', { limit: 100, ...(cursor === undefined ? {} : { cursor }) });
      pages++;
      expect(page.entries.length).toBeLessThanOrEqual(100);
      seen.push(...page.entries.map((e) => e.name));
      cursor = page.next;
    } while (cursor !== undefined);
    expect(pages).toBe(11);
    expect(seen).toEqual(['a-dir', ...names]);
    expect(seen.some((name) => name.startsWith('.ferry-partial-'))).toBe(false);
    const first = (await storage.list('', { limit: 2 })).entries;
    expect(first[0]).toEqual(expect.objectContaining({ name: 'a-dir', type: 'dir', size: 0 }));
    expect(first[1]).toEqual(expect.objectContaining({ name: 'file-0000.txt', type: 'file', size: 13 }));
    expect(typeof first[1]!.mtimeMs).toBe('number');
    await partial.abort({ keep: false });
  });

  it('keeps each page within maxBytes', async () => {
    for (let i = 0; i < 50; i++) await fsp.writeFile(join(root, `${'n'.repeat(100)}-${i}`), '');
    const page = await storage.list('', { limit: 1000, maxBytes: 2000 });
    expect(Buffer.byteLength(JSON.stringify(page.entries))).toBeLessThanOrEqual(2000);
    expect(page.entries.length).toBeGreaterThan(5);
    expect(page.next).toBeDefined();
  });

  it('refuses a cursor that was altered or belongs to another directory', async () => {
    await fsp.mkdir(join(root, 'd'));
    for (const name of ['a', 'b', 'c']) await fsp.writeFile(join(root, name), '');
    const page = await storage.list('', { limit: 1 });
    expect(await codeOf(storage.list('d', { cursor: page.next! }))).toBe('EINVAL');
    expect(await codeOf(storage.list('', { cursor: 'garbage' }))).toBe('EINVAL');
    expect(await codeOf(storage.list('', { limit: 0 }))).toBe('EINVAL');
  });

  it('lists subdirectories; ENOTDIR for a file, ENOENT for nothing', async () => {
    await fsp.mkdir(join(root, 'sub'));
    await fsp.writeFile(join(root, 'sub', 'x'), 'x');
    await fsp.writeFile(join(root, 'file'), 'x');
    expect((await storage.list('sub')).entries.map((e) => e.name)).toEqual(['x']);
    expect(await codeOf(storage.list('file'))).toBe('ENOTDIR');
    expect(await codeOf(storage.list('missing'))).toBe('ENOENT');
  });
});

describe('LocalDiskStorage stat, read and write', () => {
  it('stats the root, directories and files', async () => {
    await fsp.mkdir(join(root, 'd'));
    await fsp.writeFile(join(root, 'd', 'f'), 'hello');
    expect(await storage.stat('')).toEqual(expect.objectContaining({ name: '', type: 'dir' }));
    expect(await storage.stat('d')).toEqual(expect.objectContaining({ name: 'd', type: 'dir' }));
    expect(await storage.stat('d/f')).toEqual(expect.objectContaining({ name: 'f', type: 'file', size: 5 }));
    expect(await codeOf(storage.stat('d/nope'))).toBe('ENOENT');
    const source = await storage.openRead('d/f');
    expect((await storage.stat('d/f')).mtimeMs).toBe(source.mtimeMs); // what a resumed get compares
    await source.close();
    expect(await codeOf(storage.openRead(''))).toBe('EISDIR');
    expect(await codeOf(storage.openRead('d'))).toBe('EISDIR');
  });

  it('puts atomically: EEXIST up front without overwrite, EISDIR for a directory, ENOENT/ENOTDIR for a bad parent', async () => {
    await fsp.writeFile(join(root, 'exists'), 'old');
    await fsp.mkdir(join(root, 'dir'));
    const opts = uploadOf(3);
    expect(await codeOf(storage.beginUpload('exists', opts))).toBe('EEXIST');
    expect(await codeOf(storage.beginUpload('dir', { ...opts, overwrite: true }))).toBe('EISDIR');
    expect(await codeOf(storage.beginUpload('', opts))).toBe('EISDIR');
    expect(await codeOf(storage.beginUpload('missing/f', opts))).toBe('ENOENT');
    expect(await codeOf(storage.beginUpload('exists/f', opts))).toBe('ENOTDIR');
    await put('exists', Buffer.from('new'), true);
    expect(await fsp.readFile(join(root, 'exists'), 'utf8')).toBe('new');
    expect(await fsp.readdir(root)).toEqual(['dir', 'exists']);
  });

  it('a put that loses the race to a file created meanwhile fails with EEXIST and keeps that file', async () => {
    const data = Buffer.from('mine');
    const partial = await storage.beginUpload('race', uploadOf(data.length));
    await partial.write(0, data);
    await fsp.writeFile(join(root, 'race'), 'theirs');
    expect(await codeOf(partial.commit({ sha256: sha256(data), overwrite: false }))).toBe('EEXIST');
    expect(await fsp.readFile(join(root, 'race'), 'utf8')).toBe('theirs');
    await partial.abort({ keep: false });
  });

  it('resumes an interrupted put across a restart for the same identity only', async () => {
    const data = Buffer.alloc(5 * BLOCK, 9);
    const opts = uploadOf(data.length, { resume: true, identity: 'key-a' });
    const first = await storage.beginUpload('big.bin', opts);
    await first.write(0, data.subarray(0, BLOCK));
    await first.write(1, data.subarray(BLOCK, 2 * BLOCK));
    await first.close();

    const restarted = await openStore(root);
    const other = await restarted.beginUpload('big.bin', { ...opts, identity: 'key-b' });
    expect(other.received).toBe(0);
    await other.abort({ keep: false });
    const again = await restarted.beginUpload('big.bin', opts);
    expect(again.have().ranges()).toEqual([[0, 2]]);
    expect(await codeOf(restarted.beginUpload('big.bin', opts))).toBe('EBUSY');
    for (let i = 2; i < 5; i++) await again.write(i, data.subarray(i * BLOCK, (i + 1) * BLOCK));
    await again.commit({ sha256: sha256(data), overwrite: false });
    expect(await fsp.readdir(root)).toEqual(['big.bin']);
  });

  it('disk full mid-put: a clear ENOSPC, no final file, nothing visible in listings', async () => {
    const full = await openStore(root, { fs: failPartialWritesAfter(2 * BLOCK) });
    const data = Buffer.alloc(8 * BLOCK, 1);
    const partial = await full.beginUpload('big.bin', uploadOf(data.length, { resume: true }));
    await partial.write(0, data.subarray(0, BLOCK));
    await partial.write(1, data.subarray(BLOCK, 2 * BLOCK));
    const error = await errorOf(partial.write(2, data.subarray(2 * BLOCK, 3 * BLOCK)));
    expect(error.code).toBe('ENOSPC');
    expect(error.message).toContain('"big.bin"');
    expect(error.message).toMatch(/no space left/);
    expect(error.message).not.toContain(root);
    await partial.abort({ keep: true });
    expect(existsSync(join(root, 'big.bin'))).toBe(false);
    expect((await full.list('')).entries).toEqual([]);
  });
});

describe('LocalDiskStorage rename and delete', () => {
  it('renames without replacing unless asked; never replaces a directory', async () => {
    await fsp.writeFile(join(root, 'a'), 'A');
    await fsp.writeFile(join(root, 'b'), 'B');
    await fsp.mkdir(join(root, 'd'));
    expect(await codeOf(storage.rename('a', 'b', { overwrite: false }))).toBe('EEXIST');
    expect(await fsp.readFile(join(root, 'b'), 'utf8')).toBe('B');
    await storage.rename('a', 'b', { overwrite: true });
    expect(await fsp.readFile(join(root, 'b'), 'utf8')).toBe('A');
    expect(existsSync(join(root, 'a'))).toBe(false);
    expect(await codeOf(storage.rename('b', 'd', { overwrite: true }))).toBe('EISDIR');
    await storage.rename('b', 'd/moved', { overwrite: false });
    expect(await fsp.readFile(join(root, 'd', 'moved'), 'utf8')).toBe('A');
    await storage.rename('d', 'e', { overwrite: false });
    expect(await fsp.readdir(join(root, 'e'))).toEqual(['moved']);
    await storage.rename('e/moved', 'e/moved', { overwrite: false }); // same name: nothing to do
    expect(await codeOf(storage.rename('missing', 'x', { overwrite: false }))).toBe('ENOENT');
    expect(await codeOf(storage.rename('e/moved', 'nope/x', { overwrite: false }))).toBe('ENOENT');
    expect(await codeOf(storage.rename('', 'x', { overwrite: false }))).toBe('EINVAL');
    expect(await codeOf(storage.rename('e/moved', '', { overwrite: false }))).toBe('EINVAL');
  });

  it('deletes files and symlinks, refuses directories and the root', async () => {
    await fsp.writeFile(join(root, 'f'), 'x');
    await fsp.mkdir(join(root, 'd'));
    await storage.delete('f');
    expect(existsSync(join(root, 'f'))).toBe(false);
    const error = await errorOf(storage.delete('d'));
    expect(error.code).toBe('EISDIR');
    expect(error.message).toMatch(/files only/);
    expect(await codeOf(storage.delete(''))).toBe('EISDIR');
    expect(await codeOf(storage.delete('f'))).toBe('ENOENT');
  });
});

describe('LocalDiskStorage partial expiry and a vanishing root', () => {
  it('sweeps expired partials anywhere under the root, keeping fresh ones', async () => {
    let now = 1_700_000_000_000;
    const clocked = await openStore(root, { now: () => now });
    await fsp.mkdir(join(root, 'sub'));
    const opts = uploadOf(3 * BLOCK, { resume: true });
    const keepOne = async (path: string) => {
      const upload = await clocked.beginUpload(path, opts);
      await upload.write(0, Buffer.alloc(BLOCK, 1));
      await upload.close();
    };
    await keepOne('sub/old.bin');
    now += 2 * 3_600_000;
    await keepOne('fresh.bin');
    const removed = await clocked.sweepUploads(3_600_000, now + 1000);
    expect(removed).toHaveLength(2);
    expect(removed.every((path) => path.startsWith(`sub${'/'}.ferry-partial-`))).toBe(true);
    expect(await fsp.readdir(join(root, 'sub'))).toEqual([]);
    expect((await fsp.readdir(root)).filter((n) => n.startsWith('.ferry-partial-'))).toHaveLength(2);
  });

  it('gives typed errors, not crashes, when the root is removed while running', async () => {
    await fsp.writeFile(join(root, 'f'), 'x');
    const source = await storage.openRead('f');
    await fsp.rm(root, { recursive: true, force: true });
    const error = await errorOf(storage.list(''));
    expect(error.code).toBe('ENOENT');
    expect(error.message).toMatch(/served directory no longer exists/);
    expect(await codeOf(storage.stat('f'))).toBe('ENOENT');
    expect(await codeOf(storage.openRead('f'))).toBe('ENOENT');
    expect(await codeOf(storage.delete('f'))).toBe('ENOENT');
    expect(await codeOf(storage.rename('f', 'g', { overwrite: true }))).toBe('ENOENT');
    expect(await codeOf(storage.beginUpload('f', uploadOf(1, { overwrite: true })))).toBe('ENOENT');
    expect(await codeOf(storage.sweepUploads(0))).toBe('ENOENT');
    expect(await codeOf(source.checkUnchanged())).toBe('EFILECHANGED');
    await source.close();
  });

  it('gives EACCES when the root cannot be read', async () => {
    const denied = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    const readdir = (async () => Promise.reject(denied)) as unknown as FileSystem['readdir'];
    const access = (async () => Promise.reject(denied)) as unknown as FileSystem['access'];
    const unreadable = await openStore(root, { fs: { readdir, access } });
    const error = await errorOf(unreadable.list(''));
    expect(error.code).toBe('EACCES');
    expect(error.message).toMatch(/cannot be read/);
  });

  it('gives EACCES when the root is made unreadable (as a non-root user)', async (context) => {
    if (process.getuid?.() === 0) context.skip(); // root reads everything
    await fsp.chmod(root, 0o000);
    expect(await codeOf(storage.list(''))).toBe('EACCES');
  });

  it('refuses to open a root that is missing or not a directory', async () => {
    expect(await codeOf(openStore(join(base, 'nope')))).toBe('ENOENT');
    expect(await codeOf(openStore(join(outside, 'secret.txt')))).toBe('ENOTDIR');
  });
});

describe('LocalDiskStorage space promised to uploads', () => {
  it('admits uploads only while what they all still need fits; a refused one leaves nothing behind', async () => {
    const MiB = 1024 * 1024;
    const statfs = (async () => ({
      bavail: (20 * MiB) / 4096,
      bsize: 4096,
    })) as unknown as FileSystem['statfs'];
    const tight = await openStore(root, { fs: { statfs } });
    const options = (identity: string) => ({
      size: 12 * MiB,
      blockSize: 64 * 1024,
      overwrite: false,
      resume: false,
      identity,
    });
    const first = await tight.beginUpload('a.bin', options('a'));
    const error = await errorOf(tight.beginUpload('b.bin', options('b')));
    expect(error.code).toBe('ENOSPC');
    expect(error.message).toMatch(/promised to transfers in progress/);
    const dataFiles = (await fsp.readdir(root)).filter(
      (n) => n.startsWith('.ferry-partial-') && !n.includes('.state'),
    );
    expect(dataFiles).toHaveLength(1); // the admitted upload's only
    await first.abort({ keep: false });
    const second = await tight.beginUpload('b.bin', options('b'));
    await second.abort({ keep: false });
    await tight.close();
  });
});

describe('LocalDiskStorage where names cannot be reached through directory descriptors', () => {
  const noProc = (async (path: string) => {
    if (path.startsWith('/proc/self/fd/'))
      throw Object.assign(new Error('ENOENT: no /proc'), { code: 'ENOENT' });
    return fsp.stat(path);
  }) as FileSystem['stat'];

  it('refuses to serve (a local user could redirect it by swapping directories), unless allowed', async () => {
    const error = await errorOf(openStore(root, { fs: { stat: noProc } }));
    expect(error.code).toBe('EINVAL');
    expect(error.message).toMatch(/--allow-path-races/);
    const allowed = await openStore(root, { fs: { stat: noProc }, allowPathRaces: true });
    await fsp.writeFile(join(root, 'f.txt'), 'by path');
    expect((await allowed.stat('f.txt')).size).toBe(7);
    await allowed.close();
  });
});

describe('LocalDiskStorage against files a local user plants among the partial files', () => {
  const MiB = 1024 * 1024;
  const options = uploadOf(3 * BLOCK, { resume: true, identity: 'me' });

  /** The names an upload of `name` with `options` uses (data file, sidecar, the sidecar's temp file). */
  async function partialNames(name: string) {
    const upload = await storage.beginUpload(name, options);
    const data = (upload as unknown as { dataName: string }).dataName;
    await upload.abort({ keep: false });
    return { data, state: `${data}.state`, tmp: `${data}.state.tmp` };
  }

  it('a FIFO planted as a sidecar neither hangs the expiry sweep nor a resumed put', async () => {
    const names = await partialNames('f.bin');
    execFileSync('mkfifo', [join(root, names.state)]);
    await fsp.writeFile(join(root, names.data), Buffer.alloc(options.size));
    const old = new Date(Date.now() - 3 * 3_600_000);
    await fsp.utimes(join(root, names.data), old, old);
    await fsp.utimes(join(root, names.state), old, old);
    const upload = await storage.beginUpload('f.bin', options);
    expect(upload.resumed).toBe(false);
    await upload.abort({ keep: false });
    execFileSync('mkfifo', [join(root, names.state)]);
    await fsp.utimes(join(root, names.state), old, old);
    expect((await storage.sweepUploads(3_600_000)).sort()).toEqual([names.state]);
  });

  it('a sidecar temp file hard-linked to a file elsewhere is replaced, never written through', async () => {
    const names = await partialNames('g.bin');
    const upload = await storage.beginUpload('g.bin', options);
    await upload.write(0, Buffer.alloc(BLOCK, 1));
    await upload.persist();
    await fsp.link(join(outside, 'secret.txt'), join(root, names.tmp));
    await upload.write(1, Buffer.alloc(BLOCK, 2));
    await upload.persist();
    await upload.abort({ keep: false });
    await outsideUntouched();
  });

  it('a huge or foreign file planted as a sidecar is not read: the put starts afresh', async () => {
    const names = await partialNames('h.bin');
    await fsp.writeFile(join(root, names.data), Buffer.alloc(options.size));
    const huge = await fsp.open(join(root, names.state), 'w');
    await huge.truncate(64 * MiB);
    await huge.close();
    const upload = await storage.beginUpload('h.bin', options);
    expect(upload.resumed).toBe(false);
    await upload.abort({ keep: false });
  });
});

describe('LocalDiskStorage when its root is removed and something else takes the name', () => {
  it('never serves a symlink put there; a directory of the same owner is served again', async () => {
    await fsp.writeFile(join(outside, 'elsewhere.txt'), 'not the served directory');
    await fsp.rm(root, { recursive: true });
    await fsp.symlink(outside, root);
    expect(await codeOf(storage.stat('elsewhere.txt'))).toBe('ENOENT');
    expect(await codeOf(storage.list(''))).toBe('ENOENT');
    await fsp.rm(root);
    await fsp.mkdir(root);
    await fsp.writeFile(join(root, 'back.txt'), 'back');
    expect((await storage.list('')).entries.map((e) => e.name)).toEqual(['back.txt']);
  });
});

describe('LocalDiskStorage resumes only its own partial files', () => {
  it('a partial data file another user owns is not adopted (it could change it after verification)', async (context) => {
    if (process.getuid?.() !== 0) context.skip(); // only root can give a file away
    const options = uploadOf(3 * BLOCK, { resume: true, identity: 'me' });
    const first = await storage.beginUpload('own.bin', options);
    await first.write(0, Buffer.alloc(BLOCK, 1));
    await first.abort({ keep: true });
    const data = (await fsp.readdir(root)).find(
      (n) => n.startsWith('.ferry-partial-') && !n.includes('.state'),
    )!;
    await fsp.chown(join(root, data), 65534, 65534);
    const again = await storage.beginUpload('own.bin', options);
    expect(again.resumed).toBe(false);
    await again.abort({ keep: false });
  });
});

describe('LocalUpload commit and abort crossing', () => {
  it('an abort that crosses a commit waits for it: the file is placed, nothing fails', async () => {
    const data = Buffer.alloc(3 * BLOCK, 5);
    for (let round = 0; round < 20; round++) {
      const upload = await storage.beginUpload(`x${round}.bin`, uploadOf(data.length));
      for (let b = 0; b < 3; b++) await upload.write(b, data.subarray(b * BLOCK, (b + 1) * BLOCK));
      const [committed] = await Promise.all([
        upload.commit({ sha256: sha256(data), overwrite: false }),
        upload.abort({ keep: false }),
      ]);
      expect(committed.sha256).toBe(sha256(data));
      expect(await fsp.readFile(join(root, `x${round}.bin`))).toEqual(data);
    }
  });
});

describe('LocalDiskStorage and links to its own partial files', () => {
  it('a link inside the root that leads to a partial file is refused, as the partial name itself is', async () => {
    const upload = await storage.beginUpload('p.bin', uploadOf(3 * BLOCK, { resume: true, identity: 'p' }));
    await upload.write(0, Buffer.alloc(BLOCK, 9));
    const data = (await fsp.readdir(root)).find(
      (n) => n.startsWith('.ferry-partial-') && !n.includes('.state'),
    )!;
    await fsp.symlink(data, join(root, 'peek'));
    expect(await codeOf(storage.openRead('peek'))).toBe('EINVAL');
    expect(await codeOf(storage.stat('peek'))).toBe('EINVAL');
    await upload.abort({ keep: false });
  });
});

describe('LocalDiskStorage trees: walk, rmdir, whole files', () => {
  async function walkAll(dir: string, limit = 1000, store = storage): Promise<string[]> {
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10_000; page++) {
      const result = await store.walk(dir, { limit, ...(cursor !== undefined ? { cursor } : {}) });
      seen.push(...result.entries.map((e) => `${e.path}:${e.type}`));
      cursor = result.next;
      if (cursor === undefined) break;
    }
    return seen;
  }

  it('never follows a symbolic link: a link into the tree, out of the root and to itself are entries of type link', async () => {
    await fsp.mkdir(join(root, 'tree', 'sub'), { recursive: true });
    await fsp.writeFile(join(root, 'tree', 'sub', 'f.txt'), 'f');
    await fsp.symlink('sub', join(root, 'tree', 'again'));
    await fsp.symlink(outside, join(root, 'tree', 'away'));
    await fsp.symlink('.', join(root, 'tree', 'sub', 'loop'));
    await fsp.symlink(join(outside, 'secret.txt'), join(root, 'tree', 'secret'));
    expect(await walkAll('tree')).toEqual([
      'again:link',
      'away:link',
      'secret:link',
      'sub:dir',
      'sub/f.txt:file',
      'sub/loop:link',
    ]);
    expect(await walkAll('tree', 1)).toEqual(await walkAll('tree'));
  });

  it('walks no deeper than MAX_WALK_DEPTH levels: deeper is ETOOBIG, not a stack overflow', async () => {
    const levels = Array.from({ length: 257 }, () => 'd');
    await fsp.mkdir(join(root, 'deep', ...levels), { recursive: true });
    expect(await codeOf(walkAll('deep', 50))).toBe('ETOOBIG');
    const fine = Array.from({ length: 255 }, () => 'd');
    await fsp.mkdir(join(root, 'ok', ...fine), { recursive: true });
    expect(await walkAll('ok', 50)).toHaveLength(255);
  });

  it('reads a large directory once for a whole paged walk, not once per page', async () => {
    await fsp.mkdir(join(root, 'wide'));
    for (let i = 0; i < 2000; i++) await fsp.writeFile(join(root, 'wide', `f${i}`), '');
    let reads = 0;
    const counting = await LocalDiskStorage.open(root, {
      fs: {
        readdir: ((...args: Parameters<typeof fsp.readdir>) => {
          reads++;
          return fsp.readdir(...args);
        }) as FileSystem['readdir'],
      },
    });
    try {
      expect(await walkAll('wide', 100, counting)).toHaveLength(2000);
      expect(reads).toBe(1);
    } finally {
      await counting.close();
    }
  });

  it('rmdir refuses a directory an upload is writing into (EBUSY) and a symbolic link to one (ENOTDIR)', async () => {
    await storage.mkdir('busy');
    const upload = await storage.beginUpload('busy/f.bin', uploadOf(3 * BLOCK, { resume: true }));
    await upload.write(0, Buffer.alloc(BLOCK));
    expect(await codeOf(storage.rmdir('busy'))).toBe('EBUSY');
    await upload.abort({ keep: false });
    await fsp.symlink('busy', join(root, 'link'));
    expect(await codeOf(storage.rmdir('link'))).toBe('ENOTDIR');
    await storage.rmdir('busy');
  });

  it('writeFiles replaces a symbolic link itself, never what it points to outside the root', async () => {
    await fsp.symlink(join(outside, 'secret.txt'), join(root, 'link.txt'));
    const data = Buffer.from('new');
    expect(
      await storage.writeFiles([{ path: 'link.txt', data, sha256: sha256(data) }], { overwrite: false }),
    ).toEqual([expect.objectContaining({ code: 'EEXIST' })]);
    expect(
      await storage.writeFiles([{ path: 'link.txt', data, sha256: sha256(data) }], { overwrite: true }),
    ).toEqual([undefined]);
    expect(await fsp.readFile(join(outside, 'secret.txt'), 'utf8')).toBe('outside the root');
    expect((await fsp.lstat(join(root, 'link.txt'))).isFile()).toBe(true);
    expect(await fsp.readFile(join(root, 'link.txt'), 'utf8')).toBe('new');
    expect((await fsp.readdir(root)).filter((n) => n.startsWith('.ferry-partial-'))).toEqual([]);
  });

  it('readFiles follows a link inside the root, refuses one out of it and a FIFO', async () => {
    await fsp.writeFile(join(root, 'real.txt'), 'real');
    await fsp.symlink('real.txt', join(root, 'inside'));
    await fsp.symlink(join(outside, 'secret.txt'), join(root, 'out'));
    execFileSync('mkfifo', [join(root, 'pipe')]);
    const results = await storage.readFiles(['inside', 'out', 'pipe'], { maxBytes: 1000 });
    expect(results[0]).toMatchObject({ data: Buffer.from('real') });
    expect(results.slice(1).map((r) => (r as FileError).code)).toEqual(['EINVAL', 'EINVAL']);
  });
});

describe('LocalDiskStorage as built: small files written on a thread of their own', () => {
  it('gives the same results as on the calling thread: placed, EINTEGRITY, EEXIST, EISDIR, ENOENT', async () => {
    // The worker's script is JavaScript next to the compiled module: this test runs the build (a
    // specifier the type check does not follow, since it runs before the build exists).
    const builtModule = new URL('../dist/index.js', import.meta.url).href;
    const built = (await import(builtModule)) as typeof import('../src/index.js');
    const store = await built.LocalDiskStorage.open(root);
    try {
      await fsp.mkdir(join(root, 'w'));
      await fsp.mkdir(join(root, 'w', 'sub'));
      await fsp.writeFile(join(root, 'w', 'taken'), 'old');
      const threadsBefore = (await fsp.readdir('/proc/self/task')).length;
      const a = Buffer.from('alpha');
      const results = await store.writeFiles(
        [
          { path: 'w/a', data: a, sha256: sha256(a), mtimeMs: 1_600_000_000_000, mode: 0o640 },
          { path: 'w/bad', data: a, sha256: sha256(Buffer.from('other')) },
          { path: 'w/taken', data: a, sha256: sha256(a) },
          { path: 'w/sub', data: a, sha256: sha256(a) },
          { path: 'nowhere/x', data: a, sha256: sha256(a) },
        ],
        { overwrite: false },
      );
      expect(results.map((r) => r?.code)).toEqual([undefined, 'EINTEGRITY', 'EEXIST', 'EISDIR', 'ENOENT']);
      expect(results.every((r) => r === undefined || r instanceof built.FileError)).toBe(true);
      // The writing thread was started for the batch.
      expect((await fsp.readdir('/proc/self/task')).length).toBeGreaterThan(threadsBefore);
      expect(await fsp.readFile(join(root, 'w', 'a'), 'utf8')).toBe('alpha');
      const stats = await fsp.stat(join(root, 'w', 'a'));
      expect([stats.mode & 0o777, stats.mtimeMs]).toEqual([0o640, 1_600_000_000_000]);
      expect(await fsp.readFile(join(root, 'w', 'taken'), 'utf8')).toBe('old');
      expect((await fsp.readdir(join(root, 'w'))).sort()).toEqual(['a', 'sub', 'taken']);
    } finally {
      await store.close();
    }
  });
});

describe('LocalDiskStorage and whole small files a killed process was writing', () => {
  it('removes at once a batch temp file from before the store was opened, keeps a newer one', async () => {
    const orphan = join(root, `.ferry-partial-whole-${'a'.repeat(32)}`);
    await fsp.writeFile(orphan, 'half a small file');
    const before = new Date(Date.now() - 60_000);
    await fsp.utimes(orphan, before, before);
    const store = await openStore(root);
    const fresh = join(root, `.ferry-partial-whole-${'b'.repeat(32)}`);
    await fsp.writeFile(fresh, 'being written now');
    const later = new Date(Date.now() + 5_000);
    await fsp.utimes(fresh, later, later);
    expect(await store.sweepUploads(24 * 3_600_000)).toEqual([`.ferry-partial-whole-${'a'.repeat(32)}`]);
    expect(existsSync(orphan)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
  });
});
