import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FerryServer } from '@ferry/server-cli';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connectClient, HOST, newKey, onCleanup, tempDir } from './helpers.js';

/**
 * The symlink race of the hostile-user report, over the wire: a local user who can write in the
 * served tree swaps a directory `d` for a symbolic link to a directory outside the root and back,
 * every fraction of a millisecond, while a key holder sends ordinary put, rename (`mv`) and delete
 * (`rm`) requests naming paths in `d`, 200 of each. Before the server resolved every path below a
 * descriptor of the root, such runs put ferry files outside the root, moved outside files in and
 * deleted outside files, each reported as a success.
 */
const ROUNDS = 200;
/** The swapper of the storage layer's own race test (a separate process, as the local user is). */
const SWAPPER = fileURLToPath(
  new URL('../../../../packages/storage/test/fixtures/swapper.mjs', import.meta.url),
);
/** What a request may fail with while its directory is a symlink out of the root for a moment. */
const CLEAN_FAILURES = new Set(['EINVAL', 'ENOENT', 'ENOTDIR']);

let base: string;
let root: string;
let outside: string;
let work: string;
let client: Client;

/** Every entry below `dir` (files with their contents), as sorted lines. */
async function snapshot(dir: string): Promise<string[]> {
  const lines: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name).slice(dir.length + 1);
    lines.push(entry.isFile() ? `${path}: ${await readFile(join(dir, path), 'utf8')}` : `${path}/`);
  }
  return lines.sort();
}

beforeAll(async () => {
  base = await tempDir();
  root = join(base, 'root');
  outside = join(base, 'outside');
  work = join(base, 'work');
  await mkdir(join(root, 'd'), { recursive: true });
  await mkdir(outside);
  await mkdir(work);
  for (let i = 0; i < ROUNDS; i++) {
    for (const kind of ['g', 'v']) {
      await writeFile(join(root, 'd', `${kind}${i}.txt`), `inside ${kind}${i}`);
      await writeFile(join(outside, `${kind}${i}.txt`), `outside ${kind}${i}`);
    }
  }
  await writeFile(join(work, 'r.bin'), Buffer.alloc(3000, 'r'));
  const key = newKey();
  const server = new FerryServer({ root, port: 0, host: HOST, keys: [key] });
  onCleanup(() => server.close(0));
  const { port } = await server.listen();
  client = await connectClient({ port, key: key.key });
});

afterAll(async () => {
  await client?.close();
});

/** Starts the swapper process and waits until it swaps; stop() ends it and gives its swap count. */
async function startSwapper(): Promise<{ stop: () => Promise<number> }> {
  const child: ChildProcess = spawn(process.execPath, [SWAPPER, join(root, 'd'), outside, '0.1', '300000'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let closed = false;
  const exited = new Promise<void>((resolve) =>
    child.on('close', () => {
      closed = true;
      resolve();
    }),
  );
  onCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const seen: string[] = [];
  let wake: (() => void) | undefined;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    seen.push(line);
    wake?.();
  });
  const until = async (match: (line: string) => boolean): Promise<string> => {
    for (;;) {
      const found = seen.find(match);
      if (found !== undefined) return found;
      if (closed)
        throw new Error(`the swapper ended (${child.exitCode ?? child.signalCode}): ${seen.join(' | ')}`);
      await Promise.race([new Promise<void>((resolve) => (wake = resolve)), exited]);
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

describe('a directory swapped for a symlink out of the root, again and again, during requests over the wire', () => {
  it(`${ROUNDS} puts, renames and deletes each: nothing outside is created, moved or removed`, async () => {
    const before = await snapshot(outside);
    const outcomes: Record<string, Record<string, number>> = { put: {}, rename: {}, delete: {} };
    const attempt = async (op: string, action: () => Promise<unknown>): Promise<void> => {
      let outcome = 'ok';
      try {
        await action();
      } catch (error) {
        const code = (error as { code?: string }).code ?? String(error);
        if (!CLEAN_FAILURES.has(code)) throw error;
        outcome = code;
      }
      outcomes[op]![outcome] = (outcomes[op]![outcome] ?? 0) + 1;
    };
    const swapper = await startSwapper();
    let swaps: number;
    try {
      for (let i = 0; i < ROUNDS; i++) {
        await attempt('put', () => client.put(join(work, 'r.bin'), `d/r${i}.bin`, { overwrite: true }));
        await attempt('rename', () => client.rename(`d/g${i}.txt`, `pulled${i}.txt`));
        await attempt('delete', () => client.delete(`d/v${i}.txt`));
      }
    } finally {
      swaps = await swapper.stop();
    }
    console.log(
      `symlink swaps during ${ROUNDS} rounds over the wire: ${swaps}; outcomes ${JSON.stringify(outcomes)}`,
    );
    // The race ran: the directory was swapped many times while the requests were made.
    expect(swaps).toBeGreaterThan(ROUNDS);
    // Not a file outside the root was created, changed, moved in or removed.
    expect(await snapshot(outside)).toEqual(before);
    // What a request moved in came from inside the root; nothing else appeared at the top of it.
    for (const name of await readdir(root)) {
      if (name === 'd') continue;
      const index = /^pulled(\d+)\.txt$/.exec(name)?.[1];
      expect(index, name).toBeDefined();
      expect(await readFile(join(root, name), 'utf8')).toBe(`inside g${index}`);
    }
  }, 300_000);
});
