/**
 * The one error table of ferry: a stable name, the u16 wire number for the errors that travel (CLOSE
 * packets carry the number, control replies carry the name), and the CLI exit code.
 */
import { MAX_CLOSE_REASON_BYTES, MAX_ERROR_MESSAGE_BYTES } from './constants.js';

export interface ErrorInfo {
  readonly name: ErrorName;
  /** u16 on the wire; null for errors that exist only in the CLI. */
  readonly wire: number | null;
  readonly exitCode: number;
  readonly meaning: string;
}

const TABLE = [
  ['OK', 0, 0, 'success; as a CLOSE code: a normal close'],
  ['EINTERNAL', 1, 1, 'an internal error: a bug'],
  ['EUSAGE', null, 2, 'bad command-line usage (CLI only)'],
  ['ENOENT', 2, 3, 'no such file or directory'],
  ['EEXIST', 3, 4, 'the target exists and overwriting was not requested'],
  ['EACCES', 4, 5, 'permission denied, including a write with a read-only key'],
  ['EINVAL', 5, 2, 'invalid request or path (for example one that escapes the served root)'],
  ['EISDIR', 6, 3, 'the path is a directory'],
  ['ENOTDIR', 7, 3, 'a path component is not a directory'],
  ['ENOSPC', 8, 6, 'no space left on the receiving side'],
  ['EIO', 9, 6, 'an I/O error on the serving side'],
  ['EAUTH', 10, 7, 'the server does not accept this key, or the handshake failed'],
  ['ETIMEDOUT', 11, 8, 'the peer stopped answering (handshake or idle timeout)'],
  ['ECONNRESET', 12, 8, 'the session was lost (for example the server restarted)'],
  ['EHOSTUNREACH', null, 8, 'unknown host or unreachable network (CLI only)'],
  ['ECONNREFUSED', null, 8, 'nothing is listening at that address and port (CLI only)'],
  ['EBUSY', 13, 8, 'the server is at its maximum number of sessions'],
  ['EPROTO', 14, 9, 'a malformed or unexpected packet or message'],
  ['EVERSION', 15, 9, 'no protocol version in common'],
  ['EINTEGRITY', 16, 10, 'SHA-256 mismatch: the data received is not the data sent'],
  ['EFILECHANGED', 17, 10, 'the file changed while it was being sent'],
  ['ECANCELED', 18, 130, 'the transfer or session was canceled'],
  ['ETOOBIG', 19, 2, 'a file or listing exceeds a protocol limit'],
  ['ENAMETOOLONG', 20, 2, 'a path or name exceeds a protocol limit'],
  ['ENOTEMPTY', 21, 4, 'the directory is not empty'],
] as const;

export type ErrorName = (typeof TABLE)[number][0];
/** Names that have a wire number (everything but the CLI-only ones). */
export type WireErrorName = Exclude<ErrorName, 'EUSAGE' | 'EHOSTUNREACH' | 'ECONNREFUSED'>;
/** Names a control reply or abort may carry (a failure, so not OK). */
export type ReplyErrorName = Exclude<WireErrorName, 'OK'>;

export const ERRORS: Readonly<Record<ErrorName, ErrorInfo>> = Object.freeze(
  Object.fromEntries(
    TABLE.map(([name, wire, exitCode, meaning]) => [name, Object.freeze({ name, wire, exitCode, meaning })]),
  ) as Record<ErrorName, ErrorInfo>,
);

export const ERROR_NAMES: readonly ErrorName[] = Object.freeze(TABLE.map((row) => row[0]));
export const WIRE_ERROR_NAMES: readonly WireErrorName[] = Object.freeze(
  TABLE.filter((row) => row[1] !== null).map((row) => row[0] as WireErrorName),
);
export const REPLY_ERROR_NAMES: readonly ReplyErrorName[] = Object.freeze(
  WIRE_ERROR_NAMES.filter((name): name is ReplyErrorName => name !== 'OK'),
);

const byWire = new Map<number, ErrorInfo>();
for (const info of Object.values(ERRORS)) if (info.wire !== null) byWire.set(info.wire, info);

/** The table row for a wire number, or undefined for a number this version does not know. */
export function errorByWire(wire: number): ErrorInfo | undefined {
  return byWire.get(wire);
}

/** The table row for a name, or undefined for a string that is not an error name. */
export function errorByName(name: string): ErrorInfo | undefined {
  return Object.hasOwn(ERRORS, name) ? ERRORS[name as ErrorName] : undefined;
}

export function isErrorName(name: unknown): name is ErrorName {
  return typeof name === 'string' && Object.hasOwn(ERRORS, name);
}

/** CLI exit code for an error name; 1 (a bug) for anything that is not one. */
export function exitCodeFor(code: string): number {
  return errorByName(code)?.exitCode ?? ERRORS.EINTERNAL.exitCode;
}

/** Wire number for an error name; CLI-only names travel as EINTERNAL (they should never be sent). */
export function wireCodeFor(code: ErrorName): number {
  return ERRORS[code].wire ?? ERRORS.EINTERNAL.wire!;
}

