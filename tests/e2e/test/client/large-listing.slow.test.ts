import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ferry, type Sandbox, ServerProcess, sandbox } from '../../src/harness.js';

/**
 * A tree of 100,000 entries listed with `ls -R` / `list --recursive`: the walk streams in pages (no
 * reply could carry it whole), every entry arrives once, in pre-order, and the client prints them as
 * they come.
 */
const DIRECTORIES = 100;
const FILES_PER_DIRECTORY = 999;
const ENTRIES = DIRECTORIES * (FILES_PER_DIRECTORY + 1);

let box: Sandbox;
let server: ServerProcess;

beforeAll(async () => {
  box = await sandbox();
  // Empty files: the listing is what is measured, not the disk.
  for (let d = 0; d < DIRECTORIES; d++) {
    const dir = join(box.root, 'huge', `d${String(d).padStart(3, '0')}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < FILES_PER_DIRECTORY; f++)
      closeSync(openSync(join(dir, `f${String(f).padStart(4, '0')}`), 'w'));
  }
  server = await ServerProcess.start({ root: box.root, keyFile: box.keyFile, env: box.env });
}, 300_000);

afterAll(async () => {
  await server?.stop();
});

describe('a tree of 100,000 entries', () => {
  it('list --recursive --json gives every entry once, in pre-order, and ends with the count', async () => {
    const listed = await ferry(
      ['list', server.address, 'huge', '--recursive', '--json', '--key', box.keyFile],
      {
        cwd: box.work,
        env: box.env,
        timeoutMs: 240_000,
      },
    );
    expect(listed.code, listed.stderr).toBe(0);
    const entries = listed.events.filter((e) => e.type === 'entry') as Array<{ path: string; kind: string }>;
    expect(entries).toHaveLength(ENTRIES);
    expect(new Set(entries.map((e) => e.path)).size).toBe(ENTRIES);
    // Pre-order: each directory, then its files, in name order.
    expect(entries[0]).toMatchObject({ path: 'huge/d000', kind: 'dir' });
    expect(entries[1]).toMatchObject({ path: 'huge/d000/f0000', kind: 'file' });
    expect(entries[FILES_PER_DIRECTORY + 1]).toMatchObject({ path: 'huge/d001', kind: 'dir' });
    expect(entries.at(-1)).toMatchObject({ path: 'huge/d099/f0998', kind: 'file' });
    expect(listed.events.at(-1)).toEqual({
      type: 'done',
      op: 'list',
      remote: 'huge',
      count: ENTRIES,
      recursive: true,
    });
    console.log(`ls -R of ${ENTRIES} entries: ${listed.stdout.length} bytes of JSON lines`);
  }, 300_000);

  it('ls -R prints one line per entry', async () => {
    const listed = await ferry(['ls', server.address, '-R', 'huge', '--key', box.keyFile], {
      cwd: box.work,
      env: box.env,
      timeoutMs: 240_000,
    });
    expect(listed.code, listed.stderr).toBe(0);
    const lines = listed.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(ENTRIES);
    expect(lines.at(-1)).toMatch(/huge\/d099\/f0998$/);
  }, 300_000);
});
