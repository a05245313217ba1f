import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
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
/** `ferry CMD HOST ARGS… --key KEY` from the client's working directory. */
const remote = (command: string, ...args: string[]) =>
  ferry([command, server.address, ...args, '--key', box.keyFile], opts);

beforeAll(async () => {
  ({ box, server } = await servedSandbox());
  opts = { cwd: box.work, env: box.env };
});

describe('files of every awkward size go both ways bit-exact, under their real names', () => {
  const sizes: [string, number][] = [
    ['empty.bin', 0],
    ['one.bin', 1],
    ['block-minus-one.bin', 32767],
    ['block.bin', 32768],
    ['block-plus-one.bin', 32769],
    ['twenty-mb.bin', 20 * 1024 * 1024 + 123],
  ];
  for (const [name, size] of sizes) {
    it(`${name} (${size} B)`, async () => {
      const digest = await randomFile(join(box.work, name), size);
      const put = await remote('put', name, '--json');
      expect(put.code, put.stderr).toBe(0);
      const done = put.events.find((e) => e.type === 'done');
      expect(done).toMatchObject({
        op: 'put',
        local: name,
        remote: name,
        bytes: size,
        sha256: digest,
        resumedBytes: 0,
      });
      expect(put.events[0]).toMatchObject({ type: 'start', op: 'put', size });
      expect(await sha256File(join(box.root, name))).toBe(digest);

      const copy = `copy-${name}`;
      const get = await remote('get', name, copy, '--json');
      expect(get.code, get.stderr).toBe(0);
      expect(get.events.find((e) => e.type === 'done')).toMatchObject({
        op: 'get',
        bytes: size,
        sha256: digest,
      });
      expect(await sha256File(join(box.work, copy))).toBe(digest);
      expect((await stat(join(box.work, copy))).size).toBe(size);
    });
  }

  it('keeps names with spaces and Unicode (the seed wrote send_<name> and received_<name>)', async () => {
    const name = 'Ünïcødé résumé — 東京 ✓.txt';
    const digest = await randomFile(join(box.work, name), 4321);
    const put = await remote('put', name);
    expect(put.code, put.stderr).toBe(0);
    expect(put.stdout).toContain(`sent ${name} -> ${name}`);
    expect(await sha256File(join(box.root, name))).toBe(digest);
    const entries = await readdir(box.root);
    expect(entries.some((e) => e.startsWith('send_') || e.startsWith('received_'))).toBe(false);

    await mkdir(join(box.work, 'down'));
    const get = await remote('get', name, 'down/');
    expect(get.code, get.stderr).toBe(0);
    expect(await sha256File(join(box.work, 'down', name))).toBe(digest);
  });
});

