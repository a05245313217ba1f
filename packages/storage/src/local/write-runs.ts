import { toFileError } from '../errors.js';
import { fileDataBuffer, SpareBuffers } from './block-io.js';

/** A run of buffered contiguous blocks is written as soon as it reaches this size. */
const RUN_BYTES = 1024 * 1024;
/**
 * Runs of blocks below this size are copied into one buffer before they are written and hashed:
 * measured in a receiver's profile, writing 56 MiB of 1120-byte blocks as writevs of ~900 buffers
 * took 104 ms of its main thread, against 17 ms for 64 KiB blocks; one copy per run costs far less.
 */
const COALESCE_BELOW = 16 * 1024;
/** A run buffer holds a full run (it is written once it reaches RUN_BYTES) plus one more block. */
const RUN_BUFFER_BYTES = RUN_BYTES + COALESCE_BELOW;
/** Run buffers kept for reuse (runs are written about one at a time). */
const SPARE_RUN_BUFFERS = 2;

/** Where runs go, and what happens once one is written. */
export interface RunTarget {
  /** Writes `parts`, one after another, at byte `offset` (all of them, or throws). */
  write(parts: Buffer[], offset: number): Promise<void>;
  /** What a failed write of blocks start..end-1 was doing, for its error message. */
  describe(start: number, end: number): string;
  /**
   * Blocks start..end-1 (`bytes` bytes in `parts`, at `offset`) are written. Called before their
   * writers learn it, so they are held by then; `parts` may be reused once it returns.
   */
  stored(start: number, end: number, offset: number, parts: readonly Buffer[], bytes: number): void;
}

/**
 * Contiguous blocks waiting to be written with one positional write. `done` settles once they are
 * written and stored (or the write failed); runs merged into this one settle with it.
 */
interface WriteRun {
  start: number;
  end: number;
  blocks: Buffer[];
  bytes: number;
  done: Promise<void>;
  settle: (error?: unknown) => void;
  merged: WriteRun[];
}

/**
 * Write coalescing: a block is buffered, contiguous buffered blocks form a run, and each run is written
 * with one positional write — when it reaches 1 MiB, or on the next turn of the event loop, with one
 * write in progress at a time so that runs grow under load. A block's add() resolves once its run is
 * written and stored; a failed write rejects the adds of every block in the run, none of them stored.
 */
export class WriteRuns {
  /** Blocks buffered or being written, each with its run (for duplicates). */
  readonly #pending = new Map<number, WriteRun>();
  /** Buffered runs, by first block and by one past their last block. */
  readonly #runsByStart = new Map<number, WriteRun>();
  readonly #runsByEnd = new Map<number, WriteRun>();
  /** Run buffers ready for reuse (small blocks are joined into them). */
  readonly #runBuffers = new SpareBuffers(RUN_BUFFER_BYTES, SPARE_RUN_BUFFERS);
  /** Writes of runs in progress; each settles (never rejects) when its write has ended. */
  readonly #writing = new Set<Promise<void>>();
  #flushScheduled: NodeJS.Immediate | undefined;

  constructor(
    private readonly blockSize: number,
    private readonly target: RunTarget,
  ) {}

  /** Buffers block `index`; a block already buffered or being written shares that write's outcome. */
  add(index: number, data: Buffer): Promise<void> {
    const pending = this.#pending.get(index);
    if (pending !== undefined) return pending.done;
    const run = this.#buffer(index, data);
    if (run.bytes >= RUN_BYTES) this.#startRun(run);
    else this.#scheduleFlush();
    return run.done;
  }

