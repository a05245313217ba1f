import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The bench's built command line. */
export const BENCH_CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/cli.js');

/**
 * Runs the bench's CLI with `args` to its end; its exit code and both streams. It is killed after
 * `timeoutMs` (a bound on a hang, not on its speed: several times its usual time beside other work).
 */
export function runBenchCli(
  args: string[],
  timeoutMs = 280_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BENCH_CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the bench did not finish in ${timeoutMs} ms:\n${stderr.slice(-4000)}`));
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}
