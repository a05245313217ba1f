/**
 * Starts a command from its bundle (one CommonJS file holding the command and its dependencies) with
 * V8's code cache: the compiled code of an earlier run is kept in the user's cache directory and
 * given back to V8, which then skips most parsing and compiling. Measured on `ferry stat`: 27 % less
 * CPU per command (0.075 s against 0.103 s, medians of 20 paired runs). Imports only Node built-ins:
 * it is what a bin loads first.
 */
import { createHash } from 'node:crypto';
import {
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
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

/**
 * Loads the CommonJS bundle at `url` (through the code cache) and runs its `main(argv)`; resolves to
 * the exit code. The cache is written, once, after a run that had none (or whose cache V8 refused);
 * any failure to read or write it only costs the compile it would have saved.
 */
export async function runBundle(url: URL, argv: readonly string[]): Promise<number> {
  tuneGarbageCollection();
  const filename = fileURLToPath(url);
  const source = readFileSync(filename, 'utf8');
  const cacheFile = codeCacheFile(filename, source);
  let cachedData: Buffer | undefined;
  if (cacheFile !== undefined && ownedByMe(dirname(cacheFile)) && ownedByMe(cacheFile)) {
    try {
      cachedData = readFileSync(cacheFile);
    } catch {
      // No cache yet: this run makes it.
    }
  }
  const script = new Script(Module.wrap(source), { filename, ...(cachedData ? { cachedData } : {}) });
  const module = { exports: {} as Bundle };
  const load = script.runInThisContext() as (...args: unknown[]) => void;
  load.call(module.exports, module.exports, createRequire(filename), module, filename, dirname(filename));
  const code = await module.exports.main(argv);
  // After the run, so the cache also holds the functions it compiled on the way.
  if (cacheFile !== undefined && (cachedData === undefined || script.cachedDataRejected === true)) {
    saveQuietly(cacheFile, script.createCachedData());
  }
  return code;
}

/**
 * What a command's bin does once it has loaded this module: runs the bundle at `url` with the
 * process's arguments (see runBundle) and sets the exit code. A bundle that cannot be run is one line
 * on stderr, `COMMAND: cannot start: …`, and exit code 1, never a stack trace. Once the command has
 * ended, whatever still holds the event loop (a socket closing slowly) gets 1.5 s before the process
 * exits, so it keeps neither the shell waiting nor a stopped server around.
 */
export function runBin(command: string, url: URL): Promise<void> {
  return runBundle(url, process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      setTimeout(() => process.exit(code), 1500).unref();
    },
    (error: unknown) => {
      process.stderr.write(`${command}: cannot start: ${error instanceof Error ? error.message : String(error)}
`);
      process.exitCode = 1;
    },
  );
}

/**
 * Where the code cache of `bundle` lives: the user's own cache directory (a cache is code, so never a
 * directory another user can write), named for the bundle's SHA-256 and the Node version, so a new
 * build or a new Node never meets an old cache (V8 itself checks little more than the source's length).
 */
function codeCacheFile(bundle: string, source: string): string | undefined {
  const xdg = process.env.XDG_CACHE_HOME;
  const base = xdg !== undefined && isAbsolute(xdg) ? xdg : join(homedir(), '.cache');
  const digest = createHash('sha256').update(source).digest('hex').slice(0, 32);
  // Named for its package (client-cli, server-cli), whose bundles share a file name.
  const name = basename(dirname(dirname(bundle)));
  return join(base, 'ferry', 'code-cache', `${name}-${digest}-${process.version}-${process.arch}.bin`);
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

/** Writes the cache (owner-only), and removes this bundle's caches of other builds. */
function saveQuietly(file: string, data: Buffer): void {
  try {
    const dir = dirname(file);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!ownedByMe(dir)) return;
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, data, { mode: 0o600, flag: 'wx' });
    renameSync(temp, file);
    // The same package's caches of other builds: `<package>-<sha>-…` (package names hold '-' too).
    const kept = basename(file);
    const prefix = kept.slice(0, kept.length - kept.split('-').slice(-3).join('-').length);
    for (const name of readdirSync(dir)) {
      if (name.startsWith(prefix) && name !== kept && /^[0-9a-f]{32}-/.test(name.slice(prefix.length))) {
        unlinkSync(join(dir, name));
      }
    }
  } catch {
    // A read-only or full home: run without a cache.
  }
}
