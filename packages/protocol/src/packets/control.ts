import * as z from 'zod';
import {
  CONTROL_HEADER_LENGTH,
  MAX_CONTROL_BYTES,
  PACKET_HEAD_LENGTH,
  PacketType,
  Space,
} from '../constants.js';
import { type DecodeResult, failure } from '../errors.js';
import { type ControlMessage, decodeControlMessage } from '../messages.js';
import { isU32, readU32, view, writeU32 } from '../wire.js';
import { invalidField, startPacket } from './head.js';

/** CONTROL (space SESSION): one control message, delivered in messageSeq order exactly once. */
export interface ControlFields {
  readonly packetNumber: number;
  /** Per direction, from 0, +1 per message; a retransmitted message keeps its messageSeq. */
  readonly messageSeq: number;
  /** The message's JSON (from encodeControlMessage), 1..MAX_CONTROL_BYTES bytes. */
  readonly body: Uint8Array;
}

export interface ControlPacket extends ControlFields {
  readonly type: 'control';
  /** A view into the decoded plaintext. */
  readonly body: Buffer;
  /** The body, parsed and validated. */
  readonly message: ControlMessage;
}

export const ControlHeaderSchema = z.lazy(() =>
  z.strictObject({
    packetNumber: z.uint32(),
    messageSeq: z.uint32(),
    body: z
      .instanceof(Uint8Array)
      .refine((b) => b.length >= 1 && b.length <= MAX_CONTROL_BYTES, `1..${MAX_CONTROL_BYTES} bytes`),
  }),
);

export function encodeControl(connId: bigint, fields: ControlFields): Buffer {
  const { body } = fields;
  if (!isU32(fields.packetNumber)) invalidField('packetNumber must be a u32');
  if (!isU32(fields.messageSeq)) invalidField('messageSeq must be a u32');
  if (!(body instanceof Uint8Array) || body.length < 1 || body.length > MAX_CONTROL_BYTES) {
    invalidField(`body must be 1..${MAX_CONTROL_BYTES} bytes`);
  }
  const out = startPacket(CONTROL_HEADER_LENGTH + body.length, Space.Session, PacketType.Control, connId);
  writeU32(out, PACKET_HEAD_LENGTH, fields.packetNumber);
  writeU32(out, PACKET_HEAD_LENGTH + 4, fields.messageSeq);
  out.set(body, CONTROL_HEADER_LENGTH);
  return out;
}

export function decodeControlBody(p: Uint8Array): DecodeResult<ControlPacket> {
  if (p.length <= CONTROL_HEADER_LENGTH) return failure('truncated', 'control');
  const body = view(p, CONTROL_HEADER_LENGTH, p.length);
  const message = decodeControlMessage(body);
  if (!message.ok) return message;
  return {
    ok: true,
    value: {
      type: 'control',
      packetNumber: readU32(p, PACKET_HEAD_LENGTH),
      messageSeq: readU32(p, PACKET_HEAD_LENGTH + 4),
      body,
      message: message.value,
    },
  };
}
