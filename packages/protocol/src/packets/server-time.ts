import * as z from 'zod';
import { NONCE_LENGTH, PACKET_HEAD_LENGTH, PacketType, SERVER_TIME_LENGTH, Space } from '../constants.js';
import { type DecodeResult, failure } from '../errors.js';
import { bytesOf } from '../schema-parts.js';
import { copy, isBytes } from '../wire.js';
import { invalidField, startPacket } from './head.js';

/**
 * SERVER_TIME (space HANDSHAKE, sealed with the pre-shared key of the hello it answers; conn id = the
 * client's initial id): the server refused an authentic hello because its Fernet timestamp was
 * outside the server's window. The token's own timestamp is the server's clock; the echoed nonce
 * proves it answers this hello, so a client may stamp its hello by the server's clock and resend it.
 */
export interface ServerTimeFields {
  /** Echo of the hello's clientNonce. */
  readonly clientNonce: Uint8Array;
}

export interface ServerTimePacket extends ServerTimeFields {
  readonly type: 'server-time';
}

export const ServerTimeSchema = z.lazy(() => z.strictObject({ clientNonce: bytesOf(NONCE_LENGTH) }));

export function encodeServerTime(connId: bigint, fields: ServerTimeFields): Buffer {
  if (!isBytes(fields.clientNonce, NONCE_LENGTH)) invalidField('clientNonce must be 16 bytes');
  const out = startPacket(SERVER_TIME_LENGTH, Space.Handshake, PacketType.ServerTime, connId);
  out.set(fields.clientNonce, PACKET_HEAD_LENGTH);
  return out;
}

export function decodeServerTimeBody(p: Uint8Array): DecodeResult<ServerTimePacket> {
  if (p.length < SERVER_TIME_LENGTH) return failure('truncated', 'server time');
  if (p.length > SERVER_TIME_LENGTH) return failure('trailing-bytes', 'server time');
  return {
    ok: true,
    value: {
      type: 'server-time',
      clientNonce: copy(p, PACKET_HEAD_LENGTH, PACKET_HEAD_LENGTH + NONCE_LENGTH),
    },
  };
}
