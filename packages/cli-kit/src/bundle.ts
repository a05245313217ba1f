/**
 * Starts a command from its bundle (one CommonJS file holding the command and its dependencies) with
 * V8's code cache: the compiled code of earlier runs is kept in the user's cache directory and given
 * back to V8, which then skips most parsing and compiling. Measured on `ferry stat` (medians of 15
 * paired runs, whole process): 57 ms of CPU with the cache against 80 ms for the same bundle without
 * one. Imports only Node built-ins, and is also built as CommonJS (dist/bundle.cjs) so that a bin
 * can `require` it without starting Node's ES module loader.
 */
import { createHash } from 'node:crypto';
import {
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire, Module } from 'node:module';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { Script } from 'node:vm';

/**
 * The garbage-collector setting of a process that moves file data, applied before any code is
 * compiled (V8 checks a code cache against the flags in force, so they must be the same at every run).
 *
 * ferry's JavaScript heap is small (about 10 MB) while its data lives in Buffers outside it, and V8
 * counts the growth of that outside memory against an old-generation limit it derives from the small
 * live heap. With the default growing factor a 56 MiB put ran 8-9 full mark-compacts in the
 * receiving server (about a fifth of its busy time in a CPU profile). A fixed factor of 5 lets the
 * limit scale with the transfer's buffers: 1 mark-compact, and the server's CPU for that put fell
 * from 390 to 250 ms (measured with --trace-gc); the old generation still stops at
 * --max-old-space-size.
 */
export function tuneGarbageCollection(): void {
  setFlagsFromString('--heap-growing-percent=400');
}

interface Bundle {
  main(argv: readonly string[]): Promise<number>;
}

/** A cache file: this magic, a u32 length, a JSON header of that length, then V8's cached data. */
const CACHE_MAGIC = Buffer.from('ferry-code-cache-1\n');

/** The kinds of run a cache was made from (see runKind); past this many, it is no longer rewritten. */
const MAX_CACHED_KINDS = 32;

/** Caches of other installs (paths) untouched for this long are removed when a cache is written. */
const STALE_CACHE_MS = 30 * 24 * 3600 * 1000;

interface CacheHeader {
  kinds: string[];
}

/**
 * Loads the CommonJS bundle at `bundle` (a path or file: URL) through the code cache and runs its
 * `main(argv)`; resolves to the exit code. The cache is written after a run of a kind it was not made
 * from (its first run, or a command whose code it lacks), so that it holds what every command used
 * so far compiled; V8 then serializes both the functions it took from the cache and those compiled in
 * this run. Any failure to read or write the cache only costs the compile it would have saved.
 */
export async function runBundle(bundle: string | URL, argv: readonly string[]): Promise<number> {
  tuneGarbageCollection();
  const filename = typeof bundle === 'string' ? bundle : fileURLToPath(bundle);
  const bytes = readFileSync(filename);
  const source = bytes.toString('utf8');
  const cacheFile = codeCacheFile(filename, bytes);
  const kind = runKind(argv);
  let cached: { header: CacheHeader; data: Buffer } | undefined;
  if (cacheFile !== undefined && ownedByMe(dirname(cacheFile)) && ownedByMe(cacheFile)) {
    cached = readCache(cacheFile);
  }
  const script = new Script(Module.wrap(source), {
    filename,
    ...(cached !== undefined ? { cachedData: cached.data } : {}),
  });
  const module = { exports: {} as Bundle };
  const load = script.runInThisContext() as (...args: unknown[]) => void;
  load.call(module.exports, module.exports, createRequire(filename), module, filename, dirname(filename));
  const code = await module.exports.main(argv);
  // After the run, so the cache also holds the functions it compiled on the way.
  if (cacheFile !== undefined) {
    const kinds = cached === undefined || script.cachedDataRejected === true ? [] : cached.header.kinds;
    if (!kinds.includes(kind) && (kinds.length < MAX_CACHED_KINDS || script.cachedDataRejected === true)) {
      saveQuietly(cacheFile, { kinds: [...kinds, kind] }, script.createCachedData());
    }
  }
  return code;
}

/**
 * What a command's bin does once it has required this module: runs the bundle at `bundle` with the
 * process's arguments (see runBundle) and sets the exit code. A bundle that cannot be run is one line
 * on stderr, `COMMAND: cannot start: …`, and exit code 1, never a stack trace. Once the command has
 * ended, whatever still holds the event loop (a socket closing slowly) gets 1.5 s before the process
 * exits, so it keeps neither the shell waiting nor a stopped server around.
 */
