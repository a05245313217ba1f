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

/** Reads and checks a sidecar; throws if it is missing, unreadable or not one of ours. */
export async function readState(fs: FileSystem, path: string): Promise<StateFile> {
  const text = await fs.readFile(path, 'utf8');
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

/** Replaces the sidecar of the partial `dataName` in `dir` atomically and durably. */
export async function writeState(
  fs: FileSystem,
  dir: Dir,
  dataName: string,
  state: StateFile,
): Promise<void> {
  const path = dir.at(dataName + STATE_SUFFIX);
  const tmp = path + TMP_SUFFIX;
  const handle = await fs.open(
    tmp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
    0o666,
  );
  try {
    await handle.writeFile(`${JSON.stringify({ ...state, version: STATE_VERSION })}\n`, 'utf8');
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
