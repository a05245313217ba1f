import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FileError, type FileSystem, LocalFile, sha256File } from '../src/index.js';
import { faultyFileSystem, systemError } from '../src/testing/index.js';
import { expectCode } from './file-errors.js';

let dir: string;

beforeEach(async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), 'ferry-source-'));
});

afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A file system counting positional reads; `failNext` makes the next read fail with EIO. */
function countingReads(): { fs: Partial<FileSystem>; reads: () => number; failNext: () => void } {
  let reads = 0;
  let fail = false;
  const fs = faultyFileSystem(
    () => true,
    (real) => ({
      read: ((...args: Parameters<FileHandle['read']>) => {
        reads++;
        if (fail) {
          fail = false;
          return Promise.reject(systemError('EIO', 'read'));
        }
        return (real.read as (...a: unknown[]) => ReturnType<FileHandle['read']>)(...args);
      }) as FileHandle['read'],
    }),
  );
  return {
    fs,
    reads: () => reads,
    failNext: () => {
      fail = true;
    },
  };
}

async function writeSample(name: string, length: number): Promise<{ path: string; data: Buffer }> {
  const data = Buffer.alloc(length);
  for (let i = 0; i < length; i++) data[i] = (i * 31 + 7) & 0xff;
  const path = join(dir, name);
  await fsp.writeFile(path, data);
  return { path, data };
}