/** Truncates `text` to at most `maxBytes` of UTF-8 without splitting a character. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  const bytes = Buffer.from(text, 'utf8');
  let end = maxBytes;
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}

/** The error of every ferry package: `code` is stable, the message is for people. */
export class FerryError extends Error {
  readonly code: ErrorName;

  constructor(code: ErrorName, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FerryError';
    this.code = code;
  }

  get exitCode(): number {
    return exitCodeFor(this.code);
  }

  /** The fields of a CLOSE packet reporting this error (reason truncated to MAX_CLOSE_REASON_BYTES). */
  toWire(): { errorCode: number; reason: string } {
    return { errorCode: wireCodeFor(this.code), reason: truncateUtf8(this.message, MAX_CLOSE_REASON_BYTES) };
  }

  /** The code as a reply or abort carries it: names that never travel (CLI-only, OK) become EINTERNAL. */
  get replyCode(): ReplyErrorName {
    return this.code === 'OK' ||
      this.code === 'EUSAGE' ||
      this.code === 'EHOSTUNREACH' ||
      this.code === 'ECONNREFUSED'
      ? 'EINTERNAL'
      : this.code;
  }

  /** An error reply to request `id` (message truncated to MAX_ERROR_MESSAGE_BYTES). */
  toReply(id: number): { op: 'reply'; id: number; ok: false; code: ReplyErrorName; message: string } {
    return { op: 'reply', id, ok: false, code: this.replyCode, message: this.#wireMessage() };
  }

  /** An abort of transfer `transferId` reporting this error. */
  toAbort(transferId: number): { op: 'abort'; transferId: number; code: ReplyErrorName; message: string } {
    return { op: 'abort', transferId, code: this.replyCode, message: this.#wireMessage() };
  }

  #wireMessage(): string {
    return truncateUtf8(this.message, MAX_ERROR_MESSAGE_BYTES);
  }

  /**
   * Any thrown value as a FerryError: FerryErrors as they are, a system error that says the disk is full
   * as ENOSPC, anything else as EINTERNAL (a bug), with its message.
   */
  static from(error: unknown): FerryError {
    if (error instanceof FerryError) return error;
    const e = error as { code?: unknown; message?: unknown } | undefined;
    if (e?.code === 'ENOSPC' || e?.code === 'EDQUOT') {
      return new FerryError('ENOSPC', 'no space left on the device', { cause: error });
    }
    const message = typeof e?.message === 'string' ? e.message : String(error);
    return new FerryError('EINTERNAL', `internal error: ${message}`, { cause: error });
  }

  /** The error a peer reported in a CLOSE packet; a number this version does not know becomes EPROTO. */
  static fromWire(errorCode: number, reason: string): FerryError {
    const info = errorByWire(errorCode);
    if (info === undefined) {
      return new FerryError('EPROTO', `peer closed with unknown error code ${errorCode}: ${reason}`);
    }
    return new FerryError(info.name, reason === '' ? info.meaning : reason);
  }
}

export function isFerryError(error: unknown, code?: ErrorName): error is FerryError {
  return error instanceof FerryError && (code === undefined || error.code === code);
}

/** Why a datagram, packet or message was rejected. Stable strings: logs and counters key on them. */
export type ProtocolErrorReason =
  | 'truncated'
  | 'trailing-bytes'
  | 'bad-magic'
  | 'bad-space'
  | 'unsupported-version'
  | 'prefix-mismatch'
  | 'unknown-type'
  | 'unexpected-type'
  | 'wrong-space'
  | 'invalid-field'
  | 'bad-padding'
  | 'hello-too-small'
  | 'empty-payload'
  | 'too-large'
  | 'too-many-ranges'
  | 'range-underflow'
  | 'too-many-flows'
  | 'duplicate-flow'
  | 'bad-utf8'
  | 'bad-json'
  | 'duplicate-name'
  | 'schema';

/** A decoding failure (or an encoder given fields outside their range). Never carries a stack. */
export class ProtocolError extends FerryError {
  declare readonly code: 'EPROTO' | 'EVERSION';
  readonly reason: ProtocolErrorReason;

  constructor(reason: ProtocolErrorReason, detail?: string, code: 'EPROTO' | 'EVERSION' = 'EPROTO') {
    super(code, detail === undefined ? reason : `${reason}: ${detail}`);
    this.name = 'ProtocolError';
    this.reason = reason;
  }
}

/** Builds a ProtocolError without capturing a stack: garbage from the network must be cheap to reject. */
export function protocolError(
  reason: ProtocolErrorReason,
  detail?: string,
  code: 'EPROTO' | 'EVERSION' = 'EPROTO',
): ProtocolError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new ProtocolError(reason, detail, code);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

export type DecodeResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: ProtocolError };

export function failure(
  reason: ProtocolErrorReason,
  detail?: string,
  code: 'EPROTO' | 'EVERSION' = 'EPROTO',
): { readonly ok: false; readonly error: ProtocolError } {
  return { ok: false, error: protocolError(reason, detail, code) };
}
