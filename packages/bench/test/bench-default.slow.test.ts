import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { defaultOutPath, RUNS_DIR } from '../src/cli.js';
import { SSHD_PATH } from '../src/peers/sshd.js';
import { runBenchCli } from './run-cli.js';

const here = dirname(fileURLToPath(import.meta.url));
const packageDir = resolve(here, '..');
const resultsDir = join(packageDir, 'results');
const cli = join(packageDir, 'dist/cli.js');

function git(...args: string[]): string {
  return execFileSync('git', args, { cwd: packageDir, encoding: 'utf8' });
}

/** A headline run (the default mode) on small files, so the test takes seconds, not a minute. */
const SMALL = ['--size', '4MiB', '--stop-and-wait-size', '1MiB', '--runs', '1', '--warmup', '0'];

describe('where results go', () => {
  it('writes runs to a directory git ignores, and only --save-reference to a committed file', () => {
    for (const mode of ['headline', 'full', 'quick', 'fixed-cost'] as const) {
      const path = defaultOutPath({ mode, saveReference: false });
      expect(dirname(path)).toBe(RUNS_DIR);
      // git check-ignore exits 0 for an ignored path (and throws here otherwise).
      expect(git('check-ignore', relative(packageDir, path)).trim()).toBe(relative(packageDir, path));
    }
    const reference = defaultOutPath({ mode: 'full', saveReference: true });
    expect(relative(packageDir, reference)).toBe(join('results', 'reference.json'));
  });
});

describe('pnpm bench (the default headline run)', () => {
  it('runs ferry beside scp and sftp, ends with a verdict, and leaves the results directory clean in git', async () => {
    if (!existsSync(cli))
      throw new Error(`not built: ${cli} — run \`pnpm turbo run build --filter=@ferry/bench...\``);
    const before = git('status', '--porcelain', '--', resultsDir);
    const { code, stdout, stderr } = await runBenchCli(SMALL);
    const resultPath = /^result: (.+)$/m.exec(stdout)?.[1];
    try {
      expect(code, `bench exited ${code}:\n${stderr.slice(-4000)}`).toBe(0);
      expect(resultPath && dirname(resultPath)).toBe(RUNS_DIR);
      expect(git('status', '--porcelain', '--', resultsDir)).toBe(before);

      const lines = stdout.trimEnd().split('\n');
      expect(lines.at(-1)).toMatch(/^verdict: ferry put \S+x \/ get \S+x the seed's 1\.86 MB\/s/);
      const written = JSON.parse(await readFile(resultPath!, 'utf8'));
      expect(written.failures).toEqual([]);
      expect(written.loopback.map((c: { id: string }) => c.id)).toEqual(['default', 'window-1']);
      expect(written.scenarios).toEqual([]);
      expect(written.crypto).toBeUndefined();
      expect(written.peers.map((p: { tool: string }) => p.tool)).toEqual(['scp', 'sftp']);
      if (existsSync(SSHD_PATH)) {
        for (const peer of written.peers) {
          for (const op of ['put', 'get']) {
            expect(peer[op].runs[0]).toMatchObject({ ok: true, bytes: 4 * 1024 * 1024 });
            expect(peer[op].ferryRatio.median).toBeGreaterThan(0);
          }
        }
        expect(lines.at(-1)).toMatch(/scp's speed, \S+x \/ \S+x sftp's/);
      } else {
        expect(stdout).toContain('| scp | put | 4 MiB | not run: sshd not installed |');
      }
    } finally {
      if (resultPath) {
        await rm(resultPath, { force: true });
        await rm(resultPath.replace(/\.json$/, '.svg'), { force: true });
      }
    }
  }, 180_000);

  it('says plainly that the peers did not run when sshd is not installed, and still exits 0', async () => {
    if (!existsSync(cli)) throw new Error(`not built: ${cli}`);
    const { code, stdout, stderr } = await runBenchCli([...SMALL, '--sshd', '/nonexistent/sshd']);
    const resultPath = /^result: (.+)$/m.exec(stdout)?.[1];
    try {
      expect(code, stderr.slice(-4000)).toBe(0);
      expect(stdout).toContain('| scp | put | 4 MiB | not run: sshd not installed |');
      expect(stdout).toContain('| sftp | get | 4 MiB | not run: sshd not installed |');
      expect(stdout.trimEnd().split('\n').at(-1)).toMatch(/; scp and sftp not run \(sshd not installed\)$/);
      expect(stderr).toContain('looked for /nonexistent/sshd');
    } finally {
      if (resultPath) {
        await rm(resultPath, { force: true });
        await rm(resultPath.replace(/\.json$/, '.svg'), { force: true });
      }
    }
  }, 180_000);
});
