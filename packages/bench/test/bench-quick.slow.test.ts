import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SSHD_PATH } from '../src/peers/sshd.js';
import { runBenchCli } from './run-cli.js';

const here = dirname(fileURLToPath(import.meta.url));
const cli = resolve(here, '../dist/cli.js');
const bins = [
  resolve(here, '../../client-cli/bin/ferry.js'),
  resolve(here, '../../client-cli/dist/index.js'),
  resolve(here, '../../server-cli/bin/ferry-server.js'),
  resolve(here, '../../server-cli/dist/index.js'),
];

describe('pnpm bench --quick', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-bench-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('moves a file both ways through the real bins, verifies every SHA-256 and writes a well-formed result', async () => {
    const missing = [cli, ...bins].filter((path) => !existsSync(path));
    if (missing.length > 0) {
      throw new Error(
        `not built: ${missing.join(', ')} — run \`pnpm turbo run build --filter=@ferry/bench...\` first`,
      );
    }
    const out = join(dir, 'result.json');
    const { code, stdout, stderr } = await runBenchCli(['--quick', '--json', '--out', out, '--tmp', dir]);
    expect(code, `bench exited ${code}:\n${stderr.slice(-4000)}`).toBe(0);

    const printed = JSON.parse(stdout);
    const written = JSON.parse(await readFile(out, 'utf8'));
    expect(printed).toEqual(written);
    expect(written.schema).toBe('ferry-bench/1');
    expect(written.failures).toEqual([]);
    expect(written.machine.node).toBe(process.version);
    expect(written.machine.cpuCount).toBeGreaterThan(0);

    const def = written.loopback.find((c: { id: string }) => c.id === 'default');
    for (const op of ['put', 'get']) {
      expect(def[op].ok).toBe(true);
      expect(def[op].runs).toHaveLength(1);
      const runRecord = def[op].runs[0];
      expect(runRecord.ok).toBe(true);
      expect(runRecord.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(runRecord.bytes).toBe(8 * 1024 * 1024);
      expect(def[op].mbps.median).toBeGreaterThan(0);
      expect(runRecord.client.peakRssBytes).toBeGreaterThan(1e6);
      expect(runRecord.server.peakRssBytes).toBeGreaterThan(1e6);
    }
    expect(written.loopback.map((c: { id: string }) => c.id)).toEqual(
      expect.arrayContaining(['default', 'window-1', 'block-1200']),
    );
    expect(written.peers.map((p: { tool: string }) => p.tool)).toEqual(['scp', 'sftp']);
    for (const peer of written.peers) {
      if (!existsSync(SSHD_PATH)) {
        expect(peer.notRun).toBe('sshd not installed');
        continue;
      }
      for (const op of ['put', 'get'])
        expect(peer[op].runs[0]).toMatchObject({ ok: true, bytes: 8 * 1024 * 1024 });
    }
    expect(written.scenarios).toHaveLength(1);
    expect(written.scenarios[0].put.fraction.median).toBeGreaterThan(0);
    expect(written.crypto.rows.length).toBeGreaterThanOrEqual(3);

    const svg = await readFile(out.replace(/\.json$/, '.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(stderr).toContain('| configuration |');
    expect(stderr.trimEnd().split('\n').at(-1)).toMatch(
      /^verdict \(--quick smoke test, not a measurement\): ferry put/,
    );
  }, 300_000);
});
