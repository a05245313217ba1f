import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The memory bound on a real socket, in its own process: 200 sessions each start a get of a 64 MiB
 * file and fall silent (test/perf/silent-gets.mjs). The server's RSS must peak at 400 MB at most and
 * be back within 50 MB of its baseline within 30 s of the sessions timing out. The C allocator is told
 * to map blocks on their own (GLIBC_TUNABLES), so that memory freed is memory returned, and the
 * server collects garbage once the sessions have ended (an idle process may not for a long while):
 * what is measured is what the transport (and the test's allocating source) still hold.
 */
const script = fileURLToPath(new URL('./perf/silent-gets.mjs', import.meta.url));

describe('memory of a server whose clients fall silent', () => {
  it('200 stalled gets of 64 MiB: peak RSS <= 400 MB, back to baseline + 50 MB within 30 s', async () => {
    const child = spawn(
      process.execPath,
      [script, '--sessions', '200', '--size-mib', '64', '--idle-s', '5', '--after-s', '30'].concat([
        '--expect-peak-mb',
        '400',
        '--expect-after-mb',
        '50',
        '--gc-at-end',
      ]),
      {
        env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=32768' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    const result = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as {
      baselineMB: number;
      peakMB: number;
      lastMB: number;
      settledBelowBaselinePlusAfterInS: number | null;
    };
    expect(code, `${stdout}\n${stderr}`).toBe(0);
    expect(result.peakMB).toBeLessThanOrEqual(400);
    expect(result.settledBelowBaselinePlusAfterInS).not.toBeNull();
    expect(result.lastMB).toBeLessThanOrEqual(result.baselineMB + 50);
  }, 180_000);
});
