import { PREFIX_LENGTH, PROTOCOL_VERSION } from '../constants.js';
import { protocolError } from '../errors.js';
import { checkConnId, writePrefix } from '../prefix.js';

/**
 * A packet plaintext of `length` bytes whose first 13 (repeated prefix + type byte) are written.
 * The rest is uninitialised: the encoder must write every byte.
 */
export function startPacket(
  length: number,
  space: number,
  type: number,
  connId: bigint,
  version: number = PROTOCOL_VERSION,
): Buffer {
  checkConnId(connId);
  const out = Buffer.allocUnsafe(length);
  writePrefix(out, 0, space, connId, version);
  out[PREFIX_LENGTH] = type;
  return out;
}

/** Throws the encoder's error for a field outside its range (a caller bug, never network input). */
export function invalidField(problem: string): never {
  throw protocolError('invalid-field', problem);
}
