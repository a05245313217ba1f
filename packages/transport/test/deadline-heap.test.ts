import { describe, expect, it } from 'vitest';
import { DeadlineHeap, type HeapItem } from '../src/core/deadline-heap.js';

interface Item extends HeapItem {
  name: number;
}

const item = (name: number): Item => ({ name, deadline: Number.POSITIVE_INFINITY, heapIndex: -1 });

/** Pops everything due at `now`, in order. */
function drain(heap: DeadlineHeap<Item>, now: number): number[] {
  const out: number[] = [];
  for (let due = heap.peekDue(now); due !== undefined; due = heap.peekDue(now)) {
    out.push(due.name);
    heap.remove(due);
  }
  return out;
}

describe('DeadlineHeap', () => {
  it('gives items back earliest first, only once due', () => {
    const heap = new DeadlineHeap<Item>();
    const items = [5, 3, 9, 1, 7].map(item);
    for (const i of items) heap.schedule(i, i.name);
    expect(heap.earliest).toBe(1);
    expect(heap.peekDue(0.5)).toBeUndefined();
    expect(drain(heap, 6)).toEqual([1, 3, 5]);
    expect(heap.size).toBe(2);
    expect(drain(heap, 100)).toEqual([7, 9]);
    expect(heap.earliest).toBe(Number.POSITIVE_INFINITY);
  });

  it('moves an item when its deadline changes, and drops it for an infinite one', () => {
    const heap = new DeadlineHeap<Item>();
    const [a, b, c] = [1, 2, 3].map(item) as [Item, Item, Item];
    heap.schedule(a, 10);
    heap.schedule(b, 20);
    heap.schedule(c, 30);
    heap.schedule(c, 5);
    expect(heap.earliest).toBe(5);
    heap.schedule(c, 25);
    heap.schedule(a, Number.POSITIVE_INFINITY);
    expect(a.heapIndex).toBe(-1);
    expect(heap.size).toBe(2);
    expect(drain(heap, 100)).toEqual([2, 3]);
  });

  it('stays ordered through many random schedules and removals (against a sorted list)', () => {
    const heap = new DeadlineHeap<Item>();
    const items = Array.from({ length: 200 }, (_, i) => item(i));
    let x = 12345;
    const random = (): number => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x / 2 ** 32;
    };
    for (let step = 0; step < 5_000; step++) {
      const it = items[Math.floor(random() * items.length)]!;
      const r = random();
      if (r < 0.1) heap.remove(it);
      else heap.schedule(it, r < 0.15 ? Number.POSITIVE_INFINITY : Math.floor(random() * 1_000));
    }
    const expected = items
      .filter((i) => i.heapIndex >= 0)
      .sort((a, b) => a.deadline - b.deadline)
      .map((i) => i.deadline);
    const got: number[] = [];
    for (let due = heap.peekDue(Infinity); due !== undefined; due = heap.peekDue(Infinity)) {
      got.push(due.deadline);
      heap.remove(due);
    }
    expect(got).toEqual(expected);
  });
});
