import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  defaultKeyPath,
  formatKey,
  generateKey,
  keyFromEnv,
  parseKey,
  readKeyFile,
  writeNewKeyFile,
} from '../src/index.js';
import { expectCryptoError, expectCryptoErrorAsync } from './errors.js';

const KEY = 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=';
const isRoot = process.getuid?.() === 0;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-crypto-keyfile-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `fn` under `mask`, restoring the previous umask afterwards. */
async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const previous = process.umask(mask);
  try {
    return await fn();
  } finally {
    process.umask(previous);
  }
}

describe('defaultKeyPath', () => {
  it('uses $XDG_CONFIG_HOME/ferry/key when XDG_CONFIG_HOME is absolute', () => {
    expect(defaultKeyPath({ XDG_CONFIG_HOME: '/xdg', HOME: '/home/u' })).toBe('/xdg/ferry/key');
  });

  it('falls back to ~/.config/ferry/key when XDG_CONFIG_HOME is unset, empty or relative', () => {
    expect(defaultKeyPath({ HOME: '/home/u' })).toBe('/home/u/.config/ferry/key');
    expect(defaultKeyPath({ HOME: '/home/u', XDG_CONFIG_HOME: '' })).toBe('/home/u/.config/ferry/key');
    expect(defaultKeyPath({ HOME: '/home/u', XDG_CONFIG_HOME: 'rel/dir' })).toBe('/home/u/.config/ferry/key');
  });
});

describe('keyFromEnv', () => {
  it('returns undefined when FERRY_KEY is unset or empty', () => {
    expect(keyFromEnv({})).toBeUndefined();
    expect(keyFromEnv({ FERRY_KEY: '' })).toBeUndefined();
    expect(keyFromEnv({ FERRY_KEY: '  ' })).toBeUndefined();
  });

  it('parses the key in FERRY_KEY, ignoring surrounding whitespace', () => {
    const key = keyFromEnv({ FERRY_KEY: ` ${KEY}\n` });
    expect(key && formatKey(key)).toBe(KEY);
  });

  it('refuses a malformed FERRY_KEY with EINVALIDKEY, naming the variable but not echoing it', () => {
    const value = 'hunter2-not-a-key';
    const error = expectCryptoError(() => keyFromEnv({ FERRY_KEY: value }), 'EINVALIDKEY');
    expect(error.message).toContain('FERRY_KEY');
    expect(error.message).not.toContain(value);
  });
});

describe('writeNewKeyFile', () => {
  it('creates the file 0600 with the key and a newline, and its missing parents 0700', async () => {
    const path = join(dir, 'a', 'b', 'key');
    const text = await writeNewKeyFile(path);
    expect(() => parseKey(text)).not.toThrow();
    expect(await readFile(path, 'utf8')).toBe(`${text}\n`);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'a'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'a', 'b'))).mode & 0o777).toBe(0o700);
  });

  it('makes the file 0600 and new directories 0700 even under umask 000', async () => {
    const path = join(dir, 'open', 'key');
    await withUmask(0o000, () => writeNewKeyFile(path, KEY));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'open'))).mode & 0o777).toBe(0o700);
  });

  it('makes new directories usable (0700) even under a umask that removes owner bits', async () => {
    const path = join(dir, 'tight', 'key');
    await withUmask(0o277, () => writeNewKeyFile(path, KEY));
    expect((await stat(join(dir, 'tight'))).mode & 0o777).toBe(0o700);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('leaves the mode of an existing parent directory alone', async () => {
    const parent = join(dir, 'shared');
    await mkdir(parent);
    await chmod(parent, 0o755);
    await writeNewKeyFile(join(parent, 'key'), KEY);
    expect((await stat(parent)).mode & 0o777).toBe(0o755);
  });

  it('writes a given key in canonical form and returns it', async () => {
    const path = join(dir, 'key');
    expect(await writeNewKeyFile(path, ` ${KEY.slice(0, 43)} `)).toBe(KEY);
    expect(await readFile(path, 'utf8')).toBe(`${KEY}\n`);
  });

  it('refuses to overwrite an existing file with EKEYEXISTS and leaves it untouched', async () => {
    const path = join(dir, 'key');
    await writeFile(path, 'precious\n');
    const error = await expectCryptoErrorAsync(() => writeNewKeyFile(path), 'EKEYEXISTS');
    expect(error.message).toContain(path);
    expect(await readFile(path, 'utf8')).toBe('precious\n');
  });

  it('refuses a malformed key with EINVALIDKEY and creates nothing', async () => {
    const path = join(dir, 'key');
    await expectCryptoErrorAsync(() => writeNewKeyFile(path, 'nope'), 'EINVALIDKEY');
    await expect(stat(path)).rejects.toThrow();
  });

  it('reports a parent that is a file with EKEYFILE', async () => {
    await writeFile(join(dir, 'file'), 'x');
    const error = await expectCryptoErrorAsync(() => writeNewKeyFile(join(dir, 'file', 'key')), 'EKEYFILE');
    expect(error.message).toContain(join(dir, 'file'));
  });
});

describe('readKeyFile', () => {
  it('reads the key written by writeNewKeyFile', async () => {
    const path = join(dir, 'key');
    const text = await writeNewKeyFile(path);
    expect(formatKey(await readKeyFile(path))).toBe(text);
  });

  it('takes the first line that is neither blank nor a # comment, with CRLF line ends', async () => {
    const path = join(dir, 'key');
    await writeFile(path, `# ferry key\r\n\r\n   \r\n  ${KEY}  \r\n# trailing\r\n`);
    expect(formatKey(await readKeyFile(path))).toBe(KEY);
  });

  it('reports a missing file with EKEYFILE, naming the path and how to create it', async () => {
    const path = join(dir, 'nope', 'key');
    const error = await expectCryptoErrorAsync(() => readKeyFile(path), 'EKEYFILE');
    expect(error.message).toBe(`key file ${path} does not exist; create one with \`ferry keygen ${path}\``);
  });

  it('reports a directory with EKEYFILE', async () => {
    const error = await expectCryptoErrorAsync(() => readKeyFile(dir), 'EKEYFILE');
    expect(error.message).toContain(dir);
  });

  it.skipIf(isRoot)(
    'reports an unreadable file with EKEYFILE (skipped as root: root reads any file)',
    async () => {
      const path = join(dir, 'key');
      await writeFile(path, `${KEY}\n`);
      await chmod(path, 0o000);
      const error = await expectCryptoErrorAsync(() => readKeyFile(path), 'EKEYFILE');
      expect(error.message).toMatch(/permission denied/);
    },
  );

  it.each([
    ['empty', ''],
    ['only comments', '# nothing here\n\n'],
    ['a malformed key', 'AAAA-definitely-not-a-key\n'],
    ['a key with a trailing comment', `${KEY} # mine\n`],
  ])(
    'reports a file with %s as EINVALIDKEY, naming the path and not echoing its content',
    async (_name, body) => {
      const path = join(dir, 'key');
      await writeFile(path, body);
      const error = await expectCryptoErrorAsync(() => readKeyFile(path), 'EINVALIDKEY');
      expect(error.message).toContain(path);
      expect(error.message).toContain('ferry keygen');
      for (const line of body.split('\n').filter((l) => l.length > 8))
        expect(error.message).not.toContain(line);
    },
  );

  it('reads a key written by another tool without the padding character', async () => {
    const path = join(dir, 'key');
    await writeFile(path, KEY.slice(0, 43));
    expect(formatKey(await readKeyFile(path))).toBe(KEY);
    expect(generateKey()).toHaveLength(44);
  });
});
