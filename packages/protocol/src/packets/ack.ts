import * as z from 'zod';
import {
  ACK_FLOW_LENGTH,
  ACK_MIN_LENGTH,
  ACK_RANGE_LENGTH,
  MAX_ACK_RANGES,
  MAX_FLOWS,
  PACKET_HEAD_LENGTH,
  PacketType,
  Space,
} from '../constants.js';
import { type DecodeResult, failure } from '../errors.js';
import { isU32, readU32, writeU32 } from '../wire.js';
import { invalidField, startPacket } from './head.js';

/** Per-transfer flow control carried in an ACK. */
export interface FlowEntry {
  readonly transferId: number;
  /** Every block with an index below this is held by the receiver. */
  readonly cumulativeBlocks: number;
  /** The sender may send blocks with index < blockLimit. Never below cumulativeBlocks. */
  readonly blockLimit: number;
}

/** An acknowledged packet-number range, both ends included: [smallest, largest]. */
export type AckRange = readonly [smallest: number, largest: number];

/** ACK (space SESSION), in the form the transport works with. */
export interface AckFields {
  readonly packetNumber: number;
  /** sendTime of the packet whose number is the largest acknowledged. */
  readonly tsEcho: number;
  /** Microseconds the receiver held the largest acknowledged packet before sending this ACK. */
  readonly ackDelay: number;
  /**
   * Acknowledged ranges, largest first, 1..MAX_ACK_RANGES + 1 of them. Consecutive ranges are
   * separated by at least one unacknowledged packet number (adjacent ranges must be merged).
   */
  readonly ranges: readonly AckRange[];
  /** 0..MAX_FLOWS entries, distinct transferIds. */
  readonly flows: readonly FlowEntry[];
}

export interface AckPacket extends AckFields {
  readonly type: 'ack';
}

const u32 = z.uint32();

export const FlowEntrySchema = z.lazy(() =>
  z
    .strictObject({ transferId: u32, cumulativeBlocks: u32, blockLimit: u32 })
    .refine((f) => f.cumulativeBlocks <= f.blockLimit, 'cumulativeBlocks must not exceed blockLimit'),
);

const FlowsSchema = z.lazy(() =>
  z
    .array(FlowEntrySchema)
    .max(MAX_FLOWS)
    .refine((flows) => new Set(flows.map((f) => f.transferId)).size === flows.length, 'duplicate transferId'),
);

/** ACK as the transport sees it: ranges as [smallest, largest] pairs, largest first. */
export const AckSchema = z.lazy(() =>
  z.strictObject({
    packetNumber: u32,
    tsEcho: u32,
    ackDelay: u32,
    ranges: z
      .array(z.tuple([u32, u32]).refine(([s, l]) => s <= l, 'smallest must not exceed largest'))
      .min(1)
      .max(MAX_ACK_RANGES + 1)
      .refine(
        (ranges) => ranges.every((r, i) => i === 0 || r[1] + 2 <= ranges[i - 1]![0]),
        'ranges must be descending with a gap of at least one packet',
      ),
    flows: FlowsSchema,
  }),
);

/** ACK exactly as it is on the wire (RFC 9000 §19.3 gap/length encoding). */
export const AckWireSchema = z.lazy(() =>
  z
    .strictObject({
      packetNumber: u32,
      tsEcho: u32,
      ackDelay: u32,
      largestAcked: u32,
      firstRange: u32,
      gaps: z.array(z.strictObject({ gap: u32, length: u32 })).max(MAX_ACK_RANGES),
      flows: FlowsSchema,
    })
    .refine((a) => {
      let smallest = a.largestAcked - a.firstRange;
      if (smallest < 0) return false;
      for (const { gap, length } of a.gaps) {
        const largest = smallest - gap - 2;
        smallest = largest - length;
        if (largest < 0 || smallest < 0) return false;
      }
      return true;
    }, 'ranges underflow below packet number 0'),
);

function checkFlows(flows: readonly FlowEntry[]): void {
  if (!Array.isArray(flows) || flows.length > MAX_FLOWS)
    invalidField(`flows must hold 0..${MAX_FLOWS} entries`);
  for (let i = 0; i < flows.length; i++) {
    const f = flows[i]!;
    if (!isU32(f.transferId) || !isU32(f.cumulativeBlocks) || !isU32(f.blockLimit)) {
      invalidField('flow fields must be u32');
    }
    if (f.cumulativeBlocks > f.blockLimit) invalidField('cumulativeBlocks exceeds blockLimit');
    for (let j = 0; j < i; j++)
      if (flows[j]!.transferId === f.transferId) invalidField('duplicate transferId');
  }
}

