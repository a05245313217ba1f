/**
 * Which key the client uses: `--key FILE`, else the key in FERRY_KEY, else the default key file.
 * The client never creates a key: a server made one, and the client must hold the same.
 */
import { access } from 'node:fs/promises';
import { usageError } from '@ferry/cli-kit';
import {
  defaultKeyPath,
  type FernetKey,
  keyFingerprint,
  keyFromEnv,
  parseKey,
  readKeyFile,
  writeNewKeyFile,
} from '@ferry/crypto';

export interface ClientKey {
  key: FernetKey;
  /** Where it came from, for messages: a path or "FERRY_KEY". */
  source: string;
  fingerprint: string;
}

export async function loadClientKey(
  keyFile: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ClientKey> {
  if (keyFile !== undefined) {
    const key = await readKeyFile(keyFile);
    return { key, source: keyFile, fingerprint: keyFingerprint(key) };
  }
  const fromEnv = keyFromEnv(env);
  if (fromEnv !== undefined)
    return { key: fromEnv, source: 'FERRY_KEY', fingerprint: keyFingerprint(fromEnv) };
  const path = defaultKeyPath(env);
  const exists = await access(path).then(
    () => true,
    () => false,
  );
  if (!exists) {
    throw usageError(
      `no key: ${path} does not exist. Copy the server's key file there (for example ` +
        `\`scp SERVER:.config/ferry/key ${path}\`), or set FERRY_KEY to the key, or give --key FILE; ` +
        '`ferry keygen` makes a new key, which the server must then use too',
    );
  }
  const key = await readKeyFile(path);
  return { key, source: path, fingerprint: keyFingerprint(key) };
}

export interface KeygenResult {
  path: string;
  fingerprint: string;
  key: string;
}

/** Writes a new key to `path` (default: the default key file); never overwrites one. */
export async function keygen(
  path: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<KeygenResult> {
  const target = path ?? defaultKeyPath(env);
  const key = await writeNewKeyFile(target);
  return { path: target, fingerprint: keyFingerprint(parseKey(key)), key };
}
