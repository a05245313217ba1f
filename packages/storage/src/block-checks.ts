import {
  type BlockBitmap,
  blockCountFor,
  blockLength,
  MAX_BITMAP_BLOCKS,
  MAX_FILE_SIZE,
} from '@ferry/protocol';
import { FileError } from './errors.js';

/**
 * The checks every store makes of what a transfer asks of its files and uploads (block numbers and
 * lengths, sizes, digests), so that a bad request fails with the same EINVAL or ETOOBIG on any store.
 * `name` is how messages show the file (the client's path).
 */

/** How an upload's file is cut into blocks. */
export interface BlockLayout {
  readonly size: number;
  readonly blockSize: number;
  readonly blockCount: number;
}

/** Checks an upload's size and block size: EINVAL, or ETOOBIG past the protocol's limits. */
export function checkUploadSize(size: number, blockSize: number, name: string): void {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new FileError('EINVAL', `file size must be a non-negative integer, got ${size}`);
  }
  if (size > MAX_FILE_SIZE) {
    throw new FileError('ETOOBIG', `${name}: ${size} bytes exceeds the limit of ${MAX_FILE_SIZE}`);
  }
  if (!Number.isSafeInteger(blockSize) || blockSize <= 0) {
    throw new FileError('EINVAL', `block size must be a positive integer, got ${blockSize}`);
  }
  const blockCount = blockCountFor(size, blockSize);
  if (blockCount > MAX_BITMAP_BLOCKS) {
    throw new FileError(
      'ETOOBIG',
      `${name}: ${blockCount} blocks of ${blockSize} bytes is too many; use larger blocks`,
    );
  }
}

/** EINVAL unless `index` is one of `blockCount` blocks. */
function checkBlockIndex(index: number, blockCount: number, name: string): void {
  if (!Number.isInteger(index) || index < 0 || index >= blockCount) {
    throw new FileError('EINVAL', `block ${index} is out of range: ${name} has ${blockCount} blocks`);
  }
}

/**
 * Where block `index` of a file of `size` bytes read in blocks of `blockSize` lies: EINVAL for a block
 * size that is not a positive integer or an index past the end.
 */
export function blockToRead(
  size: number,
  blockSize: number,
  index: number,
  name: string,
): { offset: number; length: number } {
  if (!Number.isInteger(blockSize) || blockSize <= 0) {
    throw new FileError('EINVAL', `block size must be a positive integer, got ${blockSize}`);
  }
  checkBlockIndex(index, blockCountFor(size, blockSize), name);
  const offset = index * blockSize;
  return { offset, length: Math.min(blockSize, size - offset) };
}

/** EINVAL unless `data` is exactly block `index` of the upload (the last block may be short). */
export function checkBlockToWrite(upload: BlockLayout, index: number, data: Buffer, name: string): void {
  checkBlockIndex(index, upload.blockCount, name);
  const expected = blockLength(upload.size, upload.blockSize, index);
  if (data.length !== expected) {
    throw new FileError('EINVAL', `block ${index} of ${name} must be ${expected} bytes, got ${data.length}`);
  }
}

/** The SHA-256 a commit was given, in lower case; EINVAL unless it is 64 hex digits. */
export function committedDigest(sha256: unknown): string {
  const digest = typeof sha256 === 'string' ? sha256.toLowerCase() : '';
  if (!/^[0-9a-f]{64}$/.test(digest)) {
    throw new FileError('EINVAL', 'commit needs the SHA-256 of the file as 64 hex digits');
  }
  return digest;
}

/** EINVAL unless every block was received: a commit needs the whole file. */
export function requireEveryBlock(received: BlockBitmap, name: string): void {
  if (!received.full) {
    throw new FileError(
      'EINVAL',
      `cannot commit ${name}: ${received.count} of ${received.blockCount} blocks received`,
    );
  }
}

/** EBUSY: another upload in this process is writing the same partial. */
export function busyError(name: string): FileError {
  return new FileError('EBUSY', `another transfer is already writing ${name}; try again when it has ended`);
}
