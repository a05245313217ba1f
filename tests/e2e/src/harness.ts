/**
 * End-to-end harness: runs the real `ferry` and `ferry-server` bins as separate processes on
 * loopback, each test with its own temporary root, key and config directory. Every process is
 * bounded in time and killed when the test file ends. The end-to-end tests here, and those of
 * tests/s3, import this one module (`@ferry/e2e-tests`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { writeNewKeyFile } from '@ferry/crypto';
import { afterAll, vi } from 'vitest';

import { CLIENT_BIN, EXIT_PROBE, SERVER_BIN } from './bins.js';

export { CLIENT_BIN, EXIT_PROBE, SERVER_BIN };

// Every test here starts processes and moves real data; on a busy machine (2 cores at load 10 or
// more) a process that starts in 0.1 s alone takes seconds, and a test runs several of them.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

const live = new Set<ChildProcess>();
const dirs: string[] = [];

afterAll(async () => {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

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
  const dir = await mkdtemp(join(tmpdir(), 'ferry-e2e-'));
  dirs.push(dir);
  const root = join(dir, 'root');
  const work = join(dir, 'work');
  await mkdir(root);
  await mkdir(work);
  const keyFile = join(dir, 'key');
  await writeNewKeyFile(keyFile);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, 'config'),
    NO_COLOR: '1',
  };
  delete env.FERRY_KEY;
  delete env.FERRY_DEBUG;
  delete env.XDG_STATE_HOME;
  return { dir, root, work, keyFile, env };
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
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

export function run(bin: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), bin, ...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    live.add(child);
    let stdout = '';
    let stderr = '';
    if (options.closeStdout === true) child.stdout.destroy();
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `${args.join(' ')} did not finish in ${options.timeoutMs ?? 60_000} ms\n${stdout}\n${stderr}`,
        ),
      );
    }, options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, signal, stdout, stderr, events: parseEvents(stdout) });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
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

/** A client left running, for tests that kill it: its stdout lines arrive as they are printed. */
export interface LiveClient {
  child: ChildProcess;
  /** Resolves with the first NDJSON event that `match` accepts (rejects if the process ends first). */
  waitFor(
    match: (event: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

export function spawnFerry(args: readonly string[], options: RunOptions = {}): LiveClient {
  const child = spawn(process.execPath, [CLIENT_BIN, ...args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const events: Record<string, unknown>[] = [];
  const waiters: {
    match: (e: Record<string, unknown>) => boolean;
    resolve: (e: Record<string, unknown>) => void;
  }[] = [];
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const [event] = parseEvents(line);
    if (event === undefined) return;
    events.push(event);
    for (const w of [...waiters]) {
      if (w.match(event)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(event);
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>(
    (resolve) => {
      child.on('close', (code, signal) => {
        live.delete(child);
        resolve({ code, signal, stderr });
      });
    },
  );
  return {
    child,
    exited,
    waitFor: (match, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const seen = events.find(match);
        if (seen !== undefined) {
          resolve(seen);
          return;
        }
        const timer = setTimeout(
          () => reject(new Error(`no matching event in ${timeoutMs} ms; ${stderr}`)),
          timeoutMs,
        );
        waiters.push({
          match,
          resolve: (e) => {
            clearTimeout(timer);
            resolve(e);
          },
        });
        void exited.then(({ code }) => {
          clearTimeout(timer);
          reject(new Error(`client exited (${code}) before the expected event; ${stderr}`));
        });
      }),
  };
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
      child.on('close', (code, signal) => {
        live.delete(child);
        resolve({ code, signal });
      });
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
    live.add(child);
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

export { partialFiles, persistedPartial, randomFile, sha256File } from './files.js';
export { UdpRelay } from './relay.js';
export { sleep, waitUntil, within } from './wait.js';
