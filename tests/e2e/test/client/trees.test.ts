import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  diffTrees,
  ferry,
  type RunOptions,
  randomTree,
  type Sandbox,
  type ServerProcess,
  servedSandbox,
  waitUntil,
} from '../../src/harness.js';

let box: Sandbox;
let server: ServerProcess;
let opts: RunOptions;
const remote = (command: string, ...args: string[]) =>
  ferry([command, server.address, ...args, '--key', box.keyFile], opts);

beforeAll(async () => {
  ({ box, server } = await servedSandbox());
  opts = { cwd: box.work, env: box.env, timeoutMs: 60_000 };
});

const TREE = {
  'a/one.txt': 10,
  'a/two.bin': 5000,
  'a/deeper/three.bin': 70_000,
  'a/deeper/empty': -1,
  'b c/ünïcødé ✓.txt': 123,
  'big/large.bin': 900_000,
  'big/zero.bin': 0,
  'top.txt': 4,
};

describe('put -r and get -r', () => {
  it('move a whole tree bit-exact, empty directories and all, with JSON events per file and a summary', async () => {
    await randomTree(join(box.work, 'album'), TREE);
    const put = await remote('put', '-r', 'album', '--json');
    expect(put.code, put.stderr).toBe(0);
    expect(diffTrees(join(box.work, 'album'), join(box.root, 'album'))).toBe('');
    expect(put.events[0]).toMatchObject({ type: 'start', op: 'put', tree: true, files: 7 });
    const done = put.events.filter((e) => e.type === 'done');
    expect(done.map((e) => e.remote).sort()).toEqual(
      Object.entries(TREE)
        .filter(([, size]) => size >= 0)
        .map(([path]) => `album/${path}`)
        .sort(),
    );
    expect(done.every((e) => typeof e.sha256 === 'string')).toBe(true);
    expect(put.events.at(-1)).toMatchObject({ type: 'summary', op: 'put', files: 7, placed: 7, failed: 0 });

    const get = await remote('get', '-r', 'album', 'copy');
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toMatch(/received album -> copy: 7 file\(s\)/);
    expect(diffTrees(join(box.work, 'album'), join(box.work, 'copy'))).toBe('');
    expect((await stat(join(box.work, 'copy', 'a', 'deeper', 'empty'))).isDirectory()).toBe(true);
  });

  it('places a tree as scp does: into an existing directory as a subdirectory, else under the new name', async () => {
    await randomTree(join(box.work, 'place'), { 'f.txt': 3 });
    await mkdir(join(box.root, 'existing'));
    expect((await remote('put', '-r', 'place', 'existing')).code).toBe(0);
    expect(await readdir(join(box.root, 'existing'))).toEqual(['place']);
    expect((await remote('put', '-r', 'place', 'renamed')).code).toBe(0);
    expect(await readdir(join(box.root, 'renamed'))).toEqual(['f.txt']);

    await mkdir(join(box.work, 'here'));
    expect((await remote('get', '-r', 'renamed', 'here')).code).toBe(0);
    expect(await readdir(join(box.work, 'here'))).toEqual(['renamed']);
    expect((await remote('get', '-r', 'renamed', 'fresh')).code).toBe(0);
    expect(await readdir(join(box.work, 'fresh'))).toEqual(['f.txt']);
  });

  it('skips symbolic links with one warning each (never following one out of the tree, even with -L) and special files', async () => {
    const top = join(box.work, 'links');
    await randomTree(top, { 'inside/real.txt': 20, 'keep.txt': 5 });
    await writeFile(join(box.dir, 'secret.txt'), 'outside the tree');
    await symlink(join(box.dir, 'secret.txt'), join(top, 'out-file'));
    await symlink(box.dir, join(top, 'out-dir'));
    await symlink('inside/real.txt', join(top, 'in-file'));
    await symlink('inside', join(top, 'in-dir'));
    await symlink('.', join(top, 'inside', 'loop'));
    execFileSync('mkfifo', [join(top, 'pipe')]);

    const plain = await remote('put', '-r', 'links');
    expect(plain.code, plain.stderr).toBe(0);
    const warnings = plain.stderr.split('\n').filter((l) => l.includes('skipped'));
    expect(warnings).toHaveLength(6);
    expect(plain.stderr).toMatch(/skipped links\/pipe: a FIFO/);
    expect((await readdir(join(box.root, 'links'))).sort()).toEqual(['inside', 'keep.txt']);

    const followed = await remote('put', '-r', '-L', 'links', 'followed', '--json');
    expect(followed.code, followed.stderr).toBe(0);
    const skipped = followed.events.filter((e) => e.type === 'warning').map((e) => e.local);
    expect(skipped.sort()).toEqual(
      ['links/in-dir/loop', 'links/inside/loop', 'links/out-dir', 'links/out-file', 'links/pipe'].sort(),
    );
    expect((await readdir(join(box.root, 'followed'))).sort()).toEqual([
      'in-dir',
      'in-file',
      'inside',
      'keep.txt',
    ]);
    expect(await readdir(join(box.root, 'followed', 'in-dir'))).toEqual(['real.txt']);
    expect(await readFile(join(box.root, 'followed', 'in-file'), 'utf8')).toBe(
      await readFile(join(top, 'inside', 'real.txt'), 'utf8'),
    );
    const everything = execFileSync('find', [box.root], { encoding: 'utf8' });
    expect(everything).not.toContain('secret');
  });

  it('-p keeps permission bits both ways; modification times are kept always', async () => {
    const top = join(box.work, 'modes');
    await randomTree(top, { 'run.sh': 30, 'private.txt': 40, 'sub/large.bin': 600_000 });
    await chmod(join(top, 'run.sh'), 0o751);
    await chmod(join(top, 'private.txt'), 0o600);
    await chmod(join(top, 'sub', 'large.bin'), 0o640);
    await utimes(join(top, 'private.txt'), 1_600_000_000, 1_600_000_000);
    const modeOf = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;

    expect((await remote('put', '-r', '-p', 'modes')).code).toBe(0);
    expect(await modeOf(join(box.root, 'modes', 'run.sh'))).toBe(0o751);
    expect(await modeOf(join(box.root, 'modes', 'private.txt'))).toBe(0o600);
    expect(await modeOf(join(box.root, 'modes', 'sub', 'large.bin'))).toBe(0o640);
    expect((await stat(join(box.root, 'modes', 'private.txt'))).mtimeMs).toBe(1_600_000_000_000);

    expect((await remote('get', '-r', '-p', 'modes', 'modes-back')).code).toBe(0);
    expect(await modeOf(join(box.work, 'modes-back', 'run.sh'))).toBe(0o751);
    expect(await modeOf(join(box.work, 'modes-back', 'sub', 'large.bin'))).toBe(0o640);
    expect((await stat(join(box.work, 'modes-back', 'private.txt'))).mtimeMs).toBe(1_600_000_000_000);

    expect((await remote('put', '-r', 'modes', 'no-p')).code).toBe(0);
    expect(await modeOf(join(box.root, 'no-p', 'run.sh'))).not.toBe(0o751);
    expect((await stat(join(box.root, 'no-p', 'private.txt'))).mtimeMs).toBe(1_600_000_000_000);
  });

  it('reports each file that fails on its own line with its code, goes on with the rest, and ends with a summary and the exit code', async () => {
    const top = join(box.work, 'partly');
    await randomTree(top, { 'a.txt': 10, 'b.txt': 20, 'c.txt': 30, 'big.bin': 500_000, 'd/e.txt': 5 });
    await randomTree(join(box.root, 'partly'), { 'b.txt': 1, 'big.bin': 2 });
    const r = await remote('put', '-r', 'partly', '--json');
    expect(r.code).toBe(4);
    const errors = r.events.filter((e) => e.type === 'error');
    expect(errors.map((e) => [e.remote, e.code]).sort()).toEqual([
      ['partly/b.txt', 'EEXIST'],
      ['partly/big.bin', 'EEXIST'],
    ]);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('ferry: put partly/'))).toHaveLength(2);
    expect(r.events.at(-1)).toMatchObject({ type: 'summary', files: 5, placed: 3, failed: 2 });
    expect(await readFile(join(box.root, 'partly', 'c.txt'))).toEqual(await readFile(join(top, 'c.txt')));
    expect(await readFile(join(box.root, 'partly', 'd', 'e.txt'))).toEqual(
      await readFile(join(top, 'd', 'e.txt')),
    );
    const human = await remote('put', '-r', 'partly');
    expect(human.code).toBe(4);
    expect(human.stderr).toContain('5 of 5 files failed');
    // --force replaces them; then --resume finds everything already there.
    expect((await remote('put', '-r', '--force', 'partly')).code).toBe(0);
    expect(diffTrees(top, join(box.root, 'partly'))).toBe('');
    const again = await remote('put', '-r', '--resume', 'partly', '--json');
    expect(again.code, again.stderr).toBe(0);
    expect(again.events.at(-1)).toMatchObject({ type: 'summary', skipped: 5, placed: 0, transferred: 0 });
  });

  it('a directory that cannot be made is a failure too: its line, its files, the exit code', async () => {
    const top = join(box.work, 'blocked');
    await randomTree(top, { 'ok.txt': 3, 'sub/inside.txt': 4 });
    await randomTree(join(box.root, 'blocked'), { sub: 1 }); // a file where the directory should go
    const r = await remote('put', '-r', 'blocked', '--json');
    expect(r.code).not.toBe(0);
    expect(r.events.filter((e) => e.type === 'error').map((e) => e.remote)).toContain('blocked/sub');
    expect(r.events.at(-1)).toMatchObject({ type: 'summary', placed: 1, failed: 1, directoriesFailed: 1 });
    expect(await readFile(join(box.root, 'blocked', 'ok.txt'))).toEqual(await readFile(join(top, 'ok.txt')));
  });
});

