import * as z from 'zod';
import {
  FEATURES_VERSION,
  MAGIC_0,
  MAGIC_1,
  PREFIX_LENGTH,
  PROTOCOL_VERSION,
  Space,
  VERSION_NEGOTIATION_VERSION,
} from './constants.js';
import { type DecodeResult, failure, protocolError } from './errors.js';
import { isU8, isU64, readU64, writeU64 } from './wire.js';

/** The 12-byte cleartext prefix of every datagram (repeated as the first 12 bytes of every token). */
export interface Prefix {
  readonly version: number;
  readonly space: number;
  /** u64. */
  readonly connId: bigint;
}

export const PrefixSchema = z.lazy(() =>
  z.strictObject({
    version: z.int().min(0).max(0xff),
    space: z.int().min(0).max(0xff),
    connId: z.uint64(),
  }),
);

/** Whether `space` is a space byte that protocol version `version` defines. */
export function isKnownSpace(version: number, space: number): boolean {
  if (version === VERSION_NEGOTIATION_VERSION) return space === Space.VersionNegotiation;
  if (version === PROTOCOL_VERSION) {
    return (
      space === Space.Handshake || space === Space.Session || space === Space.Reset || space === Space.Reject
    );
  }
  if (version === FEATURES_VERSION) return space === Space.Handshake; // its other datagrams are version 1
  return true; // another version's spaces are not ours to judge
}

/** Writes a prefix at `out[offset..offset+12)`. Callers have validated the fields. */
export function writePrefix(
  out: Uint8Array,
  offset: number,
  space: number,
  connId: bigint,
  version: number,
): void {
  out[offset] = MAGIC_0;
  out[offset + 1] = MAGIC_1;
  out[offset + 2] = version;
  out[offset + 3] = space;
  writeU64(out, offset + 4, connId);
}

export function checkConnId(connId: unknown): asserts connId is bigint {
  if (!isU64(connId)) throw protocolError('invalid-field', 'connId must be a u64 bigint');
}

/** The 12 prefix bytes; `version` defaults to PROTOCOL_VERSION. Throws ProtocolError on a bad field. */
export function encodePrefix(prefix: { version?: number; space: number; connId: bigint }): Buffer {
  const version = prefix.version ?? PROTOCOL_VERSION;
  if (!isU8(version)) throw protocolError('invalid-field', 'version must be a u8');
  if (!isU8(prefix.space)) throw protocolError('invalid-field', 'space must be a u8');
  checkConnId(prefix.connId);
  const out = Buffer.allocUnsafe(PREFIX_LENGTH);
  writePrefix(out, 0, prefix.space, prefix.connId, version);
  return out;
}

/**
 * Reads the cleartext prefix of a datagram. Checks the length, the magic and, for version 1 and for
 * version negotiation, the space byte. Any other version decodes: the server answers it with VERSION
 * NEGOTIATION, so callers must compare `version` with PROTOCOL_VERSION before going further.
 */
export function decodePrefix(datagram: Uint8Array): DecodeResult<Prefix> {
  if (datagram.length < PREFIX_LENGTH) return failure('truncated', 'datagram shorter than its prefix');
  if (datagram[0] !== MAGIC_0 || datagram[1] !== MAGIC_1) return failure('bad-magic');
  const version = datagram[2]!;
  const space = datagram[3]!;
  if (!isKnownSpace(version, space)) return failure('bad-space', `space ${space} in version ${version}`);
  return { ok: true, value: { version, space, connId: readU64(datagram, 4) } };
}
