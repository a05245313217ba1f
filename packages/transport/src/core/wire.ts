import { type Fernet, tokenTimestamp } from '@ferry/crypto';
import {
  type AckRange,
  type ClientHelloFields,
  DATA_HEADER_LENGTH,
  decodePacket,
  decodePrefix,
  decodeRejectDatagram,
  decodeResetDatagram,
  decodeVersionNegotiation as decodeVersions,
  type ErrorName,
  encodeAck as encodeAckPacket,
  encodeClientHello,
  encodeClose as encodeClosePacket,
  encodeControl as encodeControlPacket,
  encodeDataHeader as encodeDataHeaderPacket,
  encodePart as encodePartPacket,
  encodePing as encodePingPacket,
  encodePrefix,
  encodeProbe as encodeProbePacket,
  encodeRejectDatagram,
  encodeResetDatagram,
  encodeServerTime as encodeServerTimePacket,
  encodeServerWelcome,
  encodeVersionNegotiation as encodeVersions,
  errorByWire,
  FERNET_BLOCK,
  FERNET_OVERHEAD,
  type FlowEntry,
  maxPlaintextLength,
  PREFIX_LENGTH,
  PROBE_MIN_LENGTH,
  MAX_ACK_RANGES as PROTOCOL_MAX_ACK_RANGES,
  MAX_FLOWS as PROTOCOL_MAX_FLOWS,
  MIN_HELLO_DATAGRAM as PROTOCOL_MIN_HELLO_DATAGRAM,
  RESET_DATAGRAM_LENGTH as PROTOCOL_RESET_DATAGRAM_LENGTH,
  type Prefix as ProtocolPrefix,
  type ServerWelcomeFields,
  Space,
  sealedLength,
  TOKEN_TTL_SECONDS,
  PROTOCOL_VERSION as VERSION,
  wireCodeFor,
} from '@ferry/protocol';
import type { CiphertextBuffers } from './ciphertext-buffers.js';

/**
 * The transport's one seam to the wire format: sealing and opening datagrams with Fernet, and the
 * @ferry/protocol codecs in the shape the connection works with. The protocol package defines every
 * byte; this module only binds it to keys and tokens.
 */
export type Prefix = ProtocolPrefix;

export const PROTOCOL_VERSION = VERSION;
export const HANDSHAKE_TTL_SECONDS = TOKEN_TTL_SECONDS;
export const MIN_HELLO_DATAGRAM = PROTOCOL_MIN_HELLO_DATAGRAM;
export const RESET_DATAGRAM_LENGTH = PROTOCOL_RESET_DATAGRAM_LENGTH;
export const MAX_ACK_RANGES = PROTOCOL_MAX_ACK_RANGES;
export const MAX_FLOWS = PROTOCOL_MAX_FLOWS;
/** Worst-case bytes a DATA datagram adds to its payload (prefix, header, token, padding). */
export const SESSION_OVERHEAD = PREFIX_LENGTH + DATA_HEADER_LENGTH + FERNET_OVERHEAD + FERNET_BLOCK;

export const SPACE = {
  versionNegotiation: Space.VersionNegotiation,
  handshake: Space.Handshake,
  session: Space.Session,
  reset: Space.Reset,
  reject: Space.Reject,
} as const;

export function connIdBytes(connId: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(connId, 0);
  return b;
}

/** The 12-byte cleartext prefix of this session's datagrams. */
export function sessionPrefix(connId: bigint): Buffer {
  return encodePrefix({ space: Space.Session, connId });
}

export function readPrefix(datagram: Uint8Array): Prefix | undefined {
  const r = decodePrefix(datagram);
  return r.ok ? r.value : undefined;
}

/** Seals plaintext parts into a datagram: cleartext prefix, then the binary Fernet token. */
export function sealDatagram(key: Fernet, prefix: Buffer, parts: Uint8Array[], wallSeconds: number): Buffer {
  const datagram = key.seal(parts, { headroom: PREFIX_LENGTH, now: wallSeconds });
  prefix.copy(datagram, 0, 0, PREFIX_LENGTH);
  return datagram;
}

/**
 * A datagram as it leaves the core: one buffer, or a list of buffers to send with one gathering
 * write (a DATA packet: its block is not copied into a datagram buffer).
 */
export type Datagram = Buffer | Buffer[];

export function datagramLength(datagram: Datagram): number {
  if (!Array.isArray(datagram)) return datagram.length;
  let n = 0;
  for (const part of datagram) n += part.length;
  return n;
}

