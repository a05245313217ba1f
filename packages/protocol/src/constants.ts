/**
 * Protocol version 1: numbers and limits. docs/PROTOCOL.md is the normative text; every value here
 * appears there under the same name.
 */

/**
 * Protocol version 1: the version byte of every SESSION, RESET and REJECT datagram, and of a version-1
 * handshake.
 */
export const PROTOCOL_VERSION = 1;
/**
 * Protocol version 2: version 1 with a feature list in each side's handshake packet (see Feature). Only
 * the handshake carries the 2; the session that follows is made of version-1 datagrams.
 */
export const FEATURES_VERSION = 2;
/** Version byte of a VERSION NEGOTIATION datagram (not a protocol version). */
export const VERSION_NEGOTIATION_VERSION = 0;
/** Versions a peer built from this package accepts, most preferred first. */
export const SUPPORTED_VERSIONS: readonly number[] = Object.freeze([FEATURES_VERSION, PROTOCOL_VERSION]);

/**
 * Optional parts of the protocol, one bit each in the u32 `features` of a version-2 CLIENT_HELLO and
 * SERVER_WELCOME. A session may use a feature only if both listed it (the welcome lists the
 * intersection); a version-1 session has none.
 */
export const Feature = {
  /** Directory trees: mkdir, rmdir, walk, hash, putFiles, commitFiles, getFiles, and `mode` members. */
  Trees: 0x1,
  /**
   * Path MTU discovery: PROBE and PART packets, and `maxBlockSize` in get and put requests, so that a
   * transfer's blocks can be as large as the path from its sender carries.
   */
  PathMtu: 0x2,
} as const;
export type Feature = (typeof Feature)[keyof typeof Feature];
/** Every feature this package implements. */
export const ALL_FEATURES = Feature.Trees | Feature.PathMtu;

/** The two magic bytes that start every ferry datagram: 'F' 'Y'. */
export const MAGIC_0 = 0x46;
export const MAGIC_1 = 0x59;

/** Cleartext prefix: magic (2) + version (1) + space (1) + connection id (8). */
export const PREFIX_LENGTH = 12;
export const CONN_ID_LENGTH = 8;

/** The space byte of the prefix: which key seals the token, or which tokenless datagram this is. */
export const Space = {
  VersionNegotiation: 0x00,
  Handshake: 0x01,
  Session: 0x02,
  Reset: 0x03,
  Reject: 0x04,
} as const;
export type Space = (typeof Space)[keyof typeof Space];

/** The packet type byte that follows the repeated prefix inside a token. */
export const PacketType = {
  ClientHello: 0x01,
  ServerWelcome: 0x02,
  ServerTime: 0x03,
  Data: 0x10,
  Ack: 0x11,
  Control: 0x12,
  Ping: 0x13,
  Close: 0x14,
  Probe: 0x15,
  Part: 0x16,
} as const;
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

// --- Fernet token layout (raw binary form) ---------------------------------------------------------
/** version 1 + timestamp 8 + IV 16 + HMAC-SHA256 32. */
export const FERNET_OVERHEAD = 57;
/** AES block size: the ciphertext is the plaintext PKCS#7-padded to a multiple of this. */
export const FERNET_BLOCK = 16;
/** Tokens older than this (by their timestamp) are rejected. */
export const TOKEN_TTL_SECONDS = 120;
/** Tokens stamped further than this into the future are rejected (clock skew allowance). */
export const MAX_CLOCK_SKEW_SECONDS = 60;

/** Length of a binary Fernet token sealing `plaintextLength` bytes (PKCS#7 always adds 1..16 bytes). */
export function sealedLength(plaintextLength: number): number {
  return FERNET_OVERHEAD + FERNET_BLOCK * (Math.floor(plaintextLength / FERNET_BLOCK) + 1);
}

/** Length of a whole datagram (cleartext prefix + token) whose token seals `plaintextLength` bytes. */
export function datagramLength(plaintextLength: number): number {
  return PREFIX_LENGTH + sealedLength(plaintextLength);
}

/** The largest plaintext whose datagram is at most `maxDatagram` bytes (-1 if none fits). */
export function maxPlaintextLength(maxDatagram: number): number {
  const blocks = Math.floor((maxDatagram - PREFIX_LENGTH - FERNET_OVERHEAD) / FERNET_BLOCK);
  return blocks < 1 ? -1 : blocks * FERNET_BLOCK - 1;
}

