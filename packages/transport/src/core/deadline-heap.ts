/**
 * A binary min-heap of items by deadline, each item knowing its own slot, so that moving one
 * item's deadline is O(log n) and the earliest is O(1). The endpoint keeps one entry per session
 * in it: a wake-up then touches only the sessions whose time has come, not every session.
 */
export interface HeapItem {
  /** When the item is due (Infinity: never; such items are not kept in the heap). */
  deadline: number;
  /** The item's slot in the heap; -1 when it is not in one. Managed by the heap. */
  heapIndex: number;
}

export class DeadlineHeap<T extends HeapItem> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  /** The earliest deadline (Infinity when empty). */
  get earliest(): number {
    return this.items[0]?.deadline ?? Number.POSITIVE_INFINITY;
  }

  /** The item due first, if its deadline is at or before `now`. */
  peekDue(now: number): T | undefined {
    const top = this.items[0];
    return top !== undefined && top.deadline <= now ? top : undefined;
  }

  /** Sets `item`'s deadline, adding or removing it as needed (an infinite deadline is never due). */
  schedule(item: T, deadline: number): void {
    item.deadline = deadline;
    if (!Number.isFinite(deadline)) {
      this.remove(item);
      return;
    }
    if (item.heapIndex < 0) {
      item.heapIndex = this.items.length;
      this.items.push(item);
      this.up(item.heapIndex);
      return;
    }
    this.down(this.up(item.heapIndex));
  }

  remove(item: T): void {
    const i = item.heapIndex;
    if (i < 0) return;
    item.heapIndex = -1;
    const last = this.items.pop()!;
    if (last === item) return;
    this.items[i] = last;
    last.heapIndex = i;
    this.down(this.up(i));
  }

  /** Moves the item at `i` towards the root while it is earlier than its parent; returns its slot. */
  private up(i: number): number {
    const items = this.items;
    const item = items[i]!;
    while (i > 0) {
      const parentIndex = (i - 1) >> 1;
      const parent = items[parentIndex]!;
      if (parent.deadline <= item.deadline) break;
      items[i] = parent;
      parent.heapIndex = i;
      i = parentIndex;
    }
    items[i] = item;
    item.heapIndex = i;
    return i;
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const item = items[i]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && items[right]!.deadline < items[child]!.deadline) child = right;
      const c = items[child]!;
      if (c.deadline >= item.deadline) break;
      items[i] = c;
      c.heapIndex = i;
      i = child;
    }
    items[i] = item;
    item.heapIndex = i;
  }
}
