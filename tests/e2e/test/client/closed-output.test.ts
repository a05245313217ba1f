/**
 * A reader that goes away (`ferry ls HOST | head -1`): ferry ends quietly with its own exit code,
 * never with an EPIPE stack trace. The tests close the reading end of stdout before the client
 * writes anything, so every write it makes fails, whatever the timing.
 */
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ferry,
  type RunOptions,
  randomFile,
  type Sandbox,
  type ServerProcess,
  servedSandbox,
  sha256File,
} from '../../src/harness.js';

let box: Sandbox;
let server: ServerProcess;
let opts: RunOptions;

beforeAll(async () => {
  ({ box, server } = await servedSandbox());
  opts = { cwd: box.work, env: box.env, closeStdout: true };
  await Promise.all(
    Array.from({ length: 40 }, (_, i) => writeFile(join(box.root, `file-${i}.txt`), `${i}\n`)),
  );
});

const remote = (...args: string[]) => ferry([...args, '--key', box.keyFile], opts);

describe('when the reader of its output goes away', () => {
  it('list, list --json and stat --json end quietly with exit 0', async () => {
    for (const args of [
      ['ls', server.address],
      ['ls', server.address, '--json'],
      ['stat', server.address, 'file-1.txt', 'file-2.txt', '--json'],
    ]) {
      const r = await remote(...args);
      expect(r.stderr, args.join(' ')).toBe('');
      expect(r.code, args.join(' ')).toBe(0);
    }
  });

  it('get --json still fetches the file, quietly, with exit 0', async () => {
    const digest = await randomFile(join(box.root, 'payload.bin'), 300_000);
    const r = await remote('get', server.address, 'payload.bin', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await sha256File(join(box.work, 'payload.bin'))).toBe(digest);
  });

  it('the shell fed from a pipe finishes the command running and reads no further', async () => {
    await writeFile(join(box.work, 'later.txt'), 'later');
    const r = await ferry(['127.0.0.1', String(server.port), '--key', box.keyFile], {
      ...opts,
      input: 'list\nput later.txt\n',
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    await expect(stat(join(box.root, 'later.txt'))).rejects.toThrow();
  });
});
