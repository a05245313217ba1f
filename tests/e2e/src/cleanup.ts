/**
 * What a test file started or made is undone when the file ends: first whatever was registered with
 * onCleanup, the last registered first (processes killed, sockets closed, file systems unmounted),
 * then every directory from tempDir removed. Every module of the harness registers here, so a test
 * file has one list, whichever helpers it uses.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
const dirs: string[] = [];

afterAll(async () => {
  for (const fn of cleanups.splice(0).reverse())
    await Promise.resolve()
      .then(fn)
      .catch(() => {});
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Runs `fn` when the test file ends (a failure there is ignored: the next cleanup still runs). */
export function onCleanup(fn: () => Promise<unknown> | unknown): void {
  cleanups.push(fn);
}

/** A new temporary directory, removed with everything in it when the test file ends. */
export async function tempDir(prefix = 'ferry-e2e-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}
