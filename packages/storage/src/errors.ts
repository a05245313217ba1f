import { FerryError } from '@ferry/protocol';

/**
 * Typed errors of the file layer: a FerryError whose code is one of the names below, all from the
 * protocol's error table, so the server puts `code` on the wire as it is (`toReply`) and the CLI maps
 * it to an exit code. EBUSY here means "another transfer is writing this partial; try later".
 */
export type FileErrorCode =
  | 'ENOENT'
  | 'EEXIST'
  | 'EACCES'
  | 'EINVAL'
  | 'EISDIR'
  | 'ENOTDIR'
  | 'ENOSPC'
  | 'EIO'
  | 'EBUSY'
  | 'EINTEGRITY'
  | 'EFILECHANGED'
  | 'ETOOBIG'
  | 'ENAMETOOLONG'
  | 'ENOTEMPTY';

export class FileError extends FerryError {
  declare readonly code: FileErrorCode;

  constructor(code: FileErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'FileError';
  }
}

export function isFileError(error: unknown, code?: FileErrorCode): error is FileError {
  return error instanceof FileError && (code === undefined || error.code === code);
}

/** The errno-style code of a Node system error, if any. */
export function systemCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/**
 * Maps a Node system error to a FileError whose message starts with `what` (e.g. "writing
 * report.pdf") and says what to do. FileErrors pass through unchanged; errors without a system code
 * (bugs) are rethrown as they are, so they are not disguised as I/O failures.
 */
export function toFileError(error: unknown, what: string): FileError {
  if (error instanceof FileError) return error;
  const code = systemCode(error);
  const options = { cause: error };
  switch (code) {
    case 'ENOENT':
      return new FileError('ENOENT', `${what}: no such file or directory`, options);
    case 'EEXIST':
      return new FileError('EEXIST', `${what}: already exists`, options);
    case 'ENOTEMPTY':
      return new FileError('ENOTEMPTY', `${what}: the directory is not empty`, options);
    case 'EACCES':
    case 'EPERM':
      return new FileError('EACCES', `${what}: permission denied`, options);
    case 'EROFS':
      return new FileError('EACCES', `${what}: the file system is read-only`, options);
    case 'EISDIR':
      return new FileError('EISDIR', `${what}: is a directory`, options);
    case 'ENOTDIR':
      return new FileError('ENOTDIR', `${what}: a component of the path is not a directory`, options);
    case 'ENOSPC':
    case 'EDQUOT':
      return new FileError(
        'ENOSPC',
        `${what}: no space left on the device${code === 'EDQUOT' ? ' (disk quota exceeded)' : ''}; free some space and retry (an interrupted transfer can resume)`,
        options,
      );
    case 'EFBIG':
      return new FileError('ETOOBIG', `${what}: the file is larger than the file system allows`, options);
    case 'ENAMETOOLONG':
      return new FileError('ENAMETOOLONG', `${what}: name too long`, options);
    case 'ELOOP':
      return new FileError(
        'EINVAL',
        `${what}: too many symbolic links, or a symbolic link where none is allowed`,
        options,
      );
    case 'EXDEV':
      return new FileError('EINVAL', `${what}: cannot move across file systems`, options);
    case 'EINVAL':
      return new FileError('EINVAL', `${what}: invalid argument`, options);
    case 'EMFILE':
    case 'ENFILE':
      return new FileError('EIO', `${what}: too many open files`, options);
    case 'EIO':
      return new FileError('EIO', `${what}: input/output error on the device`, options);
    case undefined:
      throw error;
    default:
      return new FileError('EIO', `${what}: ${code}`, options);
  }
}
