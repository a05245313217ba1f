import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { splitWords } from '../src/args.js';
import { componentRegExp, expand, expandLocal, hasGlob, unescapeGlob } from '../src/glob.js';

describe('name patterns', () => {
  it('match within one path component, never a leading dot unless spelled, with sets and escapes', () => {
    const matches = (pattern: string, name: string) => componentRegExp(pattern).test(name);
    expect(matches('*.jpg', 'a.jpg')).toBe(true);
    expect(matches('*.jpg', '.hidden.jpg')).toBe(false);
    expect(matches('.*.jpg', '.hidden.jpg')).toBe(true);
    expect(matches('file-?.txt', 'file-7.txt')).toBe(true);
    expect(matches('file-?.txt', 'file-77.txt')).toBe(false);
    expect(matches('[ab]*', 'b-side')).toBe(true);
    expect(matches('[!ab]*', 'b-side')).toBe(false);
    expect(matches('[^ab]*', 'c-side')).toBe(true);
    expect(matches('a\\*b', 'a*b')).toBe(true);
    expect(matches('a\\*b', 'axxb')).toBe(false);
    expect(matches('(x)+.txt', '(x)+.txt')).toBe(true);
    expect(matches('[unclosed', '[unclosed')).toBe(true);
    expect(hasGlob('a\\*b')).toBe(false);
    expect(hasGlob('logs/*.gz')).toBe(true);
    expect(unescapeGlob('a\\*b\\?')).toBe('a*b?');
  });

  it('expand component by component, sorted, keeping literal parts only where they exist', async () => {
    const tree: Record<string, Array<{ name: string; dir: boolean }>> = {
      '': [
        { name: 'logs', dir: true },
        { name: 'old', dir: true },
        { name: 'top.gz', dir: false },
      ],
      logs: [
        { name: 'b.gz', dir: false },
        { name: 'a.gz', dir: false },
        { name: 'today', dir: true },
      ],
      old: [{ name: 'today', dir: true }],
      'logs/today': [{ name: 'x.gz', dir: false }],
      'old/today': [],
    };
    const list = async (dir: string) => tree[dir] ?? [];
    const join2 = (dir: string, name: string) => (dir === '' ? name : `${dir}/${name}`);
    expect((await expand('logs/*.gz', list, join2))?.map((m) => m.path)).toEqual(['logs/a.gz', 'logs/b.gz']);
    expect((await expand('*/today/*.gz', list, join2))?.map((m) => m.path)).toEqual(['logs/today/x.gz']);
    expect(await expand('nothing/*', list, join2)).toEqual([]);
    expect(await expand('logs/a.gz', list, join2)).toBeUndefined();
  });

  it('the shell keeps a backslash before a pattern character, so that it stays literal', () => {
    expect(splitWords('get a\\*b c\\ d')).toEqual(['get', 'a\\*b', 'c d']);
    expect(splitWords("get 'logs/*.gz'")).toEqual(['get', 'logs/*.gz']);
  });

  it('local patterns expand against the file system; no match is ENOENT', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-glob-'));
    try {
      await mkdir(join(dir, 'pics'));
      for (const name of ['b.jpg', 'a.jpg', 'c.png', '.d.jpg'])
        await writeFile(join(dir, 'pics', name), name);
      expect(await expandLocal(join(dir, 'pics', '*.jpg'))).toEqual([
        join(dir, 'pics', 'a.jpg'),
        join(dir, 'pics', 'b.jpg'),
      ]);
      expect(await expandLocal(join(dir, 'pics', 'plain'))).toEqual([join(dir, 'pics', 'plain')]);
      await expect(expandLocal(join(dir, 'pics', '*.gif'))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
