import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlockBitmap } from '../src/bitmap.js';

// Reference model: a plain Set of indexes.
function rangesOf(count: number, held: Set<number>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let i = 0;
  while (i < count) {
    if (!held.has(i)) {
      i++;
      continue;
    }
    const start = i;
    while (i < count && held.has(i)) i++;
    out.push([start, i]);
  }
  return out;
}

function missingOf(count: number, held: Set<number>): Array<[number, number]> {
  const all = new Set<number>();
  for (let i = 0; i < count; i++) if (!held.has(i)) all.add(i);
  return rangesOf(count, all);
}

const bitmapCase = fc
  .integer({ min: 0, max: 300 })
  .chain((count) =>
    fc.tuple(
      fc.constant(count),
      count === 0 ? fc.constant([]) : fc.array(fc.integer({ min: 0, max: count - 1 }), { maxLength: 400 }),
    ),
  );

describe('BlockBitmap', () => {
  it('set reports whether a block was newly set, and count/has/full follow', () => {
    const bitmap = new BlockBitmap(3);
    expect(bitmap.full).toBe(false);
    expect(bitmap.set(1)).toBe(true);
    expect(bitmap.set(1)).toBe(false);
    expect(bitmap.has(1)).toBe(true);
    expect(bitmap.has(0)).toBe(false);
    expect(bitmap.has(3)).toBe(false);
    expect(bitmap.count).toBe(1);
    bitmap.set(0);
    bitmap.set(2);
    expect(bitmap.full).toBe(true);
    expect(new BlockBitmap(0).full).toBe(true);
  });

  it('rejects indexes and ranges outside the bitmap', () => {
    const bitmap = new BlockBitmap(10);
    expect(() => bitmap.set(10)).toThrow(RangeError);
    expect(() => bitmap.set(-1)).toThrow(RangeError);
    expect(() => bitmap.set(1.5)).toThrow(RangeError);
    expect(() => BlockBitmap.fromRanges(10, [[5, 11]])).toThrow(RangeError);
    expect(() => BlockBitmap.fromRanges(10, [[6, 5]])).toThrow(RangeError);
    expect(() => new BlockBitmap(-1)).toThrow(RangeError);
  });

  it('matches a Set model: count, has, ranges, missingRanges, cumulative', () => {
    fc.assert(
      fc.property(bitmapCase, ([count, indexes]) => {
        const bitmap = new BlockBitmap(count);
        const model = new Set<number>();
        for (const i of indexes) {
          expect(bitmap.set(i)).toBe(!model.has(i));
          model.add(i);
        }
        expect(bitmap.count).toBe(model.size);
        expect(bitmap.full).toBe(model.size === count);
        for (let i = 0; i < count; i++) expect(bitmap.has(i)).toBe(model.has(i));
        expect(bitmap.ranges()).toEqual(rangesOf(count, model));
        expect(bitmap.missingRanges()).toEqual(missingOf(count, model));
        let first = 0;
        while (model.has(first)) first++;
        expect(bitmap.cumulative()).toBe(Math.min(first, count));
      }),
    );
  });

  it('round-trips through ranges/fromRanges and toBuffer/fromBuffer', () => {
    fc.assert(
      fc.property(bitmapCase, ([count, indexes]) => {
        const bitmap = new BlockBitmap(count);
        for (const i of indexes) bitmap.set(i);
        const viaRanges = BlockBitmap.fromRanges(count, bitmap.ranges());
        expect(viaRanges.ranges()).toEqual(bitmap.ranges());
        expect(viaRanges.count).toBe(bitmap.count);
        const buf = bitmap.toBuffer();
        expect(buf.length).toBe(Math.ceil(count / 8));
        const viaBuffer = BlockBitmap.fromBuffer(count, buf);
        expect(viaBuffer.ranges()).toEqual(bitmap.ranges());
        expect(viaBuffer.count).toBe(bitmap.count);
      }),
    );
  });

  it('fromRanges accepts overlapping, unordered ranges and counts each block once', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }).chain((count) =>
          fc.tuple(
            fc.constant(count),
            fc.array(
              fc
                .tuple(fc.integer({ min: 0, max: count }), fc.integer({ min: 0, max: count }))
                .map(([a, b]): [number, number] => [Math.min(a, b), Math.max(a, b)]),
              { maxLength: 20 },
            ),
          ),
        ),
        ([count, ranges]) => {
          const model = new Set<number>();
          for (const [s, e] of ranges) for (let i = s; i < e; i++) model.add(i);
          const bitmap = BlockBitmap.fromRanges(count, ranges);
          expect(bitmap.count).toBe(model.size);
          expect(bitmap.ranges()).toEqual(rangesOf(count, model));
        },
      ),
    );
  });

  it('cumulative advances as blocks arrive in order and stops at the first gap', () => {
    const bitmap = new BlockBitmap(100);
    for (let i = 0; i < 100; i++) {
      if (i === 40) continue;
      bitmap.set(i);
      expect(bitmap.cumulative()).toBe(i < 40 ? i + 1 : 40);
    }
    bitmap.set(40);
    expect(bitmap.cumulative()).toBe(100);
  });

  it('cumulative stays cheap for a large bitmap filled in order', () => {
    const count = 1 << 20;
    const bitmap = new BlockBitmap(count);
    const started = process.cpuUsage();
    for (let i = 0; i < count; i++) {
      bitmap.set(i);
      if (bitmap.cumulative() !== i + 1) throw new Error(`cumulative wrong at ${i}`);
    }
    // Linear overall; a quadratic scan would take minutes. CPU time, not wall time: a busy machine
    // stretches the latter, not the former.
    const { user, system } = process.cpuUsage(started);
    expect((user + system) / 1000).toBeLessThan(5000);
    expect(bitmap.full).toBe(true);
  });

  it('fromBuffer refuses a wrong length or bits past the block count', () => {
    expect(() => BlockBitmap.fromBuffer(10, Buffer.alloc(1))).toThrow(RangeError);
    expect(() => BlockBitmap.fromBuffer(10, Buffer.from([0, 0b100]))).toThrow(RangeError);
    expect(BlockBitmap.fromBuffer(10, Buffer.from([0xff, 0b11])).full).toBe(true);
  });

  it('serializes bit i as bit (i & 7) of byte (i >> 3), independent of platform', () => {
    const bitmap = BlockBitmap.fromRanges(20, [
      [0, 1],
      [9, 10],
      [19, 20],
    ]);
    expect([...bitmap.toBuffer()]).toEqual([0b1, 0b10, 0b1000]);
  });

  it('setRange fills whole words and reports newly set blocks', () => {
    const bitmap = new BlockBitmap(200);
    expect(bitmap.setRange(3, 150)).toBe(147);
    expect(bitmap.setRange(0, 200)).toBe(53);
    expect(bitmap.full).toBe(true);
    expect(bitmap.ranges()).toEqual([[0, 200]]);
  });
});
