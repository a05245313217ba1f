import * as z from 'zod';
import {
  CLIENT_HELLO_FIXED_LENGTH,
  CLIENT_HELLO_V2_FIXED_LENGTH,
  FEATURES_VERSION,
  MAX_BLOCK_SIZE,
  MIN_BLOCK_SIZE,
  MIN_HELLO_PLAINTEXT,
  NONCE_LENGTH,
  PACKET_HEAD_LENGTH,
  PacketType,
  PROTOCOL_VERSION,
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
  /**
   * The features (bits of Feature) the client can use: present in a version-2 hello only, so a hello
   * with `features` is encoded as version 2, one without as version 1.
   */
  readonly features?: number;
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
    features: z.uint32().optional(),
  }),
);

/** Zero padding that brings the hello datagram to MIN_HELLO_DATAGRAM bytes or more: 1045. */
export const CLIENT_HELLO_PADDING = MIN_HELLO_PLAINTEXT - CLIENT_HELLO_FIXED_LENGTH;
/** The same for a version-2 hello, whose fixed part is 4 bytes longer: 1041. */
export const CLIENT_HELLO_V2_PADDING = MIN_HELLO_PLAINTEXT - CLIENT_HELLO_V2_FIXED_LENGTH;

function check(f: ClientHelloFields): void {
  if (!isBytes(f.clientNonce, NONCE_LENGTH)) invalidField('clientNonce must be 16 bytes');
  if (!isBytes(f.publicKey, PUBLIC_KEY_LENGTH)) invalidField('publicKey must be 32 bytes');
  if (!isU32(f.maxBlockSize) || f.maxBlockSize < MIN_BLOCK_SIZE || f.maxBlockSize > MAX_BLOCK_SIZE) {
    invalidField('maxBlockSize out of range');
  }
  if (!isU32(f.receiveWindow)) invalidField('receiveWindow must be a u32');
  if (!isU32(f.idleTimeoutMs) || f.idleTimeoutMs === 0) invalidField('idleTimeoutMs must be a u32 >= 1');
  if (f.features !== undefined && !isU32(f.features)) invalidField('features must be a u32');
}

/**
 * The CLIENT_HELLO plaintext, padded so that its sealed datagram is at least MIN_HELLO_DATAGRAM bytes:
 * version 2 (with the features) when `fields.features` is given, else version 1.
 */
export function encodeClientHello(connId: bigint, fields: ClientHelloFields): Buffer {
  check(fields);
  const v2 = fields.features !== undefined;
  const out = startPacket(
    MIN_HELLO_PLAINTEXT,
    Space.Handshake,
    PacketType.ClientHello,
    connId,
    v2 ? FEATURES_VERSION : PROTOCOL_VERSION,
  );
  let o = PACKET_HEAD_LENGTH;
  out.set(fields.clientNonce, o);
  o += NONCE_LENGTH;
  out.set(fields.publicKey, o);
  o += PUBLIC_KEY_LENGTH;
  writeU32(out, o, fields.maxBlockSize);
  writeU32(out, o + 4, fields.receiveWindow);
  writeU32(out, o + 8, fields.idleTimeoutMs);
  o += 12;
  if (fields.features !== undefined) {
    writeU32(out, o, fields.features);
    o += 4;
  }
  writeU16(out, o, v2 ? CLIENT_HELLO_V2_PADDING : CLIENT_HELLO_PADDING);
  out.fill(0, o + 2);
  return out;
}

/** Decodes the fields after the checked head (the version byte, already checked, says which layout). */
export function decodeClientHelloBody(p: Uint8Array): DecodeResult<ClientHelloPacket> {
  const v2 = p[2] === FEATURES_VERSION;
  const fixed = v2 ? CLIENT_HELLO_V2_FIXED_LENGTH : CLIENT_HELLO_FIXED_LENGTH;
  if (p.length < fixed) return failure('truncated', 'client hello');
  const o = PACKET_HEAD_LENGTH + NONCE_LENGTH + PUBLIC_KEY_LENGTH;
  const maxBlockSize = readU32(p, o);
  const receiveWindow = readU32(p, o + 4);
  const idleTimeoutMs = readU32(p, o + 8);
  const features = v2 ? readU32(p, o + 12) : undefined;
  const end = fixed + readU16(p, fixed - 2);
  if (p.length < end) return failure('truncated', 'client hello padding');
  if (p.length > end) return failure('trailing-bytes', 'client hello');
  if (end < MIN_HELLO_PLAINTEXT) return failure('hello-too-small');
  for (let i = fixed; i < end; i++) if (p[i] !== 0) return failure('bad-padding');
  if (maxBlockSize < MIN_BLOCK_SIZE || maxBlockSize > MAX_BLOCK_SIZE) {
    return failure('invalid-field', 'maxBlockSize out of range');
  }
  if (idleTimeoutMs === 0) return failure('invalid-field', 'idleTimeoutMs is 0');
  const clientNonce = copy(p, PACKET_HEAD_LENGTH, PACKET_HEAD_LENGTH + NONCE_LENGTH);
  const publicKey = copy(p, PACKET_HEAD_LENGTH + NONCE_LENGTH, o);
  return {
    ok: true,
    value: {
      type: 'client-hello',
      clientNonce,
      publicKey,
      maxBlockSize,
      receiveWindow,
      idleTimeoutMs,
      ...(features !== undefined ? { features } : {}),
    },
  };
}
