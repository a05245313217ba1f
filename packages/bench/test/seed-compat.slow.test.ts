import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedCompatUnavailable } from '../src/seed-compat.js';
import { runBenchCli } from './run-cli.js';

describe("pnpm bench --seed-compat: the seed's client against both servers", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-bench-seed-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('moves the file both ways through ferry-server --seed-compat and the reimplemented seed server, every SHA-256 verified', async () => {
    const out = join(dir, 'result.json');
    const { code, stderr } = await runBenchCli([
      '--seed-compat',
      '--skip-peers',
      '--skip-algorithms',
      '--runs',
      '1',
      '--warmup',
      '0',
      '--size',
      '2MiB',
      '--out',
      out,
      '--tmp',
      dir,
    ]);
    expect(code, `bench exited ${code}:\n${stderr.slice(-4000)}`).toBe(0);
    const result = JSON.parse(await readFile(out, 'utf8'));
    expect(result.failures).toEqual([]);
    const missing = seedCompatUnavailable();
    if (missing !== undefined) {
      // Without python3 and cryptography the row says why, and the run still succeeds.
      expect(result.seedCompat.notRun).toBe(missing);
      return;
    }
    for (const server of ['reference', 'ferry']) {
      for (const op of ['put', 'get']) {
        const d = result.seedCompat[server][op];
        expect(d.ok, `${server} ${op}`).toBe(true);
        expect(d.runs[0].transferSeconds).toBeGreaterThan(0);
      }
    }
    expect(result.seedCompat.ratio.put.n).toBe(1);
    expect(result.seedCompat.ratio.get.n).toBe(1);
  }, 180_000);
});
