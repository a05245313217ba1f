import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileError, type FileSystem, LocalUpload } from '../src/index.js';
import { Dir } from '../src/local/beneath.js';
import { withFileSystem } from '../src/local/fs.js';
import { sweepPartials } from '../src/local/sweep.js';
import { failPartialWritesAfter, faultyFileSystem, systemError } from '../src/testing/index.js';
import { expectCode } from './file-errors.js';

/** What a test opens an upload with: a final path instead of a directory held open and a name. */
interface PartialOptions {
  finalPath: string;
  size: number;
  blockSize: number;
  identity: string;
  resume: boolean;
  fs?: Partial<FileSystem>;
  now?: () => number;
  persistEveryBytes?: number;
  persistEveryMs?: number;
  inUse?: Set<string>;
}

/** Directories the uploads of a test held: a test that simulates a crash never closes its upload. */
const held: Dir[] = [];

async function openPartial(o: PartialOptions): Promise<LocalUpload> {
  const fs = withFileSystem(o.fs);
  const holder = await Dir.open(fs, dirname(o.finalPath), { owned: true });
  held.push(holder);
  return LocalUpload.open({
    fs,
    dir: holder,
    name: basename(o.finalPath),
    displayName: basename(o.finalPath),
    size: o.size,
    blockSize: o.blockSize,
    identity: o.identity,
    resume: o.resume,
    ...(o.now !== undefined ? { now: o.now } : {}),
    ...(o.persistEveryBytes !== undefined ? { persistEveryBytes: o.persistEveryBytes } : {}),
    ...(o.persistEveryMs !== undefined ? { persistEveryMs: o.persistEveryMs } : {}),
    ...(o.inUse !== undefined ? { inUse: o.inUse } : {}),
  });
}

/** Where an upload's partial data file and sidecar are. */
function partialPaths(upload: LocalUpload, where = dir): { data: string; state: string } {
  return { data: join(where, upload.dataName), state: join(where, `${upload.dataName}.state`) };
}

const BLOCK = 1024;
let dir: string;

beforeEach(async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), 'ferry-partial-'));
});

afterEach(async () => {
  for (const holder of held.splice(0)) await holder.close();
  await fsp.rm(dir, { recursive: true, force: true });
});

