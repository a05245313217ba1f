import { createHash } from 'node:crypto';
import {
  FEATURES_VERSION,
  MAGIC_0,
  MAGIC_1,
  PACKET_HEAD_LENGTH,
  PacketType,
  PREFIX_LENGTH,
  PROTOCOL_VERSION,
  Space,
} from './constants.js';
import { type DecodeResult, failure } from './errors.js';
import { type AckPacket, decodeAckBody, encodeAck } from './packets/ack.js';
import { type ClosePacket, decodeCloseBody, encodeClose } from './packets/close.js';
import { type ControlPacket, decodeControlBody, encodeControl } from './packets/control.js';
import { type DataPacket, decodeDataBody, encodeData } from './packets/data.js';
import { type ClientHelloPacket, decodeClientHelloBody, encodeClientHello } from './packets/hello.js';
import { decodePartBody, encodePart, type PartPacket } from './packets/part.js';
import { decodePingBody, encodePing, type PingPacket } from './packets/ping.js';
import { decodeProbeBody, encodeProbe, type ProbePacket } from './packets/probe.js';
import { decodeServerTimeBody, encodeServerTime, type ServerTimePacket } from './packets/server-time.js';
import { decodeServerWelcomeBody, encodeServerWelcome, type ServerWelcomePacket } from './packets/welcome.js';
import { encodePrefix, type Prefix } from './prefix.js';
import { bytesEqual } from './wire.js';

/** Every packet a token can carry: a discriminated union on `type`. */
export type Packet =
  | ClientHelloPacket
  | ServerWelcomePacket
  | ServerTimePacket
  | DataPacket
  | AckPacket
  | ControlPacket
  | PingPacket
  | ClosePacket
  | ProbePacket
  | PartPacket;

export type PacketKind = Packet['type'];

/** What encodePacket takes: a packet, where a CONTROL packet's parsed `message` may be left out. */
export type PacketInput =
  | Exclude<Packet, ControlPacket | PartPacket>
  | (Omit<PartPacket, 'payload'> & { payload: Uint8Array })
  | (Omit<ControlPacket, 'message' | 'body'> & { body: Uint8Array });

/** The space each packet type travels in. */
export function packetSpace(type: PacketKind): Space {
  return type === 'client-hello' || type === 'server-welcome' || type === 'server-time'
    ? Space.Handshake
    : Space.Session;
}

/** DATA, PART, CONTROL, PING and PROBE make the receiver send an ACK; ACK, CLOSE and the handshake do not. */
export function isAckEliciting(type: PacketKind): boolean {
  return type === 'data' || type === 'control' || type === 'ping' || type === 'probe' || type === 'part';
}

/** The plaintext of any packet (the hot path uses encodeDataHeader for DATA). Throws ProtocolError on bad fields. */
export function encodePacket(connId: bigint, packet: PacketInput): Buffer {
  switch (packet.type) {
    case 'client-hello':
      return encodeClientHello(connId, packet);
    case 'server-welcome':
      return encodeServerWelcome(connId, packet);
    case 'server-time':
      return encodeServerTime(connId, packet);
    case 'data':
      return encodeData(connId, packet);
    case 'ack':
      return encodeAck(connId, packet);
    case 'control':
      return encodeControl(connId, packet);
    case 'ping':
      return encodePing(connId, packet);
    case 'close':
      return encodeClose(connId, packet);
    case 'probe':
      return encodeProbe(connId, packet);
    case 'part':
      return encodePart(connId, packet);
  }
}

const SESSION_TYPES = new Set<number>([
  PacketType.Data,
  PacketType.Ack,
  PacketType.Control,
  PacketType.Ping,
  PacketType.Close,
  PacketType.Probe,
  PacketType.Part,
]);

/**
 * Decodes the plaintext of an opened token. `expectedPrefix` is the datagram's cleartext prefix (its
 * first 12 bytes, or the decoded Prefix): the repeated prefix must equal it byte for byte. Never
 * throws; never reads outside `plaintext`; DATA payloads and CONTROL bodies are views, not copies.
 */
