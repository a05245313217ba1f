import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ferry, randomFile, ServerProcess, sandbox, sha256File } from '../../cli-kit/testing/harness.js';

async function keyText(file: string): Promise<string> {
  return (await readFile(file, 'utf8')).trim();
}

describe('per-key access', () => {
  it('a read-only key from --keys gets, lists and stats, but put, rename and delete are refused (exit 5)', async () => {
    const box = await sandbox();
    const reader = join(box.dir, 'reader.key');
    const stranger = join(box.dir, 'stranger.key');
    await ferry(['keygen', reader], { env: box.env });
    await ferry(['keygen', stranger], { env: box.env });
    const keysFile = join(box.dir, 'keys');
    await writeFile(
      keysFile,
      `# name access key\nalice rw ${await keyText(box.keyFile)}\nbob ro ${await keyText(reader)}\n`,
    );
    const server = await ServerProcess.start({ root: box.root, env: box.env, args: ['--keys', keysFile] });
    expect(server.lines[0]).toMatch(/2 keys: alice [0-9a-f]{8}, bob [0-9a-f]{8}, access per key\)$/);
    const digest = await randomFile(join(box.root, 'shared.bin'), 70_000);
    await writeFile(join(box.work, 'mine.txt'), 'from bob');
    const as = (key: string, ...args: string[]) =>
      ferry([...args, '--key', key], { cwd: box.work, env: box.env });

    expect((await as(reader, 'ls', server.address)).stdout).toMatch(/shared\.bin/);
    expect((await as(reader, 'stat', server.address, 'shared.bin')).code).toBe(0);
    const got = await as(reader, 'get', server.address, 'shared.bin');
    expect(got.code, got.stderr).toBe(0);
    expect(await sha256File(join(box.work, 'shared.bin'))).toBe(digest);

    for (const args of [
      ['put', server.address, 'mine.txt'],
      ['rename', server.address, 'shared.bin', 'moved.bin'],
      ['delete', server.address, 'shared.bin'],
    ]) {
      const r = await as(reader, ...args);
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(5);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/read-only|permission/);
    }
    expect(await sha256File(join(box.root, 'shared.bin'))).toBe(digest);
    await expect(stat(join(box.root, 'mine.txt'))).rejects.toThrow();

    const wrote = await as(box.keyFile, 'put', server.address, 'mine.txt');
    expect(wrote.code, wrote.stderr).toBe(0);
    expect((await as(stranger, 'ls', server.address)).code).toBe(7);
    await server.stop();
  });

  it('--read-only refuses every write whatever the key (exit 5)', async () => {
    const box = await sandbox();
    const server = await ServerProcess.start({
      root: box.root,
      keyFile: box.keyFile,
      env: box.env,
      args: ['--read-only'],
    });
    expect(server.lines[0]).toMatch(/read-only\)$/);
    await writeFile(join(box.root, 'r.txt'), 'read me');
    await writeFile(join(box.work, 'w.txt'), 'write me');
    const run = (...args: string[]) =>
      ferry([...args, '--key', box.keyFile], { cwd: box.work, env: box.env });
    expect((await run('get', server.address, 'r.txt')).code).toBe(0);
    expect((await run('put', server.address, 'w.txt')).code).toBe(5);
    expect((await run('mv', server.address, 'r.txt', 's.txt')).code).toBe(5);
    expect((await run('rm', server.address, 'r.txt')).code).toBe(5);
    const shell = await ferry([server.address, '--key', box.keyFile], {
      cwd: box.work,
      env: box.env,
      input: 'put w.txt\nget r.txt r2.txt\n',
    });
    // The shell goes on after the refusal, and its exit status tells a script that something failed.
    expect(shell.code).toBe(5);
    expect(shell.stderr).toMatch(/^ferry: put w\.txt: .*(read-only|permission)/);
    expect(await readFile(join(box.work, 'r2.txt'), 'utf8')).toBe('read me');
    await server.stop();
  });
});

describe('confinement to the served root', () => {
  it('a symlink leading out of the root is neither read nor written through', async () => {
    const box = await sandbox();
    const outside = join(box.dir, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'secret.txt'), 'secret');
    await symlink(join(outside, 'secret.txt'), join(box.root, 'link-to-secret'));
    await symlink(outside, join(box.root, 'link-to-dir'));
    const server = await ServerProcess.start({ root: box.root, keyFile: box.keyFile, env: box.env });
    const run = (...args: string[]) =>
      ferry([...args, '--key', box.keyFile], { cwd: box.work, env: box.env });
    const read = await run('get', server.address, 'link-to-secret', 'leak.txt');
    expect([2, 3, 5]).toContain(read.code);
    await expect(stat(join(box.work, 'leak.txt'))).rejects.toThrow();
    await writeFile(join(box.work, 'evil.txt'), 'evil');
    const write = await run('put', server.address, 'evil.txt', 'link-to-dir/evil.txt');
    expect([2, 3, 5]).toContain(write.code);
    const overwrite = await run('put', server.address, 'evil.txt', 'link-to-secret', '--force');
    expect([2, 3, 5]).toContain(overwrite.code);
    expect(await readFile(join(outside, 'secret.txt'), 'utf8')).toBe('secret');
    const listing = await run('ls', server.address, 'link-to-dir');
    expect(listing.stdout).not.toMatch(/secret/);
    await server.stop();
  });
});
