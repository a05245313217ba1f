import {
  MAGIC_0,
  MAGIC_1,
  PREFIX_LENGTH,
  PROTOCOL_VERSION,
  REJECT_DATAGRAM_LENGTH,
  Space,
} from '../constants.js';
import { type DecodeResult, failure } from '../errors.js';
import { checkConnId, writePrefix } from '../prefix.js';
import { isU16, readU16, readU64, writeU16 } from '../wire.js';
import { invalidField } from './head.js';

/**
 * A REJECT datagram (no token): a server's answer to a CLIENT_HELLO it will not serve: u16 error code
 * (EAUTH: no configured key opens the hello; EBUSY: at the session limit). It is unauthenticated, like
 * QUIC's version negotiation, so a client only believes it for the conn id of its own pending hello;
 * it is always smaller than the hello that provoked it and rate-limited.
 */
export interface RejectDatagram {
  readonly connId: bigint;
  readonly errorCode: number;
}

export function encodeRejectDatagram(connId: bigint, errorCode: number): Buffer {
  checkConnId(connId);
  if (!isU16(errorCode)) invalidField('errorCode must be a u16');
  const out = Buffer.allocUnsafe(REJECT_DATAGRAM_LENGTH);
  writePrefix(out, 0, Space.Reject, connId, PROTOCOL_VERSION);
  writeU16(out, PREFIX_LENGTH, errorCode);
  return out;
}

/** Decodes a whole REJECT datagram (exactly 14 bytes). Never throws. */
export function decodeRejectDatagram(datagram: Uint8Array): DecodeResult<RejectDatagram> {
  if (datagram.length < REJECT_DATAGRAM_LENGTH) return failure('truncated', 'reject');
  if (datagram[0] !== MAGIC_0 || datagram[1] !== MAGIC_1) return failure('bad-magic');
  if (datagram[2] !== PROTOCOL_VERSION)
    return failure('unsupported-version', `version ${datagram[2]}`, 'EVERSION');
  if (datagram[3] !== Space.Reject) return failure('wrong-space', 'not a reject datagram');
  if (datagram.length > REJECT_DATAGRAM_LENGTH) return failure('trailing-bytes', 'reject');
  return { ok: true, value: { connId: readU64(datagram, 4), errorCode: readU16(datagram, PREFIX_LENGTH) } };
}
