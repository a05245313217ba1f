/** Median and spread of a set of runs, as hyperfine reports them. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  mean: number;
  n: number;
}

export function summarize(values: readonly number[]): Summary | undefined {
  const xs = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const n = xs.length;
  if (n === 0) return undefined;
  const mid = Math.floor(n / 2);
  const median = n % 2 === 1 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
  return { median, min: xs[0]!, max: xs[n - 1]!, mean: xs.reduce((a, b) => a + b, 0) / n, n };
}

/** Summary of a field of each item, skipping items that lack it. */
export function summarizeBy<T>(
  items: readonly T[],
  pick: (item: T) => number | undefined,
): Summary | undefined {
  const values: number[] = [];
  for (const item of items) {
    const v = pick(item);
    if (v !== undefined) values.push(v);
  }
  return summarize(values);
}
