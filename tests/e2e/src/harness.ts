/**
 * End-to-end harness: runs the real `ferry` and `ferry-server` bins as separate processes on
 * loopback, each test with its own temporary root, key and config directory. Every process is
 * bounded in time and killed when the test file ends. The end-to-end tests here, and those of
 * tests/s3, import this one module (`@ferry/e2e-tests`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { writeNewKeyFile } from '@ferry/crypto';
import { expect, vi } from 'vitest';

import { CLIENT_BIN, EXIT_PROBE, SERVER_BIN } from './bins.js';
import { onCleanup, tempDir } from './cleanup.js';
import { sha256File } from './files.js';
import { killAtEnd, type ProcessResult, runProcess } from './process.js';

export { CLIENT_BIN, EXIT_PROBE, SERVER_BIN };

// Every test here starts processes and moves real data; on a busy machine (2 cores at load 10 or
// more) a process that starts in 0.1 s alone takes seconds, and a test runs several of them.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

export interface Sandbox {
  /** The temporary directory holding everything below. */
  dir: string;
  /** The directory the server serves. */
  root: string;
  /** The client's working directory. */
  work: string;
  /** A key file both sides use. */
  keyFile: string;
  /** Environment with its own HOME and XDG_CONFIG_HOME (state under HOME), no FERRY_KEY, no colour. */
  env: NodeJS.ProcessEnv;
}

export async function sandbox(): Promise<Sandbox> {
  const dir = await tempDir();
  const root = join(dir, 'root');
  const work = join(dir, 'work');
  await mkdir(root);
  await mkdir(work);
  const keyFile = join(dir, 'key');
  await writeNewKeyFile(keyFile);
  return { dir, root, work, keyFile, env: binEnv(dir) };
}

/** An environment for the bins: HOME and XDG_CONFIG_HOME (state under HOME) in `home`, no FERRY_KEY, no colour. */
export function binEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, 'config'),
    NO_COLOR: '1',
  };
  delete env.FERRY_KEY;
  delete env.FERRY_DEBUG;
  delete env.XDG_STATE_HOME;
  return env;
}

export interface RunResult extends ProcessResult {
  /** stdout parsed as NDJSON (lines that are not JSON are skipped). */
  events: Record<string, unknown>[];
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
  /** Close the reading end of the process's stdout at once, as `| head -0` would: every write fails. */
  closeStdout?: boolean;
  /** Options for node itself, before the bin (e.g. ['--require', EXIT_PROBE]). */
  nodeArgs?: readonly string[];
}

/** Runs `node BIN ARGS…` to its end (60 s at most unless told), its stdin given `input` and closed. */
export async function run(
  bin: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const result = await runProcess(process.execPath, [...(options.nodeArgs ?? []), bin, ...args], {
    cwd: options.cwd,
    env: options.env,
    input: options.input ?? '',
    closeStdout: options.closeStdout,
    timeoutMs: options.timeoutMs ?? 60_000,
    what: args.join(' '),
  });
  return { ...result, events: parseEvents(result.stdout) };
}

export function parseEvents(text: string): Record<string, unknown>[] {
  const events: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      events.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not an event line
    }
  }
  return events;
}

/** Runs the ferry client bin to completion. */
export function ferry(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return run(CLIENT_BIN, args, options);
}

/** A bin left running (a client a test kills, say): its NDJSON events as they are printed. */
export interface BinProcess {
  child: ChildProcess;
  /** The NDJSON events printed so far (lines that are not JSON are skipped). */
  events: Record<string, unknown>[];
  stderr: () => string;
  /** The first NDJSON event `match` accepts (rejects if the process ends first, or after `timeoutMs`). */
  waitFor(
    match: (event: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Resolves once the process has exited and all of its output has been read. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/** Starts `node BIN ARGS…` with NDJSON stdout parsed into events; killed when the test file ends. */
export function spawnBin(
  bin: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): BinProcess {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killAtEnd(child);
  const events: Record<string, unknown>[] = [];
  // Told each new event as it is printed, then `undefined` once the process has closed.
  const listeners = new Set<(event: Record<string, unknown> | undefined) => void>();
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const [event] = parseEvents(line);
    if (event === undefined) return;
    events.push(event);
    for (const l of [...listeners]) l(event);
  });
  // 'close', not 'exit': only then has every line of its output been read. A process that has
  // exited may still have lines in the pipe, the awaited event among them.
  let closed = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>(
    (resolve) =>
      child.on('close', (code, signal) => {
        closed = true;
        for (const l of [...listeners]) l(undefined);
        resolve({ code, signal, stderr });
      }),
  );
  return {
    child,
    events,
    stderr: () => stderr,
    exited,
    // `match` sees each event once, in order, so a matcher may count (the 300th 'done', say).
    waitFor: (match, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const seen = events.find(match);
        if (seen !== undefined) {
          resolve(seen);
          return;
        }
        const ended = (): Error => new Error(`${args[0]} exited before the expected event: ${stderr}`);
        if (closed) {
          reject(ended());
          return;
        }
        const listener = (event: Record<string, unknown> | undefined): void => {
          if (event === undefined) finish(() => reject(ended()));
          else if (match(event)) finish(() => resolve(event));
        };
        const timer = setTimeout(
          () =>
            finish(() =>
              reject(new Error(`no matching event from ${args[0]} in ${timeoutMs} ms: ${stderr}`)),
            ),
          timeoutMs,
        );
        const finish = (settle: () => void): void => {
          clearTimeout(timer);
          listeners.delete(listener);
          settle();
        };
        listeners.add(listener);
      }),
  };
}