function checkRanges(ranges: readonly AckRange[]): void {
  if (!Array.isArray(ranges) || ranges.length < 1 || ranges.length > MAX_ACK_RANGES + 1) {
    invalidField(`ranges must hold 1..${MAX_ACK_RANGES + 1} entries`);
  }
  let previousSmallest = 0;
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i]!;
    if (!Array.isArray(r) || r.length !== 2) invalidField('a range is a [smallest, largest] pair');
    const [smallest, largest] = r;
    if (!isU32(smallest) || !isU32(largest) || smallest > largest) invalidField('bad range');
    if (i > 0 && largest + 2 > previousSmallest) invalidField('ranges must be descending and not adjacent');
    previousSmallest = smallest;
  }
}

export function encodeAck(connId: bigint, fields: AckFields): Buffer {
  const { ranges, flows } = fields;
  if (!isU32(fields.packetNumber) || !isU32(fields.tsEcho) || !isU32(fields.ackDelay)) {
    invalidField('packetNumber, tsEcho and ackDelay must be u32');
  }
  checkRanges(ranges);
  checkFlows(flows);
  const length = ACK_MIN_LENGTH + (ranges.length - 1) * ACK_RANGE_LENGTH + flows.length * ACK_FLOW_LENGTH;
  const out = startPacket(length, Space.Session, PacketType.Ack, connId);
  let o = PACKET_HEAD_LENGTH;
  writeU32(out, o, fields.packetNumber);
  writeU32(out, o + 4, fields.tsEcho);
  writeU32(out, o + 8, fields.ackDelay);
  const [firstSmallest, largestAcked] = ranges[0]!;
  writeU32(out, o + 12, largestAcked);
  writeU32(out, o + 16, largestAcked - firstSmallest);
  out[o + 20] = ranges.length - 1;
  o += 21;
  for (let i = 1; i < ranges.length; i++) {
    const [smallest, largest] = ranges[i]!;
    writeU32(out, o, ranges[i - 1]![0] - largest - 2);
    writeU32(out, o + 4, largest - smallest);
    o += ACK_RANGE_LENGTH;
  }
  out[o++] = flows.length;
  for (const f of flows) {
    writeU32(out, o, f.transferId);
    writeU32(out, o + 4, f.cumulativeBlocks);
    writeU32(out, o + 8, f.blockLimit);
    o += ACK_FLOW_LENGTH;
  }
  return out;
}

export function decodeAckBody(p: Uint8Array): DecodeResult<AckPacket> {
  if (p.length < ACK_MIN_LENGTH) return failure('truncated', 'ack');
  let o = PACKET_HEAD_LENGTH;
  const packetNumber = readU32(p, o);
  const tsEcho = readU32(p, o + 4);
  const ackDelay = readU32(p, o + 8);
  const largestAcked = readU32(p, o + 12);
  const firstRange = readU32(p, o + 16);
  const rangeCount = p[o + 20]!;
  o += 21;
  if (rangeCount > MAX_ACK_RANGES) return failure('too-many-ranges', `${rangeCount} ranges`);
  // ranges + flowCount byte must fit before anything is allocated for them
  if (p.length < o + rangeCount * ACK_RANGE_LENGTH + 1) return failure('truncated', 'ack ranges');
  let smallest = largestAcked - firstRange;
  if (smallest < 0) return failure('range-underflow');
  const ranges: AckRange[] = [[smallest, largestAcked]];
  for (let i = 0; i < rangeCount; i++) {
    const largest = smallest - readU32(p, o) - 2;
    smallest = largest - readU32(p, o + 4);
    if (largest < 0 || smallest < 0) return failure('range-underflow');
    ranges.push([smallest, largest]);
    o += ACK_RANGE_LENGTH;
  }
  const flowCount = p[o++]!;
  if (flowCount > MAX_FLOWS) return failure('too-many-flows', `${flowCount} flows`);
  const end = o + flowCount * ACK_FLOW_LENGTH;
  if (p.length < end) return failure('truncated', 'ack flows');
  if (p.length > end) return failure('trailing-bytes', 'ack');
  const flows: FlowEntry[] = [];
  for (let i = 0; i < flowCount; i++) {
    const transferId = readU32(p, o);
    const cumulativeBlocks = readU32(p, o + 4);
    const blockLimit = readU32(p, o + 8);
    if (cumulativeBlocks > blockLimit) return failure('invalid-field', 'cumulativeBlocks exceeds blockLimit');
    for (const f of flows) if (f.transferId === transferId) return failure('duplicate-flow');
    flows.push({ transferId, cumulativeBlocks, blockLimit });
    o += ACK_FLOW_LENGTH;
  }
  return { ok: true, value: { type: 'ack', packetNumber, tsEcho, ackDelay, ranges, flows } };
}
