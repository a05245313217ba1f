/**
 * The conformance suite of the Storage interface: what every store must do, through the interface
 * alone, so that the server behaves the same on any of them. A backend plugs in with one line:
 *
 *   storageConformance('MyStorage', async () => ({ storage: await MyStorage.open(…), cleanup }));
 *
 * A store that keeps interrupted uploads in larger units than blocks (S3: whole parts) says so with
 * `heldUnitBytes`; the resume tests then write and expect whole units, and hold it to exactly those.
 */
import { createHash, randomBytes } from 'node:crypto';
import { blockCountFor } from '@ferry/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FileContent, FileError, type Storage, type Upload, type UploadOptions } from '../src/index.js';
import { codeOf } from './file-errors.js';

export interface StorageFixture {
  /** A store with nothing in it. */
  storage: Storage;
  /** Removes what the test left (called after the store is closed). */
  cleanup(): Promise<void>;
  /**
   * An interrupted upload holds what it received in whole units of this many bytes (a multiple of the
   * suite's 4096-byte block; a file's last unit may be shorter): exactly the units all of whose blocks
   * were written. Default: one block, i.e. exactly the blocks written.
   */
  heldUnitBytes?: number;
}

const BLOCK = 4096;

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Options of an upload of `size` bytes in blocks of BLOCK: fresh (no resume), replacing nothing, unless `changes` say. */
function uploadOf(size: number, changes: Partial<UploadOptions> = {}): UploadOptions {
  return { size, blockSize: BLOCK, overwrite: false, resume: false, identity: 'x', ...changes };
}

async function writeAll(upload: Upload, data: Buffer, blocks?: readonly number[]): Promise<void> {
  const count = blockCountFor(data.length, upload.blockSize);
  const which = blocks ?? Array.from({ length: count }, (_, i) => i);
  await Promise.all(
    which.map((i) => upload.write(i, data.subarray(i * upload.blockSize, (i + 1) * upload.blockSize))),
  );
}

async function readAll(storage: Storage, path: string, blockSize = BLOCK): Promise<Buffer> {
  const file = await storage.openRead(path);
  try {
    const parts: Buffer[] = [];
    for (let i = 0; i < blockCountFor(file.size, blockSize); i++) {
      const block = await file.read(i, blockSize);
      parts.push(Buffer.from(block));
      file.release(block);
    }
    return Buffer.concat(parts);
  } finally {
    await file.close();
  }
}

