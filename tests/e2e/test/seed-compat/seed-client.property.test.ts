import { createCipheriv, createHash, randomInt } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sandbox, serveSandbox, waitUntil } from '../../src/harness.js';
import { runSeedClient, seedClientMissing } from './seed-client.js';

const missing = seedClientMissing();
if (missing !== undefined) console.warn(`seed client property test skipped: ${missing}`);
const skipNote = missing === undefined ? '' : ` [skipped: ${missing}]`;

const FILES = 256;
const MAX_SIZE = 100 * 1024;
/** Each file plants pieces at 8 residues mod 2,048, so the 256 files cover all 2,048 of them. */
const RESIDUES_PER_FILE = 2048 / FILES;
const PIECES = ['###-###', '###-', '###-#', '###-##', '###-###0', '###-###-###', '#'.repeat(9)].map((p) =>
  Buffer.from(p, 'latin1'),
);

/** Deterministic bytes for a seed (AES-CTR of zeros), so a failing file can be made again. */
function bytesFor(label: string, size: number): Buffer {
  const key = createHash('sha256').update(`seed-compat property ${label}`).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size));
}

/** File `i`: random bytes with marker pieces at every offset ≡ its residues (mod 2,048). */
function plantedFile(seed: number, i: number): Buffer {
  const size = bytesFor(`${seed} ${i} size`, 4).readUInt32BE(0) % (MAX_SIZE + 1);
  const data = bytesFor(`${seed} ${i} data`, size);
  for (let r = 0; r < RESIDUES_PER_FILE; r++) {
    const residue = i * RESIDUES_PER_FILE + r;
    const piece = PIECES[(i + r) % PIECES.length]!;
    for (let offset = residue; offset < size; offset += 2048) {
      piece.copy(data, offset, 0, Math.min(piece.length, size - offset));
    }
  }
  return data;
}

describe.skipIf(missing !== undefined)(`seed-compatible listener, property${skipNote}`, () => {
  it('moves 256 random binary files (0-100 KiB, markers planted at every offset mod 2,048) both ways with 0 corrupted', async () => {
    const seed = randomInt(1_000_000);
    const box = await sandbox();
    const server = await serveSandbox(box, { args: ['--seed-compat', '0', '--seed-compat-rw'] });
    let port = 0;
    await waitUntil('the seed-compatible listener', () => {
      const line = server.lines.find((l) => /seed-compatible listener on \S+ port \d+/.test(l));
      port = line === undefined ? 0 : Number(/port (\d+)/.exec(line)![1]);
      return port > 0;
    });
    const work = join(box.work, 'client');
    await mkdir(work);
    const files = Array.from({ length: FILES }, (_, i) => plantedFile(seed, i));
    for (const [i, data] of files.entries()) {
      await writeFile(join(box.root, `f-${i}.bin`), data);
      await writeFile(join(work, `up-${i}.bin`), data);
    }
    const commands = files.flatMap((_, i) => [`get f-${i}.bin`, `put up-${i}.bin`]);
    const started = Date.now();
    // A chunk the client cannot split makes it ask again and again: give up on that file early.
    const result = await runSeedClient(port, commands, {
      cwd: work,
      args: ['--max-resend-requests', '5'],
      commandTimeoutS: 10,
      timeoutMs: 150_000,
    });
    const seconds = (Date.now() - started) / 1000;
    const corrupted: string[] = [];
    for (const [i, data] of files.entries()) {
      const got = await readFile(join(work, `received_f-${i}.bin`)).catch(() => undefined);
      const put = await readFile(join(box.root, `up-${i}.bin`)).catch(() => undefined);
      if (got === undefined || !got.equals(data)) corrupted.push(`get f-${i}.bin (${data.length} bytes)`);
      if (put === undefined || !put.equals(data)) corrupted.push(`put up-${i}.bin (${data.length} bytes)`);
    }
    const bytes = files.reduce((sum, f) => sum + f.length, 0);
    expect(
      corrupted,
      `seed ${seed}: ${corrupted.length} of ${2 * FILES} transfers corrupted (${bytes} bytes each way, ${seconds.toFixed(1)} s)`,
    ).toEqual([]);
    expect(result.results).toHaveLength(2 * FILES);
    expect(result.results.filter((r) => r.error !== undefined)).toEqual([]);
    await server.stop();
  }, 180_000);
});
