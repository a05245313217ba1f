import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ferry,
  randomFile,
  ServerProcess,
  sandbox,
  serveSandbox,
  sha256File,
  waitUntil,
} from '../../src/harness.js';

async function keyText(file: string): Promise<string> {
  return (await readFile(file, 'utf8')).trim();
}

/** A section of docs/SECURITY.md, from its heading to the next one. */
async function securityDoc(heading: string): Promise<string> {
  const doc = await readFile(new URL('../../../../docs/SECURITY.md', import.meta.url), 'utf8');
  const start = doc.indexOf(`\n## ${heading}\n`);
  expect(start, `a "## ${heading}" section in docs/SECURITY.md`).toBeGreaterThan(0);
  const end = doc.indexOf('\n## ', start + 1);
  return doc.slice(start, end < 0 ? undefined : end);
}

describe('key rotation as docs/SECURITY.md describes it', () => {
  it('the documented keys file serves the old and the new key at once, the log names each, and then the new one alone', async () => {
    const steps = await securityDoc('Rotating keys');
    const block = /```text\n([\s\S]*?)```/.exec(steps)?.[1];
    expect(block, 'the keys file of the rotation steps').toBeDefined();
    const box = await sandbox();
    const newKey = join(box.dir, 'new.key');
    await ferry(['keygen', newKey], { env: box.env });
    const lines = block!
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
    const oldText = await keyText(box.keyFile);
    const newText = await keyText(newKey);
    const withKeys = (kept: string[]) =>
      `${kept.join('\n')}\n`.replace('<the old key>', oldText).replace('<the new key>', newText);
    const nameOn = (placeholder: string) => lines.find((l) => l.includes(placeholder))!.split(/\s+/)[0]!;
    const [oldName, newName] = [nameOn('<the old key>'), nameOn('<the new key>')];
    const keysFile = join(box.dir, 'keys');
    const as = (key: string, server: ServerProcess) =>
      ferry(['ls', server.address, '--key', key], { cwd: box.work, env: box.env });

    // Step 2: both lines.
    await writeFile(keysFile, withKeys(lines));
    const both = await ServerProcess.start({ root: box.root, env: box.env, args: ['--keys', keysFile] });
    for (const key of [box.keyFile, newKey]) {
      const r = await as(key, both);
      expect(r.code, r.stderr).toBe(0);
    }
    await waitUntil(`sessions of ${oldName} and ${newName} in the log:\n${both.lines.join('\n')}`, () =>
      [oldName, newName].every((name) =>
        both.lines.some((l) => l.includes(` ${name}@`) && l.includes('session opened')),
      ),
    );
    await both.stop();

    // Step 3: the old line removed.
    await writeFile(keysFile, withKeys(lines.filter((l) => !l.includes('<the old key>'))));
    const rotated = await ServerProcess.start({ root: box.root, env: box.env, args: ['--keys', keysFile] });
    expect((await as(box.keyFile, rotated)).code).toBe(7);
    const r = await as(newKey, rotated);
    expect(r.code, r.stderr).toBe(0);
    await rotated.stop();
  }, 60_000);

  it('says how to report a vulnerability privately, naming no person', async () => {
    const section = await securityDoc('Reporting a vulnerability');
    expect(section).toMatch(/private security advisory/);
    expect(section).not.toMatch(/@|public issue tracker/);
  });
});

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
    const server = await serveSandbox(box, { args: ['--read-only'] });
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
    const server = await serveSandbox(box);
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