function bytes(length: number, seed = 7): Buffer {
  const out = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Block numbers 0..count-1 in an order drawn from `seed` (a Fisher-Yates shuffle). */
function shuffledBlocks(count: number, seed: number): number[] {
  const order = Array.from({ length: count }, (_, i) => i);
  let x = seed;
  for (let i = order.length - 1; i > 0; i--) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const j = x % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function block(data: Buffer, index: number, blockSize = BLOCK): Buffer {
  return data.subarray(index * blockSize, Math.min(data.length, (index + 1) * blockSize));
}

function options(overrides: Partial<PartialOptions> = {}): PartialOptions {
  return {
    finalPath: join(dir, 'out.bin'),
    size: 10 * BLOCK + 100,
    blockSize: BLOCK,
    identity: 'client-a:out.bin:10340',
    resume: true,
    ...overrides,
  };
}

async function names(): Promise<string[]> {
  return (await fsp.readdir(dir)).sort();
}

describe('LocalUpload', () => {
  it('a close racing a commit (a client leaving during its final sync) leaves no sidecar behind', async () => {
    const data = bytes(10 * BLOCK + 100);
    for (const delayTicks of [0, 1, 2, 5, 10]) {
      const partial = await openPartial(options({ persistEveryBytes: 0, persistEveryMs: 0 }));
      for (let i = 0; i < partial.blockCount; i++) await partial.write(i, block(data, i));
      const commit = partial.commit({ sha256: sha256(data), overwrite: true });
      for (let t = 0; t < delayTicks; t++) await new Promise((r) => setImmediate(r));
      const close = partial.close();
      const [committed] = await Promise.allSettled([commit, close]);
      expect(committed.status, `delay ${delayTicks}`).toBe('fulfilled');
      expect(await names(), `delay ${delayTicks}`).toEqual(['out.bin']);
      expect((await fsp.readFile(join(dir, 'out.bin'))).equals(data)).toBe(true);
    }
  });

  it('writes many runs of small blocks, in any order, through reused run buffers: bit-exact', async () => {
    // 5 MiB of 1120-byte blocks: runs of ~1 MiB are joined into run buffers that are reused.
    const blockSize = 1120;
    const size = 5 * 1024 * 1024 + 77;
    const data = bytes(size, 11);
    const count = Math.ceil(size / blockSize);
    const partial = await openPartial(options({ size, blockSize, persistEveryBytes: 0, persistEveryMs: 0 }));
    // Blocks arrive in shuffled batches, written concurrently (as a receiver's sink sees them).
    const order = shuffledBlocks(count, 99);
    // Mostly in order with local shuffles: sort by batch, shuffled within each batch of 3000.
    const batches: number[][] = [];
    for (let b = 0; b < count; b += 3000) {
      batches.push(order.filter((i) => i >= b && i < b + 3000));
    }
    for (const batch of batches)
      await Promise.all(batch.map((i) => partial.write(i, block(data, i, blockSize))));
    await partial.commit({ sha256: sha256(data), overwrite: false });
    expect((await fsp.readFile(join(dir, 'out.bin'))).equals(data)).toBe(true);
  });

  it('completes runs whose gathered writes come back short (a disk writing a few bytes at a time)', async () => {
    const data = bytes(10 * BLOCK + 100);
    let shortWrites = 0;
    const fs = faultyFileSystem(
      (path) => /\.ferry-partial-[0-9a-f]{32}$/.test(path),
      (real) => ({
        // Writes at most 700 bytes per call: never a whole block, often across a block boundary.
        writev: (async (buffers: Buffer[], position: number) => {
          const all = Buffer.concat(buffers);
          const n = Math.min(all.length, 700);
          if (n < all.length) shortWrites++;
          const { bytesWritten } = await real.write(all, 0, n, position);
          return { bytesWritten, buffers };
        }) as FileHandle['writev'],
      }),
    );
    const partial = await openPartial(options({ fs }));
    // Blocks in order and out of order, so that runs of several blocks form before they are written.
    await Promise.all([0, 1, 2, 3, 9, 10, 8, 4, 5, 7, 6].map((i) => partial.write(i, block(data, i))));
    expect(shortWrites).toBeGreaterThan(10);
    await partial.commit({ sha256: sha256(data), overwrite: false });
    expect((await fsp.readFile(join(dir, 'out.bin'))).equals(data)).toBe(true);
  });

  it('writes blocks out of order and commits a verified file atomically', async () => {
    const data = bytes(10 * BLOCK + 100);
    const partial = await openPartial(options());
    expect(partial.resumed).toBe(false);
    expect(partial.blockCount).toBe(11);
    for (const i of [10, 3, 0, 7, 1, 2, 9, 4, 8, 6, 5]) await partial.write(i, block(data, i));
    expect(partial.complete).toBe(true);
    expect(existsSync(join(dir, 'out.bin'))).toBe(false);
    const result = await partial.commit({ sha256: sha256(data), overwrite: false });
    expect(result).toEqual({ size: data.length, sha256: sha256(data) });
    expect(await fsp.readFile(join(dir, 'out.bin'))).toEqual(data);
    expect(await names()).toEqual(['out.bin']); // no partial, sidecar or temp file left
  });

  it('resumes after a crash with exactly the persisted blocks', async () => {
    const data = bytes(10 * BLOCK + 100);
    const { fs, crash } = crashableFileSystem();
    const first = await openPartial(options({ fs, persistEveryBytes: 0, persistEveryMs: 0 }));
    for (const i of [9, 2, 5, 0]) await first.write(i, block(data, i));
    await first.persist();
    // Written after the last persist: on disk perhaps, but not claimed.
    await first.write(7, block(data, 7));
    await crash(); // the upload object is dropped, never closed

    const second = await openPartial(options());
    expect(second.resumed).toBe(true);
    expect(second.have().ranges()).toEqual([
      [0, 1],
      [2, 3],
      [5, 6],
      [9, 10],
    ]);
    for (const i of second
      .have()
      .missingRanges()
      .flatMap(([s, e]) => Array.from({ length: e - s }, (_, k) => s + k))) {
      await second.write(i, block(data, i));
    }
    await second.commit({ sha256: sha256(data), overwrite: false });
    expect(await fsp.readFile(join(dir, 'out.bin'))).toEqual(data);
    expect(await names()).toEqual(['out.bin']);
  });

  it('persists on close and resumes from it', async () => {
    const data = bytes(10 * BLOCK + 100);
    const first = await openPartial(options({ persistEveryBytes: 0, persistEveryMs: 0 }));
    for (let i = 0; i < 6; i++) await first.write(i, block(data, i));
    await first.close();
    const second = await openPartial(options());
    expect(second.have().ranges()).toEqual([[0, 6]]);
    await second.abort({ keep: false });
    expect(await names()).toEqual([]);
  });

  it('persists automatically every N bytes', async () => {
    const data = bytes(10 * BLOCK + 100);
    const partial = await openPartial(options({ persistEveryBytes: 4 * BLOCK, persistEveryMs: 0 }));
    for (let i = 0; i < 5; i++) await partial.write(i, block(data, i));
    await partial.persist(); // waits behind the automatic one
    const state = JSON.parse(await fsp.readFile(partialPaths(partial).state, 'utf8')) as {
      bitmap: string;
      version: number;
    };
    expect(state.version).toBe(1);
    expect(Buffer.from(state.bitmap, 'base64')[0]! & 0b1111).toBe(0b1111);
    await partial.abort({ keep: false });
  });

  it('starts afresh when resume is off, and keeps partials of other identities apart', async () => {
    const data = bytes(10 * BLOCK + 100);
    const first = await openPartial(options());
    await first.write(0, block(data, 0));
    await first.close();

    const other = await openPartial(options({ identity: 'client-b' }));
    expect(other.resumed).toBe(false);
    expect(other.dataName).not.toBe(first.dataName);
    await other.abort({ keep: false });

    const fresh = await openPartial(options({ resume: false }));
    expect(fresh.resumed).toBe(false);
    expect(fresh.received).toBe(0);
    await fresh.abort({ keep: false });
    expect(await names()).toEqual([]);
  });

  it('converts held blocks when resumed with a different block size', async () => {
    const data = bytes(10 * BLOCK + 100);
    const first = await openPartial(options());
    for (let i = 0; i < 5; i++) await first.write(i, block(data, i)); // bytes [0, 5120)
    await first.write(10, block(data, 10)); // the short last block
    await first.close();
    const second = await openPartial(options({ blockSize: 2048 }));
    // 2048-byte blocks fully covered by [0, 5120): 0 and 1; the last block (bytes 10240..10340) was held.
    expect(second.have().ranges()).toEqual([
      [0, 2],
      [5, 6],
    ]);
    for (const i of [2, 3, 4]) await second.write(i, block(data, i, 2048));
    await second.commit({ sha256: sha256(data), overwrite: false });
    expect(await fsp.readFile(join(dir, 'out.bin'))).toEqual(data);
  });

  it('refuses a wrong digest with EINTEGRITY and discards the partial', async () => {
    const data = bytes(3 * BLOCK);
    const partial = await openPartial(options({ size: data.length }));
    for (let i = 0; i < 3; i++) await partial.write(i, block(data, i));
    const error = await expectCode(
      partial.commit({ sha256: 'ab'.repeat(32), overwrite: false }),
      'EINTEGRITY',
    );
    expect(error.message).toContain(sha256(data));
    expect(await names()).toEqual([]);
  });

  it('never replaces an existing file without overwrite, and keeps the data for a retry', async () => {
    const data = bytes(2 * BLOCK);
    await fsp.writeFile(join(dir, 'out.bin'), 'precious');
    const partial = await openPartial(options({ size: data.length }));
    await partial.write(1, block(data, 1));
    await partial.write(0, block(data, 0));
    await expectCode(partial.commit({ sha256: sha256(data), overwrite: false }), 'EEXIST');
    expect(await fsp.readFile(join(dir, 'out.bin'), 'utf8')).toBe('precious');
    await partial.commit({ sha256: sha256(data), overwrite: true, mtimeMs: 1_600_000_000_000 });
    expect(await fsp.readFile(join(dir, 'out.bin'))).toEqual(data);
    expect((await fsp.stat(join(dir, 'out.bin'))).mtimeMs).toBe(1_600_000_000_000);
    expect(await names()).toEqual(['out.bin']);
  });

  it('never replaces a directory, even with overwrite', async () => {
    await fsp.mkdir(join(dir, 'out.bin'));
    const partial = await openPartial(options({ size: 1 }));
    await partial.write(0, Buffer.from('x'));
    await expectCode(partial.commit({ sha256: sha256(Buffer.from('x')), overwrite: false }), 'EISDIR');
    await expectCode(partial.commit({ sha256: sha256(Buffer.from('x')), overwrite: true }), 'EISDIR');
    await partial.abort({ keep: false });
  });

  it('validates block index and length, and refuses to commit while blocks are missing', async () => {
    const partial = await openPartial(options());
    await expectCode(partial.write(11, Buffer.alloc(BLOCK)), 'EINVAL');
    await expectCode(partial.write(-1, Buffer.alloc(BLOCK)), 'EINVAL');
    await expectCode(partial.write(0, Buffer.alloc(BLOCK - 1)), 'EINVAL');
    await expectCode(partial.write(10, Buffer.alloc(BLOCK)), 'EINVAL'); // last block is 100 bytes
    await partial.write(10, Buffer.alloc(100));
    const error = await expectCode(partial.commit({ sha256: '0'.repeat(64), overwrite: false }), 'EINVAL');
    expect(error.message).toContain('1 of 11 blocks');
    await expectCode(partial.commit({ sha256: 'not hex', overwrite: false }), 'EINVAL');
    await partial.abort({ keep: false });
    await expectCode(partial.write(0, Buffer.alloc(BLOCK)), 'EINVAL');
  });

  it('commits an empty file (zero blocks)', async () => {
    const partial = await openPartial(options({ size: 0 }));
    expect(partial.blockCount).toBe(0);
    expect(partial.complete).toBe(true);
    await partial.commit({ sha256: sha256(Buffer.alloc(0)), overwrite: false });
    expect((await fsp.stat(join(dir, 'out.bin'))).size).toBe(0);
  });

  it('reports ENOSPC mid-write clearly and leaves no final file', async () => {
    const data = bytes(10 * BLOCK + 100);
    const partial = await openPartial(options({ fs: failPartialWritesAfter(4 * BLOCK) }));
    for (let i = 0; i < 4; i++) await partial.write(i, block(data, i));
    const error = await expectCode(partial.write(4, block(data, 4)), 'ENOSPC');
    expect(error.message).toMatch(/no space left/);
    expect(error.message).toContain('out.bin');
    expect(partial.has(4)).toBe(false);
    await partial.abort({ keep: false });
    expect(await names()).toEqual([]);
  });

  it('keeps a resumable partial after ENOSPC when asked to', async () => {
    const data = bytes(10 * BLOCK + 100);
    const partial = await openPartial(options({ fs: failPartialWritesAfter(4 * BLOCK) }));
    for (let i = 0; i < 4; i++) await partial.write(i, block(data, i));
    await expectCode(partial.write(4, block(data, 4)), 'ENOSPC');
    await partial.abort({ keep: true });
    expect(existsSync(join(dir, 'out.bin'))).toBe(false);
    const resumed = await openPartial(options());
    expect(resumed.have().ranges()).toEqual([[0, 4]]);
    await resumed.abort({ keep: false });
  });

  it('never claims a block in the sidecar whose data was not synced', async () => {
    const data = bytes(10 * BLOCK + 100);
    let failSync = false;
    const fs = faultyFileSystem(
      (path) => /\.ferry-partial-[0-9a-f]{32}$/.test(path),
      (real) => ({
        datasync: (async () => {
          if (failSync) throw systemError('EIO', 'fdatasync');
          return real.datasync();
        }) as FileHandle['datasync'],
      }),
    );
    const partial = await openPartial(options({ fs, persistEveryBytes: 0, persistEveryMs: 0 }));
    await partial.write(0, block(data, 0));
    await partial.persist();
    await partial.write(1, block(data, 1));
    failSync = true;
    await expectCode(partial.persist(), 'EIO');
    await partial.abort({ keep: true }); // its final persist fails too: the sidecar stays as it was
    const reopened = await openPartial(options());
    expect(reopened.have().ranges()).toEqual([[0, 1]]);
    await reopened.abort({ keep: false });
  });

  it('surfaces a failed automatic persist on the next write', async () => {
    const data = bytes(10 * BLOCK + 100);
    const fs = faultyFileSystem(
      (path) => path.endsWith('.state.tmp'),
      () => ({ sync: (async () => Promise.reject(systemError('ENOSPC', 'fsync'))) as FileHandle['sync'] }),
    );
    // The first sidecar is written in the background: failing every sidecar write fails what comes
    // next (here the commit), and aborting leaves nothing behind.
    const failing = await openPartial(options({ fs }));
    await expectCode(failing.commit({ sha256: sha256(data), overwrite: false }), 'ENOSPC');
    await failing.abort({ keep: false });
    expect(await names()).toEqual([]);
    let armed = false;
    const later = faultyFileSystem(
      (path) => path.endsWith('.state.tmp'),
      (real) => ({
        sync: (async () => {
          if (armed) throw systemError('ENOSPC', 'fsync');
          return real.sync();
        }) as FileHandle['sync'],
      }),
    );
    const partial = await openPartial(options({ fs: later, persistEveryBytes: BLOCK, persistEveryMs: 0 }));
    await partial.persist(); // the first sidecar is written
    armed = true;
    await partial.write(0, block(data, 0)); // starts a background persist that fails
    await expectCode(partial.persist(), 'ENOSPC'); // queued behind it, so it has ended by now
    await expectCode(partial.write(1, block(data, 1)), 'ENOSPC');
    await partial.abort({ keep: false });
  });

  it('refuses a second writer of the same partial (EBUSY) while the first is open', async () => {
    const inUse = new Set<string>();
    const first = await openPartial(options({ inUse }));
    await expectCode(openPartial(options({ inUse })), 'EBUSY');
    await first.close();
    const second = await openPartial(options({ inUse }));
    await second.abort({ keep: false });
    expect(inUse.size).toBe(0);
  });

  it('does not write through a symlink planted at the partial name', async () => {
    const outside = join(dir, 'victim.txt');
    await fsp.writeFile(outside, 'keep me');
    const name = LocalUpload.partialName('out.bin', options().identity, options().size);
    await fsp.symlink(outside, join(dir, name));
    const partial = await openPartial(options());
    await partial.write(0, Buffer.alloc(BLOCK, 1));
    await partial.abort({ keep: false });
    expect(await fsp.readFile(outside, 'utf8')).toBe('keep me');
  });

  it('sweep removes expired partials and orphans, keeps fresh and in-use ones', async () => {
    const t0 = 1_700_000_000_000;
    const hour = 3_600_000;
    const old = await openPartial(options({ finalPath: join(dir, 'old.bin'), now: () => t0 }));
    await old.write(0, Buffer.alloc(BLOCK, 1));
    await old.close();
    const fresh = await openPartial(options({ finalPath: join(dir, 'fresh.bin'), now: () => t0 + 2 * hour }));
    await fresh.write(0, Buffer.alloc(BLOCK, 1));
    await fresh.close();
    const inUse = new Set<string>();
    const busy = await openPartial(options({ finalPath: join(dir, 'busy.bin'), now: () => t0, inUse }));
    // An orphan data file (no sidecar) with an old mtime, and an unrelated user file.
    const orphan = join(dir, `.ferry-partial-${'0'.repeat(32)}`);
    await fsp.writeFile(orphan, 'x');
    await fsp.utimes(orphan, new Date(t0), new Date(t0));
    await fsp.writeFile(join(dir, '.ferry-partial-not-ours'), 'x');
    await fsp.writeFile(join(dir, 'user.txt'), 'x');

    const fs = withFileSystem(undefined);
    const holder = await Dir.open(fs, dir, { owned: true });
    const removed = await sweepPartials(fs, holder, await fsp.readdir(dir), hour, t0 + 2.5 * hour, inUse);
    await holder.close();
    expect(removed.sort()).toEqual([old.dataName, `${old.dataName}.state`, basename(orphan)].sort());
    const left = await names();
    expect(left).toContain(fresh.dataName);
    expect(left).toContain(busy.dataName);
    expect(left).toContain('.ferry-partial-not-ours');
    expect(left).toContain('user.txt');
    await busy.abort({ keep: false });
  });

  it('produces the right digest whatever the arrival order and concurrency', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 40 * 64 }),
        fc.integer({ min: 1, max: 1 << 30 }),
        fc.integer({ min: 1, max: 8 }),
        async (size, seed, parallel) => {
          const blockSize = 64;
          const data = bytes(size, seed);
          const count = Math.ceil(size / blockSize);
          const order = shuffledBlocks(count, seed);
          const partial = await openPartial({
            finalPath: join(dir, `p-${seed}-${size}.bin`),
            size,
            blockSize,
            identity: 'prop',
            resume: false,
            persistEveryBytes: 256,
            persistEveryMs: 0,
          });
          for (let i = 0; i < order.length; i += parallel) {
            await Promise.all(
              order.slice(i, i + parallel).map((b) => partial.write(b, block(data, b, blockSize))),
            );
          }
          await partial.commit({ sha256: sha256(data), overwrite: true });
          expect(await fsp.readFile(join(dir, `p-${seed}-${size}.bin`))).toEqual(data);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('coalesces contiguous blocks, in any arrival order, into one write per run', async () => {
    const data = bytes(10 * BLOCK + 100);
    const { fs, writes } = countingWrites();
    const partial = await openPartial(options({ fs }));
    // Arriving together (one turn of the event loop), in an order that needs prepends and merges.
    await Promise.all([5, 3, 4, 0, 2, 1, 10, 8, 9, 7, 6].map((i) => partial.write(i, block(data, i))));
    expect(writes()).toBe(1);
    expect(partial.complete).toBe(true);
    // Separated by a gap: one write per run.
    const other = await openPartial(options({ fs, finalPath: join(dir, 'other.bin') }));
    await Promise.all([0, 1, 2, 6, 7, 9].map((i) => other.write(i, block(data, i))));
    expect(writes()).toBe(1 + 3);
    expect(other.have().ranges()).toEqual([
      [0, 3],
      [6, 8],
      [9, 10],
    ]);
    await other.abort({ keep: false });
    await partial.commit({ sha256: sha256(data), overwrite: false });
    expect((await fsp.readFile(join(dir, 'out.bin'))).equals(data)).toBe(true);
  });

  it('resolves a block written twice at once only when it is on disk', async () => {
    const data = bytes(10 * BLOCK + 100);
    const partial = await openPartial(options());
    const first = partial.write(4, block(data, 4));
    const second = partial.write(4, block(data, 4));
    expect(partial.has(4)).toBe(false); // buffered, not yet written
    await second;
    expect(partial.has(4)).toBe(true);
    await first;
    expect(partial.received).toBe(1);
    await partial.abort({ keep: false });
  });

  it('persist writes out buffered blocks before claiming them; a crash after it resumes with exactly them', async () => {
    const data = bytes(10 * BLOCK + 100);
    const { fs, crash } = crashableFileSystem();
    const first = await openPartial(options({ fs, persistEveryBytes: 0, persistEveryMs: 0 }));
    const settled: Array<Promise<unknown>> = [];
    // Buffered, not awaited: persist() itself must write them out and sync them before the sidecar.
    for (const i of [0, 1, 2, 5, 6]) settled.push(first.write(i, block(data, i)).catch(() => {}));
    await first.persist();
    // Buffered after the persist began: never claimed by it, even if the write reaches the disk.
    for (const i of [3, 4, 9]) settled.push(first.write(i, block(data, i)).catch(() => {}));
    await Promise.all(settled);
    await crash(); // the upload object is dropped, never closed

    const second = await openPartial(options());
    expect(second.have().ranges()).toEqual([
      [0, 3],
      [5, 7],
    ]);
    for (const i of [3, 4, 7, 8, 9, 10]) await second.write(i, block(data, i));
    await second.commit({ sha256: sha256(data), overwrite: false });
    expect((await fsp.readFile(join(dir, 'out.bin'))).equals(data)).toBe(true);
  });

  it('fails every block of a coalesced run that hits ENOSPC, marks none of them, and keeps the rest', async () => {
    const data = bytes(10 * BLOCK + 100);
    const partial = await openPartial(options({ fs: failPartialWritesAfter(4 * BLOCK) }));
    // Two runs issued together: [0, 4) fits, [6, 10) does not.
    const results = await Promise.allSettled(
      [0, 1, 2, 3, 6, 7, 8, 9].map((i) => partial.write(i, block(data, i))),
    );
    expect(results.slice(0, 4).map((r) => r.status)).toEqual(Array(4).fill('fulfilled'));
    for (const r of results.slice(4)) {
      expect(r.status).toBe('rejected');
      const error = (r as PromiseRejectedResult).reason as FileError;
      expect(error).toBeInstanceOf(FileError);
      expect(error.code).toBe('ENOSPC');
      expect(error.message).toMatch(/no space left/);
      expect(error.message).toContain('out.bin (blocks 6-9)');
    }
    expect(partial.have().ranges()).toEqual([[0, 4]]);
    // A later block fails on its own; the partial stays usable and consistent.
    await expectCode(partial.write(5, block(data, 5)), 'ENOSPC');
    await partial.persist();
    await expectCode(partial.commit({ sha256: sha256(data), overwrite: false }), 'EINVAL');
    await partial.abort({ keep: true });
    const resumed = await openPartial(options());
    expect(resumed.have().ranges()).toEqual([[0, 4]]);
    for (let i = 4; i < 11; i++) await resumed.write(i, block(data, i));
    await resumed.commit({ sha256: sha256(data), overwrite: false });
    expect((await fsp.readFile(join(dir, 'out.bin'))).equals(data)).toBe(true);
  });

  it('keeps no sidecar for a file of one block, and nothing of it after a close: there is nothing partial to resume', async () => {
    const partial = await openPartial(options({ size: 100, persistEveryBytes: 0, persistEveryMs: 0 }));
    await partial.write(0, Buffer.alloc(100, 3));
    await partial.persist();
    expect((await names()).filter((name) => name.endsWith('.state'))).toEqual([]);
    await partial.close();
    expect(await names()).toEqual([]);
  });

  it('removes at once a partial closed while holding nothing (no room taken until it expires)', async () => {
    const partial = await openPartial(options());
    await partial.close();
    expect(await names()).toEqual([]);
  });

  it('claims in the sidecar only blocks on disk, whatever the order, batching, persists and crash point', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 60 }),
        fc.integer({ min: 1, max: 1 << 30 }),
        fc.array(
          fc.record({ take: fc.integer({ min: 1, max: 9 }), persist: fc.boolean(), turn: fc.boolean() }),
          {
            minLength: 1,
            maxLength: 20,
          },
        ),
        async (count, seed, steps) => {
          const blockSize = 64;
          const size = count * blockSize - (seed % blockSize);
          const data = bytes(size, seed);
          const order = shuffledBlocks(count, seed);
          const { fs, crash } = crashableFileSystem();
          const opts = {
            finalPath: join(dir, `c-${seed}-${count}.bin`),
            size,
            blockSize,
            identity: 'crash',
            resume: true,
          };
          const partial = await openPartial({ ...opts, fs, persistEveryBytes: 0, persistEveryMs: 0 });
          const settled: Array<Promise<unknown>> = [];
          let issued = 0;
          let lower: number[] = []; // blocks the last completed persist must claim
          let upper: number[] = []; // blocks it may claim
          for (const step of steps) {
            for (const b of order.slice(issued, issued + step.take)) {
              settled.push(partial.write(b, block(data, b, blockSize)).catch(() => {}));
            }
            issued = Math.min(order.length, issued + step.take);
            if (step.persist) {
              const before = order.slice(0, issued);
              await partial.persist();
              lower = before;
              upper = order.slice(0, issued);
            }
            if (step.turn) await new Promise((resolve) => setImmediate(resolve));
          }
          await Promise.all(settled);
          await crash(); // the upload object is dropped, never closed

          const reopened = await openPartial(opts);
          const held = reopened.have();
          for (const b of lower) expect(held.has(b)).toBe(true);
          for (let b = 0; b < count; b++) if (held.has(b)) expect(upper).toContain(b);
          // And what it claims is really there: fill in the rest and verify the whole file.
          for (let b = 0; b < count; b++)
            if (!held.has(b)) await reopened.write(b, block(data, b, blockSize));
          await reopened.commit({ sha256: sha256(data), overwrite: true });
        },
      ),
      { numRuns: 40 },
    );
  });
});

/**
 * A file system whose files a test can close behind the upload's back, as a crash of the process would
 * (`crash()`; the upload object is then dropped, never closed).
 */
function crashableFileSystem(): { fs: Partial<FileSystem>; crash: () => Promise<void> } {
  const handles: FileHandle[] = [];
  const fs = faultyFileSystem(
    () => true,
    (real) => {
      handles.push(real);
      return {};
    },
  );
  return {
    fs,
    crash: async () => {
      for (const handle of handles.splice(0)) await handle.close().catch(() => {});
    },
  };
}

/** A file system counting positional writes to partial data files. */
function countingWrites(): { fs: Partial<FileSystem>; writes: () => number } {
  let writes = 0;
  const fs = faultyFileSystem(
    (path) => /\.ferry-partial-[0-9a-f]{32}$/.test(path),
    (real) => ({
      write: ((...args: Parameters<FileHandle['write']>) => {
        writes++;
        return (real.write as (...a: unknown[]) => ReturnType<FileHandle['write']>)(...args);
      }) as FileHandle['write'],
      writev: ((...args: Parameters<FileHandle['writev']>) => {
        writes++;
        return real.writev(...args);
      }) as FileHandle['writev'],
    }),
  );
  return { fs, writes: () => writes };
}
