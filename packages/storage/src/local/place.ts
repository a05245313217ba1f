import { systemCode } from '../errors.js';
import type { FileSystem } from './fs.js';

/** link(2) errors that mean "this file system has no hard links", not "something is wrong". */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK']);

/**
 * Gives the file at `from` the name `to` without ever replacing what is at `to`: link(from, to) fails
 * with EEXIST if the name exists, so nothing created there by someone else is lost, even in a race.
 * Returns 'linked' (the caller then removes `from`) or, where the file system has no hard links,
 * 'renamed' after a check-then-rename (that race is accepted). Throws the system error (EEXIST…).
 */
export async function placeNoReplace(
  fs: FileSystem,
  from: string,
  to: string,
): Promise<'linked' | 'renamed'> {
  try {
    await fs.link(from, to);
    return 'linked';
  } catch (error) {
    if (!NO_HARD_LINKS.has(systemCode(error) ?? '')) throw error;
  }
  const existing = await fs.lstat(to).catch(() => undefined);
  if (existing !== undefined) throw Object.assign(new Error(`EEXIST: ${to} exists`), { code: 'EEXIST' });
  await fs.rename(from, to);
  return 'renamed';
}

/** placeNoReplace with synchronous calls (small files written whole; see whole-files.ts). */
export function placeNoReplaceSync(fs: FileSystem, from: string, to: string): 'linked' | 'renamed' {
  try {
    fs.linkSync(from, to);
    return 'linked';
  } catch (error) {
    if (!NO_HARD_LINKS.has(systemCode(error) ?? '')) throw error;
  }
  let existing = true;
  try {
    fs.lstatSync(to);
  } catch {
    existing = false;
  }
  if (existing) throw Object.assign(new Error(`EEXIST: ${to} exists`), { code: 'EEXIST' });
  fs.renameSync(from, to);
  return 'renamed';
}