describe('listing, stat, rename and delete', () => {
  beforeAll(async () => {
    await mkdir(join(box.root, 'docs'), { recursive: true });
    await writeFile(join(box.root, 'docs', 'a.txt'), 'alpha');
    await writeFile(join(box.root, 'docs', 'b c.txt'), 'bravo charlie');
  });

  it('list prints size, time and name; --json prints one entry per file then done', async () => {
    const human = await remote('ls', 'docs');
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/^\s*5 B\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+a\.txt$/),
      expect.stringMatching(/^\s*13 B\s+.*\sb c\.txt$/),
    ]);
    const json = await remote('list', 'docs', '--json');
    expect(json.events).toEqual([
      expect.objectContaining({ type: 'entry', name: 'a.txt', path: 'docs/a.txt', kind: 'file', size: 5 }),
      expect.objectContaining({ type: 'entry', name: 'b c.txt', kind: 'file', size: 13 }),
      { type: 'done', op: 'list', remote: 'docs', count: 2 },
    ]);
    const root = await remote('list', '--json');
    expect(root.events).toContainEqual(expect.objectContaining({ type: 'entry', name: 'docs', kind: 'dir' }));
  });

  it('ls explains the ? after a special file or a link leading out of the root, and stat says it too', async () => {
    await mkdir(join(box.root, 'odd'));
    await writeFile(join(box.root, 'odd', 'plain.txt'), 'plain');
    execFileSync('mkfifo', [join(box.root, 'odd', 'pipe')]);
    await symlink(box.keyFile, join(box.root, 'odd', 'away'));
    const r = await remote('ls', 'odd');
    expect(r.code, r.stderr).toBe(0);
    expect(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.replace(/^.*\d\d:\d\d {2}/, '')),
    ).toEqual(['away?', 'pipe?', 'plain.txt']);
    expect(r.stderr).toBe(
      '(name? = not served: a special file, or a link leading out of the served directory)\n',
    );
    const plain = await remote('ls', 'docs');
    expect(plain.stderr).toBe('');
    const s = await remote('stat', 'odd/pipe');
    expect(s.stdout).toMatch(
      /^odd\/pipe: not served: a special file, or a link leading out of the served directory, modified /,
    );
  });

  it('stat describes one file; a missing one is exit 3', async () => {
    const r = await remote('stat', 'docs/b c.txt');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^docs\/b c\.txt: file, 13 B \(13 bytes\), modified /);
    const missing = await remote('stat', 'docs/nope');
    expect(missing.code).toBe(3);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('rename never replaces without --force (exit 4), and does with it', async () => {
    await writeFile(join(box.root, 'docs', 'old.txt'), 'old');
    const refused = await remote('mv', 'docs/old.txt', 'docs/a.txt');
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/--force/);
    expect(await readFile(join(box.root, 'docs', 'a.txt'), 'utf8')).toBe('alpha');
    const forced = await remote('rename', 'docs/old.txt', 'docs/a.txt', '--force');
    expect(forced.code, forced.stderr).toBe(0);
    expect(await readFile(join(box.root, 'docs', 'a.txt'), 'utf8')).toBe('old');
    const moved = await remote('rename', 'docs/a.txt', 'docs/renamed.txt', '--json');
    expect(moved.events).toEqual([
      { type: 'done', op: 'rename', from: 'docs/a.txt', to: 'docs/renamed.txt' },
    ]);
  });

  it('delete removes a file; deleting a missing one is exit 3', async () => {
    await writeFile(join(box.root, 'gone.txt'), 'x');
    const r = await remote('rm', 'gone.txt');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('deleted gone.txt');
    await expect(stat(join(box.root, 'gone.txt'))).rejects.toThrow();
    expect((await remote('delete', 'gone.txt')).code).toBe(3);
  });
});

