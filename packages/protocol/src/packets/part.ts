import * as z from 'zod';
import {
  MAX_BLOCK_COUNT,
  MAX_BLOCK_SIZE,
  PACKET_HEAD_LENGTH,
  PART_HEADER_LENGTH,
  PacketType,
  Space,
} from '../constants.js';
import { type DecodeResult, failure } from '../errors.js';
import { isU32, readU32, view, writeU32 } from '../wire.js';
import { invalidField, startPacket } from './head.js';

/**
 * PART (space SESSION): bytes `[offset, offset + payload length)` of one block, for a block whose
 * DATA datagram no longer fits the path (its MTU shrank after the transfer's block size was chosen,
 * PROTOCOL.md §18.1). The receiver holds the block once every byte of it arrived, in DATA or PARTs.
 * Ack-eliciting; sent only in a session with feature PathMtu.
 */
export interface PartFields {
  readonly packetNumber: number;
  readonly sendTime: number;
  readonly transferId: number;
  readonly blockIndex: number;
  /** Where the payload starts within the block. */
  readonly offset: number;
  readonly payload: Uint8Array;
}

export interface PartPacket extends Omit<PartFields, 'payload'> {
  readonly type: 'part';
  /** A view into the decoded plaintext, not a copy. */
  readonly payload: Buffer;
}

export const PartSchema = z.lazy(() =>
  z
    .strictObject({
      packetNumber: z.uint32(),
      sendTime: z.uint32(),
      transferId: z.uint32(),
      blockIndex: z
        .int()
        .min(0)
        .max(MAX_BLOCK_COUNT - 1),
      offset: z
        .int()
        .min(0)
        .max(MAX_BLOCK_SIZE - 1),
      payload: z.instanceof(Uint8Array).refine((b) => b.length >= 1, 'at least 1 byte'),
    })
    .refine((p) => p.offset + p.payload.length <= MAX_BLOCK_SIZE, 'ends within MAX_BLOCK_SIZE'),
);

export function encodePart(connId: bigint, f: PartFields): Buffer {
  if (!isU32(f.packetNumber)) invalidField('packetNumber must be a u32');
  if (!isU32(f.sendTime)) invalidField('sendTime must be a u32');
  if (!isU32(f.transferId)) invalidField('transferId must be a u32');
  if (!isU32(f.blockIndex) || f.blockIndex >= MAX_BLOCK_COUNT) invalidField('blockIndex out of range');
  const length = f.payload instanceof Uint8Array ? f.payload.length : 0;
  if (!Number.isInteger(f.offset) || f.offset < 0 || length < 1 || f.offset + length > MAX_BLOCK_SIZE)
    invalidField(`offset and payload must lie within 0..${MAX_BLOCK_SIZE}, payload at least 1 byte`);
  const out = startPacket(PART_HEADER_LENGTH + length, Space.Session, PacketType.Part, connId);
  writeU32(out, PACKET_HEAD_LENGTH, f.packetNumber);
  writeU32(out, PACKET_HEAD_LENGTH + 4, f.sendTime);
  writeU32(out, PACKET_HEAD_LENGTH + 8, f.transferId);
  writeU32(out, PACKET_HEAD_LENGTH + 12, f.blockIndex);
  writeU32(out, PACKET_HEAD_LENGTH + 16, f.offset);
  out.set(f.payload, PART_HEADER_LENGTH);
  return out;
}

export function decodePartBody(p: Uint8Array): DecodeResult<PartPacket> {
  if (p.length < PART_HEADER_LENGTH) return failure('truncated', 'part header');
  const length = p.length - PART_HEADER_LENGTH;
  if (length === 0) return failure('empty-payload');
  const blockIndex = readU32(p, PACKET_HEAD_LENGTH + 12);
  if (blockIndex >= MAX_BLOCK_COUNT) return failure('invalid-field', 'blockIndex out of range');
  const offset = readU32(p, PACKET_HEAD_LENGTH + 16);
  if (offset + length > MAX_BLOCK_SIZE) return failure('too-large', 'part beyond MAX_BLOCK_SIZE');
  return {
    ok: true,
    value: {
      type: 'part',
      packetNumber: readU32(p, PACKET_HEAD_LENGTH),
      sendTime: readU32(p, PACKET_HEAD_LENGTH + 4),
      transferId: readU32(p, PACKET_HEAD_LENGTH + 8),
      blockIndex,
      offset,
      payload: view(p, PART_HEADER_LENGTH, p.length),
    },
  };
}
