import { blockCountFor } from '@ferry/protocol';
import { FileError, isFileError } from './errors.js';
import type { FileContent, Storage, WholeFile } from './storage.js';

/**
 * Storage.writeFiles and Storage.readFiles in terms of the other operations (an upload per file, a
 * read per file), for a store with no faster way to move small files whole. LocalDiskStorage has its
 * own; another store may simply delegate to these.
 */

const BLOCK_SIZE = 1024 * 1024;

/** Storage.writeFiles through beginUpload / write / commit, one file after another. */
export async function writeFilesThroughUploads(
  storage: Storage,
  files: readonly WholeFile[],
  options: { overwrite: boolean },
): Promise<Array<FileError | undefined>> {
  const results: Array<FileError | undefined> = [];
  for (const file of files) {
    try {
      const upload = await storage.beginUpload(file.path, {
        size: file.data.length,
        blockSize: BLOCK_SIZE,
        overwrite: options.overwrite,
        resume: false,
        identity: `whole file\n${file.path}\n${file.sha256}`,
      });
      try {
        for (let i = 0; i < blockCountFor(file.data.length, BLOCK_SIZE); i++) {
          await upload.write(i, file.data.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
        }
        await upload.commit({
          sha256: file.sha256,
          overwrite: options.overwrite,
          ...(file.mtimeMs !== undefined ? { mtimeMs: file.mtimeMs } : {}),
          ...(file.mode !== undefined ? { mode: file.mode } : {}),
        });
      } finally {
        await upload.abort({ keep: false }); // a no-op once committed
      }
      results.push(undefined);
    } catch (error) {
      if (!isFileError(error)) throw error;
      results.push(error);
    }
  }
  return results;
}

/** Storage.readFiles through openRead / read, one file after another, within `maxBytes` in all. */
export async function readFilesThroughReads(
  storage: Storage,
  paths: readonly string[],
  options: { maxBytes: number },
): Promise<Array<FileContent | FileError>> {
  let left = options.maxBytes;
  const results: Array<FileContent | FileError> = [];
  for (const path of paths) {
    try {
      const file = await storage.openRead(path);
      try {
        if (file.size > left) {
          throw new FileError(
            'ETOOBIG',
            `${JSON.stringify(path)} (${file.size} bytes) does not fit in this batch`,
          );
        }
        left -= file.size;
        const data = Buffer.allocUnsafe(file.size);
        for (let i = 0; i < blockCountFor(file.size, BLOCK_SIZE); i++) {
          const block = await file.read(i, BLOCK_SIZE);
          block.copy(data, i * BLOCK_SIZE);
          file.release(block);
        }
        await file.sha256(); // EFILECHANGED if it changed while read
        results.push({
          data,
          mtimeMs: file.mtimeMs,
          ...(file.mode !== undefined ? { mode: file.mode } : {}),
        });
      } finally {
        await file.close();
      }
    } catch (error) {
      if (!isFileError(error)) throw error;
      results.push(error);
    }
  }
  return results;
}
