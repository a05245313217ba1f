import * as z from 'zod';
import { MAX_DATAGRAM, PACKET_HEAD_LENGTH, PacketType, PROBE_MIN_LENGTH, Space } from '../constants.js';
import { type DecodeResult, failure } from '../errors.js';
import { isU32, readU32, writeU32 } from '../wire.js';
import { invalidField, startPacket } from './head.js';

/**
 * PROBE (space SESSION): a PING padded with zero bytes to a chosen size, to learn whether datagrams
 * of that size reach the peer (path MTU discovery, PROTOCOL.md §18.1). Ack-eliciting, never sent
 * again when lost, and sent only in a session with feature PathMtu.
 */
export interface ProbeFields {
  readonly packetNumber: number;
  /** Zero bytes after the packet number. */
  readonly padding: number;
}

export interface ProbePacket extends ProbeFields {
  readonly type: 'probe';
}

export const ProbeSchema = z.lazy(() =>
  z.strictObject({ packetNumber: z.uint32(), padding: z.int().min(0).max(MAX_DATAGRAM) }),
);

export function encodeProbe(connId: bigint, fields: ProbeFields): Buffer {
  if (!isU32(fields.packetNumber)) invalidField('packetNumber must be a u32');
  if (!Number.isInteger(fields.padding) || fields.padding < 0 || fields.padding > MAX_DATAGRAM)
    invalidField('padding out of range');
  const out = startPacket(PROBE_MIN_LENGTH + fields.padding, Space.Session, PacketType.Probe, connId);
  writeU32(out, PACKET_HEAD_LENGTH, fields.packetNumber);
  out.fill(0, PROBE_MIN_LENGTH);
  return out;
}

export function decodeProbeBody(p: Uint8Array): DecodeResult<ProbePacket> {
  if (p.length < PROBE_MIN_LENGTH) return failure('truncated', 'probe');
  for (let i = PROBE_MIN_LENGTH; i < p.length; i++) if (p[i] !== 0) return failure('bad-padding', 'probe');
  return {
    ok: true,
    value: {
      type: 'probe',
      packetNumber: readU32(p, PACKET_HEAD_LENGTH),
      padding: p.length - PROBE_MIN_LENGTH,
    },
  };
}
