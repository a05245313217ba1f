import {
  MAGIC_0,
  MAGIC_1,
  PREFIX_LENGTH,
  Space,
  SUPPORTED_VERSIONS,
  VERSION_NEGOTIATION_VERSION,
} from '../constants.js';
import { type DecodeResult, failure } from '../errors.js';
import { checkConnId, writePrefix } from '../prefix.js';
import { readU64 } from '../wire.js';
import { invalidField } from './head.js';

/**
 * A VERSION NEGOTIATION datagram: prefix with version 0 and space 0, the conn id of the datagram it
 * answers, then u8 count (>= 1) and that many u8 versions the server speaks (none of them 0). No token.
 */
export interface VersionNegotiation {
  readonly connId: bigint;
  readonly versions: readonly number[];
}

export function encodeVersionNegotiation(
  connId: bigint,
  versions: readonly number[] = SUPPORTED_VERSIONS,
): Buffer {
  checkConnId(connId);
  if (!Array.isArray(versions) || versions.length < 1 || versions.length > 255) {
    invalidField('versions must hold 1..255 entries');
  }
  const out = Buffer.allocUnsafe(PREFIX_LENGTH + 1 + versions.length);
  writePrefix(out, 0, Space.VersionNegotiation, connId, VERSION_NEGOTIATION_VERSION);
  out[PREFIX_LENGTH] = versions.length;
  versions.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 1 || v > 255) invalidField('a version is a u8 from 1 to 255');
    out[PREFIX_LENGTH + 1 + i] = v;
  });
  return out;
}

/** Decodes a whole VERSION NEGOTIATION datagram. Never throws. */
export function decodeVersionNegotiation(datagram: Uint8Array): DecodeResult<VersionNegotiation> {
  if (datagram.length < PREFIX_LENGTH + 1) return failure('truncated', 'version negotiation');
  if (datagram[0] !== MAGIC_0 || datagram[1] !== MAGIC_1) return failure('bad-magic');
  if (datagram[2] !== VERSION_NEGOTIATION_VERSION || datagram[3] !== Space.VersionNegotiation) {
    return failure('wrong-space', 'not a version negotiation datagram');
  }
  const count = datagram[PREFIX_LENGTH]!;
  if (count === 0) return failure('invalid-field', 'no versions');
  const end = PREFIX_LENGTH + 1 + count;
  if (datagram.length < end) return failure('truncated', 'version list');
  if (datagram.length > end) return failure('trailing-bytes', 'version negotiation');
  const versions: number[] = [];
  for (let i = PREFIX_LENGTH + 1; i < end; i++) {
    const v = datagram[i]!;
    if (v === 0) return failure('invalid-field', 'version 0 in list');
    versions.push(v);
  }
  return { ok: true, value: { connId: readU64(datagram, 4), versions } };
}