/**
 * Like `sealDatagram`, as gather buffers (see `Fernet.sealv`): for DATA packets. With `buffers`, the
 * bulk ciphertext goes into one of theirs, which comes back through `buffers.sent` after the send.
 */
export function sealDatagramv(
  key: Fernet,
  prefix: Buffer,
  parts: Uint8Array[],
  wallSeconds: number,
  buffers?: CiphertextBuffers,
): Datagram {
  const bulkInto = buffers?.take();
  const list = key.sealv(parts, {
    headroom: PREFIX_LENGTH,
    now: wallSeconds,
    ...(bulkInto !== undefined ? { bulkInto } : {}),
  });
  prefix.copy(list[0]!, 0, 0, PREFIX_LENGTH);
  if (bulkInto !== undefined && list[1]?.buffer !== bulkInto.buffer) buffers!.give(bulkInto); // not used
  return list.length === 1 ? list[0]! : list;
}

/** Seals a handshake packet; its cleartext prefix is the packet's own (version 1 or 2). */
export function sealHandshake(key: Fernet, plaintext: Buffer, wallSeconds: number): Buffer {
  return sealDatagram(key, plaintext.subarray(0, PREFIX_LENGTH), [plaintext], wallSeconds);
}

/** Opens a datagram's token: the plaintext, or why it was refused (never throws on network input). */
export function openToken(
  key: Fernet,
  datagram: Buffer,
  options?: { ttl: number; now: number },
): Buffer | 'EBADTOKEN' | 'EEXPIRED' {
  return key.tryOpen(datagram.subarray(PREFIX_LENGTH), options);
}

export type SessionPacket =
  | { type: 'data'; pn: number; sendTime: number; transferId: number; blockIndex: number; payload: Buffer }
  | {
      type: 'ack';
      pn: number;
      tsEcho: number;
      ackDelayMicros: number;
      ranges: readonly AckRange[];
      flows: readonly FlowEntry[];
    }
  | { type: 'control'; pn: number; seq: number; body: Buffer }
  | { type: 'ping'; pn: number }
  | { type: 'probe'; pn: number; padding: number }
  | {
      type: 'part';
      pn: number;
      sendTime: number;
      transferId: number;
      blockIndex: number;
      offset: number;
      payload: Buffer;
    }
  | { type: 'close'; pn: number; errorCode: number; reason: string };

/** Decodes an opened SESSION token; the repeated prefix must equal the datagram's. */
export function decodeSessionPacket(
  plaintext: Buffer,
  datagram: Buffer,
): { ok: true; value: SessionPacket } | { ok: false; why: string } {
  const r = decodePacket(plaintext, datagram.subarray(0, PREFIX_LENGTH));
  if (!r.ok) return { ok: false, why: r.error.message };
  const p = r.value;
  switch (p.type) {
    case 'data':
      return {
        ok: true,
        value: {
          type: 'data',
          pn: p.packetNumber,
          sendTime: p.sendTime,
          transferId: p.transferId,
          blockIndex: p.blockIndex,
          payload: p.payload,
        },
      };
    case 'ack':
      return {
        ok: true,
        value: {
          type: 'ack',
          pn: p.packetNumber,
          tsEcho: p.tsEcho,
          ackDelayMicros: p.ackDelay,
          ranges: p.ranges,
          flows: p.flows,
        },
      };
    case 'control':
      return { ok: true, value: { type: 'control', pn: p.packetNumber, seq: p.messageSeq, body: p.body } };
    case 'ping':
      return { ok: true, value: { type: 'ping', pn: p.packetNumber } };
    case 'probe':
      return { ok: true, value: { type: 'probe', pn: p.packetNumber, padding: p.padding } };
    case 'part':
      return {
        ok: true,
        value: {
          type: 'part',
          pn: p.packetNumber,
          sendTime: p.sendTime,
          transferId: p.transferId,
          blockIndex: p.blockIndex,
          offset: p.offset,
          payload: p.payload,
        },
      };
    case 'close':
      return {
        ok: true,
        value: { type: 'close', pn: p.packetNumber, errorCode: p.errorCode, reason: p.reason },
      };
    default:
      return { ok: false, why: `a ${p.type} packet in the session space` };
  }
}

export function decodeHandshakePacket(plaintext: Buffer, datagram: Buffer): ReturnType<typeof decodePacket> {
  return decodePacket(plaintext, datagram.subarray(0, PREFIX_LENGTH));
}

const connIdOf = (prefix: Buffer): bigint => prefix.readBigUInt64BE(4);

