/** Why an incoming datagram was discarded. */
export type DropReason =
  | 'bad-mac'
  | 'malformed'
  | 'replay'
  | 'unknown-connection'
  | 'unknown-transfer'
  | 'flow-control'
  | 'stale-handshake'
  | 'version'
  | 'rate-limited';

export const DROP_REASONS: readonly DropReason[] = [
  'bad-mac',
  'malformed',
  'replay',
  'unknown-connection',
  'unknown-transfer',
  'flow-control',
  'stale-handshake',
  'version',
  'rate-limited',
];

export function emptyDrops(): Record<DropReason, number> {
  const drops = {} as Record<DropReason, number>;
  for (const r of DROP_REASONS) drops[r] = 0;
  return drops;
}

/** Per-session counters, readable at any time and serialisable with toJSON(). */
export class ConnectionStats {
  datagramsSent = 0;
  datagramsReceived = 0;
  bytesSent = 0;
  bytesReceived = 0;
  blocksSent = 0;
  blocksRetransmitted = 0;
  /** PART packets sent: blocks sent in pieces after the path shrank under their transfer. */
  partsSent = 0;
  blocksReceived = 0;
  duplicateBlocks = 0;
  acksSent = 0;
  packetsLost = 0;
  retransmits = 0;
  rtoCount = 0;
  readonly drops = emptyDrops();

  toJSON(): Record<string, unknown> {
    return {
      datagramsSent: this.datagramsSent,
      datagramsReceived: this.datagramsReceived,
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      blocksSent: this.blocksSent,
      blocksRetransmitted: this.blocksRetransmitted,
      partsSent: this.partsSent,
      blocksReceived: this.blocksReceived,
      duplicateBlocks: this.duplicateBlocks,
      acksSent: this.acksSent,
      packetsLost: this.packetsLost,
      retransmits: this.retransmits,
      rtoCount: this.rtoCount,
      drops: { ...this.drops },
    };
  }
}
