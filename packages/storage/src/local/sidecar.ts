import { constants } from 'node:fs';
import { BlockBitmap, blockCountFor } from '@ferry/protocol';
import type { Dir } from './beneath.js';
import type { FileSystem } from './fs.js';

/**
 * The state sidecar of a partial upload: `<partial>.state`, JSON, saying which blocks of the
 * partial's data file are durably written. Written to `<partial>.state.tmp`, fsynced and renamed
 * over the old one, so a reader sees a whole old or a whole new state, never half of one.
 */
export const STATE_SUFFIX = '.state';
export const TMP_SUFFIX = '.tmp';
const STATE_VERSION = 1;

export interface StateFile {
  version: number;
  identity: string;
  finalName: string;
  size: number;
  blockSize: number;
  /** The held-blocks bitmap (BlockBitmap.toBuffer()), base64. */
  bitmap: string;
  createdAt: number;
  updatedAt: number;
}

/**
 * Reads and checks a sidecar; throws if it is missing, unreadable or not one of ours. A local user may
 * have planted anything at its name: it is opened without following a link and without blocking (a
 * FIFO), and read only if it is a regular file of this user, linked once, of at most `maxBytes`.
 */
export async function readState(fs: FileSystem, path: string, maxBytes: number): Promise<StateFile> {
  const handle = await fs.open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  let text: string;
  try {
    const stats = await handle.stat();
    const mine = process.geteuid === undefined || stats.uid === process.geteuid();
    if (!stats.isFile() || stats.nlink !== 1 || !mine || stats.size > maxBytes) {
      throw new Error('not a partial state file of this server');
    }
    text = await handle.readFile('utf8');
  } finally {
    await handle.close().catch(() => {});
  }
  const value = JSON.parse(text) as Partial<StateFile>;
  if (
    value.version !== STATE_VERSION ||
    typeof value.identity !== 'string' ||
    typeof value.bitmap !== 'string' ||
    !Number.isSafeInteger(value.size) ||
    !Number.isSafeInteger(value.blockSize) ||
    (value.blockSize ?? 0) <= 0 ||
    typeof value.createdAt !== 'number' ||
    typeof value.updatedAt !== 'number'
  ) {
    throw new Error('unrecognized partial state file');
  }
  return value as StateFile;
}

/** The largest sidecar of a file of `size` bytes in blocks of at least `minBlockSize` (bitmap in base64). */
export function maxStateBytes(size: number, minBlockSize: number): number {
  return Math.ceil(Math.ceil(size / minBlockSize) / 8 / 3) * 4 + 64 * 1024;
}

/**
 * Replaces the sidecar of the partial `dataName` in `dir` atomically and durably. Its temp file is
 * made afresh (never written through a link or a file planted at that name), readable by this user
 * only: it names the key and the path.
 */
export async function writeState(
  fs: FileSystem,
  dir: Dir,
  dataName: string,
  state: StateFile,
): Promise<void> {
  const path = dir.at(dataName + STATE_SUFFIX);
  const tmp = path + TMP_SUFFIX;
  await fs.unlink(tmp).catch((error: unknown) => {
    if ((error as { code?: unknown }).code !== 'ENOENT') throw error;
  });
  const handle = await fs.open(
    tmp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    await handle.writeFile(`${JSON.stringify({ ...state, version: STATE_VERSION })}\n`, 'utf8');
    // Its time is the upload's last activity, which the expiry sweep reads without opening it.
    await handle.utimes(state.updatedAt / 1000, state.updatedAt / 1000);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, path);
}

/** Maps held blocks of one block size onto another: a new block is held if all its bytes were. */
export function convertBitmap(
  old: BlockBitmap,
  oldBlockSize: number,
  size: number,
  blockSize: number,
): BlockBitmap {
  const count = blockCountFor(size, blockSize);
  const out = new BlockBitmap(count);
  for (const [start, end] of old.ranges()) {
    const startByte = start * oldBlockSize;
    const endByte = Math.min(size, end * oldBlockSize);
    const first = Math.ceil(startByte / blockSize);
    const last = endByte === size ? count : Math.floor(endByte / blockSize);
    if (last > first) out.setRange(first, last);
  }
  return out;
}
