/** File helpers for end-to-end tests, free of side effects (no hooks, no config). */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';

/** Writes `size` random bytes to `path`; returns their SHA-256 (hex). */
export async function randomFile(path: string, size: number): Promise<string> {
  const data = randomBytes(size);
  await writeFile(path, data);
  return createHash('sha256').update(data).digest('hex');
}

/** SHA-256 (hex) of a file, streamed. */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', reject);
  });
}
