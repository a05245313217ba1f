import * as z from 'zod';
import {
  DATA_HEADER_LENGTH,
  MAX_BLOCK_COUNT,
  MAX_BLOCK_SIZE,
  PACKET_HEAD_LENGTH,
  PacketType,
  PREFIX_LENGTH,
  PROTOCOL_VERSION,
  Space,
} from '../constants.js';
import { type DecodeResult, failure } from '../errors.js';
import { checkConnId, writePrefix } from '../prefix.js';
import { isU32, readU32, view, writeU32 } from '../wire.js';
import { invalidField } from './head.js';

/** The fixed fields of a DATA packet (space SESSION). */
export interface DataHeader {
  readonly packetNumber: number;
  /** Sender clock in microseconds, mod 2^32; echoed in ACK.tsEcho. */
  readonly sendTime: number;
  readonly transferId: number;
  /** Block index: < MAX_BLOCK_COUNT (a u32 that is not 0xffffffff). */
  readonly blockIndex: number;
}

export interface DataFields extends DataHeader {
  /** 1..blockSize bytes of the block (only a transfer's last block may be shorter than blockSize). */
  readonly payload: Uint8Array;
}

export interface DataPacket extends DataHeader {
  readonly type: 'data';
  /** A view into the decoded plaintext, not a copy. */
  readonly payload: Buffer;
}

const dataHeaderObject = () =>
  z.strictObject({
    packetNumber: z.uint32(),
    sendTime: z.uint32(),
    transferId: z.uint32(),
    blockIndex: z
      .int()
      .min(0)
      .max(MAX_BLOCK_COUNT - 1),
  });

export const DataHeaderSchema = z.lazy(dataHeaderObject);

export const DataSchema = z.lazy(() =>
  dataHeaderObject().extend({
    payload: z
      .instanceof(Uint8Array)
      .refine((b) => b.length >= 1 && b.length <= MAX_BLOCK_SIZE, `1..${MAX_BLOCK_SIZE} bytes`),
  }),
);

function checkHeader(f: DataHeader): void {
  if (!isU32(f.packetNumber)) invalidField('packetNumber must be a u32');
  if (!isU32(f.sendTime)) invalidField('sendTime must be a u32');
  if (!isU32(f.transferId)) invalidField('transferId must be a u32');
  if (!isU32(f.blockIndex) || f.blockIndex >= MAX_BLOCK_COUNT) invalidField('blockIndex out of range');
}

/**
 * The first DATA_HEADER_LENGTH (29) plaintext bytes of a DATA packet: the transport seals
 * [header, payload] so that the payload is never copied. `out`, when given, is reused (its first 29
 * bytes are overwritten and returned as a view).
 */
export function encodeDataHeader(connId: bigint, header: DataHeader, out?: Uint8Array): Buffer {
  checkConnId(connId);
  checkHeader(header);
  let buf: Buffer;
  if (out === undefined) buf = Buffer.allocUnsafe(DATA_HEADER_LENGTH);
  else if (out.length >= DATA_HEADER_LENGTH) buf = view(out, 0, DATA_HEADER_LENGTH);
  else invalidField(`out must hold ${DATA_HEADER_LENGTH} bytes`);
  writePrefix(buf, 0, Space.Session, connId, PROTOCOL_VERSION);
  buf[PREFIX_LENGTH] = PacketType.Data;
  writeU32(buf, PACKET_HEAD_LENGTH, header.packetNumber);
  writeU32(buf, PACKET_HEAD_LENGTH + 4, header.sendTime);
  writeU32(buf, PACKET_HEAD_LENGTH + 8, header.transferId);
  writeU32(buf, PACKET_HEAD_LENGTH + 12, header.blockIndex);
  return buf;
}

/** The whole DATA plaintext (header + payload, copied). The hot path uses encodeDataHeader instead. */
export function encodeData(connId: bigint, fields: DataFields): Buffer {
  const { payload } = fields;
  if (!(payload instanceof Uint8Array) || payload.length < 1 || payload.length > MAX_BLOCK_SIZE) {
    invalidField(`payload must be 1..${MAX_BLOCK_SIZE} bytes`);
  }
  const out = Buffer.allocUnsafe(DATA_HEADER_LENGTH + payload.length);
  encodeDataHeader(connId, fields, out);
  out.set(payload, DATA_HEADER_LENGTH);
  return out;
}

export function decodeDataBody(p: Uint8Array): DecodeResult<DataPacket> {
  if (p.length < DATA_HEADER_LENGTH) return failure('truncated', 'data header');
  const payloadLength = p.length - DATA_HEADER_LENGTH;
  if (payloadLength === 0) return failure('empty-payload');
  if (payloadLength > MAX_BLOCK_SIZE) return failure('too-large', 'data payload');
  const blockIndex = readU32(p, PACKET_HEAD_LENGTH + 12);
  if (blockIndex >= MAX_BLOCK_COUNT) return failure('invalid-field', 'blockIndex out of range');
  return {
    ok: true,
    value: {
      type: 'data',
      packetNumber: readU32(p, PACKET_HEAD_LENGTH),
      sendTime: readU32(p, PACKET_HEAD_LENGTH + 4),
      transferId: readU32(p, PACKET_HEAD_LENGTH + 8),
      blockIndex,
      payload: view(p, DATA_HEADER_LENGTH, p.length),
    },
  };
}
