import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseBenchArgs, SEED_FILE_BYTES } from '../src/args.js';
import { niceAxis } from '../src/chart.js';
import { dataDatagramBytes, proxyArgsFor, queueBytesFor, SCENARIOS } from '../src/scenarios.js';
import { summarize } from '../src/summary.js';
import { describeTree, LARGE_FILES_TREE, SMALL_FILES_TREE, treeManifest, writeTree } from '../src/trees.js';

const cli = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/cli.js');

describe('bench arguments', () => {
  it('runs only the headline by default: the seed file beside scp and sftp, 5 runs, no scenario, crypto or memory', () => {
    const headline = parseBenchArgs([]);
    expect(headline.mode).toBe('headline');
    expect(headline.size).toBe(SEED_FILE_BYTES);
    expect(headline.runs).toBe(5);
    expect(headline.peers).toEqual(['scp', 'sftp']);
    expect(headline.scenarios).toEqual([]);
    expect(headline.skipCrypto).toBe(true);
    expect(headline.memory).toBe(false);
    expect(headline.saveReference).toBe(false);
  });

  it('--full runs the whole matrix with rsync too; --quick shrinks all of it', () => {
    const full = parseBenchArgs(['--full']);
    expect(full.mode).toBe('full');
    expect(full.size).toBe(SEED_FILE_BYTES);
    expect(full.scenarios).toHaveLength(SCENARIOS.length);
    expect(full.peers).toEqual(['scp', 'sftp', 'rsync']);
    expect(full.skipCrypto).toBe(false);
    expect(full.memory).toBe(true);
    expect(full.busy).toBe(true);
    expect(parseBenchArgs(['--full', '--skip-memory', '--skip-busy', '--skip-peers'])).toMatchObject({
      memory: false,
      busy: false,
      peers: [],
    });
    expect(parseBenchArgs(['--busy']).busy).toBe(true);
    expect(parseBenchArgs([]).busy).toBe(false);
    const quick = parseBenchArgs(['--quick']);
    expect(quick.size).toBe(8 * 1024 * 1024);
    expect(quick.runs).toBe(1);
    expect(quick.scenarios).toHaveLength(1);
    expect(quick.peers).toEqual(['scp', 'sftp']);
    expect(quick.skipCrypto).toBe(false);
  });

  it("runs the seed's client comparison with --full or --seed-compat, not by default", () => {
    expect(parseBenchArgs([]).seedCompat).toBe(false);
    expect(parseBenchArgs(['--quick']).seedCompat).toBe(false);
    expect(parseBenchArgs(['--full']).seedCompat).toBe(true);
    expect(parseBenchArgs(['--full', '--skip-seed-compat']).seedCompat).toBe(false);
    expect(parseBenchArgs(['--seed-compat']).seedCompat).toBe(true);
  });

  it('refuses contradictory modes and a reference from a smoke test', () => {
    expect(() => parseBenchArgs(['--quick', '--full'])).toThrow(/exclude each other/);
    expect(() => parseBenchArgs(['--quick', '--save-reference'])).toThrow(/no reference/);
    expect(() => parseBenchArgs(['--save-reference', '--out', 'x.json'])).toThrow(/--out/);
    expect(parseBenchArgs(['--full', '--save-reference']).saveReference).toBe(true);
  });

  it('takes sizes with units, repeated scenarios, and refuses unknown ones', () => {
    const o = parseBenchArgs([
      '--size',
      '16MiB',
      '--scenario',
      '100mbit-50ms',
      '--scenario',
      '10mbit-200ms-2pct',
    ]);
    expect(o.size).toBe(16 * 1024 * 1024);
    expect(o.scenarios).toEqual(['100mbit-50ms', '10mbit-200ms-2pct']);
    expect(() => parseBenchArgs(['--scenario', 'moon-link'])).toThrow(/unknown scenario/);
    expect(() => parseBenchArgs(['--runs', '0'])).toThrow(/--runs/);
  });
});

