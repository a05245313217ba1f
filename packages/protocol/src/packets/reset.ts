import { createHmac } from 'node:crypto';
import {
  MAGIC_0,
  MAGIC_1,
  PREFIX_LENGTH,
  PROTOCOL_VERSION,
  RESET_DATAGRAM_LENGTH,
  RESET_TOKEN_LENGTH,
  Space,
} from '../constants.js';
import { type DecodeResult, failure } from '../errors.js';
import { checkConnId, writePrefix } from '../prefix.js';
import { copy, isBytes, readU64, writeU64 } from '../wire.js';
import { invalidField } from './head.js';

/** A RESET datagram: the cleartext prefix (space RESET) and the session's 16-byte reset token. No token. */
export interface ResetDatagram {
  readonly connId: bigint;
  readonly resetToken: Buffer;
}

const RESET_LABEL = Buffer.from('ferry reset', 'ascii');

/**
 * The reset token of a session: the first 16 bytes of HMAC-SHA256(psk signing key, "ferry reset" ||
 * sessionConnId as 8 bytes big-endian). Stable across server restarts, unguessable without the key.
 */
export function resetTokenFor(pskSigningKey: Uint8Array, sessionConnId: bigint): Buffer {
  checkConnId(sessionConnId);
  const id = Buffer.allocUnsafe(8);
  writeU64(id, 0, sessionConnId);
  return createHmac('sha256', pskSigningKey)
    .update(RESET_LABEL)
    .update(id)
    .digest()
    .subarray(0, RESET_TOKEN_LENGTH);
}

export function encodeResetDatagram(connId: bigint, resetToken: Uint8Array): Buffer {
  checkConnId(connId);
  if (!isBytes(resetToken, RESET_TOKEN_LENGTH)) invalidField('resetToken must be 16 bytes');
  const out = Buffer.allocUnsafe(RESET_DATAGRAM_LENGTH);
  writePrefix(out, 0, Space.Reset, connId, PROTOCOL_VERSION);
  out.set(resetToken, PREFIX_LENGTH);
  return out;
}

/** Decodes a whole RESET datagram (exactly 28 bytes). Never throws. */
export function decodeResetDatagram(datagram: Uint8Array): DecodeResult<ResetDatagram> {
  if (datagram.length < RESET_DATAGRAM_LENGTH) return failure('truncated', 'reset');
  if (datagram[0] !== MAGIC_0 || datagram[1] !== MAGIC_1) return failure('bad-magic');
  if (datagram[2] !== PROTOCOL_VERSION)
    return failure('unsupported-version', `version ${datagram[2]}`, 'EVERSION');
  if (datagram[3] !== Space.Reset) return failure('wrong-space', 'not a reset datagram');
  if (datagram.length > RESET_DATAGRAM_LENGTH) return failure('trailing-bytes', 'reset');
  return {
    ok: true,
    value: { connId: readU64(datagram, 4), resetToken: copy(datagram, PREFIX_LENGTH, RESET_DATAGRAM_LENGTH) },
  };
}