  /**
   * Writes out every buffered run now and waits for those writes and the ones in progress (not for
   * runs of blocks arriving meanwhile, so a persist under a steady stream of blocks still ends).
   */
  async drain(): Promise<void> {
    if (this.#flushScheduled !== undefined) {
      clearImmediate(this.#flushScheduled);
      this.#flushScheduled = undefined;
    }
    this.#flush();
    if (this.#writing.size > 0) await Promise.all([...this.#writing]);
  }

  /** Adds a block to the run it extends (merging runs it joins), or starts a run. */
  #buffer(index: number, data: Buffer): WriteRun {
    const before = this.#runsByEnd.get(index);
    const after = this.#runsByStart.get(index + 1);
    let run: WriteRun;
    if (before !== undefined) {
      run = before;
      this.#runsByEnd.delete(index);
      run.blocks.push(data);
      run.bytes += data.length;
      run.end = index + 1;
      if (after !== undefined) {
        this.#runsByStart.delete(after.start);
        for (const block of after.blocks) run.blocks.push(block);
        run.bytes += after.bytes;
        run.end = after.end;
        run.merged.push(after);
        after.blocks = [];
      }
      this.#runsByEnd.set(run.end, run);
    } else if (after !== undefined) {
      run = after;
      this.#runsByStart.delete(index + 1);
      run.blocks.unshift(data);
      run.bytes += data.length;
      run.start = index;
      this.#runsByStart.set(index, run);
    } else {
      run = newRun(index, data);
      this.#runsByStart.set(index, run);
      this.#runsByEnd.set(run.end, run);
    }
    this.#pending.set(index, run);
    return run;
  }

  // One write at a time unless a run is full: while it runs, arriving blocks form longer runs.
  #scheduleFlush(): void {
    if (this.#flushScheduled !== undefined || this.#writing.size > 0) return;
    this.#flushScheduled = setImmediate(() => {
      this.#flushScheduled = undefined;
      this.#flush();
    });
  }

  #flush(): void {
    for (const run of [...this.#runsByStart.values()]) this.#startRun(run);
  }

  #startRun(run: WriteRun): void {
    this.#runsByStart.delete(run.start);
    this.#runsByEnd.delete(run.end);
    const blocks = run.blocks;
    run.blocks = [];
    const writing: Promise<void> = this.#writeRun(run, blocks).finally(() => {
      this.#writing.delete(writing);
      if (this.#writing.size === 0 && this.#runsByStart.size > 0) this.#flush();
    });
    this.#writing.add(writing);
  }

  // Never rejects: the outcome goes to the run's writers.
  // Large blocks go out in one gathering write (writev), not copied; small ones are first copied into
  // one run buffer, which is written and hashed in one call each.
  async #writeRun(run: WriteRun, blocks: Buffer[]): Promise<void> {
    const offset = run.start * this.blockSize;
    const runBuffer =
      blocks.length > 1 && this.blockSize < COALESCE_BELOW ? this.#runBufferFor(blocks) : undefined;
    const parts = runBuffer === undefined ? blocks : [joinInto(runBuffer, blocks)];
    let failure: unknown;
    try {
      await this.target.write(parts, offset);
    } catch (error) {
      failure = describedFailure(error, this.target.describe(run.start, run.end));
    }
    for (let i = run.start; i < run.end; i++) this.#pending.delete(i);
    if (failure === undefined) {
      try {
        let bytes = 0;
        for (const part of parts) bytes += part.length;
        this.target.stored(run.start, run.end, offset, parts, bytes);
      } catch (unexpected) {
        failure = unexpected; // a bug: still report it to the writers rather than leave them waiting
      }
    }
    // The target has hashed or copied what it needs: the run buffer can take the next run.
    if (runBuffer !== undefined) this.#runBuffers.give(runBuffer);
    run.settle(failure);
  }

  /** A buffer that holds `blocks` one after another: a reused run buffer when they fit. */
  #runBufferFor(blocks: Buffer[]): Buffer {
    let total = 0;
    for (const block of blocks) total += block.length;
    return total <= RUN_BUFFER_BYTES ? this.#runBuffers.take() : fileDataBuffer(total);
  }
}

/** The system error of a failed write as a FileError saying what was being written; a bug as it is. */
function describedFailure(error: unknown, what: string): unknown {
  try {
    return toFileError(error, what);
  } catch (unexpected) {
    return unexpected;
  }
}

/** `blocks` copied one after another to the start of `memory`; a view of the bytes they fill. */
function joinInto(memory: Buffer, blocks: Buffer[]): Buffer {
  let at = 0;
  for (const block of blocks) {
    memory.set(block, at);
    at += block.length;
  }
  return memory.subarray(0, at);
}

/** What is left of `buffers` after a (short) write of `written` bytes: the tail, without copying. */
export function unwritten(buffers: Buffer[], written: number): Buffer[] {
  let i = 0;
  let skip = written;
  while (i < buffers.length && skip >= buffers[i]!.length) skip -= buffers[i++]!.length;
  if (i === buffers.length) return [];
  const rest = buffers.slice(i);
  if (skip > 0) rest[0] = rest[0]!.subarray(skip);
  return rest;
}

function newRun(index: number, data: Buffer): WriteRun {
  let resolveDone!: () => void;
  let rejectDone!: (error: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  const run: WriteRun = {
    start: index,
    end: index + 1,
    blocks: [data],
    bytes: data.length,
    done,
    settle: (error) => {
      if (error === undefined) resolveDone();
      else rejectDone(error);
      for (const other of run.merged) other.settle(error);
    },
    merged: [],
  };
  return run;
}
