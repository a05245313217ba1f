/**
 * Packet numbers received from the peer: duplicate/replay detection and the ranges reported in ACKs.
 * Ranges are kept ascending and disjoint; once more than MAX_TRACKED_RANGES exist the oldest are folded
 * into a floor below which every packet number counts as already seen (a late original is then dropped
 * unacknowledged, and its content is simply retransmitted by the sender under a new number).
 */
export const MAX_TRACKED_RANGES = 64;

export class ReceivedPackets {
  /** Ascending, disjoint, inclusive [smallest, largest] ranges. */
  private readonly ranges: Array<[number, number]> = [];
  private floor = 0;
  largest = -1;
  largestReceivedAt = 0;
  largestSendTime = 0;

  /** True when `pn` was seen before (or is below the tracked floor). */
  isDuplicate(pn: number): boolean {
    if (pn < this.floor) return true;
    const r = this.ranges;
    // Fast path: most packets are at or above the newest range.
    for (let i = r.length - 1; i >= 0; i--) {
      const range = r[i]!;
      if (pn > range[1]) return false;
      if (pn >= range[0]) return true;
    }
    return false;
  }

  /** Records a new packet number; returns false for a duplicate. */
  record(pn: number, now: number, sendTime: number): boolean {
    if (this.isDuplicate(pn)) return false;
    if (pn > this.largest) {
      this.largest = pn;
      this.largestReceivedAt = now;
      this.largestSendTime = sendTime;
    }
    const r = this.ranges;
    let i = r.length - 1;
    while (i >= 0 && r[i]![0] > pn) i--;
    // r[i] is the last range starting at or below pn (or none).
    const prev = i >= 0 ? r[i]! : undefined;
    const next = r[i + 1];
    if (prev && prev[1] + 1 === pn) {
      prev[1] = pn;
      if (next && next[0] === pn + 1) {
        prev[1] = next[1];
        r.splice(i + 1, 1);
      }
    } else if (next && next[0] === pn + 1) {
      next[0] = pn;
    } else {
      r.splice(i + 1, 0, [pn, pn]);
    }
    if (r.length > MAX_TRACKED_RANGES) {
      const dropped = r.shift()!;
      this.floor = dropped[1] + 1;
    }
    return true;
  }

  /** The newest `max` ranges, largest first, as [smallest, largest]. */
  ackRanges(max: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = this.ranges.length - 1; i >= 0 && out.length < max; i--) {
      const range = this.ranges[i]!;
      out.push([range[0], range[1]]);
    }
    return out;
  }
}
