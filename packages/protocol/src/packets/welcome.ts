import * as z from 'zod';
import {
  CONN_ID_LENGTH,
  FEATURES_VERSION,
  MAX_BLOCK_SIZE,
  MIN_BLOCK_SIZE,
  NONCE_LENGTH,
  PACKET_HEAD_LENGTH,
  PacketType,
  PROTOCOL_VERSION,
  PUBLIC_KEY_LENGTH,
  RESET_TOKEN_LENGTH,
  SERVER_WELCOME_LENGTH,
  SERVER_WELCOME_V2_LENGTH,
  Space,
} from '../constants.js';
import { type DecodeResult, failure } from '../errors.js';
import { bytesOf } from '../schema-parts.js';
import { copy, isBytes, isU32, isU64, readU32, readU64, writeU32, writeU64 } from '../wire.js';
import { invalidField, startPacket } from './head.js';

export type Access = 'read-only' | 'read-write';

/** SERVER_WELCOME (space HANDSHAKE, sealed with the pre-shared key; conn id = the client's initial id). */
export interface ServerWelcomeFields {
  /** Echo of the hello's clientNonce. */
  readonly clientNonce: Uint8Array;
  /** 16 random bytes. */
  readonly serverNonce: Uint8Array;
  /** The server's ephemeral X25519 public key, 32 raw bytes. */
  readonly publicKey: Uint8Array;
  /** The connection id of every SESSION datagram of this session, both directions (u64). */
  readonly sessionConnId: bigint;
  /** The session's block size: <= the hello's maxBlockSize, MIN_BLOCK_SIZE..MAX_BLOCK_SIZE. */
  readonly blockSize: number;
  readonly receiveWindow: number;
  readonly idleTimeoutMs: number;
  readonly access: Access;
  /** Token a RESET datagram for sessionConnId carries, 16 bytes. */
  readonly resetToken: Uint8Array;
  /**
   * The features the session may use (those of the hello's the server also implements): present in a
   * version-2 welcome only, which answers a version-2 hello.
   */
  readonly features?: number;
}

export interface ServerWelcomePacket extends ServerWelcomeFields {
  readonly type: 'server-welcome';
}

export const ServerWelcomeSchema = z.lazy(() =>
  z.strictObject({
    clientNonce: bytesOf(NONCE_LENGTH),
    serverNonce: bytesOf(NONCE_LENGTH),
    publicKey: bytesOf(PUBLIC_KEY_LENGTH),
    sessionConnId: z.uint64(),
    blockSize: z.int().min(MIN_BLOCK_SIZE).max(MAX_BLOCK_SIZE),
    receiveWindow: z.uint32(),
    idleTimeoutMs: z.uint32().min(1),
    access: z.enum(['read-only', 'read-write']),
    resetToken: bytesOf(RESET_TOKEN_LENGTH),
    features: z.uint32().optional(),
  }),
);

const ACCESS_BYTES: Record<Access, number> = { 'read-only': 0, 'read-write': 1 };

function check(f: ServerWelcomeFields): void {
  if (!isBytes(f.clientNonce, NONCE_LENGTH)) invalidField('clientNonce must be 16 bytes');
  if (!isBytes(f.serverNonce, NONCE_LENGTH)) invalidField('serverNonce must be 16 bytes');
  if (!isBytes(f.publicKey, PUBLIC_KEY_LENGTH)) invalidField('publicKey must be 32 bytes');
  if (!isU64(f.sessionConnId)) invalidField('sessionConnId must be a u64 bigint');
  if (!isU32(f.blockSize) || f.blockSize < MIN_BLOCK_SIZE || f.blockSize > MAX_BLOCK_SIZE) {
    invalidField('blockSize out of range');
  }
  if (!isU32(f.receiveWindow)) invalidField('receiveWindow must be a u32');
  if (!isU32(f.idleTimeoutMs) || f.idleTimeoutMs === 0) invalidField('idleTimeoutMs must be a u32 >= 1');
  if (f.access !== 'read-only' && f.access !== 'read-write') invalidField('access');
  if (!isBytes(f.resetToken, RESET_TOKEN_LENGTH)) invalidField('resetToken must be 16 bytes');
  if (f.features !== undefined && !isU32(f.features)) invalidField('features must be a u32');
}

