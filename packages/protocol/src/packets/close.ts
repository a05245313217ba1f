import * as z from 'zod';
import {
  CLOSE_MIN_LENGTH,
  MAX_CLOSE_REASON_BYTES,
  PACKET_HEAD_LENGTH,
  PacketType,
  Space,
} from '../constants.js';
import { type DecodeResult, failure } from '../errors.js';
import { utf8String } from '../schema-parts.js';
import { decodeUtf8, isU16, isU32, isUtf8Within, readU16, readU32, writeU16, writeU32 } from '../wire.js';
import { invalidField, startPacket } from './head.js';

/** CLOSE (space SESSION): the sender has ended the session. Not ack-eliciting; sent without retransmission. */
export interface CloseFields {
  readonly packetNumber: number;
  /** Wire number of the error table; 0 (OK) is a normal close. Unknown numbers are kept as they are. */
  readonly errorCode: number;
  /** UTF-8, at most MAX_CLOSE_REASON_BYTES bytes; may be empty. */
  readonly reason: string;
}

export interface ClosePacket extends CloseFields {
  readonly type: 'close';
}

export const CloseSchema = z.lazy(() =>
  z.strictObject({
    packetNumber: z.uint32(),
    errorCode: z.int().min(0).max(0xffff),
    reason: utf8String(0, MAX_CLOSE_REASON_BYTES),
  }),
);

export function encodeClose(connId: bigint, fields: CloseFields): Buffer {
  if (!isU32(fields.packetNumber)) invalidField('packetNumber must be a u32');
  if (!isU16(fields.errorCode)) invalidField('errorCode must be a u16');
  if (typeof fields.reason !== 'string' || !isUtf8Within(fields.reason, MAX_CLOSE_REASON_BYTES)) {
    invalidField(`reason must be well-formed text of at most ${MAX_CLOSE_REASON_BYTES} UTF-8 bytes`);
  }
  const reason = Buffer.from(fields.reason, 'utf8');
  const out = startPacket(CLOSE_MIN_LENGTH + reason.length, Space.Session, PacketType.Close, connId);
  writeU32(out, PACKET_HEAD_LENGTH, fields.packetNumber);
  writeU16(out, PACKET_HEAD_LENGTH + 4, fields.errorCode);
  writeU16(out, PACKET_HEAD_LENGTH + 6, reason.length);
  out.set(reason, CLOSE_MIN_LENGTH);
  return out;
}

export function decodeCloseBody(p: Uint8Array): DecodeResult<ClosePacket> {
  if (p.length < CLOSE_MIN_LENGTH) return failure('truncated', 'close');
  const reasonLength = readU16(p, PACKET_HEAD_LENGTH + 6);
  if (reasonLength > MAX_CLOSE_REASON_BYTES) return failure('too-large', 'close reason');
  const end = CLOSE_MIN_LENGTH + reasonLength;
  if (p.length < end) return failure('truncated', 'close reason');
  if (p.length > end) return failure('trailing-bytes', 'close');
  const reason = decodeUtf8(p.subarray(CLOSE_MIN_LENGTH, end));
  if (reason === undefined) return failure('bad-utf8', 'close reason');
  return {
    ok: true,
    value: {
      type: 'close',
      packetNumber: readU32(p, PACKET_HEAD_LENGTH),
      errorCode: readU16(p, PACKET_HEAD_LENGTH + 4),
      reason,
    },
  };
}
