import * as z from 'zod';
import {
  CLIENT_HELLO_FIXED_LENGTH,
  MAX_BLOCK_SIZE,
  MIN_BLOCK_SIZE,
  MIN_HELLO_PLAINTEXT,
  NONCE_LENGTH,
  PACKET_HEAD_LENGTH,
  PacketType,
  PUBLIC_KEY_LENGTH,
  Space,
} from '../constants.js';
import { type DecodeResult, failure } from '../errors.js';
import { bytesOf } from '../schema-parts.js';
import { copy, isBytes, isU32, readU16, readU32, writeU16, writeU32 } from '../wire.js';
import { invalidField, startPacket } from './head.js';

/** CLIENT_HELLO (space HANDSHAKE, sealed with the pre-shared key; conn id = the client's initial id). */
export interface ClientHelloFields {
  /** 16 random bytes. */
  readonly clientNonce: Uint8Array;
  /** The client's ephemeral X25519 public key, 32 raw bytes. */
  readonly publicKey: Uint8Array;
  /** Largest DATA payload the client accepts, MIN_BLOCK_SIZE..MAX_BLOCK_SIZE. */
  readonly maxBlockSize: number;
  /** Bytes of DATA payload the client buffers per transfer before the server hears a flow limit. */
  readonly receiveWindow: number;
  /** The client's idle timeout; the session uses the smaller of both sides'. At least 1. */
  readonly idleTimeoutMs: number;
}

export interface ClientHelloPacket extends ClientHelloFields {
  readonly type: 'client-hello';
}

export const ClientHelloSchema = z.lazy(() =>
  z.strictObject({
    clientNonce: bytesOf(NONCE_LENGTH),
    publicKey: bytesOf(PUBLIC_KEY_LENGTH),
    maxBlockSize: z.int().min(MIN_BLOCK_SIZE).max(MAX_BLOCK_SIZE),
    receiveWindow: z.uint32(),
    idleTimeoutMs: z.uint32().min(1),
  }),
);

/** Zero padding that brings the hello datagram to MIN_HELLO_DATAGRAM bytes or more: 1045. */
export const CLIENT_HELLO_PADDING = MIN_HELLO_PLAINTEXT - CLIENT_HELLO_FIXED_LENGTH;

function check(f: ClientHelloFields): void {
  if (!isBytes(f.clientNonce, NONCE_LENGTH)) invalidField('clientNonce must be 16 bytes');
  if (!isBytes(f.publicKey, PUBLIC_KEY_LENGTH)) invalidField('publicKey must be 32 bytes');
  if (!isU32(f.maxBlockSize) || f.maxBlockSize < MIN_BLOCK_SIZE || f.maxBlockSize > MAX_BLOCK_SIZE) {
    invalidField('maxBlockSize out of range');
  }
  if (!isU32(f.receiveWindow)) invalidField('receiveWindow must be a u32');
  if (!isU32(f.idleTimeoutMs) || f.idleTimeoutMs === 0) invalidField('idleTimeoutMs must be a u32 >= 1');
}

/** The CLIENT_HELLO plaintext, padded so that its sealed datagram is at least MIN_HELLO_DATAGRAM bytes. */
export function encodeClientHello(connId: bigint, fields: ClientHelloFields): Buffer {
  check(fields);
  const out = startPacket(MIN_HELLO_PLAINTEXT, Space.Handshake, PacketType.ClientHello, connId);
  let o = PACKET_HEAD_LENGTH;
  out.set(fields.clientNonce, o);
  o += NONCE_LENGTH;
  out.set(fields.publicKey, o);
  o += PUBLIC_KEY_LENGTH;
  writeU32(out, o, fields.maxBlockSize);
  writeU32(out, o + 4, fields.receiveWindow);
  writeU32(out, o + 8, fields.idleTimeoutMs);
  writeU16(out, o + 12, CLIENT_HELLO_PADDING);
  out.fill(0, CLIENT_HELLO_FIXED_LENGTH);
  return out;
}

/** Decodes the fields after the checked head. */
export function decodeClientHelloBody(p: Uint8Array): DecodeResult<ClientHelloPacket> {
  if (p.length < CLIENT_HELLO_FIXED_LENGTH) return failure('truncated', 'client hello');
  const o = PACKET_HEAD_LENGTH + NONCE_LENGTH + PUBLIC_KEY_LENGTH;
  const maxBlockSize = readU32(p, o);
  const receiveWindow = readU32(p, o + 4);
  const idleTimeoutMs = readU32(p, o + 8);
  const end = CLIENT_HELLO_FIXED_LENGTH + readU16(p, o + 12);
  if (p.length < end) return failure('truncated', 'client hello padding');
  if (p.length > end) return failure('trailing-bytes', 'client hello');
  if (end < MIN_HELLO_PLAINTEXT) return failure('hello-too-small');
  for (let i = CLIENT_HELLO_FIXED_LENGTH; i < end; i++) if (p[i] !== 0) return failure('bad-padding');
  if (maxBlockSize < MIN_BLOCK_SIZE || maxBlockSize > MAX_BLOCK_SIZE) {
    return failure('invalid-field', 'maxBlockSize out of range');
  }
  if (idleTimeoutMs === 0) return failure('invalid-field', 'idleTimeoutMs is 0');
  const clientNonce = copy(p, PACKET_HEAD_LENGTH, PACKET_HEAD_LENGTH + NONCE_LENGTH);
  const publicKey = copy(p, PACKET_HEAD_LENGTH + NONCE_LENGTH, o);
  return {
    ok: true,
    value: { type: 'client-hello', clientNonce, publicKey, maxBlockSize, receiveWindow, idleTimeoutMs },
  };
}
