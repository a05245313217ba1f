import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileBlockSource, FileError, faultyFileSystem, sha256File } from '../src/files/index.js';

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

async function expectCode(promise: Promise<unknown>, code: string): Promise<FileError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FileError);
  expect((error as FileError).code).toBe(code);
  return error as FileError;
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
    const source = await FileBlockSource.open(path);
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
    const source = await FileBlockSource.open(path, { fs });
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
    const source = await FileBlockSource.open(path);
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
    const source = await FileBlockSource.open(path);
    expect(source.size).toBe(0);
    await expectCode(source.read(0, 1024), 'EINVAL');
    expect(await source.sha256()).toBe(sha256(Buffer.alloc(0)));
    await source.close();
  });

  it('reports EFILECHANGED when the file is modified, truncated or replaced', async () => {
    const { path } = await writeSample('c.bin', 4096);
    const appended = await FileBlockSource.open(path);
    await fsp.appendFile(path, 'more');
    await expectCode(appended.checkUnchanged(), 'EFILECHANGED');
    await appended.close();

    const truncated = await FileBlockSource.open(path);
    await fsp.truncate(path, 100);
    await expectCode(truncated.read(1, 1024), 'EFILECHANGED');
    await truncated.close();

    const replaced = await FileBlockSource.open(path);
    await fsp.writeFile(join(dir, 'new.bin'), Buffer.alloc(100));
    await fsp.rename(join(dir, 'new.bin'), path);
    const error = await expectCode(replaced.checkUnchanged(), 'EFILECHANGED');
    expect(error.message).toContain('c.bin');
    await replaced.close();

    const removed = await FileBlockSource.open(path);
    await fsp.unlink(path);
    await expectCode(removed.checkUnchanged(), 'EFILECHANGED');
    await removed.close();
  });

  it('refuses directories (EISDIR), FIFOs and devices (EINVAL) without blocking', async () => {
    await expectCode(FileBlockSource.open(dir), 'EISDIR');
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const error = await expectCode(FileBlockSource.open(fifo), 'EINVAL');
    expect(error.message).toMatch(/FIFO/);
    await expectCode(FileBlockSource.open('/dev/null'), 'EINVAL');
    await expectCode(FileBlockSource.open(join(dir, 'missing')), 'ENOENT');
  });

  it('refuses a symlink as the last component when noFollow is set', async () => {
    const { path } = await writeSample('target', 10);
    await fsp.symlink(path, join(dir, 'link'));
    await expectCode(FileBlockSource.open(join(dir, 'link'), { noFollow: true }), 'EINVAL');
    const followed = await FileBlockSource.open(join(dir, 'link'));
    expect(followed.size).toBe(10);
    await followed.close();
  });

  it('names the file as told in messages', async () => {
    const error = await expectCode(
      FileBlockSource.open(join(dir, 'nope'), { displayName: '"docs/nope"' }),
      'ENOENT',
    );
    expect(error.message).toContain('"docs/nope"');
    expect(error.message).not.toContain(dir);
  });
});