export function runBin(command: string, bundle: string | URL): Promise<void> {
  return runBundle(bundle, process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      setTimeout(() => process.exit(code), 1500).unref();
    },
    (error: unknown) => {
      process.stderr.write(
        `${command}: cannot start: ${error instanceof Error ? error.message : String(error)}\n`,
      );
      process.exitCode = 1;
    },
  );
}

/**
 * What a run exercises, for the cache's bookkeeping: its first word that is not an option (a
 * command name such as `stat`, or the host of the shell), or '' for none. Only a cue for rewriting
 * the cache: a wrong guess costs one rewrite or one run of lazily compiled functions, nothing else.
 */
export function runKind(argv: readonly string[]): string {
  const word = argv.find((a) => !a.startsWith('-'));
  return word !== undefined && /^[A-Za-z]{1,16}$/.test(word) ? word.toLowerCase() : '';
}

/**
 * Where the code cache of `bundle` lives: the user's own cache directory (a cache is code, so never a
 * directory another user can write), named for the bundle's package, its path and SHA-256 and the
 * Node version: a new build or a new Node never meets an old cache (V8 itself checks little more than
 * the source's length), and two installs (two versions, or a global and a project's own) never
 * replace each other's cache, which made both compile and rewrite it at every run.
 */
function codeCacheFile(bundle: string, source: Buffer): string | undefined {
  const xdg = process.env.XDG_CACHE_HOME;
  const base = xdg !== undefined && isAbsolute(xdg) ? xdg : join(homedir(), '.cache');
  const digest = createHash('sha256').update(source).digest('hex').slice(0, 32);
  const place = createHash('sha256').update(bundle).digest('hex').slice(0, 12);
  // Named for its package (client-cli, server-cli), whose bundles share a file name.
  const name = basename(dirname(dirname(bundle)));
  return join(
    base,
    'ferry',
    'code-cache',
    `${name}-${place}-${digest}-${process.version}-${process.arch}.bin`,
  );
}

function readCache(file: string): { header: CacheHeader; data: Buffer } | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch {
    return undefined; // no cache yet: this run makes it
  }
  const at = CACHE_MAGIC.length;
  if (bytes.length < at + 4 || !bytes.subarray(0, at).equals(CACHE_MAGIC)) return undefined;
  const length = bytes.readUInt32BE(at);
  try {
    const header = JSON.parse(bytes.toString('utf8', at + 4, at + 4 + length)) as CacheHeader;
    if (!Array.isArray(header.kinds) || !header.kinds.every((k) => typeof k === 'string')) return undefined;
    return { header, data: bytes.subarray(at + 4 + length) };
  } catch {
    return undefined;
  }
}

/** Whether `path` is this user's and writable by nobody else (a cache another user wrote is code). */
function ownedByMe(path: string): boolean {
  try {
    const stats = lstatSync(path);
    const mine = process.geteuid === undefined || stats.uid === process.geteuid();
    return mine && (stats.mode & 0o022) === 0 && !stats.isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * Writes the cache (owner-only); removes the caches of this install's other builds, and those of
 * other installs not rewritten for STALE_CACHE_MS (an install that is gone leaves its cache behind).
 */
function saveQuietly(file: string, header: CacheHeader, data: Buffer): void {
  try {
    const dir = dirname(file);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!ownedByMe(dir)) return;
    const json = Buffer.from(JSON.stringify(header));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(json.length);
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, Buffer.concat([CACHE_MAGIC, length, json, data]), { mode: 0o600, flag: 'wx' });
    renameSync(temp, file);
    // `<package>-<place>-<sha>-<node version>-<arch>.bin` (package names hold '-' too).
    const kept = basename(file);
    const install = kept.slice(0, kept.length - kept.split('-').slice(-3).join('-').length);
    const now = Date.now();
    for (const name of readdirSync(dir)) {
      if (name === kept || !name.endsWith('.bin')) continue;
      const path = join(dir, name);
      if (name.startsWith(install) && /^[0-9a-f]{32}-/.test(name.slice(install.length))) unlinkSync(path);
      else if (now - statSync(path).mtimeMs > STALE_CACHE_MS) unlinkSync(path);
    }
  } catch {
    // A read-only or full home: run without a cache.
  }
}
