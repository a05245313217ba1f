import { MAX_NAME_BYTES, MAX_PATH_BYTES } from '@ferry/protocol';
import { FileError } from './errors.js';

/** Names starting with this are ferry's partial files: never listed, never addressable. */
export const PARTIAL_PREFIX = '.ferry-partial-';

/** True for any name reserved for partial files (hidden from listings, refused as a target). */
export function isPartialName(name: string): boolean {
  return name.startsWith(PARTIAL_PREFIX);
}

// A UTF-16 surrogate without its partner cannot be encoded as UTF-8, so it cannot name a file.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * A client path checked for syntax only: relative, '/'-separated, no '.', '..' or empty segments,
 * no NUL, no backslash, within the length limits. '' is the root. Whether it stays inside the root
 * on disk (symlinks) is checked separately, against the file system.
 */
export interface ClientPath {
  /** The path as given ('' for the root). */
  readonly rel: string;
  readonly segments: readonly string[];
}

/** Shows a client path in messages: quoted, and the root as "the root directory". */
export function showPath(rel: string): string {
  return rel === '' ? 'the root directory' : JSON.stringify(rel);
}

/**
 * Validates a path received from a client. Throws EINVAL (escapes, bad characters, reserved names)
 * or ENAMETOOLONG (limits). Names are otherwise used exactly as given: case, spaces and Unicode are
 * preserved, and '%2e%2e' is an ordinary name, not '..'.
 */
export function parseClientPath(rel: unknown): ClientPath {
  if (typeof rel !== 'string') throw new FileError('EINVAL', 'a path must be a string');
  if (rel === '') return { rel, segments: [] };
  if (rel.includes('\0')) throw new FileError('EINVAL', `${showPath(rel)}: a path cannot contain a NUL byte`);
  if (LONE_SURROGATE.test(rel)) throw new FileError('EINVAL', 'a path must be valid Unicode');
  if (Buffer.byteLength(rel, 'utf8') > MAX_PATH_BYTES) {
    throw new FileError('ENAMETOOLONG', `a path is at most ${MAX_PATH_BYTES} bytes`);
  }
  if (rel.includes('\\')) {
    // On the server '\' would be part of a name, while a Windows client means a separator.
    throw new FileError('EINVAL', `${showPath(rel)}: use '/' to separate names; '\\' is not allowed`);
  }
  if (rel.startsWith('/') || /^[A-Za-z]:(\/|$)/.test(rel)) {
    throw new FileError(
      'EINVAL',
      `${showPath(rel)}: absolute paths are not allowed; paths are relative to the served directory`,
    );
  }
  const segments = rel.split('/');
  for (const segment of segments) {
    if (segment === '') {
      throw new FileError(
        'EINVAL',
        `${showPath(rel)}: empty name in path (leading, trailing or doubled '/')`,
      );
    }
    if (segment === '.' || segment === '..') {
      throw new FileError('EINVAL', `${showPath(rel)}: '.' and '..' are not allowed in paths`);
    }
    if (Buffer.byteLength(segment, 'utf8') > MAX_NAME_BYTES) {
      throw new FileError('ENAMETOOLONG', `${showPath(rel)}: a name is at most ${MAX_NAME_BYTES} bytes`);
    }
    if (segment.startsWith(PARTIAL_PREFIX)) {
      throw new FileError('EINVAL', `${showPath(rel)}: names starting with ${PARTIAL_PREFIX} are reserved`);
    }
  }
  return { rel, segments };
}