export function encodeDataHeader(
  prefix: Buffer,
  pn: number,
  sendTime: number,
  transferId: number,
  blockIndex: number,
): Buffer {
  return encodeDataHeaderPacket(connIdOf(prefix), { packetNumber: pn, sendTime, transferId, blockIndex });
}

export function encodeAck(
  prefix: Buffer,
  pn: number,
  tsEcho: number,
  ackDelayMicros: number,
  ranges: ReadonlyArray<readonly [number, number]>,
  flows: readonly FlowEntry[],
): Buffer {
  return encodeAckPacket(connIdOf(prefix), {
    packetNumber: pn,
    tsEcho: tsEcho >>> 0,
    ackDelay: Math.min(ackDelayMicros, 0xffff_ffff) >>> 0,
    ranges,
    flows,
  });
}

export function encodeControl(prefix: Buffer, pn: number, seq: number, body: Buffer): Buffer {
  return encodeControlPacket(connIdOf(prefix), { packetNumber: pn, messageSeq: seq, body });
}

export function encodePing(prefix: Buffer, pn: number): Buffer {
  return encodePingPacket(connIdOf(prefix), { packetNumber: pn });
}

/** A PART: bytes `[offset, offset + payload.length)` of a block (a path that shrank under a transfer). */
export function encodePart(
  prefix: Buffer,
  pn: number,
  sendTime: number,
  transferId: number,
  blockIndex: number,
  offset: number,
  payload: Uint8Array,
): Buffer {
  return encodePartPacket(connIdOf(prefix), {
    packetNumber: pn,
    sendTime,
    transferId,
    blockIndex,
    offset,
    payload,
  });
}

/** A PROBE whose sealed datagram is exactly `datagramLength` bytes (a length a sealed datagram can have). */
export function encodeProbe(prefix: Buffer, pn: number, datagramLength: number): Buffer {
  const padding = maxPlaintextLength(datagramLength) - PROBE_MIN_LENGTH;
  return encodeProbePacket(connIdOf(prefix), { packetNumber: pn, padding: Math.max(0, padding) });
}

/** The datagram length of a PROBE that carried `padding` bytes. */
export function probeDatagramLength(padding: number): number {
  return PREFIX_LENGTH + sealedLength(PROBE_MIN_LENGTH + padding);
}

export function encodeClose(prefix: Buffer, pn: number, errorCode: number, reason: string): Buffer {
  return encodeClosePacket(connIdOf(prefix), { packetNumber: pn, errorCode, reason: truncate(reason, 256) });
}

function truncate(text: string, maxBytes: number): string {
  let s = text;
  while (Buffer.byteLength(s, 'utf8') > maxBytes) s = s.slice(0, -1);
  return s;
}

export function encodeHello(connId: bigint, fields: ClientHelloFields): Buffer {
  return encodeClientHello(connId, fields);
}

export function encodeWelcome(connId: bigint, fields: ServerWelcomeFields): Buffer {
  return encodeServerWelcome(connId, fields);
}

export function encodeServerTime(connId: bigint, clientNonce: Uint8Array): Buffer {
  return encodeServerTimePacket(connId, { clientNonce });
}

/** The Unix time (seconds) a datagram's token was stamped with; only for a token that opened. */
export function tokenTime(datagram: Buffer): number {
  return tokenTimestamp(datagram.subarray(PREFIX_LENGTH));
}

export function errorCodeToWire(code: ErrorName): number {
  return wireCodeFor(code);
}

export function errorCodeFromWire(wire: number): ErrorName {
  return errorByWire(wire)?.name ?? 'EPROTO';
}

export function encodeReset(connId: bigint, token: Buffer): Buffer {
  return encodeResetDatagram(connId, token);
}

export function decodeReset(datagram: Buffer): Buffer | undefined {
  const r = decodeResetDatagram(datagram);
  return r.ok ? r.value.resetToken : undefined;
}

export function encodeReject(connId: bigint, code: ErrorName): Buffer {
  return encodeRejectDatagram(connId, wireCodeFor(code));
}

export function decodeReject(datagram: Buffer): ErrorName | undefined {
  const r = decodeRejectDatagram(datagram);
  return r.ok ? (errorByWire(r.value.errorCode)?.name ?? 'EPROTO') : undefined;
}

export function encodeVersionNegotiation(connId: bigint, versions: readonly number[]): Buffer {
  return encodeVersions(connId, versions);
}

export function decodeVersionNegotiation(datagram: Buffer): readonly number[] | undefined {
  const r = decodeVersions(datagram);
  return r.ok ? r.value.versions : undefined;
}
