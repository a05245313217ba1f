import { createHash } from 'node:crypto';
import { FileError } from './errors.js';
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from './storage.js';

/**
 * A list cursor: version byte, the first 8 bytes of SHA-256 of the directory's client path (so a
 * cursor only continues the listing it came from), then the UTF-8 name (or store key suffix) to
 * continue after. Its base64url form stays within MAX_CURSOR_LENGTH for any name (at most 255 bytes),
 * however deep the directory.
 */
export function encodeCursor(dir: string, after: string): string {
  return Buffer.concat([Buffer.from([1]), dirTag(dir), Buffer.from(after, 'utf8')]).toString('base64url');
}

function dirTag(dir: string): Buffer {
  return createHash('sha256').update(dir, 'utf8').digest().subarray(0, 8);
}

/** What `encodeCursor(dir, after)` was given as `after`; EINVAL for a cursor of another listing. */
export function decodeCursor(cursor: string, dir: string): string {
  const raw = Buffer.from(cursor, 'base64url');
  if (raw.length > 9 && raw[0] === 1 && raw.subarray(1, 9).equals(dirTag(dir))) {
    return raw.subarray(9).toString('utf8');
  }
  throw new FileError('EINVAL', 'invalid list cursor (it belongs to another listing, or was altered)');
}

/** The most entries a page of a listing or walk may have (default DEFAULT_LIST_LIMIT); EINVAL if out of range. */
export function pageLimit(limit: number | undefined, listing: 'list' | 'walk'): number {
  const value = limit ?? DEFAULT_LIST_LIMIT;
  if (!Number.isInteger(value) || value < 1 || value > MAX_LIST_LIMIT) {
    throw new FileError('EINVAL', `${listing} limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
  }
  return value;
}
