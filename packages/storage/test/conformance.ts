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
import { FileError, type Storage, type Upload } from '../src/index.js';

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

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof FileError)) throw new Error(`expected a FileError, got ${String(error)}`);
  return error.code;
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
      const upload = await storage.beginUpload(path, {
        size: data.length,
        blockSize: BLOCK,
        overwrite,
        resume: false,
        identity: `test ${path}`,
      });
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
      const upload = await storage.beginUpload('shuffled.bin', {
        size: data.length,
        blockSize: BLOCK,
        overwrite: false,
        resume: false,
        identity: 'x',
      });
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
      const upload = await storage.beginUpload('bad.bin', {
        size: data.length,
        blockSize: BLOCK,
        overwrite: false,
        resume: false,
        identity: 'x',
      });
      await writeAll(upload, data);
      expect(await codeOf(storage.stat('bad.bin'))).toBe('ENOENT');
      expect((await storage.list('')).entries).toEqual([]);
      expect(await codeOf(upload.commit({ sha256: 'ab'.repeat(32), overwrite: false }))).toBe('EINTEGRITY');
      expect(await codeOf(storage.stat('bad.bin'))).toBe('ENOENT');
    });

    it('a commit with blocks missing is refused (EINVAL); a block out of range or of the wrong length too', async () => {
      const data = randomBytes(3 * BLOCK);
      const upload = await storage.beginUpload('gaps.bin', {
        size: data.length,
        blockSize: BLOCK,
        overwrite: false,
        resume: false,
        identity: 'x',
      });
      await writeAll(upload, data, [0, 2]);
      expect(await codeOf(upload.commit({ sha256: sha256(data), overwrite: false }))).toBe('EINVAL');
      expect(await codeOf(upload.write(3, Buffer.alloc(BLOCK)))).toBe('EINVAL');
      expect(await codeOf(upload.write(1, Buffer.alloc(BLOCK - 1)))).toBe('EINVAL');
      await upload.abort({ keep: false });
    });

    it('never replaces a file unless asked: EEXIST up front, and at commit for a file that appeared meanwhile', async () => {
      await put('taken', Buffer.from('first'));
      expect(
        await codeOf(
          storage.beginUpload('taken', {
            size: 1,
            blockSize: BLOCK,
            overwrite: false,
            resume: false,
            identity: 'x',
          }),
        ),
      ).toBe('EEXIST');
      const data = Buffer.from('late');
      const upload = await storage.beginUpload('race', {
        size: data.length,
        blockSize: BLOCK,
        overwrite: false,
        resume: false,
        identity: 'x',
      });
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
      const options = { size: data.length, blockSize: BLOCK, overwrite: false, resume: true, identity: 'me' };
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

    it('an upload abandoned for longer than the expiry is swept; a fresh one is kept', async () => {
      const data = randomBytes(3 * perUnit * BLOCK);
      const count = blockCountFor(data.length, BLOCK);
      const options = { size: data.length, blockSize: BLOCK, overwrite: false, resume: true, identity: 'me' };
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
          storage.beginUpload('contested.bin', {
            size,
            blockSize: BLOCK,
            overwrite: false,
            resume: false,
            identity: `writer ${i}`,
          }),
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
      const pending = await storage.beginUpload('zz-pending', {
        size: 3 * BLOCK,
        blockSize: BLOCK,
        overwrite: false,
        resume: true,
        identity: 'x',
      });
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
      expect(
        await codeOf(
          storage.beginUpload('nowhere/f', {
            size: 1,
            blockSize: BLOCK,
            overwrite: false,
            resume: false,
            identity: 'x',
          }),
        ),
      ).toBe('ENOENT');
      expect(
        await codeOf(
          storage.beginUpload('d', {
            size: 1,
            blockSize: BLOCK,
            overwrite: true,
            resume: false,
            identity: 'x',
          }),
        ),
      ).toBe('EISDIR');
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
        expect(
          await codeOf(
            storage.beginUpload(bad, {
              size: 1,
              blockSize: BLOCK,
              overwrite: true,
              resume: false,
              identity: 'x',
            }),
          ),
          bad,
        ).toBe('EINVAL');
      }
      expect(await codeOf(storage.stat('n'.repeat(256)))).toBe('ENAMETOOLONG');
    });
  });
}
