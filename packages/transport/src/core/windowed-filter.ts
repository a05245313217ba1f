/**
 * Running maximum over a sliding window of "time" (rounds or milliseconds), kept as a monotonic deque:
 * O(1) amortised per update, memory bounded by the number of distinct samples inside the window.
 */
export class WindowedMax {
  private readonly times: number[] = [];
  private readonly values: number[] = [];

  constructor(private readonly window: number) {}

  update(value: number, time: number): void {
    while (this.values.length > 0 && this.values[this.values.length - 1]! <= value) {
      this.values.pop();
      this.times.pop();
    }
    this.values.push(value);
    this.times.push(time);
    this.expire(time);
  }

  expire(time: number): void {
    while (this.times.length > 1 && time - this.times[0]! > this.window) {
      this.times.shift();
      this.values.shift();
    }
  }

  get(): number {
    return this.values[0] ?? 0;
  }

  reset(): void {
    this.times.length = 0;
    this.values.length = 0;
  }
}
