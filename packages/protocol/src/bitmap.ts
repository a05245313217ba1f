/**
 * A fixed-size set of block indexes, one bit per block, backed by a Uint32Array.
 *
 * Bit `i` lives in word `i >>> 5` at bit `i & 31`. Bits past `blockCount` in the last word are always
 * zero, so whole-word scans need no special case except a final clamp. The serialized form
 * (`toBuffer`) is byte-oriented and endianness-independent: bit `i` is bit `i & 7` of byte `i >>> 3`.
 */
export type BlockRange = [start: number, endExclusive: number];

/** Largest block count a bitmap accepts (256 MiB of bits); larger transfers need larger blocks. */
export const MAX_BITMAP_BLOCKS = 2 ** 31;

const FULL_WORD = 0xffffffff;

export class BlockBitmap {
  /** Number of blocks the bitmap covers (bits 0 .. blockCount-1). */
  readonly blockCount: number;
  readonly #words: Uint32Array;
  #count = 0;
  // Every block below this index is held; advanced lazily by cumulative().
  #cumulative = 0;

  constructor(blockCount: number) {
    if (!Number.isSafeInteger(blockCount) || blockCount < 0 || blockCount > MAX_BITMAP_BLOCKS) {
      throw new RangeError(`block count must be an integer in [0, ${MAX_BITMAP_BLOCKS}], got ${blockCount}`);
    }
    this.blockCount = blockCount;
    this.#words = new Uint32Array(Math.ceil(blockCount / 32));
  }

  /** Number of blocks held. */
  get count(): number {
    return this.#count;
  }

  /** True when every block is held (also true for a zero-block bitmap). */
  get full(): boolean {
    return this.#count === this.blockCount;
  }

  /** Marks block `i` as held; returns true if it was not held before. */
  set(i: number): boolean {
    this.#check(i);
    const w = i >>> 5;
    const bit = 1 << (i & 31);
    const word = this.#words[w]!;
    if ((word & bit) !== 0) return false;
    this.#words[w] = word | bit;
    this.#count++;
    return true;
  }