// --- Fixed plaintext sizes -------------------------------------------------------------------------
/** Bytes before the type-specific fields: repeated prefix + type byte. */
export const PACKET_HEAD_LENGTH = PREFIX_LENGTH + 1;
export const NONCE_LENGTH = 16;
export const PUBLIC_KEY_LENGTH = 32;
export const RESET_TOKEN_LENGTH = 16;
/** CLIENT_HELLO before its padding: head + nonce + key + 3 x u32 + u16 padding length. */
export const CLIENT_HELLO_FIXED_LENGTH = PACKET_HEAD_LENGTH + NONCE_LENGTH + PUBLIC_KEY_LENGTH + 12 + 2;
/** A version-2 CLIENT_HELLO before its padding: the version-1 fields, then u32 features. */
export const CLIENT_HELLO_V2_FIXED_LENGTH = CLIENT_HELLO_FIXED_LENGTH + 4;
/** SERVER_WELCOME: head + 2 nonces + key + conn id + 3 x u32 + access + reset token. */
export const SERVER_WELCOME_LENGTH =
  PACKET_HEAD_LENGTH + 2 * NONCE_LENGTH + PUBLIC_KEY_LENGTH + CONN_ID_LENGTH + 12 + 1 + RESET_TOKEN_LENGTH;
/** SERVER_TIME: head + the echoed client nonce. */
export const SERVER_TIME_LENGTH = PACKET_HEAD_LENGTH + NONCE_LENGTH;
/** A version-2 SERVER_WELCOME: the version-1 fields, then u32 features. */
export const SERVER_WELCOME_V2_LENGTH = SERVER_WELCOME_LENGTH + 4;
/** PROBE before its zero padding: head + packetNumber (a PING's layout). */
export const PROBE_MIN_LENGTH = PACKET_HEAD_LENGTH + 4;
/** DATA header: head + packetNumber + sendTime + transferId + blockIndex; the payload follows. */
export const DATA_HEADER_LENGTH = PACKET_HEAD_LENGTH + 16;
/** PART header: a DATA header + the offset of its bytes within the block (u32). */
export const PART_HEADER_LENGTH = DATA_HEADER_LENGTH + 4;
/** ACK without ranges or flows: head + 5 x u32 + rangeCount + flowCount. */
export const ACK_MIN_LENGTH = PACKET_HEAD_LENGTH + 20 + 2;
export const ACK_RANGE_LENGTH = 8;
export const ACK_FLOW_LENGTH = 12;
/** CONTROL header: head + packetNumber + messageSeq; the JSON body follows. */
export const CONTROL_HEADER_LENGTH = PACKET_HEAD_LENGTH + 8;
export const PING_LENGTH = PACKET_HEAD_LENGTH + 4;
/** CLOSE without its reason: head + packetNumber + errorCode + reason length. */
export const CLOSE_MIN_LENGTH = PACKET_HEAD_LENGTH + 8;
export const RESET_DATAGRAM_LENGTH = PREFIX_LENGTH + RESET_TOKEN_LENGTH;
/** REJECT datagram: prefix + u16 error code. */
export const REJECT_DATAGRAM_LENGTH = PREFIX_LENGTH + 2;

// --- Datagram sizes --------------------------------------------------------------------------------
/** Largest UDP payload over IPv4. */
export const MAX_DATAGRAM = 65507;
/** Largest datagram for a path of unknown MTU: 1280 (IPv6 minimum MTU) - 40 (IPv6) - 8 (UDP). */
export const INTERNET_MAX_DATAGRAM = 1232;
/** A CLIENT_HELLO datagram is padded to at least this many bytes (anti-amplification). */
export const MIN_HELLO_DATAGRAM = 1200;

/** Length of the DATA datagram carrying `payloadLength` bytes of file data. */
export function dataDatagramLength(payloadLength: number): number {
  return datagramLength(DATA_HEADER_LENGTH + payloadLength);
}

function largestMultipleFitting(step: number, maxDatagram: number): number {
  let size = step * Math.floor(maxDatagram / step);
  while (size > 0 && dataDatagramLength(size) > maxDatagram) size -= step;
  return size;
}

