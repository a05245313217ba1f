import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  diffTrees,
  ferry,
  partialFiles,
  randomTree,
  type Sandbox,
  type ServerProcess,
  servedSandbox,
  serveSandbox,
  spawnFerry,
} from '../../src/harness.js';

/**
 * A tree transfer interrupted at any point (SIGKILL, Ctrl-C, the server going away) and then run again
 * with --resume ends identical to its source, checked with diff -r.
 */
let box: Sandbox;
let server: ServerProcess;

beforeAll(async () => {
  ({ box, server } = await servedSandbox());
});

const MB = 1024 * 1024;

/** 1,200 small files in 12 directories, an empty one, and three large files. */
async function makeTree(top: string): Promise<void> {
  const files: Record<string, number> = {};
  for (let d = 0; d < 12; d++) {
    for (let f = 0; f < 100; f++) files[`dir-${d}/file-${f}.bin`] = 1024 + (((d * 100 + f) * 37) % 7000);
  }
  files['large/one.bin'] = 6 * MB + 3;
  files['large/two.bin'] = 5 * MB;
  files['dir-3/three.bin'] = 4 * MB + 1;
  files.empty = -1;
  await randomTree(top, files);
}

const run = (args: string[], address = server.address) =>
  ferry([args[0]!, address, ...args.slice(1), '--key', box.keyFile], {
    cwd: box.work,
    env: box.env,
    timeoutMs: 120_000,
  });

const start = (args: string[], address = server.address) =>
  spawnFerry([args[0]!, address, ...args.slice(1), '--key', box.keyFile, '--json'], {
    cwd: box.work,
    env: box.env,
  });

const doneCount = (n: number) => {
  let seen = 0;
  return (e: Record<string, unknown>): boolean => e.type === 'done' && ++seen >= n;
};

describe('a tree interrupted at any point ends, after --resume, identical to its source', () => {
  it('put -r killed with SIGKILL mid-tree, into a new name: the same command with --resume finishes it there', async () => {
    const source = join(box.work, 'kill-put');
    await makeTree(source);
    // A rate cap keeps the tree moving long enough to be killed in the middle. 'album' does not exist:
    // the tree becomes 'album' (scp's rule), and the resumed run must not put it into album/kill-put.
    const first = start(['put', '-r', 'kill-put', 'album', '--limit', '4M']);
    await first.waitFor(doneCount(300), 60_000);
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    expect(diffTrees(source, join(box.root, 'album'))).not.toBe('');

    const resumed = await run(['put', '-r', '--resume', 'kill-put', 'album', '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const summary = resumed.events.at(-1)!;
    expect(summary).toMatchObject({ type: 'summary', files: 1203, failed: 0 });
    expect(Number(summary.skipped)).toBeGreaterThanOrEqual(300);
    expect(diffTrees(source, join(box.root, 'album'))).toBe('');
  }, 180_000);

  it('get -r killed with SIGKILL mid-tree, into a new name: --resume finishes it there, leaving no temporary file', async () => {
    await makeTree(join(box.root, 'kill-get'));
    // Small blocks make the tree slow enough on loopback to be killed in the middle.
    const first = start(['get', '-r', 'kill-get', 'fetched', '--block-size', '1024']);
    await first.waitFor(doneCount(300), 60_000);
    first.child.kill('SIGKILL');
    await first.exited;
    expect(diffTrees(join(box.root, 'kill-get'), join(box.work, 'fetched'))).not.toBe('');

    const resumed = await run(['get', '-r', '--resume', 'kill-get', 'fetched', '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(Number(resumed.events.at(-1)!.skipped)).toBeGreaterThanOrEqual(300);
    expect(diffTrees(join(box.root, 'kill-get'), join(box.work, 'fetched'))).toBe('');
    expect(await partialFiles(join(box.work, 'fetched'))).toEqual([]);
  }, 180_000);

  it('put -r interrupted with Ctrl-C exits 130 with a resume hint; --resume completes it', async () => {
    const source = join(box.work, 'ctrl-c');
    await makeTree(source);
    const first = start(['put', '-r', 'ctrl-c', '--limit', '4M']);
    await first.waitFor(doneCount(200), 60_000);
    first.child.kill('SIGINT');
    const ended = await first.exited;
    expect(ended.code).toBe(130);
    expect(ended.stderr).toMatch(/put -r ctrl-c: .*cancel.*--resume/);
    const resumed = await run(['put', '-r', '--resume', 'ctrl-c']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(diffTrees(source, join(box.root, 'ctrl-c'))).toBe('');
  }, 180_000);

  it('a lost session (the server killed mid-tree) ends the command with one line; --resume after a restart completes it', async () => {
    const source = join(box.work, 'lost');
    await makeTree(source);
    const port = server.port;
    const first = start(['put', '-r', 'lost', '--limit', '4M']);
    await first.waitFor(doneCount(200), 60_000);
    await server.stop('SIGKILL');
    const ended = await first.exited;
    expect(ended.code, ended.stderr).toBe(8);
    expect(
      ended.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('ferry:')),
      ended.stderr,
    ).toHaveLength(1);
    server = await serveSandbox(box, { port });
    const resumed = await run(['put', '-r', '--resume', 'lost']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(diffTrees(source, join(box.root, 'lost'))).toBe('');
  }, 180_000);
});