  has(i: number): boolean {
    if (!Number.isInteger(i) || i < 0 || i >= this.blockCount) return false;
    return (this.#words[i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  /**
   * Marks every block in [start, end) as held; returns how many were newly set.
   * Whole words are filled at once, so this is cheap for long runs.
   */
  setRange(start: number, end: number): number {
    this.#checkRange(start, end);
    let added = 0;
    let i = start;
    while (i < end) {
      const w = i >>> 5;
      const lo = i & 31;
      const hi = Math.min(32, lo + (end - i));
      const mask = hi - lo === 32 ? FULL_WORD : (((1 << (hi - lo)) - 1) << lo) >>> 0;
      const word = this.#words[w]!;
      added += popcount32((mask & ~word) >>> 0);
      this.#words[w] = (word | mask) >>> 0;
      i += hi - lo;
    }
    this.#count += added;
    return added;
  }

  /**
   * First block index that is not held (blockCount when full). Amortized O(1) when blocks arrive
   * mostly in order: the scan resumes from where the previous call stopped and skips full words.
   */
  cumulative(): number {
    this.#cumulative = this.#nextClear(this.#cumulative);
    return this.#cumulative;
  }

  /** Held blocks as sorted, disjoint, non-adjacent [start, endExclusive) ranges. */
  ranges(): BlockRange[] {
    const out: BlockRange[] = [];
    let start = this.#nextSet(0);
    while (start < this.blockCount) {
      const end = this.#nextClear(start);
      out.push([start, end]);
      start = this.#nextSet(end);
    }
    return out;
  }

  /** Missing blocks as sorted, disjoint, non-adjacent [start, endExclusive) ranges. */
  missingRanges(): BlockRange[] {
    const out: BlockRange[] = [];
    let start = this.#nextClear(0);
    while (start < this.blockCount) {
      const end = this.#nextSet(start);
      out.push([start, end]);
      start = this.#nextClear(end);
    }
    return out;
  }

  /** Index of the first held block at or after `from` (blockCount if none). */
  nextHeld(from: number): number {
    return this.#nextSet(Math.max(0, from));
  }

  /** Index of the first missing block at or after `from` (blockCount if none). */
  nextMissing(from: number): number {
    return this.#nextClear(Math.max(0, from));
  }

  clone(): BlockBitmap {
    const copy = new BlockBitmap(this.blockCount);
    copy.#words.set(this.#words);
    copy.#count = this.#count;
    copy.#cumulative = this.#cumulative;
    return copy;
  }

  /**
   * Builds a bitmap from ranges (any order; overlaps allowed). Throws RangeError for a range that is
   * not integral, is reversed, or exceeds `blockCount`.
   */
  static fromRanges(blockCount: number, ranges: Iterable<readonly [number, number]>): BlockBitmap {
    const bitmap = new BlockBitmap(blockCount);
    for (const [start, end] of ranges) bitmap.setRange(start, end);
    return bitmap;
  }

  /** ceil(blockCount / 8) bytes; bit i is bit (i & 7) of byte (i >>> 3). */
  toBuffer(): Buffer {
    const bytes = Math.ceil(this.blockCount / 8);
    const out = Buffer.alloc(this.#words.length * 4);
    for (let w = 0; w < this.#words.length; w++) out.writeUInt32LE(this.#words[w]!, w * 4);
    return out.subarray(0, bytes);
  }

  /**
   * Inverse of toBuffer. Throws RangeError if the length is not ceil(blockCount / 8) or a bit past
   * blockCount is set (a corrupt or foreign buffer).
   */
  static fromBuffer(blockCount: number, buf: Uint8Array): BlockBitmap {
    const bitmap = new BlockBitmap(blockCount);
    const bytes = Math.ceil(blockCount / 8);
    if (buf.length !== bytes) {
      throw new RangeError(`bitmap of ${blockCount} blocks needs ${bytes} bytes, got ${buf.length}`);
    }
    const tailBits = blockCount & 7;
    if (tailBits !== 0 && (buf[bytes - 1]! & ~((1 << tailBits) - 1) & 0xff) !== 0) {
      throw new RangeError('bitmap has bits set past its block count');
    }
    const words = bitmap.#words;
    let count = 0;
    for (let w = 0; w < words.length; w++) {
      const o = w * 4;
      const word =
        ((buf[o] ?? 0) | ((buf[o + 1] ?? 0) << 8) | ((buf[o + 2] ?? 0) << 16) | ((buf[o + 3] ?? 0) << 24)) >>>
        0;
      words[w] = word;
      count += popcount32(word);
    }
    bitmap.#count = count;
    return bitmap;
  }

  #nextSet(from: number): number {
    const n = this.blockCount;
    if (from >= n) return n;
    const words = this.#words;
    let w = from >>> 5;
    let word = (words[w]! & (FULL_WORD << (from & 31))) >>> 0;
    while (word === 0) {
      if (++w >= words.length) return n;
      word = words[w]!;
    }
    return Math.min(n, (w << 5) + ctz32(word));
  }

  #nextClear(from: number): number {
    const n = this.blockCount;
    if (from >= n) return n;
    const words = this.#words;
    let w = from >>> 5;
    // Treat bits below `from` as set so they are skipped.
    let inverted = (~(words[w]! | ~(FULL_WORD << (from & 31))) & FULL_WORD) >>> 0;
    while (inverted === 0) {
      if (++w >= words.length) return n;
      inverted = ~words[w]! >>> 0;
    }
    return Math.min(n, (w << 5) + ctz32(inverted));
  }

  #check(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.blockCount) {
      throw new RangeError(`block index ${i} out of range [0, ${this.blockCount})`);
    }
  }

  #checkRange(start: number, end: number): void {
    if (
      !Number.isInteger(start) ||
      !Number.isInteger(end) ||
      start < 0 ||
      end < start ||
      end > this.blockCount
    ) {
      throw new RangeError(`block range [${start}, ${end}) invalid for ${this.blockCount} blocks`);
    }
  }
}

function ctz32(x: number): number {
  return 31 - Math.clz32(x & -x);
}

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}
