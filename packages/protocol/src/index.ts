/**
 * @ferry/protocol: the ferry wire format. Pure functions from bytes to typed values and back;
 * docs/PROTOCOL.md is the normative specification.
 */
export { BlockBitmap, type BlockRange, MAX_BITMAP_BLOCKS } from './bitmap.js';
export * from './constants.js';
export * from './errors.js';
export * from './messages.js';
export * from './packet.js';
export {
  type AckFields,
  type AckPacket,
  type AckRange,
  AckSchema,
  AckWireSchema,
  encodeAck,
  type FlowEntry,
  FlowEntrySchema,
} from './packets/ack.js';
export { type CloseFields, type ClosePacket, CloseSchema, encodeClose } from './packets/close.js';
export {
  type ControlFields,
  ControlHeaderSchema,
  type ControlPacket,
  encodeControl,
} from './packets/control.js';
export {
  type DataFields,
  type DataHeader,
  DataHeaderSchema,
  type DataPacket,
  DataSchema,
  encodeData,
  encodeDataHeader,
} from './packets/data.js';
export {
  CLIENT_HELLO_PADDING,
  CLIENT_HELLO_V2_PADDING,
  type ClientHelloFields,
  type ClientHelloPacket,
  ClientHelloSchema,
  encodeClientHello,
} from './packets/hello.js';
export { encodePart, type PartFields, type PartPacket, PartSchema } from './packets/part.js';
export { encodePing, type PingFields, type PingPacket, PingSchema } from './packets/ping.js';
export { encodeProbe, type ProbeFields, type ProbePacket, ProbeSchema } from './packets/probe.js';
export { decodeRejectDatagram, encodeRejectDatagram, type RejectDatagram } from './packets/reject.js';
export {
  decodeResetDatagram,
  encodeResetDatagram,
  type ResetDatagram,
  resetTokenFor,
} from './packets/reset.js';
export {
  encodeServerTime,
  type ServerTimeFields,
  type ServerTimePacket,
  ServerTimeSchema,
} from './packets/server-time.js';
export {
  decodeVersionNegotiation,
  encodeVersionNegotiation,
  type VersionNegotiation,
} from './packets/version.js';
export {
  type Access,
  encodeServerWelcome,
  type ServerWelcomeFields,
  type ServerWelcomePacket,
  ServerWelcomeSchema,
} from './packets/welcome.js';
export { decodePrefix, encodePrefix, isKnownSpace, type Prefix, PrefixSchema } from './prefix.js';
