/** A scheduled item. Opaque to callers except for its time and value; pass it to cancel(). */
export interface ScheduledEvent<T> {
  readonly atMs: number;
  readonly value: T;
}

interface Entry<T> extends ScheduledEvent<T> {
  readonly seq: number;
  /** 0 pending, 1 cancelled, 2 popped. */
  state: number;
}

const PENDING = 0;
const CANCELLED = 1;
const DONE = 2;

function before<T>(a: Entry<T>, b: Entry<T>): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
}

/**
 * Binary min-heap of timed items. Items due at the same time come out in the order they were
 * pushed (a sequence number breaks ties), so every run of a simulation is reproducible. Cancel is
 * O(1) (the entry is skipped when it reaches the top); the heap compacts itself when cancelled
 * entries dominate, so a timer rescheduled on every packet does not grow it without bound.
 */
export class EventQueue<T> {
  private heap: Entry<T>[] = [];
  private nextSeq = 0;
  private cancelled = 0;

  /** Pending (not cancelled) items. */
  get size(): number {
    return this.heap.length - this.cancelled;
  }

  push(atMs: number, value: T): ScheduledEvent<T> {
    if (Number.isNaN(atMs)) throw new RangeError('EventQueue.push: atMs is NaN');
    const entry: Entry<T> = { atMs, value, seq: this.nextSeq++, state: PENDING };
    this.heap.push(entry);
    this.siftUp(this.heap.length - 1);
    return entry;
  }

  /** Returns false if the item already ran or was cancelled. */
  cancel(event: ScheduledEvent<T>): boolean {
    const entry = event as Entry<T>;
    if (entry.state !== PENDING) return false;
    entry.state = CANCELLED;
    this.cancelled++;
    if (this.cancelled > 1024 && this.cancelled * 2 > this.heap.length) this.compact();
    return true;
  }

  /** The earliest pending item, left in place. */
  peek(): ScheduledEvent<T> | undefined {
    this.dropCancelledTop();
    return this.heap[0];
  }

  /** Time of the earliest pending item, or Infinity. */
  peekTime(): number {
    this.dropCancelledTop();
    return this.heap[0]?.atMs ?? Number.POSITIVE_INFINITY;
  }

  pop(): ScheduledEvent<T> | undefined {
    this.dropCancelledTop();
    const top = this.removeTop();
    if (top) top.state = DONE;
    return top;
  }

  clear(): void {
    for (const entry of this.heap) entry.state = CANCELLED;
    this.heap = [];
    this.cancelled = 0;
  }

  private dropCancelledTop(): void {
    while (this.heap.length > 0 && this.heap[0]!.state === CANCELLED) {
      this.removeTop();
      this.cancelled--;
    }
  }

  private removeTop(): Entry<T> | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top !== undefined && last !== undefined && heap.length > 0) {
      heap[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private compact(): void {
    this.heap = this.heap.filter((e) => e.state === PENDING);
    this.cancelled = 0;
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  private siftUp(i: number): void {
    const heap = this.heap;
    const entry = heap[i]!;
    while (i > 0) {
      const parentIndex = (i - 1) >> 1;
      const parent = heap[parentIndex]!;
      if (!before(entry, parent)) break;
      heap[i] = parent;
      i = parentIndex;
    }
    heap[i] = entry;
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const entry = heap[i]!;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      if (right < n && before(heap[right]!, heap[left]!)) child = right;
      if (!before(heap[child]!, entry)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = entry;
  }
}
