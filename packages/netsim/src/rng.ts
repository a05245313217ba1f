/** A seed: any number or string; equal seeds give equal sequences on every platform and run. */
export type Seed = number | string;

const TWO_POW_32 = 4294967296;

/** cyrb128: spreads a string over four 32-bit words, so short or similar seeds give unrelated states. */
function hashSeed(text: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

/**
 * Seeded pseudo-random generator (xoshiro128**): fast, 2^128 - 1 period, and identical output for
 * identical seeds, so every simulated run can be replayed from its seed. Not for cryptography.
 */
export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  constructor(seed: Seed = 0) {
    const [a, b, c, d] = hashSeed(`${typeof seed}:${String(seed)}`);
    this.setState(a, b, c, d);
  }

  private setState(a: number, b: number, c: number, d: number): void {
    this.s0 = a >>> 0;
    this.s1 = b >>> 0;
    this.s2 = c >>> 0;
    this.s3 = d >>> 0;
    // The all-zero state is the generator's one fixed point.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 0x9e3779b9;
    // Discard a few outputs so related seeds diverge before first use.
    for (let i = 0; i < 8; i++) this.nextUint32();
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0;
    this.s1 >>>= 0;
    this.s2 >>>= 0;
    this.s3 >>>= 0;
    return result;
  }

  /** Uniform float in [0, 1), with 32 bits of randomness. */
  next(): number {
    return this.nextUint32() / TWO_POW_32;
  }

  /** Uniform integer in [0, n); n must be a positive integer <= 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > TWO_POW_32) {
      throw new RangeError(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    }
    // Rejection of the top partial bucket keeps the modulo unbiased for every n.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** Uniform float in [min, max). */
  uniform(min: number, max: number): number {
    return min + (max - min) * this.next();
  }

  /** True with probability p (p <= 0: never, p >= 1: always, without drawing). */
  chance(p: number): boolean {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return this.next() < p;
  }

  /**
   * Bell-shaped jitter in [-amplitude, +amplitude], mean 0 (the scaled sum of four uniforms,
   * Irwin-Hall): normal-looking, but bounded, so a link's delay never leaves its configured range.
   */
  jitter(amplitude: number): number {
    if (amplitude <= 0) return 0;
    const sum = this.next() + this.next() + this.next() + this.next(); // [0, 4), mean 2
    return ((sum - 2) / 2) * amplitude;
  }

  /** Normal deviate (Box-Muller); unbounded: prefer jitter() for delays. */
  normal(mean = 0, stddev = 1): number {
    const u = 1 - this.next(); // (0, 1]: log stays finite
    const v = this.next();
    return mean + stddev * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fills a buffer with pseudo-random bytes (deterministic test payloads). */
  fill<T extends Uint8Array>(target: T): T {
    let i = 0;
    for (; i + 4 <= target.length; i += 4) {
      const x = this.nextUint32();
      target[i] = x & 0xff;
      target[i + 1] = (x >>> 8) & 0xff;
      target[i + 2] = (x >>> 16) & 0xff;
      target[i + 3] = x >>> 24;
    }
    if (i < target.length) {
      let x = this.nextUint32();
      for (; i < target.length; i++, x >>>= 8) target[i] = x & 0xff;
    }
    return target;
  }

  /**
   * An independent generator derived from this one (advancing it), so that each consumer of
   * randomness gets its own stream and adding draws to one does not shift the others.
   */
  fork(): Rng {
    const child = Object.create(Rng.prototype) as Rng;
    child.setState(this.nextUint32(), this.nextUint32(), this.nextUint32(), this.nextUint32());
    return child;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
