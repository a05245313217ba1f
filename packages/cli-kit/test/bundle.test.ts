import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runBin, runBundle, runKind } from '../src/bundle.js';

let scratch: string;
let savedCacheHome: string | undefined;

beforeEach(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'ferry-bundle-test-'));
  savedCacheHome = process.env.XDG_CACHE_HOME;
  process.env.XDG_CACHE_HOME = join(scratch, 'cache');
});

afterEach(async () => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  process.exitCode = undefined;
  if (savedCacheHome === undefined) delete process.env.XDG_CACHE_HOME;
  else process.env.XDG_CACHE_HOME = savedCacheHome;
  await rm(scratch, { recursive: true, force: true });
});

/**
 * A bundle as the bins have them (`<install>/<package>/dist/cli.bundle.cjs`) whose `main` runs
 * `stat` only for argv ['stat']: that function is compiled only by a run of that kind.
 */
async function writeBundle(install: string, tag: string): Promise<string> {
  const dir = join(scratch, install, 'client-cli', 'dist');
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'cli.bundle.cjs');
  const body = Array.from({ length: 200 }, (_, i) => `  total += [${i}, '${tag}'].length * ${i};`).join('\n');
  await writeFile(
    file,
    `function stat() {\n  let total = 0;\n${body}\n  return total;\n}\n` +
      `exports.main = async (argv) => (argv[0] === 'stat' && stat() < 0 ? 1 : 0);\n`,
  );
  return file;
}

async function cacheFiles(): Promise<string[]> {
  return (await readdir(join(scratch, 'cache', 'ferry', 'code-cache'))).sort();
}

describe('runBundle and its code cache', () => {
  it('runs the bundle and leaves a cache of it, readable only by its owner', async () => {
    const bundle = await writeBundle('one', 'a');
    expect(await runBundle(bundle, ['stat'])).toBe(0);
    const files = await cacheFiles();
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^client-cli-[0-9a-f]{12}-[0-9a-f]{32}-v\d+\.\d+\.\d+-\w+\.bin$/);
    const mode = (await stat(join(scratch, 'cache', 'ferry', 'code-cache', files[0]!))).mode;
    expect(mode & 0o077).toBe(0);
  });

  it('keeps one cache per install: two builds run in turn do not replace each other', async () => {
    const first = await writeBundle('first-install', 'a');
    const second = await writeBundle('second-install', 'b');
    await runBundle(first, ['stat']);
    const [firstCache] = await cacheFiles();
    await runBundle(second, ['stat']);
    expect(await cacheFiles()).toHaveLength(2);
    expect(await cacheFiles()).toContain(firstCache);
  });

  it("replaces the cache of the same install's previous build", async () => {
    const bundle = await writeBundle('one', 'a');
    await runBundle(bundle, ['stat']);
    const [old] = await cacheFiles();
    await writeBundle('one', 'b');
    await runBundle(bundle, ['stat']);
    const now = await cacheFiles();
    expect(now).toHaveLength(1);
    expect(now).not.toContain(old);
  });

  it('adds what a run of a new kind compiled to a cache made by another kind, once', async () => {
    const bundle = await writeBundle('one', 'a');
    await runBundle(bundle, ['--help']);
    const [name] = await cacheFiles();
    const path = join(scratch, 'cache', 'ferry', 'code-cache', name!);
    const afterHelp = await readFile(path);
    await runBundle(bundle, ['stat']);
    const afterStat = await readFile(path);
    // The rewritten cache also holds stat(), compiled by this run only.
    expect(afterStat.length).toBeGreaterThan(afterHelp.length);
    expect(afterStat.toString('latin1')).toContain('{"kinds":["","stat"]}');
    const modified = (await stat(path)).mtimeMs;
    await runBundle(bundle, ['stat']);
    expect((await stat(path)).mtimeMs).toBe(modified);
  });

  it('runs without a cache when the cached file is not one', async () => {
    const bundle = await writeBundle('one', 'a');
    await runBundle(bundle, ['stat']);
    const [name] = await cacheFiles();
    await writeFile(join(scratch, 'cache', 'ferry', 'code-cache', name!), 'not a cache', { mode: 0o600 });
    expect(await runBundle(bundle, ['stat'])).toBe(0);
  });

  it('names the kind of a run by its first word that is not an option', () => {
    expect(runKind(['--key', 'k', 'stat'])).toBe('k');
    expect(runKind(['STAT', 'host', 'a.txt'])).toBe('stat');
    expect(runKind(['127.0.0.1:7777'])).toBe('');
    expect(runKind(['--help'])).toBe('');
  });
});

describe('runBin, what the bins do', () => {
  it('sets the exit code the command returned, and exits with it 1.5 s after the command ended', async () => {
    const bundle = join(scratch, 'exits-4.cjs');
    await writeFile(bundle, 'exports.main = async () => 4;\n');
    // The exit is a timer, so that what still holds the event loop (a socket closing) cannot keep
    // the process; faked here, or it would end the test's own process.
    vi.useFakeTimers();
    const exit = vi.spyOn(process, 'exit').mockImplementation(() => undefined as never);
    await runBin('demo', bundle);
    expect(process.exitCode).toBe(4);
    vi.advanceTimersByTime(1499);
    expect(exit).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(exit).toHaveBeenCalledWith(4);
  });

  it('says in one line on stderr that a command cannot start, and sets exit code 1', async () => {
    const written: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    await runBin('demo', join(scratch, 'missing', 'cli.bundle.cjs'));
    expect(written).toHaveLength(1);
    expect(written[0]).toMatch(/^demo: cannot start: ENOENT: [^\n]*cli\.bundle\.cjs'\n$/);
    expect(process.exitCode).toBe(1);
  });
});
