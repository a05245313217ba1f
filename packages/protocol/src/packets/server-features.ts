import * as z from 'zod';
import { NONCE_LENGTH, PACKET_HEAD_LENGTH, PacketType, SERVER_FEATURES_LENGTH, Space } from '../constants.js';
import { type DecodeResult, failure } from '../errors.js';
import { bytesOf } from '../schema-parts.js';
import { copy, isBytes, isU32, readU32, writeU32 } from '../wire.js';
import { invalidField, startPacket } from './head.js';

/**
 * SERVER_FEATURES (space HANDSHAKE, sealed with the pre-shared key of the hello it answers; conn id =
 * the client's initial id): sent with the SERVER_WELCOME, it tells the client which optional features
 * of version 1 the server speaks (PROTOCOL.md §18.1). A client from before it drops the packet (an
 * unknown type), so a server may send it to any client; a client uses a feature only once told.
 */
export interface ServerFeaturesFields {
  /** Echo of the hello's clientNonce. */
  readonly clientNonce: Uint8Array;
  /** A bit per feature (FEATURE_*); receivers ignore bits they do not know. */
  readonly features: number;
}

export interface ServerFeaturesPacket extends ServerFeaturesFields {
  readonly type: 'server-features';
}

export const ServerFeaturesSchema = z.lazy(() =>
  z.strictObject({ clientNonce: bytesOf(NONCE_LENGTH), features: z.uint32() }),
);

export function encodeServerFeatures(connId: bigint, fields: ServerFeaturesFields): Buffer {
  if (!isBytes(fields.clientNonce, NONCE_LENGTH)) invalidField('clientNonce must be 16 bytes');
  if (!isU32(fields.features)) invalidField('features must be a u32');
  const out = startPacket(SERVER_FEATURES_LENGTH, Space.Handshake, PacketType.ServerFeatures, connId);
  out.set(fields.clientNonce, PACKET_HEAD_LENGTH);
  writeU32(out, PACKET_HEAD_LENGTH + NONCE_LENGTH, fields.features);
  return out;
}

export function decodeServerFeaturesBody(p: Uint8Array): DecodeResult<ServerFeaturesPacket> {
  if (p.length < SERVER_FEATURES_LENGTH) return failure('truncated', 'server features');
  if (p.length > SERVER_FEATURES_LENGTH) return failure('trailing-bytes', 'server features');
  return {
    ok: true,
    value: {
      type: 'server-features',
      clientNonce: copy(p, PACKET_HEAD_LENGTH, PACKET_HEAD_LENGTH + NONCE_LENGTH),
      features: readU32(p, PACKET_HEAD_LENGTH + NONCE_LENGTH),
    },
  };
}