/** The SERVER_WELCOME plaintext: version 2 (with the features) when `fields.features` is given. */
export function encodeServerWelcome(connId: bigint, fields: ServerWelcomeFields): Buffer {
  check(fields);
  const v2 = fields.features !== undefined;
  const out = startPacket(
    v2 ? SERVER_WELCOME_V2_LENGTH : SERVER_WELCOME_LENGTH,
    Space.Handshake,
    PacketType.ServerWelcome,
    connId,
    v2 ? FEATURES_VERSION : PROTOCOL_VERSION,
  );
  let o = PACKET_HEAD_LENGTH;
  out.set(fields.clientNonce, o);
  o += NONCE_LENGTH;
  out.set(fields.serverNonce, o);
  o += NONCE_LENGTH;
  out.set(fields.publicKey, o);
  o += PUBLIC_KEY_LENGTH;
  writeU64(out, o, fields.sessionConnId);
  o += CONN_ID_LENGTH;
  writeU32(out, o, fields.blockSize);
  writeU32(out, o + 4, fields.receiveWindow);
  writeU32(out, o + 8, fields.idleTimeoutMs);
  out[o + 12] = ACCESS_BYTES[fields.access];
  out.set(fields.resetToken, o + 13);
  if (fields.features !== undefined) writeU32(out, o + 13 + RESET_TOKEN_LENGTH, fields.features);
  return out;
}

/** Decodes the fields after the checked head (the version byte, already checked, says which layout). */
export function decodeServerWelcomeBody(p: Uint8Array): DecodeResult<ServerWelcomePacket> {
  const v2 = p[2] === FEATURES_VERSION;
  const length = v2 ? SERVER_WELCOME_V2_LENGTH : SERVER_WELCOME_LENGTH;
  if (p.length < length) return failure('truncated', 'server welcome');
  if (p.length > length) return failure('trailing-bytes', 'server welcome');
  const n = PACKET_HEAD_LENGTH + 2 * NONCE_LENGTH + PUBLIC_KEY_LENGTH; // offset of sessionConnId
  const o = n + CONN_ID_LENGTH;
  const blockSize = readU32(p, o);
  const receiveWindow = readU32(p, o + 4);
  const idleTimeoutMs = readU32(p, o + 8);
  const accessByte = p[o + 12]!;
  if (blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE) {
    return failure('invalid-field', 'blockSize out of range');
  }
  if (idleTimeoutMs === 0) return failure('invalid-field', 'idleTimeoutMs is 0');
  if (accessByte > 1) return failure('invalid-field', `access ${accessByte}`);
  return {
    ok: true,
    value: {
      type: 'server-welcome',
      clientNonce: copy(p, PACKET_HEAD_LENGTH, PACKET_HEAD_LENGTH + NONCE_LENGTH),
      serverNonce: copy(p, PACKET_HEAD_LENGTH + NONCE_LENGTH, PACKET_HEAD_LENGTH + 2 * NONCE_LENGTH),
      publicKey: copy(p, PACKET_HEAD_LENGTH + 2 * NONCE_LENGTH, n),
      sessionConnId: readU64(p, n),
      blockSize,
      receiveWindow,
      idleTimeoutMs,
      access: accessByte === 1 ? 'read-write' : 'read-only',
      resetToken: copy(p, o + 13, o + 13 + RESET_TOKEN_LENGTH),
      ...(v2 ? { features: readU32(p, o + 13 + RESET_TOKEN_LENGTH) } : {}),
    },
  };
}
