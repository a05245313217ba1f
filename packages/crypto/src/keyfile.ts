import { chmod, mkdir, open, readFile, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { CryptoError, isCryptoError } from './errors.js';
import { type FernetKey, formatKey, generateKey, parseKey } from './key.js';

/** `$XDG_CONFIG_HOME/ferry/key`, else `~/.config/ferry/key`. */
export function defaultKeyPath(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  // The XDG spec says to ignore a relative XDG_CONFIG_HOME.
  if (xdg !== undefined && xdg !== '' && isAbsolute(xdg)) return join(xdg, 'ferry', 'key');
  const home = env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir();
  return join(home, '.config', 'ferry', 'key');
}

/** The key in `FERRY_KEY`, if set (an empty value counts as unset). EINVALIDKEY if malformed. */
export function keyFromEnv(env: NodeJS.ProcessEnv = process.env): FernetKey | undefined {
  const text = env.FERRY_KEY;
  if (text === undefined || text.trim() === '') return undefined;
  try {
    return parseKey(text);
  } catch (cause) {
    throw new CryptoError(
      'EINVALIDKEY',
      'FERRY_KEY is set but is not a valid ferry key (32 bytes as base64url, 44 characters); ' +
        'set it to a key made by `ferry keygen`, or unset it to use a key file',
      { cause },
    );
  }
}

/**
 * Reads a key file: the first line that is neither blank nor a `#` comment holds the key.
 * EKEYFILE if the file cannot be read, EINVALIDKEY if it holds no valid key; messages name the path.
 */
export async function readKeyFile(path: string): Promise<FernetKey> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new CryptoError('EKEYFILE', readFailureMessage(path, cause), { cause });
  }
  const line = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l !== '' && !l.startsWith('#'));
  if (line === undefined) {
    throw new CryptoError(
      'EINVALIDKEY',
      `key file ${path} contains no key; replace it with one made by \`ferry keygen ${path}\``,
    );
  }
  try {
    return parseKey(line);
  } catch (cause) {
    // Never echo the line: it may be a damaged copy of a real key.
    throw new CryptoError(
      'EINVALIDKEY',
      `key file ${path} does not hold a valid ferry key (expected 44 base64url characters on the first ` +
        `non-comment line); replace it with one made by \`ferry keygen ${path}\``,
      { cause },
    );
  }
}

/**
 * Creates a key file holding `key` (default: a new key) and returns the key text. The parent
 * directory is created 0700 if missing; the file is 0600 whatever the umask, and an existing file
 * is never overwritten (EKEYEXISTS).
 */
export async function writeNewKeyFile(path: string, key?: string): Promise<string> {
  const keyText = formatKey(parseKey(key ?? generateKey()));
  const parent = dirname(resolve(path));
  try {
    const firstCreated = await mkdir(parent, { recursive: true, mode: 0o700 });
    // mkdir's mode is filtered by the umask; set it outright, but only on directories we created.
    if (firstCreated !== undefined) {
      for (const dir of createdDirectories(firstCreated, parent)) await chmod(dir, 0o700);
    }
  } catch (cause) {
    throw new CryptoError(
      'EKEYFILE',
      `cannot create directory ${parent} for key file ${path}: ${reason(cause)}`,
      {
        cause,
      },
    );
  }

  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'wx', 0o600);
  } catch (cause) {
    if (errnoCode(cause) === 'EEXIST') {
      throw new CryptoError(
        'EKEYEXISTS',
        `key file ${path} already exists; not overwriting it (remove it first if you really mean to replace the key)`,
        { cause },
      );
    }
    throw new CryptoError('EKEYFILE', `cannot create key file ${path}: ${reason(cause)}`, { cause });
  }
  try {
    // The open mode is filtered by the umask too; chmod makes 0600 exact.
    await handle.chmod(0o600);
    await handle.writeFile(`${keyText}\n`, 'utf8');
    await handle.sync();
    await handle.close();
  } catch (cause) {
    await handle.close().catch(() => undefined);
    // Leave no half-written key behind, or the next attempt would fail with EKEYEXISTS.
    await unlink(path).catch(() => undefined);
    throw isCryptoError(cause)
      ? cause
      : new CryptoError('EKEYFILE', `cannot write key file ${path}: ${reason(cause)}`, { cause });
  }
  return keyText;
}

/** The directories from `first` down to `last` (both included), `first` being an ancestor of `last`. */
function createdDirectories(first: string, last: string): string[] {
  const dirs = [first];
  let current = first;
  for (const segment of relative(first, last).split(sep)) {
    if (segment === '') continue;
    current = join(current, segment);
    dirs.push(current);
  }
  return dirs;
}

function readFailureMessage(path: string, cause: unknown): string {
  switch (errnoCode(cause)) {
    case 'ENOENT':
      return `key file ${path} does not exist; create one with \`ferry keygen ${path}\``;
    case 'EACCES':
    case 'EPERM':
      return `cannot read key file ${path}: permission denied; check its owner and mode (it should be 0600 and yours)`;
    case 'EISDIR':
      return `${path} is a directory, not a key file; give the path of the key file itself`;
    default:
      return `cannot read key file ${path}: ${reason(cause)}`;
  }
}

function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return undefined;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