/** A ferry client left running, for tests that kill it. */
export function spawnFerry(args: readonly string[], options: RunOptions = {}): BinProcess {
  return spawnBin(CLIENT_BIN, args, options);
}

export interface ServerOptions {
  /** The directory served (--root), unless `storage` is given. */
  root: string;
  /** What to serve instead of `root`, as --storage takes it (e.g. s3://bucket/prefix). */
  storage?: string;
  /** Extra arguments (e.g. --keys FILE, --read-only); --key is added unless one of the key options is here. */
  args?: readonly string[];
  keyFile?: string;
  env?: NodeJS.ProcessEnv;
  port?: number;
  cwd?: string;
  /** Run the server as this user and group (the test must run as root). */
  uid?: number;
  gid?: number;
}

export class ServerProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    readonly child: ChildProcess,
    public port: number,
  ) {
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => resolve({ code, signal }));
    });
  }

  /** Starts a server on `port` (default: any free port) and waits for its "serving" line. */
  static async start(options: ServerOptions): Promise<ServerProcess> {
    const served = options.storage !== undefined ? ['--storage', options.storage] : ['--root', options.root];
    const args = [String(options.port ?? 0), ...served, ...(options.args ?? [])];
    if (options.keyFile !== undefined && !args.includes('--keys') && !args.includes('--key')) {
      args.push('--key', options.keyFile);
    }
    const child = spawn(process.execPath, [SERVER_BIN, ...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.uid !== undefined ? { uid: options.uid } : {}),
      ...(options.gid !== undefined ? { gid: options.gid } : {}),
    });
    killAtEnd(child);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const server = new ServerProcess(child, 0);
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 30_000);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        server.lines.push(line);
        const text = /udp:\/\/\S+:(\d+) /.exec(line);
        const json = line.startsWith('{')
          ? (JSON.parse(line) as { type?: string; port?: number })
          : undefined;
        const found = json?.type === 'listening' ? json.port : text ? Number(text[1]) : undefined;
        if (found !== undefined) {
          clearTimeout(timer);
          resolve(found);
        }
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited with ${code} before listening: ${stderr}`));
      });
    });
    server.port = port;
    return server;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async stop(
    signal: NodeJS.Signals = 'SIGTERM',
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

/** Starts a server on the sandbox's root with its key and environment (`options` add to them, e.g. a port). */
export function serveSandbox(box: Sandbox, options: Partial<ServerOptions> = {}): Promise<ServerProcess> {
  return ServerProcess.start({ root: box.root, keyFile: box.keyFile, env: box.env, ...options });
}

/**
 * A sandbox and a server serving it, for the tests of one file to share (made in its beforeAll): the
 * server is stopped when the file ends, before its directories are removed.
 */
export async function servedSandbox(): Promise<{ box: Sandbox; server: ServerProcess }> {
  const box = await sandbox();
  const server = await serveSandbox(box);
  onCleanup(() => server.stop());
  return { box, server };
}

/**
 * Expects `result`, a `ferry … --json --resume` run, to have completed a transfer that an earlier one
 * began: exit 0, a done event matching `done` (at least the file's SHA-256) that says some bytes were
 * already there rather than moved again, and the file at `landed` holding exactly those bytes.
 * Returns the done event.
 */
export async function expectResumed(
  result: RunResult,
  landed: string,
  done: { sha256: string } & Record<string, unknown>,
): Promise<Record<string, unknown>> {
  expect(result.code, result.stderr).toBe(0);
  const event = result.events.find((e) => e.type === 'done');
  expect(event).toMatchObject(done);
  expect(Number(event!.resumedBytes)).toBeGreaterThan(0);
  expect(await sha256File(landed)).toBe(done.sha256);
  return event!;
}

export { onCleanup, tempDir } from './cleanup.js';
export { diffTrees, partialFiles, persistedPartial, randomFile, randomTree, sha256File } from './files.js';
export { bindSocket, type Direction, UdpRelay } from './relay.js';
export { sleep, waitUntil, within } from './wait.js';
