import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ferry,
  randomFile,
  type Sandbox,
  type ServerProcess,
  servedSandbox,
  sha256File,
} from '../../src/harness.js';

let box: Sandbox;
let server: ServerProcess;

beforeAll(async () => {
  ({ box, server } = await servedSandbox());
});

/** Runs the shell with `lines` on standard input (not a terminal), the seed's way: ferry HOST PORT. */
function shell(lines: string[], ...extra: string[]) {
  return ferry(['127.0.0.1', String(server.port), '--key', box.keyFile, ...extra], {
    cwd: box.work,
    env: box.env,
    input: `${lines.join('\n')}\n`,
  });
}

describe('the shell driven through standard input', () => {
  it('runs every command of the seed menu and more, printing only results', async () => {
    const digest = await randomFile(join(box.work, 'report 2024.pdf'), 100_003);
    await writeFile(join(box.work, 'notes.txt'), 'notes');
    const r = await shell([
      'put "report 2024.pdf"',
      'put notes.txt remote-notes.txt',
      'list',
      'stat "report 2024.pdf"',
      'get "report 2024.pdf" copy.pdf',
      'rename remote-notes.txt renamed.txt',
      'delete renamed.txt',
      'ls',
      'help',
      'exit',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).not.toMatch(/ferry> /);
    expect(r.stdout).toMatch(/sent report 2024\.pdf -> report 2024\.pdf/);
    expect(r.stdout).toMatch(/sent notes\.txt -> remote-notes\.txt/);
    expect(r.stdout).toMatch(/report 2024\.pdf: file, 100\.0 kB \(100003 bytes\)/);
    expect(r.stdout).toMatch(/received report 2024\.pdf -> copy\.pdf/);
    expect(r.stdout).toMatch(/renamed remote-notes\.txt -> renamed\.txt/);
    expect(r.stdout).toMatch(/deleted renamed\.txt/);
    expect(r.stdout).toMatch(/Commands:\n {2}get NAME \[LOCAL\]/);
    expect(await sha256File(join(box.work, 'copy.pdf'))).toBe(digest);
    expect(await sha256File(join(box.root, 'report 2024.pdf'))).toBe(digest);
    await expect(stat(join(box.root, 'renamed.txt'))).rejects.toThrow();
    // The first listing shows both files, the last one only the report.
    const listings = r.stdout.split('\n').filter((l) => /\d\d:\d\d {2}/.test(l));
    expect(listings.filter((l) => l.endsWith('remote-notes.txt'))).toHaveLength(1);
    expect(listings.filter((l) => l.endsWith('report 2024.pdf'))).toHaveLength(2);
  });

  it('goes on after an error, one line each, and exits with the last failure for scripts', async () => {
    const r = await shell([
      'get missing.bin',
      'frobnicate',
      'put ../x',
      'list',
      'rename',
      'get "unterminated',
    ]);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^ferry: get missing\.bin: no such file or directory$/),
      expect.stringMatching(/^ferry: unknown command "frobnicate"/),
      expect.stringMatching(/^ferry: .*(no such local file|\.\.)/),
      expect.stringMatching(/^ferry: missing arguments; usage: rename OLD NEW$/),
      expect.stringMatching(/^ferry: unterminated double quote/),
    ]);
    expect(r.code).toBe(2);
  });

  it('a get whose local file cannot be created fails at once, and the session goes on', async () => {
    // The get is asked before the local file is prepared: the server, already sending, is told to
    // stop, and the next transfer in the same session is not held up by the first.
    const digest = await randomFile(join(box.root, 'four-mb.bin'), 4 * 1024 * 1024 + 3);
    const r = await shell(['get four-mb.bin no-such-dir/copy.bin', 'get four-mb.bin copy-4.bin']);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^ferry: get four-mb\.bin: .*no-such-dir.*(no such file|not found)/i),
    ]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/received four-mb\.bin -> copy-4\.bin/);
    expect(await sha256File(join(box.work, 'copy-4.bin'))).toBe(digest);
    expect((await readdir(box.work)).filter((n) => n.startsWith('.ferry-partial-'))).toEqual([]);
  });

  it('ends at end of input like exit, and never stops the server', async () => {
    const first = await shell(['list']);
    expect(first.code).toBe(0);
    const second = await shell(['quit']);
    expect(second.code).toBe(0);
    expect(server.child.exitCode).toBeNull();
  });

  it('takes per-command flags (get --force, put -f, rename --force) and shell-wide --json', async () => {
    await writeFile(join(box.root, 'flagged.txt'), 'server');
    await writeFile(join(box.work, 'flagged.txt'), 'local');
    const refused = await shell(['get flagged.txt']);
    expect(refused.code).toBe(4);
    expect(await readFile(join(box.work, 'flagged.txt'), 'utf8')).toBe('local');
    const forced = await shell(['get --force flagged.txt', 'put -f flagged.txt flagged-2.txt']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(await readFile(join(box.work, 'flagged.txt'), 'utf8')).toBe('server');
    const json = await shell(['stat flagged-2.txt', 'list'], '--json');
    expect(json.events[0]).toMatchObject({ type: 'entry', name: 'flagged-2.txt', size: 6 });
    expect(json.events.filter((e) => e.type === 'done' && e.op === 'list')).toHaveLength(1);
  });

  it('takes command names in any case, as the seed did, and file names exactly as typed', async () => {
    await writeFile(join(box.root, 'Mixed.TXT'), 'mixed');
    const r = await shell([
      'LIST',
      'Get Mixed.TXT',
      'STAT Mixed.TXT',
      'stat mixed.txt',
      'Help PUT',
      'EXIT',
      'list',
    ]);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^ferry: .*mixed\.txt.*no such file/),
    ]);
    expect(r.stdout).toMatch(/ {2}Mixed\.TXT\n/);
    expect(r.stdout).toMatch(/received Mixed\.TXT -> Mixed\.TXT/);
    expect(r.stdout).toMatch(/Mixed\.TXT: file, 5 B/);
    expect(r.stdout).toMatch(/usage: put FILE \[REMOTE\]/);
    // EXIT left the shell: the last line did not run (one listing only).
    expect(r.stdout.match(/ {2}Mixed\.TXT\n/g)).toHaveLength(1);
    expect(await readFile(join(box.work, 'Mixed.TXT'), 'utf8')).toBe('mixed');
    const oneShot = await ferry(['LS', server.address, '--key', box.keyFile], {
      cwd: box.work,
      env: box.env,
    });
    expect(oneShot.code, oneShot.stderr).toBe(0);
    expect(oneShot.stdout).toMatch(/Mixed\.TXT/);
  });

  it('accepts HOST:PORT as one word as well as the seed form', async () => {
    const r = await ferry([server.address, '--key', box.keyFile], {
      cwd: box.work,
      env: box.env,
      input: 'list\n',
    });
    expect(r.code, r.stderr).toBe(0);
  });

  it('refuses a wrong key before reading any command (exit 7)', async () => {
    const other = join(box.dir, 'other.key');
    await ferry(['keygen', other], { env: box.env });
    const r = await ferry(['127.0.0.1', String(server.port), '--key', other], {
      cwd: box.work,
      env: box.env,
      input: 'list\n',
    });
    expect(r.code).toBe(7);
    expect(r.stdout).toBe('');
  });
});