describe('listing a tree, directories and patterns', () => {
  it('ls -R walks a tree of more than one page, streaming its entries', async () => {
    const spec: Record<string, number> = {};
    for (let d = 0; d < 15; d++) for (let f = 0; f < 100; f++) spec[`wide/d${d}/file-${f}.txt`] = 1;
    await randomTree(box.root, spec);
    const json = await remote('list', '--recursive', 'wide', '--json');
    expect(json.code, json.stderr).toBe(0);
    const entries = json.events.filter((e) => e.type === 'entry');
    expect(entries).toHaveLength(1515);
    expect(entries[0]).toMatchObject({ path: 'wide/d0', kind: 'dir' });
    expect(entries[1]).toMatchObject({ path: 'wide/d0/file-0.txt', kind: 'file', size: 1 });
    expect(json.events.at(-1)).toEqual({
      type: 'done',
      op: 'list',
      remote: 'wide',
      count: 1515,
      recursive: true,
    });
    const human = await remote('ls', '-R', 'wide/d3');
    expect(human.stdout.trim().split('\n')).toHaveLength(100);
    expect(human.stdout).toMatch(/1 B\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+wide\/d3\/file-99\.txt/);
  });

  it('mkdir, mkdir -p and rmdir (empty directories only), one-shot and in the shell', async () => {
    expect((await remote('mkdir', 'made')).code).toBe(0);
    expect((await stat(join(box.root, 'made'))).isDirectory()).toBe(true);
    expect((await remote('mkdir', 'made')).code).toBe(4);
    expect((await remote('mkdir', 'x/y/z')).code).toBe(3);
    expect((await remote('mkdir', '-p', 'x/y/z')).code).toBe(0);
    const notEmpty = await remote('rmdir', 'x');
    expect(notEmpty.code).toBe(4);
    expect(notEmpty.stderr).toMatch(/not empty/);
    const shell = await ferry([server.address, '--key', box.keyFile], {
      ...opts,
      input: 'mkdir -p p/q\nrmdir x/y/z\nrmdir x/y x\nls\n',
    });
    expect(shell.code, shell.stderr).toBe(0);
    expect(await readdir(box.root)).toContain('p');
    expect(await readdir(box.root)).not.toContain('x');
  });

  it("patterns: get 'logs/*.gz' and rm 'tmp/*' work on the server's names, a backslash makes a star literal, no match is exit 3", async () => {
    await randomTree(box.root, { 'logs/a.gz': 3, 'logs/b.gz': 4, 'logs/c.txt': 5, 'logs/.hidden.gz': 6 });
    await randomTree(box.root, { 'tmp/x': 1, 'tmp/y': 1 });
    await mkdir(join(box.work, 'fetched'));
    const got = await remote('get', 'logs/*.gz', 'fetched');
    expect(got.code, got.stderr).toBe(0);
    expect((await readdir(join(box.work, 'fetched'))).sort()).toEqual(['a.gz', 'b.gz']);
    const rm = await remote('rm', 'tmp/*');
    expect(rm.code, rm.stderr).toBe(0);
    expect(await readdir(join(box.root, 'tmp'))).toEqual([]);
    expect((await remote('get', 'logs/*.zip')).code).toBe(3);
    await writeFile(join(box.root, 'logs', 'star*.txt'), 'literal');
    const literal = await remote('get', 'logs/star\\*.txt', 'literal.txt');
    expect(literal.code, literal.stderr).toBe(0);
    expect(await readFile(join(box.work, 'literal.txt'), 'utf8')).toBe('literal');
  });

  it('the shell moves trees and lists them recursively too', async () => {
    await randomTree(join(box.work, 'shelltree'), { 'x/y.txt': 5, 'z.txt': 6 });
    const shell = await ferry([server.address, '--key', box.keyFile], {
      ...opts,
      input: 'put -r shelltree\nls -R shelltree\nget -r shelltree shellcopy\n',
    });
    expect(shell.code, shell.stderr).toBe(0);
    expect(shell.stdout).toMatch(/shelltree\/x\/y\.txt/);
    expect(diffTrees(join(box.work, 'shelltree'), join(box.work, 'shellcopy'))).toBe('');
  });

  it('the shell expands local patterns for put and remote ones for get, quotes only grouping words', async () => {
    await randomTree(join(box.work, 'pics'), { 'a.jpg': 10, 'b.jpg': 11, 'c.png': 12 });
    await mkdir(join(box.root, 'gallery'));
    await mkdir(join(box.work, 'back'));
    const shell = await ferry([server.address, '--key', box.keyFile], {
      ...opts,
      input: "put pics/*.jpg gallery\nget 'gallery/*' back\n",
    });
    expect(shell.code, shell.stderr).toBe(0);
    expect((await readdir(join(box.root, 'gallery'))).sort()).toEqual(['a.jpg', 'b.jpg']);
    expect((await readdir(join(box.work, 'back'))).sort()).toEqual(['a.jpg', 'b.jpg']);
  });
});