export function storageConformance(name: string, open: () => Promise<StorageFixture>): void {
  describe(`${name} conforms to the Storage interface`, () => {
    let fixture: StorageFixture;
    let storage: Storage;
    /** Blocks per held unit (see heldUnitBytes), and the blocks of units `units`. */
    let perUnit = 1;
    const unitBlocks = (units: readonly number[], blockCount: number): number[] =>
      units.flatMap((u) =>
        Array.from({ length: perUnit }, (_, i) => u * perUnit + i).filter((b) => b < blockCount),
      );

    beforeEach(async () => {
      fixture = await open();
      storage = fixture.storage;
      const unit = fixture.heldUnitBytes ?? BLOCK;
      if (unit % BLOCK !== 0) throw new Error(`heldUnitBytes must be a multiple of ${BLOCK}`);
      perUnit = unit / BLOCK;
    });

    afterEach(async () => {
      await storage.close();
      await fixture.cleanup();
    });

    /** Stores `data` at `path` through an upload; returns its SHA-256. */
    async function put(path: string, data: Buffer, overwrite = false, mtimeMs?: number): Promise<string> {
      const upload = await storage.beginUpload(
        path,
        uploadOf(data.length, { overwrite, identity: `test ${path}` }),
      );
      await writeAll(upload, data);
      const digest = sha256(data);
      await upload.commit({ sha256: digest, overwrite, ...(mtimeMs !== undefined ? { mtimeMs } : {}) });
      return digest;
    }

    it('an empty store: the root is a directory with nothing in it', async () => {
      expect(await storage.stat('')).toMatchObject({ name: '', type: 'dir' });
      expect(await storage.list('')).toEqual({ entries: [] });
      expect(await storage.writable()).toBe(true);
    });

    it('an upload committed with its SHA-256 appears whole, with its size and modification time', async () => {
      const data = randomBytes(5 * BLOCK + 123);
      const mtimeMs = 1_600_000_000_000;
      const digest = await put('a.bin', data, false, mtimeMs);
      const entry = await storage.stat('a.bin');
      expect(entry).toMatchObject({ name: 'a.bin', type: 'file', size: data.length });
      expect(Math.abs(entry.mtimeMs - mtimeMs)).toBeLessThan(1000);
      expect(await readAll(storage, 'a.bin')).toEqual(data);
      const file = await storage.openRead('a.bin');
      expect(file.size).toBe(data.length);
      expect(await file.sha256()).toBe(digest);
      await file.close();
    });

    it('blocks arrive in any order; reads at any block size give the same bytes', async () => {
      const data = randomBytes(7 * BLOCK + 1);
      const upload = await storage.beginUpload('shuffled.bin', uploadOf(data.length));
      await writeAll(upload, data, [7, 2, 0, 5, 1, 6, 3, 4]);
      await upload.commit({ sha256: sha256(data), overwrite: false });
      expect(await readAll(storage, 'shuffled.bin', 1000)).toEqual(data);
    });

    it('an empty file can be uploaded', async () => {
      await put('empty', Buffer.alloc(0));
      expect(await storage.stat('empty')).toMatchObject({ type: 'file', size: 0 });
      expect(await readAll(storage, 'empty')).toEqual(Buffer.alloc(0));
    });

    it('nothing appears before the commit; a wrong SHA-256 is EINTEGRITY and nothing appears', async () => {
      const data = randomBytes(2 * BLOCK);
      const upload = await storage.beginUpload('bad.bin', uploadOf(data.length));
      await writeAll(upload, data);
      expect(await codeOf(storage.stat('bad.bin'))).toBe('ENOENT');
      expect((await storage.list('')).entries).toEqual([]);
      expect(await codeOf(upload.commit({ sha256: 'ab'.repeat(32), overwrite: false }))).toBe('EINTEGRITY');
      expect(await codeOf(storage.stat('bad.bin'))).toBe('ENOENT');
    });

    it('a commit with blocks missing is refused (EINVAL); a block out of range or of the wrong length too', async () => {
      const data = randomBytes(3 * BLOCK);
      const upload = await storage.beginUpload('gaps.bin', uploadOf(data.length));
      await writeAll(upload, data, [0, 2]);
      expect(await codeOf(upload.commit({ sha256: sha256(data), overwrite: false }))).toBe('EINVAL');
      expect(await codeOf(upload.write(3, Buffer.alloc(BLOCK)))).toBe('EINVAL');
      expect(await codeOf(upload.write(1, Buffer.alloc(BLOCK - 1)))).toBe('EINVAL');
      await upload.abort({ keep: false });
    });

    it('never replaces a file unless asked: EEXIST up front, and at commit for a file that appeared meanwhile', async () => {
      await put('taken', Buffer.from('first'));
      expect(await codeOf(storage.beginUpload('taken', uploadOf(1)))).toBe('EEXIST');
      const data = Buffer.from('late');
      const upload = await storage.beginUpload('race', uploadOf(data.length));
      await writeAll(upload, data);
      await put('race', Buffer.from('someone else'));
      expect(await codeOf(upload.commit({ sha256: sha256(data), overwrite: false }))).toBe('EEXIST');
      expect(await readAll(storage, 'race')).toEqual(Buffer.from('someone else'));
      // The upload is kept: a retry that may overwrite needs no new data.
      await upload.commit({ sha256: sha256(data), overwrite: true });
      expect(await readAll(storage, 'race')).toEqual(data);
      await put('taken', Buffer.from('second'), true);
      expect(await readAll(storage, 'taken')).toEqual(Buffer.from('second'));
    });

    it('an interrupted upload resumes with the blocks it held, for the same identity only', async () => {
      const data = randomBytes(6 * perUnit * BLOCK + 7);
      const count = blockCountFor(data.length, BLOCK);
      const options = uploadOf(data.length, { resume: true, identity: 'me' });
      const first = await storage.beginUpload('resumed.bin', options);
      expect(first.held()).toEqual([]);
      await writeAll(first, data, unitBlocks([0, 1, 2, 5], count));
      await first.persist();
      await first.abort({ keep: true });
      const stranger = await storage.beginUpload('resumed.bin', { ...options, identity: 'someone else' });
      expect(stranger.held()).toEqual([]);
      await stranger.abort({ keep: false });
      const second = await storage.beginUpload('resumed.bin', options);
      expect(second.resumed).toBe(true);
      expect(second.held()).toEqual([
        [0, 3 * perUnit],
        [5 * perUnit, 6 * perUnit],
      ]);
      await writeAll(second, data, unitBlocks([3, 4, 6], count));
      await second.commit({ sha256: sha256(data), overwrite: false });
      // Compared by digest: a failing toEqual of megabytes would drown the report in a diff.
      expect(sha256(await readAll(storage, 'resumed.bin'))).toBe(sha256(data));
      const fresh = await storage.beginUpload('resumed.bin', { ...options, overwrite: true, resume: false });
      expect(fresh.held()).toEqual([]);
      await fresh.abort({ keep: false });
    });

    it('a fresh upload discards what an earlier one of the same file held, and commits whole', async () => {
      const data = randomBytes(3 * perUnit * BLOCK + 5);
      const count = blockCountFor(data.length, BLOCK);
      const options = uploadOf(data.length, { identity: 'me' });
      const earlier = await storage.beginUpload('fresh.bin', { ...options, resume: true });
      await writeAll(earlier, data, unitBlocks([0, 1], count));
      await earlier.persist();
      await earlier.abort({ keep: true });
      // Not resumed: it starts from nothing, and its own blocks are what the commit places.
      const fresh = await storage.beginUpload('fresh.bin', options);
      expect(fresh.held()).toEqual([]);
      await writeAll(fresh, data);
      await fresh.commit({ sha256: sha256(data), overwrite: false });
      expect(sha256(await readAll(storage, 'fresh.bin'))).toBe(sha256(data));
      // Nothing of the earlier upload is left to resume.
      const later = await storage.beginUpload('fresh.bin', { ...options, resume: true, overwrite: true });
      expect(later.held()).toEqual([]);
      await later.abort({ keep: false });
    });

    it('an upload abandoned for longer than the expiry is swept; a fresh one is kept', async () => {
      const data = randomBytes(3 * perUnit * BLOCK);
      const count = blockCountFor(data.length, BLOCK);
      const options = uploadOf(data.length, { resume: true, identity: 'me' });
      const old = await storage.beginUpload('old.bin', options);
      await writeAll(old, data, unitBlocks([0], count));
      await old.abort({ keep: true });
      const later = Date.now() + 10 * 60_000;
      const removed = await storage.sweepUploads(5 * 60_000, later);
      expect(removed.length).toBeGreaterThan(0);
      const again = await storage.beginUpload('old.bin', options);
      expect(again.held()).toEqual([]);
      await writeAll(again, data, unitBlocks([1], count));
      await again.abort({ keep: true });
      expect(await storage.sweepUploads(5 * 60_000)).toEqual([]);
      const kept = await storage.beginUpload('old.bin', options);
      expect(kept.held()).toEqual([[perUnit, 2 * perUnit]]);
      await kept.abort({ keep: false });
    });

    it('two uploads racing for one name: exactly one is placed, the other is EEXIST and replaces nothing', async () => {
      const size = 2 * perUnit * BLOCK + 1;
      const datas = [randomBytes(size), randomBytes(size)];
      const uploads = await Promise.all(
        datas.map((_, i) =>
          storage.beginUpload('contested.bin', uploadOf(size, { identity: `writer ${i}` })),
        ),
      );
      await Promise.all(uploads.map((upload, i) => writeAll(upload, datas[i]!)));
      const outcomes = await Promise.allSettled(
        uploads.map((upload, i) => upload.commit({ sha256: sha256(datas[i]!), overwrite: false })),
      );
      const placed = outcomes.findIndex((o) => o.status === 'fulfilled');
      const refused = outcomes.filter((o) => o.status === 'rejected');
      expect(refused).toHaveLength(1);
      expect(placed).toBeGreaterThanOrEqual(0);
      const reason = (refused[0] as PromiseRejectedResult).reason as FileError;
      expect(reason.code).toBe('EEXIST');
      expect(sha256(await readAll(storage, 'contested.bin'))).toBe(sha256(datas[placed]!));
      await uploads[1 - placed]!.abort({ keep: false });
    });

    it('lists a directory sorted by name, in pages with a cursor, never showing uploads in progress', async () => {
      const names = Array.from({ length: 23 }, (_, i) => `f${String(i).padStart(2, '0')}`);
      for (const n of [...names].reverse()) await put(n, Buffer.from(n));
      const pending = await storage.beginUpload('zz-pending', uploadOf(3 * BLOCK, { resume: true }));
      await pending.write(0, Buffer.alloc(BLOCK));
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 10; page++) {
        const result = await storage.list('', { limit: 10, ...(cursor !== undefined ? { cursor } : {}) });
        expect(result.entries.length).toBeLessThanOrEqual(10);
        seen.push(...result.entries.map((e) => e.name));
        cursor = result.next;
        if (cursor === undefined) break;
      }
      expect(seen).toEqual(names);
      const small = await storage.list('', { maxBytes: 200 });
      expect(small.entries.length).toBeGreaterThan(0);
      expect(small.entries.length).toBeLessThan(names.length);
      expect(small.next).toBeDefined();
      expect(await codeOf(storage.list('', { cursor: 'not a cursor' }))).toBe('EINVAL');
      await pending.abort({ keep: false });
    });

    it('directories: mkdir, mkdir with parents, files inside, listed as dir; errors for what is not there', async () => {
      await storage.mkdir('d');
      expect(await codeOf(storage.mkdir('d'))).toBe('EEXIST');
      await storage.mkdir('d', { parents: true });
      await storage.mkdir('x/y/z', { parents: true });
      expect(await codeOf(storage.mkdir('p/q'))).toBe('ENOENT');
      await put('d/in.txt', Buffer.from('inside'));
      await put('x/y/z/deep.txt', Buffer.from('deep'));
      expect((await storage.list('')).entries.map((e) => [e.name, e.type])).toEqual([
        ['d', 'dir'],
        ['x', 'dir'],
      ]);
      expect((await storage.list('d')).entries.map((e) => e.name)).toEqual(['in.txt']);
      expect(await readAll(storage, 'x/y/z/deep.txt')).toEqual(Buffer.from('deep'));
      expect((await storage.stat('x/y')).type).toBe('dir');
      expect(await codeOf(storage.list('nowhere'))).toBe('ENOENT');
      expect(await codeOf(storage.list('d/in.txt'))).toBe('ENOTDIR');
      expect(await codeOf(storage.openRead('d'))).toBe('EISDIR');
      expect(await codeOf(storage.openRead('missing'))).toBe('ENOENT');
      expect(await codeOf(storage.beginUpload('nowhere/f', uploadOf(1)))).toBe('ENOENT');
      expect(await codeOf(storage.beginUpload('d', uploadOf(1, { overwrite: true })))).toBe('EISDIR');
    });

    it('rename never replaces unless asked, moves across directories, and keeps the data', async () => {
      await put('one', Buffer.from('1'));
      await put('two', Buffer.from('2'));
      await storage.mkdir('sub');
      expect(await codeOf(storage.rename('one', 'two', { overwrite: false }))).toBe('EEXIST');
      expect(await readAll(storage, 'two')).toEqual(Buffer.from('2'));
      await storage.rename('one', 'sub/one', { overwrite: false });
      expect(await codeOf(storage.stat('one'))).toBe('ENOENT');
      expect(await readAll(storage, 'sub/one')).toEqual(Buffer.from('1'));
      await storage.rename('sub/one', 'two', { overwrite: true });
      expect(await readAll(storage, 'two')).toEqual(Buffer.from('1'));
      expect(await codeOf(storage.rename('missing', 'x', { overwrite: false }))).toBe('ENOENT');
      expect(await codeOf(storage.rename('two', 'sub', { overwrite: true }))).toBe('EISDIR');
    });

    it('delete removes a file; a missing file is ENOENT, a directory EISDIR', async () => {
      await put('gone', Buffer.from('x'));
      await storage.mkdir('dir');
      await storage.delete('gone');
      expect(await codeOf(storage.stat('gone'))).toBe('ENOENT');
      expect(await codeOf(storage.delete('gone'))).toBe('ENOENT');
      expect(await codeOf(storage.delete('dir'))).toBe('EISDIR');
      expect(await codeOf(storage.delete(''))).toBe('EISDIR');
    });

    it('a file replaced while it is read is reported (EFILECHANGED), not sent half old, half new', async () => {
      await put('moving.bin', randomBytes(3 * BLOCK));
      const file = await storage.openRead('moving.bin');
      await file.read(0, BLOCK);
      await put('moving.bin', randomBytes(3 * BLOCK), true);
      expect(await codeOf(file.sha256())).toBe('EFILECHANGED');
      await file.close();
    });

    it('rmdir removes an empty directory only: ENOTEMPTY, ENOTDIR, ENOENT, and never the root', async () => {
      await storage.mkdir('empty');
      await storage.rmdir('empty');
      expect(await codeOf(storage.stat('empty'))).toBe('ENOENT');
      expect(await codeOf(storage.rmdir('empty'))).toBe('ENOENT');
      await storage.mkdir('full/inner', { parents: true });
      expect(await codeOf(storage.rmdir('full'))).toBe('ENOTEMPTY');
      await put('full/inner/f', Buffer.from('x'));
      expect(await codeOf(storage.rmdir('full/inner'))).toBe('ENOTEMPTY');
      expect(await codeOf(storage.rmdir('full/inner/f'))).toBe('ENOTDIR');
      expect(await codeOf(storage.rmdir(''))).toBe('EINVAL');
      expect((await storage.stat('full/inner')).type).toBe('dir');
      await storage.delete('full/inner/f');
      await storage.rmdir('full/inner');
      await storage.rmdir('full');
      expect((await storage.list('')).entries).toEqual([]);
    });

    it('an upload abandoned in a directory does not keep rmdir from removing it', async () => {
      await storage.mkdir('left');
      const upload = await storage.beginUpload('left/partial.bin', uploadOf(3 * BLOCK, { resume: true }));
      await upload.write(0, Buffer.alloc(BLOCK));
      await upload.abort({ keep: true });
      expect((await storage.list('left')).entries).toEqual([]);
      await storage.rmdir('left');
      expect(await codeOf(storage.stat('left'))).toBe('ENOENT');
    });

    it('mkdir gives a new directory the permission bits asked for, where the store keeps them', async () => {
      await storage.mkdir('private', { mode: 0o700 });
      await storage.mkdir('a/b/shared', { parents: true, mode: 0o755 });
      const { entries } = await storage.walk('');
      const modes = Object.fromEntries(entries.map((e) => [e.path, e.mode]));
      if (modes.private !== undefined) {
        expect(modes.private).toBe(0o700);
        expect(modes['a/b/shared']).toBe(0o755);
      }
    });

    it('walk lists a whole tree in pre-order (a directory before its contents, empty ones too), in pages that resume', async () => {
      await storage.mkdir('t/b/empty', { parents: true });
      await storage.mkdir('t/a', { parents: true });
      await put('t/a/2.txt', Buffer.from('22'));
      await put('t/a/1.txt', Buffer.from('1'));
      await put('t/b/x', Buffer.from('xxx'));
      await put('t/top.txt', Buffer.from('top'));
      await put('outside.txt', Buffer.from('not in t'));
      const pending = await storage.beginUpload('t/a/zz-pending', uploadOf(3 * BLOCK, { resume: true }));
      await pending.write(0, Buffer.alloc(BLOCK));
      const expected = [
        ['a', 'dir', 0],
        ['a/1.txt', 'file', 1],
        ['a/2.txt', 'file', 2],
        ['b', 'dir', 0],
        ['b/empty', 'dir', 0],
        ['b/x', 'file', 3],
        ['top.txt', 'file', 3],
      ];
      const whole = await storage.walk('t');
      expect(whole.next).toBeUndefined();
      expect(whole.entries.map((e) => [e.path, e.type, e.type === 'file' ? e.size : 0])).toEqual(expected);
      for (const limit of [1, 2, 3]) {
        const seen: string[] = [];
        let cursor: string | undefined;
        for (let page = 0; page < 20; page++) {
          const result = await storage.walk('t', { limit, ...(cursor !== undefined ? { cursor } : {}) });
          expect(result.entries.length).toBeLessThanOrEqual(limit);
          seen.push(...result.entries.map((e) => e.path));
          cursor = result.next;
          if (cursor === undefined) break;
        }
        expect(seen, `limit ${limit}`).toEqual(expected.map(([p]) => p));
      }
      const small = await storage.walk('t', { maxBytes: 300 });
      expect(small.entries.length).toBeGreaterThan(0);
      expect(small.entries.length).toBeLessThan(expected.length);
      expect(Buffer.byteLength(JSON.stringify(small))).toBeLessThanOrEqual(300);
      expect(small.next).toBeDefined();
      expect((await storage.walk('')).entries.map((e) => e.path)).toContain('t/b/x');
      expect(await codeOf(storage.walk('t', { cursor: 'bm90IGEgY3Vyc29y' }))).toBe('EINVAL');
      expect(await codeOf(storage.walk('t/b', { cursor: small.next! }))).toBe('EINVAL');
      expect(await codeOf(storage.walk('t/top.txt'))).toBe('ENOTDIR');
      expect(await codeOf(storage.walk('nowhere'))).toBe('ENOENT');
      await pending.abort({ keep: false });
    });

    it('a walk goes on after a page whose last directory was removed meanwhile, never repeating an entry', async () => {
      await storage.mkdir('w/a', { parents: true });
      await storage.mkdir('w/b', { parents: true });
      await put('w/a/f', Buffer.from('f'));
      await put('w/b/g', Buffer.from('g'));
      const first = await storage.walk('w', { limit: 1 });
      expect(first.entries.map((e) => e.path)).toEqual(['a']);
      await storage.delete('w/a/f');
      await storage.rmdir('w/a');
      const rest: string[] = [];
      let cursor = first.next;
      for (let page = 0; page < 10 && cursor !== undefined; page++) {
        const result = await storage.walk('w', { limit: 1, cursor });
        rest.push(...result.entries.map((e) => e.path));
        cursor = result.next;
      }
      expect(rest).toEqual(['b', 'b/g']);
    });

    it('writeFiles stores small files whole, each verified and never replacing unless asked; one result per file', async () => {
      await storage.mkdir('batch');
      await put('batch/taken', Buffer.from('old'));
      await storage.mkdir('batch/dir');
      const a = Buffer.from('alpha');
      const b = randomBytes(3 * BLOCK + 5);
      const results = await storage.writeFiles(
        [
          { path: 'batch/a.txt', data: a, sha256: sha256(a), mtimeMs: 1_600_000_000_000, mode: 0o640 },
          { path: 'batch/b.bin', data: b, sha256: sha256(b) },
          { path: 'batch/bad', data: a, sha256: sha256(b) },
          { path: 'batch/taken', data: a, sha256: sha256(a) },
          { path: 'batch/dir', data: a, sha256: sha256(a) },
          { path: 'missing/c', data: a, sha256: sha256(a) },
          { path: 'batch/empty', data: Buffer.alloc(0), sha256: sha256(Buffer.alloc(0)) },
          { path: '../escape', data: a, sha256: sha256(a) },
        ],
        { overwrite: false },
      );
      expect(results.map((r) => r?.code)).toEqual([
        undefined,
        undefined,
        'EINTEGRITY',
        'EEXIST',
        'EISDIR',
        'ENOENT',
        undefined,
        'EINVAL',
      ]);
      expect(await readAll(storage, 'batch/a.txt')).toEqual(a);
      expect(await readAll(storage, 'batch/b.bin')).toEqual(b);
      expect(await readAll(storage, 'batch/taken')).toEqual(Buffer.from('old'));
      expect(await codeOf(storage.stat('batch/bad'))).toBe('ENOENT');
      const entry = await storage.stat('batch/a.txt');
      expect(Math.abs(entry.mtimeMs - 1_600_000_000_000)).toBeLessThan(1000);
      const mode = (await storage.walk('batch')).entries.find((e) => e.path === 'a.txt')?.mode;
      if (mode !== undefined) expect(mode).toBe(0o640);
      expect((await storage.list('batch')).entries.map((e) => e.name)).toEqual([
        'a.txt',
        'b.bin',
        'dir',
        'empty',
        'taken',
      ]);
      const again = await storage.writeFiles([{ path: 'batch/taken', data: a, sha256: sha256(a) }], {
        overwrite: true,
      });
      expect(again).toEqual([undefined]);
      expect(await readAll(storage, 'batch/taken')).toEqual(a);
    });

    it('readFiles reads small files whole within a byte budget, one result per path', async () => {
      const one = randomBytes(1000);
      const two = randomBytes(2000);
      await storage.mkdir('r');
      await put('r/one', one, false, 1_600_000_000_000);
      await put('r/two', two);
      await put('r/three', randomBytes(10));
      const results = await storage.readFiles(['r/one', 'r', 'r/none', 'r/two', 'r/one', 'r/three'], {
        maxBytes: 3015,
      });
      // Taken in order: the second 'one' would go over the budget, the 10 bytes after it still fit.
      const codes = results.map((r) => (r instanceof FileError ? r.code : 'ok'));
      expect(codes).toEqual(['ok', 'EISDIR', 'ENOENT', 'ok', 'ETOOBIG', 'ok']);
      const first = results[0] as FileContent;
      expect(first.data).toEqual(one);
      expect(Math.abs(first.mtimeMs - 1_600_000_000_000)).toBeLessThan(1000);
      expect((results[3] as FileContent).data).toEqual(two);
    });

    it('refuses paths that are not plain relative names (EINVAL), or too long (ENAMETOOLONG)', async () => {
      for (const bad of [
        '../x',
        'a/../b',
        '/etc/passwd',
        'a//b',
        'a/',
        './a',
        'a\\b',
        'x\0y',
        '.ferry-partial-1',
      ]) {
        expect(await codeOf(storage.stat(bad)), bad).toBe('EINVAL');
        expect(await codeOf(storage.beginUpload(bad, uploadOf(1, { overwrite: true }))), bad).toBe('EINVAL');
      }
      expect(await codeOf(storage.stat('n'.repeat(256)))).toBe('ENAMETOOLONG');
    });
  });
}
