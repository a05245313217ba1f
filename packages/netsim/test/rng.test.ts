import { describe, expect, it } from 'vitest';
import { Rng } from '../src/index.js';

function draws(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => rng.nextUint32());
}

describe('Rng', () => {
  it('gives the same sequence for the same seed and different ones for different seeds', () => {
    expect(draws(new Rng(42), 100)).toEqual(draws(new Rng(42), 100));
    expect(draws(new Rng('replay-me'), 100)).toEqual(draws(new Rng('replay-me'), 100));
    expect(draws(new Rng(42), 100)).not.toEqual(draws(new Rng(43), 100));
    // A number seed and its string spelling are different seeds.
    expect(draws(new Rng(42), 10)).not.toEqual(draws(new Rng('42'), 10));
  });

  it('is pinned: the first outputs of seed 1 never change across versions', () => {
    // Changing these breaks the replay of every seed printed by an earlier failing run.
    expect(draws(new Rng(1), 4)).toEqual([1024469901, 441318944, 1497178071, 3469359614]);
  });

  it('next() stays in [0, 1) with a mean near 1/2', () => {
    const rng = new Rng(7);
    let sum = 0;
    let outside = 0;
    for (let i = 0; i < 100_000; i++) {
      const x = rng.next();
      if (!(x >= 0 && x < 1)) outside++;
      sum += x;
    }
    expect(outside).toBe(0);
    expect(Math.abs(sum / 100_000 - 0.5)).toBeLessThan(0.01);
  });

  it('int(n) covers [0, n) uniformly and rejects bad n', () => {
    const rng = new Rng(3);
    const counts = new Array<number>(6).fill(0);
    for (let i = 0; i < 60_000; i++) {
      const k = rng.int(6);
      counts[k] = (counts[k] ?? 0) + 1;
    }
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
    expect(rng.int(1)).toBe(0);
    expect(() => rng.int(0)).toThrow(RangeError);
    expect(() => rng.int(1.5)).toThrow(RangeError);
  });

  it('jitter(a) is bounded by +-a, centred, and bell-shaped', () => {
    const rng = new Rng(11);
    let sum = 0;
    let inner = 0;
    let largest = 0;
    for (let i = 0; i < 50_000; i++) {
      const j = rng.jitter(10);
      largest = Math.max(largest, Math.abs(j));
      sum += j;
      if (Math.abs(j) < 5) inner++;
    }
    expect(largest).toBeLessThanOrEqual(10);
    expect(Math.abs(sum / 50_000)).toBeLessThan(0.1);
    // Uniform would put 50 % within half the amplitude; Irwin-Hall(4) puts ~83 % there.
    expect(inner / 50_000).toBeGreaterThan(0.75);
    expect(rng.jitter(0)).toBe(0);
  });

  it('chance(p) never draws for p <= 0 or p >= 1', () => {
    const a = new Rng(5);
    const b = new Rng(5);
    expect(a.chance(0)).toBe(false);
    expect(a.chance(1)).toBe(true);
    expect(a.nextUint32()).toBe(b.nextUint32());
  });

  it('fork() gives an independent, reproducible stream', () => {
    const parent1 = new Rng(9);
    const parent2 = new Rng(9);
    const child1 = parent1.fork();
    const child2 = parent2.fork();
    expect(draws(child1, 20)).toEqual(draws(child2, 20));
    expect(draws(parent1, 20)).toEqual(draws(parent2, 20));
    expect(draws(new Rng(9).fork(), 20)).not.toEqual(draws(new Rng(9), 20));
  });

  it('fill() writes deterministic bytes of any length', () => {
    const a = new Rng(2).fill(Buffer.alloc(13));
    const b = new Rng(2).fill(Buffer.alloc(13));
    expect(a.equals(b)).toBe(true);
    expect(a.some((x) => x !== 0)).toBe(true);
  });

  it('normal() has the requested mean and spread', () => {
    const rng = new Rng(4);
    const n = 50_000;
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < n; i++) {
      const x = rng.normal(3, 2);
      sum += x;
      sq += x * x;
    }
    const mean = sum / n;
    expect(Math.abs(mean - 3)).toBeLessThan(0.05);
    expect(Math.abs(Math.sqrt(sq / n - mean * mean) - 2)).toBeLessThan(0.05);
  });
});
