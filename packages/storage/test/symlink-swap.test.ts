import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileError, LocalDiskStorage } from '../src/index.js';

/**
 * A local user who can write in the served tree swaps a directory `d` for a symbolic link to a
 * directory outside the root and back, every fraction of a millisecond, while a key holder sends
 * ordinary requests naming paths in `d`. Nothing outside the root may be created, read, moved or
 * removed; every request either acts inside the root or fails with a clear error.
 */
const SWAPPER = fileURLToPath(new URL('./fixtures/swapper.mjs', import.meta.url));
const ROUNDS = 200;
const BLOCK = 1024;
/** What a request may fail with while its directory is a symlink out of the root for a moment. */
const CLEAN_FAILURES = new Set(['EINVAL', 'ENOENT', 'ENOTDIR']);

let base: string;
let root: string;
let outside: string;
let storage: LocalDiskStorage;
let swapper: ChildProcess | undefined;

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Every file below `dir`: relative name -> content. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await fsp.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.set(path.slice(dir.length + 1), await fsp.readFile(path, 'utf8'));
  }
  return out;
}

beforeAll(async () => {
  base = await fsp.mkdtemp(join(tmpdir(), 'ferry-swap-'));
  root = join(base, 'root');
  outside = join(base, 'outside');
  await fsp.mkdir(join(root, 'd'), { recursive: true });
  await fsp.mkdir(outside);
  for (let i = 0; i < ROUNDS; i++) {
    for (const kind of ['g', 'v', 's']) {
      await fsp.writeFile(join(root, 'd', `${kind}${i}.txt`), `inside ${kind}${i}`);
      await fsp.writeFile(join(outside, `${kind}${i}.txt`), `outside ${kind}${i}`);
    }
  }
  storage = await LocalDiskStorage.open(root);
});

afterAll(async () => {
  if (swapper?.exitCode === null) swapper.kill('SIGKILL');
  await storage?.close();
  await fsp.rm(base, { recursive: true, force: true });
});

/** Starts the swapper and waits until it is swapping. */
async function startSwapper(): Promise<{ stop: () => Promise<number> }> {
  const child = spawn(process.execPath, [SWAPPER, join(root, 'd'), outside, '0.1', '120000'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  swapper = child;
  const lines = createInterface({ input: child.stdout! });
  const seen: string[] = [];
  const waiters: Array<() => void> = [];
  lines.on('line', (line) => {
    seen.push(line);
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const until = async (match: (line: string) => boolean): Promise<string> => {
    for (;;) {
      const found = seen.find(match);
      if (found !== undefined) return found;
      const more = new Promise<void>((resolve) => waiters.push(resolve));
      await Promise.race([more, exited]);
      if ((child.exitCode !== null || child.signalCode !== null) && seen.find(match) === undefined) {
        throw new Error(`the swapper exited (${child.exitCode}) early: ${seen.join(' | ')}`);
      }
    }
  };
  await until((line) => line === 'ready');
  return {
    stop: async () => {
      child.kill('SIGTERM');
      const line = await until((l) => l.startsWith('swaps '));
      await exited;
      return Number(line.slice('swaps '.length));
    },
  };
}

describe('a directory swapped for a symlink out of the root, again and again, during requests', () => {
  it(`${ROUNDS} puts, renames, deletes and reads each: nothing outside is created, read, moved or removed`, async () => {
    const before = await snapshot(outside);
    const outcomes: Record<string, Record<string, number>> = { put: {}, rename: {}, delete: {}, read: {} };
    const count = (op: string, outcome: string) => {
      outcomes[op]![outcome] = (outcomes[op]![outcome] ?? 0) + 1;
    };
    const attempt = async (op: string, action: () => Promise<void>) => {
      try {
        await action();
        count(op, 'ok');
      } catch (error) {
        if (!(error instanceof FileError) || !CLEAN_FAILURES.has(error.code)) throw error;
        count(op, error.code);
      }
    };
    const swapping = await startSwapper();
    let swaps: number;
    try {
      for (let i = 0; i < ROUNDS; i++) {
        const data = Buffer.from(`put ${i} `.repeat(300));
        await attempt('put', async () => {
          const upload = await storage.beginUpload(`d/r${i}.bin`, {
            size: data.length,
            blockSize: BLOCK,
            overwrite: true,
            resume: false,
            identity: `put ${i}`,
          });
          try {
            for (let b = 0; b * BLOCK < data.length; b++)
              await upload.write(b, data.subarray(b * BLOCK, (b + 1) * BLOCK));
            await upload.commit({ sha256: sha256(data), overwrite: true });
          } catch (error) {
            await upload.abort({ keep: false });
            throw error;
          }
        });
        await attempt('rename', () => storage.rename(`d/g${i}.txt`, `pulled${i}.txt`, { overwrite: false }));
        await attempt('delete', () => storage.delete(`d/v${i}.txt`));
        await attempt('read', async () => {
          const file = await storage.openRead(`d/s${i}.txt`);
          try {
            const text = (await file.read(0, BLOCK)).toString('utf8');
            expect(text).toBe(`inside s${i}`);
          } finally {
            await file.close();
          }
        });
      }
    } finally {
      swaps = await swapping.stop();
    }
    console.log(`symlink swaps during the requests: ${swaps}; outcomes ${JSON.stringify(outcomes)}`);
    // The race was real: the directory changed many times while the requests ran.
    expect(swaps).toBeGreaterThan(ROUNDS);
    // Outside: the very same files with the very same contents, nothing added (no data, no partial, no sidecar).
    expect(await snapshot(outside)).toEqual(before);
    // Inside: what was moved in came from inside; no content from outside reached the root.
    for (const [name, content] of await snapshot(root)) {
      expect(content.startsWith('outside'), `${name} holds outside content`).toBe(false);
    }
    // Some of each request really acted (inside), so the test exercised the operations.
    for (const op of ['put', 'rename', 'delete', 'read']) expect(outcomes[op]!.ok ?? 0).toBeGreaterThan(0);
  }, 120_000);
});