describe('overwriting and several files at once', () => {
  it('get refuses to overwrite a local file (exit 4) unless --force', async () => {
    await writeFile(join(box.root, 'fresh.txt'), 'new content');
    await writeFile(join(box.work, 'fresh.txt'), 'precious');
    const refused = await remote('get', 'fresh.txt', '--json');
    expect(refused.code).toBe(4);
    expect(refused.events.at(-1)).toMatchObject({ type: 'error', code: 'EEXIST' });
    expect(await readFile(join(box.work, 'fresh.txt'), 'utf8')).toBe('precious');
    const forced = await remote('get', 'fresh.txt', '-f');
    expect(forced.code, forced.stderr).toBe(0);
    expect(await readFile(join(box.work, 'fresh.txt'), 'utf8')).toBe('new content');
  });

  it('put refuses to replace a server file (exit 4) unless --force', async () => {
    await writeFile(join(box.root, 'taken.txt'), 'server copy');
    await writeFile(join(box.work, 'taken.txt'), 'client copy');
    const refused = await remote('put', 'taken.txt');
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/exists.*--force|--force/);
    expect(await readFile(join(box.root, 'taken.txt'), 'utf8')).toBe('server copy');
    const forced = await remote('put', '--force', 'taken.txt');
    expect(forced.code, forced.stderr).toBe(0);
    expect(await readFile(join(box.root, 'taken.txt'), 'utf8')).toBe('client copy');
  });

  it('put FILE DIR stores DIR/FILE when DIR is a directory on the server, as scp does (and in the shell)', async () => {
    await mkdir(join(box.root, 'holiday'));
    await writeFile(join(box.work, 'report.txt'), 'report');
    const r = await remote('put', 'report.txt', 'holiday');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/sent report\.txt -> holiday\/report\.txt/);
    expect(await readFile(join(box.root, 'holiday', 'report.txt'), 'utf8')).toBe('report');
    await writeFile(join(box.work, 'notes.txt'), 'notes');
    const shell = await ferry([server.address, '--key', box.keyFile], {
      ...opts,
      input: 'put notes.txt holiday\n',
    });
    expect(shell.code, shell.stderr).toBe(0);
    expect(await readFile(join(box.root, 'holiday', 'notes.txt'), 'utf8')).toBe('notes');
    // A REMOTE that is not a directory there is the new file's name.
    const renamed = await remote('put', 'report.txt', 'report-copy.txt');
    expect(renamed.code, renamed.stderr).toBe(0);
    expect(await readFile(join(box.root, 'report-copy.txt'), 'utf8')).toBe('report');
  });

  it('put A B C -d DIR and get A B C -d DIR move several files', async () => {
    const names = ['m1.bin', 'm 2.bin', 'm3.bin', 'm4.bin', 'm5.bin'];
    const digests = await Promise.all(names.map((n, i) => randomFile(join(box.work, n), 50_000 * (i + 1))));
    await mkdir(join(box.root, 'many'));
    const put = await remote('put', ...names, '-d', 'many', '--json');
    expect(put.code, put.stderr).toBe(0);
    expect(put.events.filter((e) => e.type === 'done')).toHaveLength(names.length);
    for (const [i, n] of names.entries())
      expect(await sha256File(join(box.root, 'many', n))).toBe(digests[i]);

    await mkdir(join(box.work, 'back'));
    const get = await remote('get', ...names.map((n) => `many/${n}`), '--dir', 'back');
    expect(get.code, get.stderr).toBe(0);
    for (const [i, n] of names.entries())
      expect(await sha256File(join(box.work, 'back', n))).toBe(digests[i]);
  });

  it('reports each failed file on its own line and exits with the first failure', async () => {
    await writeFile(join(box.root, 'ok.txt'), 'fine');
    await mkdir(join(box.work, 'mixed'));
    const r = await remote('get', 'ok.txt', 'missing-1', 'missing-2', '-d', 'mixed', '--json');
    expect(r.code).toBe(3);
    expect(r.events.filter((e) => e.type === 'error')).toHaveLength(2);
    expect(r.events.filter((e) => e.type === 'done')).toHaveLength(1);
    expect(await readFile(join(box.work, 'mixed', 'ok.txt'), 'utf8')).toBe('fine');
  });

  it('a missing local file is one line, exit 3', async () => {
    const r = await remote('put', 'no-such-local-file');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/no such local file: no-such-local-file/);
  });
});

