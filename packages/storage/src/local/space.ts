import { FileError } from '../errors.js';

/** Room kept free beyond an upload's own bytes: its sidecar, the sidecar's temp copy, metadata. */
const MARGIN_BYTES = 256 * 1024;

/**
 * Space promised to uploads in progress, per file system (device): an upload is admitted only if the
 * bytes it still has to write, plus what every other upload on that file system still has to write,
 * fit in the free space. Partial files are sparse, so free space shrinks as blocks are written, and
 * so does each upload's claim: admitted uploads can all finish even when they arrive together.
 */
export class SpaceLedger {
  readonly #owed = new Map<number, number>();

  /** Bytes still owed to uploads on `dev`. */
  owed(dev: number): number {
    return this.#owed.get(dev) ?? 0;
  }

  /**
   * Claims `bytes` on `dev`, or throws ENOSPC if they do not fit in `available` beside the other
   * claims. The claim shrinks with `stored()` and ends with `release()` (both idempotent past zero).
   */
  claim(dev: number, bytes: number, available: number, what: string): SpaceClaim {
    const owed = this.owed(dev);
    if (bytes > 0 && bytes + MARGIN_BYTES + owed > available) {
      const others = owed > 0 ? ` (${owed} bytes are promised to transfers in progress)` : '';
      throw new FileError(
        'ENOSPC',
        `not enough space for ${what}: ${bytes} bytes needed, ${Math.max(0, available - owed)} available${others}; free some space and retry`,
      );
    }
    this.#owed.set(dev, owed + bytes);
    let left = bytes;
    const take = (amount: number): void => {
      const n = Math.min(left, Math.max(0, amount));
      if (n === 0) return;
      left -= n;
      const now = this.owed(dev) - n;
      if (now > 0) this.#owed.set(dev, now);
      else this.#owed.delete(dev);
    };
    return { stored: take, release: () => take(left) };
  }
}

export interface SpaceClaim {
  /** Bytes written since: the claim shrinks by as much. */
  stored(bytes: number): void;
  /** The upload ended: the rest of the claim is given back. */
  release(): void;
}
