import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ProcessUsage } from './measure.js';

export type { ProcessUsage };

const MEASURE_SCRIPT = fileURLToPath(new URL('./measure.js', import.meta.url));

let childPriority: number | undefined;

/** Scheduling priority (nice value, -20..19) for every measured process started from now on. */
export function setChildPriority(priority: number | undefined): void {
  childPriority = priority;
}

/** Gives a just-started process the priority set by setChildPriority, if any. */
export function applyChildPriority(pid: number | undefined): void {
  if (childPriority === undefined || pid === undefined) return;
  try {
    setPriority(pid, childPriority);
  } catch {
    // Not permitted (raising priority needs privileges): run at the default priority.
  }
}

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** From spawn to exit, as the bench saw it. */
  wallSeconds: number;
  stdout: string;
  stderr: string;
  /** The process's own getrusage at exit; undefined if it died without running its exit handlers. */
  usage: ProcessUsage | undefined;
  timedOut: boolean;
}

export interface SpawnMeasuredOptions {
  usageFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir', DIR]. */
  nodeArgs?: readonly string[];
  /** Killed (SIGKILL) after this long; the result says timedOut. */
  timeoutMs?: number;
  /** Keep at most this many characters of each stream (the tail). */
  maxOutputChars?: number;
}

export interface MeasuredProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly startedAt: number;
  /** Calls back with every complete stdout line as it arrives. */
  onLine(listener: (line: string) => void): void;
  readonly exited: Promise<ProcessResult>;
}

/** Starts `node measure.js USAGE_FILE script ...args`: the script runs in that process, measured. */
export function spawnMeasured(
  script: string,
  args: readonly string[],
  options: SpawnMeasuredOptions,
): MeasuredProcess {
  const startedAt = performance.now();
  const child = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), MEASURE_SCRIPT, options.usageFile, script, ...args],
    {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  applyChildPriority(child.pid);
  const max = options.maxOutputChars ?? 4 * 1024 * 1024;
  let stdout = '';
  let stderr = '';
  let partial = '';
  const listeners: ((line: string) => void)[] = [];
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    stdout = (stdout + chunk).slice(-max);
    partial += chunk;
    let newline = partial.indexOf('\n');
    while (newline >= 0) {
      const line = partial.slice(0, newline);
      partial = partial.slice(newline + 1);
      for (const listener of listeners) listener(line);
      newline = partial.indexOf('\n');
    }
  });
  child.stderr!.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-max);
  });
  let timedOut = false;
  const timer =
    options.timeoutMs !== undefined
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, options.timeoutMs)
      : undefined;
  const exited = new Promise<ProcessResult>((resolve) => {
    child.on('error', (error) => {
      stderr += `\n${error.message}`;
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const wallSeconds = (performance.now() - startedAt) / 1000;
      void readFile(options.usageFile, 'utf8').then(
        (text) => resolve({ code, signal, wallSeconds, stdout, stderr, usage: parseUsage(text), timedOut }),
        () => resolve({ code, signal, wallSeconds, stdout, stderr, usage: undefined, timedOut }),
      );
    });
  });
  return {
    child,
    pid: child.pid ?? -1,
    startedAt,
    onLine: (listener) => listeners.push(listener),
    exited,
  };
}

function parseUsage(text: string): ProcessUsage | undefined {
  try {
    const u = JSON.parse(text) as ProcessUsage;
    return typeof u.maxRssBytes === 'number' ? u : undefined;
  } catch {
    return undefined;
  }
}

/** Resolves with the first stdout line the predicate accepts (its value), or rejects on exit/timeout. */
export function waitForLine<T>(
  proc: MeasuredProcess,
  accept: (line: string) => T | undefined,
  timeoutMs: number,
  what: string,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      reject(new Error(`${what}: no start-up line within ${timeoutMs} ms`));
    }, timeoutMs);
    proc.onLine((line) => {
      if (settled) return;
      const value = accept(line);
      if (value === undefined) return;
      settled = true;
      clearTimeout(timer);
      resolve(value);
    });
    void proc.exited.then((result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(
        new Error(
          `${what} exited (${result.code ?? result.signal}) before it was ready: ${tail(result.stderr || result.stdout)}`,
        ),
      );
    });
  });
}

/** Sends SIGTERM, then SIGKILL after graceMs; resolves with the result. */
export async function stopProcess(proc: MeasuredProcess, graceMs = 10_000): Promise<ProcessResult> {
  if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
  try {
    return await proc.exited;
  } finally {
    clearTimeout(timer);
  }
}

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** user + system CPU seconds a live process has used so far (Linux /proc), or undefined. */
export function cpuSecondsSoFar(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
    return (utime + stime) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** The last lines of some output, for error messages. */
export function tail(text: string, lines = 8): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

/**
 * Starts `count` CPU-bound processes (each an endless loop), as other work on a busy machine would
 * be, at the priority of the measured processes; `stop()` kills them (also when the bench exits).
 */
export function startCpuHogs(count: number): { pids: number[]; stop: () => void } {
  const children: ChildProcess[] = [];
  for (let i = 0; i < count; i++) {
    const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
    applyChildPriority(child.pid);
    children.push(child);
  }
  const stop = (): void => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    process.off('exit', stop);
  };
  process.on('exit', stop);
  return { pids: children.flatMap((c) => (c.pid === undefined ? [] : [c.pid])), stop };
}