describe('FileBlockSource', () => {
  it('reads blocks into fresh buffers, the last one short', async () => {
    const { path, data } = await writeSample('a.bin', 2500);
    const source = await LocalFile.open(path);
    expect(source.size).toBe(2500);
    const b0 = await source.read(0, 1000);
    const b0again = await source.read(0, 1000);
    expect(b0).toEqual(data.subarray(0, 1000));
    expect(b0again).not.toBe(b0);
    expect(await source.read(2, 1000)).toEqual(data.subarray(2000));
    await expectCode(source.read(3, 1000), 'EINVAL');
    await expectCode(source.read(0, 0), 'EINVAL');
    await source.close();
  });

  it('hashes in-order reads as they happen instead of reading the file again', async () => {
    const { path, data } = await writeSample('a.bin', 5 * 4096 + 1);
    let reads = 0;
    const fs = faultyFileSystem(
      () => true,
      (real) => ({
        read: ((...args: Parameters<FileHandle['read']>) => {
          reads++;
          return (real.read as (...a: unknown[]) => ReturnType<FileHandle['read']>)(...args);
        }) as FileHandle['read'],
      }),
    );
    const source = await LocalFile.open(path, { fs });
    for (let i = 0; i < 6; i++) await source.read(i, 4096);
    const readsBefore = reads;
    const progress: number[] = [];
    expect(await source.sha256((done) => progress.push(done))).toBe(sha256(data));
    expect(reads).toBe(readsBefore);
    expect(progress.at(-1)).toBe(data.length);
    await source.close();
  });

  it('sha256 reads what was not read yet, with progress, and matches the file', async () => {
    const { path, data } = await writeSample('b.bin', 3 * 1024 * 1024 + 5);
    const source = await LocalFile.open(path);
    await source.read(1, 4096); // out of order: does not advance the hash
    const progress: Array<[number, number]> = [];
    expect(await source.sha256((done, total) => progress.push([done, total]))).toBe(sha256(data));
    expect(progress.length).toBeGreaterThanOrEqual(4);
    expect(progress.at(-1)).toEqual([data.length, data.length]);
    await source.close();
    expect(await sha256File(path)).toBe(sha256(data));
  });

  it('handles an empty file', async () => {
    const { path } = await writeSample('empty', 0);
    const source = await LocalFile.open(path);
    expect(source.size).toBe(0);
    await expectCode(source.read(0, 1024), 'EINVAL');
    expect(await source.sha256()).toBe(sha256(Buffer.alloc(0)));
    await source.close();
  });

  it('reports EFILECHANGED when the file is modified, truncated or replaced', async () => {
    const { path } = await writeSample('c.bin', 4096);
    const appended = await LocalFile.open(path);
    await fsp.appendFile(path, 'more');
    await expectCode(appended.checkUnchanged(), 'EFILECHANGED');
    await appended.close();

    const truncated = await LocalFile.open(path);
    await fsp.truncate(path, 100);
    await expectCode(truncated.read(1, 1024), 'EFILECHANGED');
    await truncated.close();

    const replaced = await LocalFile.open(path);
    await fsp.writeFile(join(dir, 'new.bin'), Buffer.alloc(100));
    await fsp.rename(join(dir, 'new.bin'), path);
    const error = await expectCode(replaced.checkUnchanged(), 'EFILECHANGED');
    expect(error.message).toContain('c.bin');
    await replaced.close();

    const removed = await LocalFile.open(path);
    await fsp.unlink(path);
    await expectCode(removed.checkUnchanged(), 'EFILECHANGED');
    await removed.close();
  });

  it('refuses directories (EISDIR), FIFOs and devices (EINVAL) without blocking', async () => {
    await expectCode(LocalFile.open(dir), 'EISDIR');
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const error = await expectCode(LocalFile.open(fifo), 'EINVAL');
    expect(error.message).toMatch(/FIFO/);
    await expectCode(LocalFile.open('/dev/null'), 'EINVAL');
    await expectCode(LocalFile.open(join(dir, 'missing')), 'ENOENT');
  });

  it("follows a symlink to the caller's own file", async () => {
    const path = join(dir, 'f.bin');
    await fsp.writeFile(path, Buffer.alloc(10));
    await fsp.symlink(path, join(dir, 'link'));
    const followed = await LocalFile.open(join(dir, 'link'));
    expect(followed.size).toBe(10);
    await followed.close();
  });

  it('names the file as told in messages', async () => {
    const error = await expectCode(
      LocalFile.open(join(dir, 'nope'), { displayName: '"docs/nope"' }),
      'ENOENT',
    );
    expect(error.message).toContain('"docs/nope"');
    expect(error.message).not.toContain(dir);
  });

  it('reads whole chunks, once for all concurrent requests of a chunk, for blocks asked in order', async () => {
    const { path, data } = await writeSample('big.bin', 3 * 1024 * 1024 + 5);
    const counter = countingReads();
    const source = await LocalFile.open(path, { fs: counter.fs });
    const count = Math.ceil(data.length / 4096);
    const blocks = await Promise.all(Array.from({ length: count }, (_, i) => source.read(i, 4096)));
    expect(counter.reads()).toBe(4); // 1 MiB chunks
    expect(Buffer.concat(blocks).equals(data)).toBe(true);
    // Every block was hashed as its chunk arrived: the digest needs no further reads.
    expect(await source.sha256()).toBe(sha256(data));
    expect(counter.reads()).toBe(4);
    await source.close();
  });

  it('hands out views into its chunks (no copy per block) that keep their bytes after eviction', async () => {
    const { path, data } = await writeSample('a.bin', 6 * 1024 * 1024);
    const source = await LocalFile.open(path);
    for (const blockSize of [1120, 32 * 1024]) {
      const first = await source.read(3, blockSize);
      // A view into a shared chunk buffer, not a fresh allocation of one block.
      expect(first.buffer.byteLength).toBeGreaterThan(blockSize);
      // Reading far enough to evict that chunk leaves the view's bytes intact (it was not released).
      for (let b = 0; b < 6 * 1024 * 1024; b += 1024 * 1024)
        await source.read(Math.floor(b / blockSize), blockSize);
      expect(first).toEqual(data.subarray(3 * blockSize, 4 * blockSize));
    }
    await source.close();
  });

  it("reuses a chunk's memory only once every block read from it was released and it left the cache", async () => {
    const { path, data } = await writeSample('pool.bin', 12 * 1024 * 1024);
    const source = await LocalFile.open(path);
    const blockSize = 4096;
    const perChunk = (1024 * 1024) / blockSize;
    const expected = (b: number): Buffer => data.subarray(b * blockSize, (b + 1) * blockSize);
    const chunk0 = await Promise.all(Array.from({ length: perChunk }, (_, b) => source.read(b, blockSize)));
    const held = chunk0.pop()!;
    for (const block of chunk0) source.release(block);
    // Chunk 0 leaves the cache, but one of its blocks is still out: its memory must not be reused.
    const later: Buffer[] = [];
    for (let c = 1; c < 6; c++) later.push(await source.read(c * perChunk, blockSize));
    expect(later.every((block) => block.buffer !== held.buffer)).toBe(true);
    expect(held.equals(expected(perChunk - 1))).toBe(true);
    // Once it comes back, a later chunk is read into that memory, with the right bytes.
    source.release(held);
    source.release(held); // a second release of the same block changes nothing
    const reused: Buffer[] = [];
    for (let c = 6; c < 12; c++) {
      const block = await source.read(c * perChunk, blockSize);
      expect(block.equals(expected(c * perChunk))).toBe(true);
      reused.push(block);
    }
    expect(reused.some((block) => block.buffer === held.buffer)).toBe(true);
    // Blocks of the chunks read after it were never released: none of them was overwritten.
    for (const [k, block] of later.entries()) expect(block.equals(expected((k + 1) * perChunk))).toBe(true);
    expect(await source.sha256()).toBe(sha256(data));
    await source.close();
  });

  it('serves whole blocks after a change of block size, even from a chunk recycled across it', async () => {
    const { path, data } = await writeSample('resize.bin', 6 * 1024 * 1024);
    const source = await LocalFile.open(path);
    const held = await source.read(0, 1120); // a chunk of 1120-byte blocks, with a block still out
    const big = 32 * 1024;
    await source.read(0, big); // a new block size: the old chunk leaves the cache
    source.release(held); // ... and its memory comes back, sized for the old block size
    for (let b = 0; b < (6 * 1024 * 1024) / big; b++) {
      const block = await source.read(b, big);
      expect(block.length, `block ${b}`).toBe(big);
      expect(block.equals(data.subarray(b * big, (b + 1) * big))).toBe(true);
      source.release(block);
    }
    await source.close();
  });

  it('returns the right bytes for any access order, block size and concurrency as chunks are evicted', async () => {
    // 6.5 MiB: more chunks than the cache holds, so random access keeps evicting and rereading.
    const { path, data } = await writeSample('random.bin', 6.5 * 1024 * 1024 + 3);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(700, 1000, 1120, 4096, 32 * 1024, 400_000, 1024 * 1024, 3 * 1024 * 1024),
        fc.array(fc.nat(), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 60 }),
        async (blockSize, picks, parallel, releases) => {
          const source = await LocalFile.open(path);
          const count = Math.ceil(data.length / blockSize);
          const order = picks.map((p) => p % count);
          const expected = (b: number): Buffer =>
            data.subarray(b * blockSize, Math.min(data.length, (b + 1) * blockSize));
          // Some blocks go back to the source at once (their memory may be reused), others are kept.
          const kept: Array<[number, Buffer]> = [];
          for (let i = 0; i < order.length; i += parallel) {
            const batch = order.slice(i, i + parallel);
            const blocks = await Promise.all(batch.map((b) => source.read(b, blockSize)));
            blocks.forEach((block, k) => {
              const b = batch[k]!;
              expect(block.equals(expected(b))).toBe(true);
              if (releases[(i + k) % releases.length]) source.release(block);
              else kept.push([b, block]);
            });
          }
          for (const [b, block] of kept) expect(block.equals(expected(b))).toBe(true);
          expect(await source.sha256()).toBe(sha256(data));
          await source.close();
        },
      ),
      { numRuns: 40 },
    );
  });

  it('does not keep a failed chunk read: the next request reads again', async () => {
    const { path, data } = await writeSample('a.bin', 10_000);
    const counter = countingReads();
    const source = await LocalFile.open(path, { fs: counter.fs });
    counter.failNext();
    const [failed, alsoFailed] = await Promise.allSettled([source.read(0, 1000), source.read(1, 1000)]);
    expect(failed.status).toBe('rejected');
    expect(alsoFailed.status).toBe('rejected'); // shared the failed read
    expect(((failed as PromiseRejectedResult).reason as FileError).code).toBe('EIO');
    expect(await source.read(1, 1000)).toEqual(data.subarray(1000, 2000));
    expect(counter.reads()).toBe(2);
    expect(await source.sha256()).toBe(sha256(data));
    await source.close();
  });
});
