/** File helpers for end-to-end tests, free of side effects (no hooks, no config). */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { waitUntil } from './wait.js';

/** Writes `size` random bytes to `path`; returns their SHA-256 (hex). */
export async function randomFile(path: string, size: number): Promise<string> {
  const data = randomBytes(size);
  await writeFile(path, data);
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Writes a tree under `top`: for each relative path, a file of that many random bytes, or an empty
 * directory where the size is -1 (in the order given).
 */
export async function randomTree(top: string, spec: Record<string, number>): Promise<void> {
  for (const [path, size] of Object.entries(spec)) {
    const full = join(top, path);
    if (size < 0) {
      await mkdir(full, { recursive: true });
      continue;
    }
    await mkdir(dirname(full), { recursive: true });
    await randomFile(full, size);
  }
}

/** `diff -r`: '' when the trees are the same, else what differs. */
export function diffTrees(a: string, b: string): string {
  try {
    execFileSync('diff', ['-r', a, b], { encoding: 'utf8' });
    return '';
  } catch (error) {
    return String((error as { stdout?: string }).stdout ?? error);
  }
}

/** SHA-256 (hex) of a file, streamed. */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', reject);
  });
}

/** Every `.ferry-partial-*` name under `dir` (recursively), relative to it, sorted. */
export async function partialFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.filter((p) => p.split('/').pop()!.startsWith('.ferry-partial-')).sort();
}

/**
 * Waits until a partial file in `dir` has persisted some progress: its sidecar records at least one
 * block (the first sidecar, written when the partial is opened, records none). A process killed
 * after this loses only what came since, and a resume finds blocks to keep.
 */
export function persistedPartial(dir: string, timeoutMs = 30_000): Promise<true> {
  const holdsBlocks = async (sidecar: string): Promise<boolean> => {
    try {
      const state = JSON.parse(await readFile(sidecar, 'utf8')) as { bitmap?: string };
      return Buffer.from(state.bitmap ?? '', 'base64').some((byte) => byte !== 0);
    } catch {
      return false; // being replaced, or gone: look again
    }
  };
  return waitUntil(
    `a partial file in ${dir} that has persisted progress`,
    async () => {
      for (const p of await partialFiles(dir)) {
        if (p.endsWith('.state') && (await holdsBlocks(join(dir, p)))) return true;
      }
      return undefined;
    },
    timeoutMs,
  );
}
