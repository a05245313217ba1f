import { randomFillSync } from 'node:crypto';

// One randomFillSync per 64 KiB instead of one randomBytes per IV: the per-call cost of the CSPRNG
// (not the bytes) dominated small-token encryption (see TOOLCHAIN.md).
const POOL_SIZE = 64 * 1024;
// allocUnsafeSlow: the pool must not live in Node's shared Buffer slab next to unrelated data.
const pool = Buffer.allocUnsafeSlow(POOL_SIZE);
let poolOffset = POOL_SIZE;

/** Copies `n` random bytes into `target` at `offset`, without allocating. `n` <= 64 KiB. */
export function fillRandomFromPool(target: Uint8Array, offset: number, n: number): void {
  if (poolOffset + n > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  target.set(pool.subarray(poolOffset, poolOffset + n), offset);
  // Wipe what was handed out so the same bytes can never be drawn twice or linger in the pool.
  pool.fill(0, poolOffset, poolOffset + n);
  poolOffset += n;
}

/**
 * `n` cryptographically random bytes from a refilled pool: fast IVs and nonces. Returns a fresh
 * buffer each call (never a view of the pool). Not for long-term secrets: use `randomBytes` there.
 */
export function randomBytesPooled(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`randomBytesPooled: invalid length ${n}`);
  const out = Buffer.allocUnsafe(n);
  if (n > POOL_SIZE / 4) {
    randomFillSync(out);
    return out;
  }
  fillRandomFromPool(out, 0, n);
  return out;
}
