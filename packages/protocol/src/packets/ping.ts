import * as z from 'zod';
import { PACKET_HEAD_LENGTH, PacketType, PING_LENGTH, Space } from '../constants.js';
import { type DecodeResult, failure } from '../errors.js';
import { isU32, readU32, writeU32 } from '../wire.js';
import { invalidField, startPacket } from './head.js';

/** PING (space SESSION): an ack-eliciting packet with no content (keep-alive, probe). */
export interface PingFields {
  readonly packetNumber: number;
}

export interface PingPacket extends PingFields {
  readonly type: 'ping';
}

export const PingSchema = z.lazy(() => z.strictObject({ packetNumber: z.uint32() }));

export function encodePing(connId: bigint, fields: PingFields): Buffer {
  if (!isU32(fields.packetNumber)) invalidField('packetNumber must be a u32');
  const out = startPacket(PING_LENGTH, Space.Session, PacketType.Ping, connId);
  writeU32(out, PACKET_HEAD_LENGTH, fields.packetNumber);
  return out;
}

export function decodePingBody(p: Uint8Array): DecodeResult<PingPacket> {
  if (p.length < PING_LENGTH) return failure('truncated', 'ping');
  if (p.length > PING_LENGTH) return failure('trailing-bytes', 'ping');
  return { ok: true, value: { type: 'ping', packetNumber: readU32(p, PACKET_HEAD_LENGTH) } };
}
