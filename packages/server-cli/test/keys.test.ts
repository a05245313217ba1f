import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatKey, generateKey, parseKey } from '@ferry/crypto';
import { describe, expect, it } from 'vitest';
import { KeysFileError, parseKeysFile, readKeysFile } from '../src/keys.js';

const k1 = generateKey();
const k2 = generateKey();
const k3 = generateKey();

function errorOf(run: () => unknown): KeysFileError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(KeysFileError);
    return error as KeysFileError;
  }
  throw new Error('expected a KeysFileError');
}

describe('parseKeysFile', () => {
  it('reads named keys with their access, skipping blanks and comments', () => {
    const keys = parseKeysFile(`# team keys\n\nalice rw ${k1}\n  bob   ro\t${k2}  \r\n# end\n`);
    expect(keys.map(({ name, access }) => ({ name, access }))).toEqual([
      { name: 'alice', access: 'read-write' },
      { name: 'bob', access: 'read-only' },
    ]);
    expect(formatKey(keys[0]!.key)).toBe(k1);
    expect(keys[1]!.key.signingKey).toEqual(parseKey(k2).signingKey);
    expect(keys[1]!.key.encryptionKey.length).toBe(16);
  });

  it('treats a bare key line as "default", read-write', () => {
    const keys = parseKeysFile(`${k1}\n`);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toEqual(expect.objectContaining({ name: 'default', access: 'read-write' }));
  });

  it('accepts keys without padding and the long access spellings', () => {
    const keys = parseKeysFile(`a read-only ${k1.replace(/=$/, '')}\nb read-write ${k2}`);
    expect(keys.map((k) => k.access)).toEqual(['read-only', 'read-write']);
  });

  it('names the line of a malformed key without echoing it', () => {
    const bad = `${k1.slice(0, 40)}`;
    const error = errorOf(() => parseKeysFile(`alice rw ${k1}\n\nbob ro ${bad}\n`, 'keys.txt'));
    expect(error.line).toBe(3);
    expect(error.code).toBe('EKEYFILE');
    expect(error.message).toMatch(/^keys\.txt line 3: /);
    expect(error.message).not.toContain(bad);
  });

  it.each([
    ['an unknown access mode', `alice admin ${k1}`, /access must be "ro" or "rw"/],
    ['two fields', `alice ${k1}`, /expected "<name> <ro\|rw> <key>"/],
    ['four fields', `alice rw ${k1} extra`, /expected/],
    ['a bad name', `al/ice rw ${k1}`, /key name/],
    ['standard base64 characters', `alice rw ${'+/'.repeat(21)}A=`, /valid/],
  ])('refuses %s, naming line 1', (_label, text, message) => {
    const error = errorOf(() => parseKeysFile(text));
    expect(error.line).toBe(1);
    expect(error.message).toMatch(message);
  });

  it('refuses duplicate names and a key listed twice, naming both lines', () => {
    const dupName = errorOf(() => parseKeysFile(`alice rw ${k1}\nalice ro ${k2}\n`));
    expect(dupName.line).toBe(2);
    expect(dupName.message).toMatch(/"alice" is already used on line 1; each key needs a name of its own/);
    expect(dupName.message).toMatch(/rotate a key, add the new one as, say, "alice-2"/);
    const dupKey = errorOf(() => parseKeysFile(`alice rw ${k1}\n# x\nbob ro ${k1}\n`));
    expect(dupKey.line).toBe(3);
    expect(dupKey.message).toMatch(/already listed on line 1/);
    const twoDefaults = errorOf(() => parseKeysFile(`${k1}\n${k3}\n`));
    expect(twoDefaults.line).toBe(2);
  });

  it('refuses a file without keys', () => {
    expect(errorOf(() => parseKeysFile('# nothing here\n\n')).message).toMatch(/no keys found/);
  });

  it('reads a file and names a missing one', async () => {
    const dir = await fsp.mkdtemp(join(tmpdir(), 'ferry-keys-'));
    try {
      const path = join(dir, 'keys');
      await fsp.writeFile(path, `\uFEFFalice rw ${k1}\n`);
      expect((await readKeysFile(path))[0]!.name).toBe('alice');
      const error = await readKeysFile(join(dir, 'missing')).catch((e: unknown) => e as KeysFileError);
      expect(error).toBeInstanceOf(KeysFileError);
      expect((error as KeysFileError).message).toContain(join(dir, 'missing'));
      expect((error as KeysFileError).message).toMatch(/does not exist/);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
