/**
 * One bounded way for tests to run a program to its end: its output collected, killed (SIGKILL) once
 * its time is up, and killed when the test file ends if it is still running then. The bins of the
 * end-to-end tests, the seed's client and the packaging tests' pnpm, npm and tar all run through it
 * (`@ferry/e2e-tests/process`, free of the harness's other set-up).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { onCleanup } from './cleanup.js';

/** Kills `child` when the test file ends, unless it has ended by then. */
export function killAtEnd(child: ChildProcess): void {
  onCleanup(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
}

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ProcessOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to its standard input, which is then closed; without it, standard input is /dev/null. */
  input?: string;
  /** Close the reading end of its stdout at once, as `| head -0` would: every write fails. */
  closeStdout?: boolean;
  /** Killed (SIGKILL) after this long, and the promise rejects. */
  timeoutMs: number;
  /** How a timeout's message names the command (default: the file and its arguments). */
  what?: string;
}

/** Runs `file args…` (no shell) to its end; rejects only on a timeout or a failure to start it. */
export function runProcess(
  file: string,
  args: readonly string[],
  options: ProcessOptions,
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    killAtEnd(child);
    let stdout = '';
    let stderr = '';
    if (options.closeStdout === true) child.stdout!.destroy();
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const what = options.what ?? `${file} ${args.join(' ')}`;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not finish in ${options.timeoutMs} ms\n${stdout}\n${stderr}`));
    }, options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (child.stdin !== null) {
      child.stdin.on('error', () => {});
      child.stdin.end(options.input);
    }
  });
}