describe('an older server', () => {
  it("answers a newer client's tree commands with a clear 'not supported by this server' (exit 9); plain transfers still work", async () => {
    const require = createRequire(import.meta.url);
    const serverLib = pathToFileURL(require.resolve('@ferry/server-cli')).href;
    const cryptoLib = pathToFileURL(require.resolve('@ferry/crypto')).href;
    const oldRoot = join(box.dir, 'old-root');
    await mkdir(oldRoot);
    const script = `
      import { FerryServer } from ${JSON.stringify(serverLib)};
      import { readKeyFile } from ${JSON.stringify(cryptoLib)};
      const key = await readKeyFile(${JSON.stringify(box.keyFile)});
      const server = new FerryServer({ root: ${JSON.stringify(oldRoot)}, port: 0, host: '127.0.0.1',
        keys: [{ name: 'old', key, access: 'read-write' }], versions: [1] });
      const { port } = await server.listen();
      console.log('port ' + port);
      process.on('SIGTERM', () => server.close(0).then(() => process.exit(0)));
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    try {
      await waitUntil('the older server to listen', () => /port \d+/.test(out));
      const address = `127.0.0.1:${/port (\d+)/.exec(out)![1]}`;
      const old = (...args: string[]) =>
        ferry([...args.slice(0, 1), address, ...args.slice(1), '--key', box.keyFile], opts);
      for (const args of [
        ['mkdir', 'd'],
        ['ls', '-R'],
        ['put', '-r', 'album'],
        ['get', '-r', 'anything'],
      ]) {
        const r = await old(...args);
        expect(r.code, args.join(' ')).toBe(9);
        expect(r.stderr).toMatch(/not supported by this server .*upgrade ferry-server/);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
      }
      await writeFile(join(box.work, 'plain.txt'), 'plain');
      expect((await old('put', 'plain.txt')).code).toBe(0);
      expect(await readFile(join(oldRoot, 'plain.txt'), 'utf8')).toBe('plain');
      expect((await old('ls')).stdout).toContain('plain.txt');
    } finally {
      child.kill('SIGTERM');
    }
  });
});
