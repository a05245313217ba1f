import { readFile } from 'node:fs/promises';
import { CryptoError, type FernetKey, formatKey, isCryptoError, parseKey } from '@ferry/crypto';
import type { Access, ServerKey } from '@ferry/transport';

export type { ServerKey };

/**
 * A keys file that cannot be used: a CryptoError with code EKEYFILE (as for a single key file), so
 * the command line treats both alike; `line` is 1-based (absent for whole-file problems).
 */
export class KeysFileError extends CryptoError {
  readonly line: number | undefined;

  constructor(message: string, line?: number, options?: { cause?: unknown }) {
    super('EKEYFILE', message, options);
    this.name = 'KeysFileError';
    this.line = line;
  }
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const ACCESS: Record<string, Access> = {
  ro: 'read-only',
  'read-only': 'read-only',
  rw: 'read-write',
  'read-write': 'read-write',
};

/**
 * Parses a server keys file: one key per line as `<name> <ro|rw> <fernet-key>`, or a bare
 * `<fernet-key>` meaning name "default", read-write. Blank lines and lines starting with '#' are
 * ignored. Errors name the file and line: a malformed line, an invalid key, a duplicate name, the same
 * key listed twice (the server tells clients apart by their key), or no key at all.
 */
export function parseKeysFile(text: string, source = 'keys file'): ServerKey[] {
  const keys: ServerKey[] = [];
  const names = new Map<string, number>();
  const seen = new Map<string, number>();
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const at = `${source} line ${lineNo}`;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let name: string;
    let access: Access;
    let keyText: string;
    if (fields.length === 1) {
      [name, access, keyText] = ['default', 'read-write', fields[0]!];
    } else if (fields.length === 3) {
      name = fields[0]!;
      const mode = ACCESS[fields[1]!];
      if (mode === undefined) {
        throw new KeysFileError(
          `${at}: access must be "ro" or "rw", got ${JSON.stringify(fields[1])}`,
          lineNo,
        );
      }
      access = mode;
      keyText = fields[2]!;
      if (!NAME.test(name)) {
        throw new KeysFileError(
          `${at}: key name ${JSON.stringify(name)} must be 1-64 letters, digits, '.', '_', '@' or '-'`,
          lineNo,
        );
      }
    } else {
      throw new KeysFileError(
        `${at}: expected "<name> <ro|rw> <key>" or a bare key, got ${fields.length} fields`,
        lineNo,
      );
    }
    const key = parseKeyText(keyText, at, lineNo);
    const earlierName = names.get(name);
    if (earlierName !== undefined) {
      throw new KeysFileError(
        `${at}: key name "${name}" is already used on line ${earlierName}; each key needs a name of its ` +
          `own (to rotate a key, add the new one as, say, "${name}-2"; see docs/SECURITY.md)`,
        lineNo,
      );
    }
    const fingerprint = formatKey(key);
    const earlierKey = seen.get(fingerprint);
    if (earlierKey !== undefined) {
      throw new KeysFileError(`${at}: the same key is already listed on line ${earlierKey}`, lineNo);
    }
    names.set(name, lineNo);
    seen.set(fingerprint, lineNo);
    keys.push({ name, access, key });
  });
  if (keys.length === 0) throw new KeysFileError(`${source}: no keys found`);
  return keys;
}

/** Reads and parses a keys file; a missing or unreadable file is a KeysFileError naming the path. */
export async function readKeysFile(path: string): Promise<ServerKey[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EACCES'
          ? 'cannot be read (permission denied)'
          : String(code);
    throw new KeysFileError(`keys file ${path} ${why}`, undefined, { cause: error });
  }
  return parseKeysFile(text, path);
}

function parseKeyText(text: string, at: string, lineNo: number): FernetKey {
  try {
    return parseKey(text);
  } catch (error) {
    if (!isCryptoError(error, 'EINVALIDKEY')) throw error;
    // The crypto message says what a key looks like; never echo the (possibly secret) text itself.
    throw new KeysFileError(`${at}: ${error.message}`, lineNo, { cause: error });
  }
}