// --- Block sizes -----------------------------------------------------------------------------------
export const MIN_BLOCK_SIZE = 512;
/** Largest multiple of 1024 whose DATA datagram fits MAX_DATAGRAM: 64512 (datagram 64613 bytes). */
export const MAX_BLOCK_SIZE = largestMultipleFitting(1024, MAX_DATAGRAM);
/** Largest multiple of 16 whose DATA datagram fits INTERNET_MAX_DATAGRAM: 1120 (datagram 1221 bytes). */
export const INTERNET_BLOCK_SIZE = largestMultipleFitting(16, INTERNET_MAX_DATAGRAM);
/**
 * Block size for loopback peers (non-loopback peers default to INTERNET_BLOCK_SIZE): the largest.
 * Loopback transfers are CPU-bound and much of the cost is per packet: 56 MiB moved with about 10 %
 * less CPU at 64,512-byte blocks than at 32,768 (measured, noisy; not asserted).
 */
export const DEFAULT_BLOCK_SIZE = MAX_BLOCK_SIZE;

/** Smallest CLIENT_HELLO plaintext whose datagram reaches MIN_HELLO_DATAGRAM (1120). */
export const MIN_HELLO_PLAINTEXT = ((): number => {
  let n = CLIENT_HELLO_FIXED_LENGTH;
  while (datagramLength(n) < MIN_HELLO_DATAGRAM) n++;
  return n;
})();

// --- Files, names, transfers -----------------------------------------------------------------------
export const MAX_PATH_BYTES = 4096;
export const MAX_NAME_BYTES = 255;
export const MAX_FILE_SIZE = 2 ** 50;
/** Block indices are u32 and a complete transfer's cumulativeBlocks (= blockCount) must fit a u32. */
export const MAX_BLOCK_COUNT = 0xffff_ffff;
/** Number of blocks of a file of `size` bytes (an empty file has none). */
export function blockCountFor(size: number, blockSize: number): number {
  return Math.ceil(size / blockSize);
}
/** Length of block `index` of a file of `size` bytes: blockSize, or less for the last block. */
export function blockLength(size: number, blockSize: number, index: number): number {
  return Math.min(blockSize, size - index * blockSize);
}

// --- Acknowledgement, flow and control -------------------------------------------------------------
/** Most additional ranges in one ACK (rangeCount); an ACK holds at most MAX_ACK_RANGES + 1 ranges. */
export const MAX_ACK_RANGES = 32;
/** Most per-transfer flow-control entries in one ACK. */
export const MAX_FLOWS = 4;
/** Largest CONTROL message body (UTF-8 JSON). */
export const MAX_CONTROL_BYTES = 16384;
export const MAX_CLOSE_REASON_BYTES = 256;
/** Most block ranges in a resume `have` list. */
export const MAX_RESUME_RANGES = 256;
/** Largest `message` of an error reply or abort. */
export const MAX_ERROR_MESSAGE_BYTES = 1024;
/** Longest list `cursor` (characters of the base64url alphabet); servers should keep theirs short. */
export const MAX_CURSOR_LENGTH = 1024;

// --- Trees (feature Trees) -------------------------------------------------------------------------
/**
 * Longest walk cursor: room for a path of MAX_PATH_BYTES in base64url plus a little framing, since a
 * walk may have to continue after any path of the tree.
 */
export const MAX_WALK_CURSOR_LENGTH = 6144;
/** A walk descends at most this many directory levels below the directory walked (deeper: ETOOBIG). */
export const MAX_WALK_DEPTH = 256;
/** Most files in one putFiles or getFiles batch. */
export const MAX_BATCH_FILES = 100;
/** Most bytes of file data in one putFiles or getFiles batch. */
export const MAX_BATCH_BYTES = 4 * 1024 * 1024;
/** Permission bits a `mode` may carry (rwx for user, group and others; no set-id or sticky bits). */
export const MODE_MASK = 0o777;

// --- Timers (the transport's defaults; documented in PROTOCOL.md) ----------------------------------
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
/** An ACK is sent at the latest this long after the first unacknowledged ack-eliciting packet. */
export const MAX_ACK_DELAY_MS = 5;
/** An ACK is sent at once after this many ack-eliciting packets. */
export const ACK_ELICITING_THRESHOLD = 2;
/** RFC 9002 kPacketThreshold. */
export const PACKET_THRESHOLD = 3;
/** RFC 9002 kTimeThreshold. */
export const TIME_THRESHOLD = 9 / 8;
/** RFC 9002 kGranularity, milliseconds. */
export const TIMER_GRANULARITY_MS = 1;
/** RTT assumed before the first sample (RFC 9002 kInitialRtt), milliseconds. */
export const INITIAL_RTT_MS = 333;