describe('bench --storage', () => {
  it('s3 compares ferry on RGW with the SDK and ferry on disk, 3 runs by default; other stores are refused', () => {
    const options = parseBenchArgs(['--storage', 's3']);
    expect(options).toMatchObject({ storage: 's3', size: SEED_FILE_BYTES, runs: 3 });
    expect(parseBenchArgs([]).storage).toBe('local');
    expect(parseBenchArgs(['--storage', 's3', '--runs', '7']).runs).toBe(7);
    expect(() => parseBenchArgs(['--storage', 'gcs'])).toThrow(/--storage must be local or s3/);
  });
});

describe('bench arithmetic', () => {
  it('summarizes runs as median and spread', () => {
    expect(summarize([3, 1, 2])).toMatchObject({ median: 2, min: 1, max: 3, n: 3 });
    expect(summarize([4, 1, 2, 3])?.median).toBe(2.5);
    expect(summarize([])).toBeUndefined();
  });

  it('sizes an internet-safe datagram within 1232 bytes and a queue of one bandwidth-delay product', () => {
    expect(dataDatagramBytes(1120)).toBeLessThanOrEqual(1232);
    const s = SCENARIOS.find((x) => x.name === '100mbit-50ms')!;
    expect(queueBytesFor(s)).toBe(625_000);
    expect(proxyArgsFor(s)).toEqual(['--rate', '100000000', '--queue', '625000', '--delay', '25']);
  });

  it('picks round chart axes', () => {
    expect(niceAxis(163)).toEqual({ max: 200, step: 50 });
    expect(niceAxis(0)).toEqual({ max: 1, step: 0.2 });
  });
});

describe('bench command line', () => {
  it('exits 1 with a message saying what to build when a bin is missing', () => {
    const r = spawnSync(process.execPath, [cli, '--quick', '--ferry', '/nonexistent/ferry.js'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/ferry not found at \/nonexistent\/ferry\.js: build the CLIs first/);
  });

  it('exits 2 on a usage error', () => {
    const r = spawnSync(process.execPath, [cli, '--bogus'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(2);
  });
});

describe('bench trees', () => {
  it('--full and --trees run the trees (with rsync beside scp); the headline and --quick do not', () => {
    expect(parseBenchArgs([]).trees).toBe(false);
    expect(parseBenchArgs(['--quick']).trees).toBe(false);
    expect(parseBenchArgs(['--full']).trees).toBe(true);
    expect(parseBenchArgs(['--full', '--skip-trees']).trees).toBe(false);
    const trees = parseBenchArgs(['--trees']);
    expect(trees).toMatchObject({ trees: true, treeRuns: 3, peers: ['scp', 'sftp', 'rsync'] });
    expect(parseBenchArgs(['--quick', '--trees', '--tree-runs', '2']).treeRuns).toBe(2);
  });

  it('writes a tree whose manifest matches its copy and changes with one byte or one name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-tree-'));
    try {
      const spec = { ...SMALL_FILES_TREE, directories: 3, filesPerDirectory: 4 };
      expect(describeTree(SMALL_FILES_TREE)).toBe('10,000 files of 1–8 KiB in 100 directories');
      expect(describeTree(LARGE_FILES_TREE)).toBe('20 files of 20 MiB');
      const tree = writeTree(dir, spec);
      expect(tree.files).toBe(12);
      expect(tree.bytes).toBe(
        [...Array(12).keys()].reduce((n, i) => n + 1024 + Math.floor((7168 * i) / 11), 0),
      );
      cpSync(tree.path, join(dir, 'copy'), { recursive: true });
      expect(treeManifest(join(dir, 'copy'))).toBe(tree.manifest);
      const file = join(dir, 'copy', 'dir-001', 'file-0002.bin');
      const data = readFileSync(file);
      data[0] = (data[0]! + 1) & 0xff;
      writeFileSync(file, data);
      expect(treeManifest(join(dir, 'copy'))).not.toBe(tree.manifest);
      data[0] = (data[0]! - 1) & 0xff;
      writeFileSync(file, data);
      renameSync(file, join(dir, 'copy', 'dir-001', 'renamed.bin'));
      expect(treeManifest(join(dir, 'copy'))).not.toBe(tree.manifest);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
