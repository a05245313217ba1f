/**
 * @ferry/protocol: the ferry wire format. Pure functions from bytes to typed values and back;
 * docs/PROTOCOL.md is the normative specification.
 */
export * from './constants.js';
export * from './errors.js';
export * from './messages.js';
export * from './packet.js';
export * from './packets/ack.js';
export * from './packets/close.js';
export * from './packets/control.js';
export * from './packets/data.js';
export * from './packets/hello.js';
export * from './packets/ping.js';
export * from './packets/reject.js';
export * from './packets/reset.js';
export * from './packets/version.js';
export * from './packets/welcome.js';
export { decodePrefix, encodePrefix, isKnownSpace, type Prefix, PrefixSchema } from './prefix.js';
