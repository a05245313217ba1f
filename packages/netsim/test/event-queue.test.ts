import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventQueue, type ScheduledEvent } from '../src/index.js';

type Op = { kind: 'push'; at: number } | { kind: 'cancel'; pick: number } | { kind: 'pop' };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('push' as const), at: fc.integer({ min: 0, max: 20 }) }),
  fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('pop' as const) }),
);

describe('EventQueue', () => {
  it('pops pending items by (time, push order), skipping cancelled ones, like a sorted list', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const queue = new EventQueue<number>();
        const handles: Array<ScheduledEvent<number>> = [];
        // Model: pending items as [at, id], kept sorted by (at, id).
        let model: Array<[number, number]> = [];
        let id = 0;
        for (const o of ops) {
          if (o.kind === 'push') {
            handles.push(queue.push(o.at, id));
            model.push([o.at, id]);
            model.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
            id++;
          } else if (o.kind === 'cancel' && handles.length > 0) {
            const target = handles[o.pick % handles.length]!;
            const wasPending = model.some(([, v]) => v === target.value);
            expect(queue.cancel(target)).toBe(wasPending);
            model = model.filter(([, v]) => v !== target.value);
          } else if (o.kind === 'pop') {
            const popped = queue.pop();
            const expected = model.shift();
            expect(popped?.value).toBe(expected?.[1]);
          }
          expect(queue.size).toBe(model.length);
          expect(queue.peekTime()).toBe(model[0]?.[0] ?? Number.POSITIVE_INFINITY);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('compacts when most entries are cancelled, keeping order', () => {
    const queue = new EventQueue<number>();
    const handles = Array.from({ length: 10_000 }, (_, i) => queue.push(10_000 - i, i));
    for (let i = 0; i < 10_000; i++) if (i % 10 !== 0) queue.cancel(handles[i]!);
    expect(queue.size).toBe(1000);
    const out: number[] = [];
    for (let e = queue.pop(); e; e = queue.pop()) out.push(e.value);
    expect(out).toEqual(Array.from({ length: 1000 }, (_, k) => 9990 - 10 * k));
  });

  it('rejects NaN times', () => {
    expect(() => new EventQueue<number>().push(Number.NaN, 1)).toThrow(RangeError);
  });
});
