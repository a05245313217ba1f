import { type BlockRange, MAX_RESUME_RANGES } from '@ferry/protocol';

/**
 * What a receiver tells a sender it already holds when a transfer resumes: at most MAX_RESUME_RANGES
 * ranges of blocks (the first ones; the sender simply sends again what a longer list would have
 * spared), and the bytes they cover.
 */
export interface ResumeOffer {
  have: Array<[number, number]>;
  bytes: number;
}

/** The resume offer for the blocks `held` of a file of `size` bytes in blocks of `blockSize`. */
export function resumeOffer(held: readonly BlockRange[], blockSize: number, size: number): ResumeOffer {
  const have = held.slice(0, MAX_RESUME_RANGES).map(([start, end]) => [start, end] as [number, number]);
  return { have, bytes: heldBytes(have, blockSize, size) };
}

/** Bytes covered by `ranges` of blocks of `blockSize` in a file of `size` bytes (the last block may be short). */
export function heldBytes(ranges: readonly BlockRange[], blockSize: number, size: number): number {
  let bytes = 0;
  for (const [start, end] of ranges) {
    bytes += Math.max(0, Math.min(size, end * blockSize) - Math.min(size, start * blockSize));
  }
  return bytes;
}