describe('paths that try to leave the served root', () => {
  it('are refused (exit 2) and nothing outside the root is touched', async () => {
    const outside = join(box.dir, 'outside');
    await mkdir(outside);
    await writeFile(join(box.work, 'payload'), 'escape attempt');
    const before = await readdir(box.dir);
    const attempts: string[][] = [
      ['put', 'payload', '../x'],
      ['put', 'payload', 'a/../../x'],
      ['put', 'payload', join(outside, 'x')],
      ['put', 'payload', '/etc/passwd'],
      ['get', '../key', 'stolen-1'],
      ['get', '/etc/passwd', 'stolen-2'],
      ['get', 'a/../../key', 'stolen-3'],
      ['rename', '../key', 'k'],
      ['delete', '../key'],
      ['list', '..'],
      ['stat', '/etc/passwd'],
    ];
    const results = await Promise.all(attempts.map(([command, ...args]) => remote(command!, ...args)));
    results.forEach((r, i) => {
      expect(r.code, `${attempts[i]!.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    });
    expect(await readdir(outside)).toEqual([]);
    expect(await readdir(box.dir)).toEqual(before);
    expect(await readFile(box.keyFile, 'utf8')).toMatch(/=\n$/);
    for (const stolen of ['stolen-1', 'stolen-2', 'stolen-3']) {
      await expect(stat(join(box.work, stolen))).rejects.toThrow();
    }
    expect(dirname(box.root)).toBe(box.dir);
  });

  it('a path over the protocol limit is refused in words, not in schema terms (exit 2)', async () => {
    const long = 'a'.repeat(5000);
    await writeFile(join(box.work, 'short.txt'), 'short');
    for (const args of [
      ['get', long],
      ['put', 'short.txt', long],
      ['stat', long],
      ['rename', 'short.txt', `x/${long}`],
    ]) {
      const r = await remote(args[0]!, ...args.slice(1));
      const what = args.map((a) => a.slice(0, 12)).join(' ');
      expect(r.code, what).toBe(2);
      expect(r.stderr, what).toMatch(/a path is at most 4096 bytes; this one has 50\d\d\n$/);
      expect(r.stderr, what).not.toMatch(/schema|UTF-8/);
    }
  });
});

describe('keys', () => {
  it('a wrong key is refused with exit 7 and says so in one line', async () => {
    const other = join(box.dir, 'other.key');
    await ferry(['keygen', other], opts);
    const r = await ferry(['ls', server.address, '--key', other], opts);
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(/^ferry: the server does not accept this key/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('FERRY_KEY and the default key file are used when --key is absent', async () => {
    const key = (await readFile(box.keyFile, 'utf8')).trim();
    const viaEnv = await ferry(['ls', server.address], { ...opts, env: { ...box.env, FERRY_KEY: key } });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    const xdg = join(box.dir, 'xdg');
    await mkdir(join(xdg, 'ferry'), { recursive: true });
    await writeFile(join(xdg, 'ferry', 'key'), `${key}\n`, { mode: 0o600 });
    const viaFile = await ferry(['ls', server.address], {
      ...opts,
      env: { ...box.env, XDG_CONFIG_HOME: xdg },
    });
    expect(viaFile.code, viaFile.stderr).toBe(0);
  });
});

describe('transfer options', () => {
  it('--window 1 (stop-and-wait), --block-size, --limit and --timeout are accepted and the data still matches', async () => {
    const digest = await randomFile(join(box.work, 'opts.bin'), 300_000);
    const r = await remote(
      'put',
      'opts.bin',
      '--window',
      '1',
      '--block-size',
      '4096',
      '--limit',
      '50M',
      '--timeout',
      '10',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(await sha256File(join(box.root, 'opts.bin'))).toBe(digest);
    // A get with --window 1: the server is held to one block at a time by the receive window.
    const back = join(box.work, 'opts-back.bin');
    const g = await remote('get', 'opts.bin', back, '--window', '1', '--block-size', '4096');
    expect(g.code, g.stderr).toBe(0);
    expect(await sha256File(back)).toBe(digest);
    const bad = await remote('put', 'opts.bin', '--window', '0');
    expect(bad.code).toBe(2);
  });

  it('--quiet prints nothing on success; errors still get their line', async () => {
    await writeFile(join(box.work, 'quiet.txt'), 'shh');
    const r = await remote('put', 'quiet.txt', '--quiet');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('');
    const failed = await remote('get', 'nothing-here', '-q');
    expect(failed.code).toBe(3);
    expect(failed.stderr).toMatch(/^ferry: /);
  });

  it('without a terminal there are no progress bars or colour codes', async () => {
    await randomFile(join(box.work, 'plain.bin'), 2_000_000);
    const r = await remote('put', 'plain.bin', '--force');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).not.toContain('\u001b[');
    expect(r.stdout).toMatch(/^sent plain\.bin -> plain\.bin \(2\.0 MB in .*\)\n$/);
  });
});
