/**
 * Turns whatever a command threw into one line for people, a stable code and an exit code from
 * the error table. Anything that is not a known error is a bug and says so.
 */
import { exitCodeFor, isErrorName } from '@ferry/protocol';

export interface ErrorReport {
  code: string;
  exitCode: number;
  message: string;
  /** True for an error no table row explains: the message says it is a bug. */
  bug: boolean;
}

/** An error already printed (for example one line per failed file); only its exit code remains. */
export class ReportedError extends Error {
  readonly code: string;
  readonly exitCode: number;

  constructor(code: string, exitCode: number, message = 'already reported') {
    super(message);
    this.name = 'ReportedError';
    this.code = code;
    this.exitCode = exitCode;
  }
}

const CRYPTO_EXIT: Record<string, { code: string; exitCode: number }> = {
  // A missing or malformed key is a setup problem, like a usage error.
  EKEYFILE: { code: 'EKEYFILE', exitCode: 2 },
  EINVALIDKEY: { code: 'EINVALIDKEY', exitCode: 2 },
  EKEYEXISTS: { code: 'EEXIST', exitCode: 4 },
};

const SYSTEM_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EEXIST: 'already exists',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EIO: 'input/output error',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'name too long',
};

const SYSTEM_CODE: Record<string, string> = {
  EPERM: 'EACCES',
  EROFS: 'EACCES',
  EDQUOT: 'ENOSPC',
  EMFILE: 'EIO',
};

export function describeError(error: unknown): ErrorReport {
  const e = error as { code?: unknown; message?: unknown; path?: unknown; syscall?: unknown };
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = typeof e?.message === 'string' ? e.message : String(error);
  if (error instanceof ReportedError) {
    return { code: error.code, exitCode: error.exitCode, message, bug: false };
  }
  if (code === 'EUSAGE') return { code, exitCode: 2, message, bug: false };
  if (code !== undefined && (error as Error).name === 'CryptoError') {
    const row = CRYPTO_EXIT[code];
    if (row !== undefined) return { ...row, message, bug: false };
  }
  if (code !== undefined && typeof e.syscall === 'string') {
    // A local system error (reading or writing a file here): say which file and what went wrong.
    const mapped = SYSTEM_CODE[code] ?? code;
    const text = SYSTEM_TEXT[code];
    if (text !== undefined && isErrorName(mapped)) {
      const where = typeof e.path === 'string' ? `${e.path}: ` : '';
      return { code: mapped, exitCode: exitCodeFor(mapped), message: `${where}${text}`, bug: false };
    }
  }
  if (code !== undefined && isErrorName(code)) {
    return { code, exitCode: exitCodeFor(code), message: polish(code, message), bug: false };
  }
  return {
    code: 'EINTERNAL',
    exitCode: 1,
    message: `internal error (this is a bug in ferry; please report it): ${message}`,
    bug: true,
  };
}

/** Adds what the user can do about the common errors when the message does not say it already. */
function polish(code: string, message: string): string {
  switch (code) {
    case 'EAUTH':
      return /accept this key/.test(message) ? message : `the server does not accept this key (${message})`;
    case 'EEXIST': {
      // The library says "ask to overwrite"; on this command line, asking is --force.
      const bare = message.replace(/\s*\((?:ask|asked) to overwrite[^)]*\)/, '').replace(/;\s*$/, '');
      return /--force/.test(bare) ? bare : `${bare}; use --force to overwrite it`;
    }
    case 'EACCES':
      return /read-only|permission/i.test(message) ? message : `permission denied: ${message}`;
    default:
      return message;
  }
}