export function decodePacket(
  plaintext: Uint8Array,
  expectedPrefix: Uint8Array | Prefix,
): DecodeResult<Packet> {
  const expected = expectedPrefix instanceof Uint8Array ? expectedPrefix : safePrefix(expectedPrefix);
  if (plaintext.length < PACKET_HEAD_LENGTH) return failure('truncated', 'packet head');
  if (expected === undefined || expected.length < PREFIX_LENGTH)
    return failure('prefix-mismatch', 'bad expected prefix');
  if (!bytesEqual(plaintext, 0, expected, 0, PREFIX_LENGTH)) return failure('prefix-mismatch');
  if (plaintext[0] !== MAGIC_0 || plaintext[1] !== MAGIC_1) return failure('bad-magic');
  const space = plaintext[3];
  // Version 2 differs from version 1 in its handshake packets only; its sessions are version 1.
  if (
    plaintext[2] !== PROTOCOL_VERSION &&
    !(plaintext[2] === FEATURES_VERSION && space === Space.Handshake)
  ) {
    return failure('unsupported-version', `version ${plaintext[2]}`, 'EVERSION');
  }
  const type = plaintext[PREFIX_LENGTH]!;
  if (space === Space.Handshake) {
    if (type === PacketType.ClientHello) return decodeClientHelloBody(plaintext);
    if (type === PacketType.ServerWelcome) return decodeServerWelcomeBody(plaintext);
    if (type === PacketType.ServerTime) return decodeServerTimeBody(plaintext);
    return failure(
      SESSION_TYPES.has(type) ? 'wrong-space' : 'unknown-type',
      `type ${type} in handshake space`,
    );
  }
  if (space === Space.Session) {
    switch (type) {
      case PacketType.Data:
        return decodeDataBody(plaintext);
      case PacketType.Ack:
        return decodeAckBody(plaintext);
      case PacketType.Control:
        return decodeControlBody(plaintext);
      case PacketType.Ping:
        return decodePingBody(plaintext);
      case PacketType.Close:
        return decodeCloseBody(plaintext);
      case PacketType.Probe:
        return decodeProbeBody(plaintext);
      case PacketType.Part:
        return decodePartBody(plaintext);
      case PacketType.ClientHello:
      case PacketType.ServerWelcome:
      case PacketType.ServerTime:
        return failure('wrong-space', `type ${type} in session space`);
      default:
        return failure('unknown-type', `type ${type}`);
    }
  }
  return failure('bad-space', `space ${space} carries no token`);
}

/** decodePacket, then a check that the packet is of the expected kind ('unexpected-type' otherwise). */
function decodeKind<K extends PacketKind>(
  kind: K,
  plaintext: Uint8Array,
  expectedPrefix: Uint8Array | Prefix,
): DecodeResult<Extract<Packet, { type: K }>> {
  const result = decodePacket(plaintext, expectedPrefix);
  if (!result.ok) return result;
  if (result.value.type !== kind) return failure('unexpected-type', `${result.value.type}, not ${kind}`);
  return result as DecodeResult<Extract<Packet, { type: K }>>;
}

/** decodePacket restricted to one kind; each never throws. */
export function decodeClientHello(plaintext: Uint8Array, expectedPrefix: Uint8Array | Prefix) {
  return decodeKind('client-hello', plaintext, expectedPrefix);
}
export function decodeServerWelcome(plaintext: Uint8Array, expectedPrefix: Uint8Array | Prefix) {
  return decodeKind('server-welcome', plaintext, expectedPrefix);
}
export function decodeServerTime(plaintext: Uint8Array, expectedPrefix: Uint8Array | Prefix) {
  return decodeKind('server-time', plaintext, expectedPrefix);
}
export function decodeData(plaintext: Uint8Array, expectedPrefix: Uint8Array | Prefix) {
  return decodeKind('data', plaintext, expectedPrefix);
}
export function decodeAck(plaintext: Uint8Array, expectedPrefix: Uint8Array | Prefix) {
  return decodeKind('ack', plaintext, expectedPrefix);
}
export function decodeControl(plaintext: Uint8Array, expectedPrefix: Uint8Array | Prefix) {
  return decodeKind('control', plaintext, expectedPrefix);
}
export function decodePing(plaintext: Uint8Array, expectedPrefix: Uint8Array | Prefix) {
  return decodeKind('ping', plaintext, expectedPrefix);
}
export function decodeClose(plaintext: Uint8Array, expectedPrefix: Uint8Array | Prefix) {
  return decodeKind('close', plaintext, expectedPrefix);
}
export function decodeProbe(plaintext: Uint8Array, expectedPrefix: Uint8Array | Prefix) {
  return decodeKind('probe', plaintext, expectedPrefix);
}
export function decodePart(plaintext: Uint8Array, expectedPrefix: Uint8Array | Prefix) {
  return decodeKind('part', plaintext, expectedPrefix);
}

function safePrefix(prefix: Prefix): Buffer | undefined {
  try {
    return encodePrefix(prefix);
  } catch {
    return undefined;
  }
}

/**
 * The `context` input of the session-key derivation: SHA-256 of the CLIENT_HELLO plaintext followed
 * by the SERVER_WELCOME plaintext, binding the keys to everything both sides said in the handshake.
 */
export function handshakeContext(helloPlaintext: Uint8Array, welcomePlaintext: Uint8Array): Buffer {
  return createHash('sha256').update(helloPlaintext).update(welcomePlaintext).digest();
}
