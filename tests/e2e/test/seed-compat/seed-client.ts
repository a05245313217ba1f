/** Runs the test client of the seed's protocol (seed_client.py) for end-to-end tests. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runProcess } from '../../src/process.js';

export const SEED_CLIENT = fileURLToPath(new URL('./seed_client.py', import.meta.url));

/**
 * Replies of the seed's protocol as its client prints them: the texts of server-cli's seed-compat
 * codec (SEED_TEXT, LIST_MORE_LINE; not exported), written out, as a seed client sees them.
 */
export const SEED_TEXT = {
  listHeader: 'Files in the server directory are: \n',
  exit: 'Client and Server exit',
} as const;
/** The last line of a list reply that had to leave names out. */
export const LIST_MORE_LINE = '(more not shown: the seed client reads 2,048 bytes; ferry ls lists all)';

/** Why the seed client cannot run here (no python3, or no `cryptography`), or undefined. */
export function seedClientMissing(): string | undefined {
  const probe = spawnSync('python3', ['-c', 'import cryptography.fernet'], { encoding: 'utf8' });
  if (probe.error) return `python3 not runnable (${probe.error.message})`;
  if (probe.status !== 0) return 'python3 has no cryptography module (pip install cryptography)';
  return undefined;
}

export interface SeedCommandResult {
  command: string;
  words: string[] | null;
  output: string[];
  seconds: number;
  error?: string;
}

export interface SeedClientRun {
  code: number | null;
  results: SeedCommandResult[];
  stderr: string;
}

export interface SeedClientOptions {
  cwd: string;
  /** Extra arguments: --key FILE, --max-resend-requests N. */
  args?: readonly string[];
  /** Each command gives up after this many seconds of silence (default 20). */
  commandTimeoutS?: number;
  /** The whole run is killed after this (default 60 s). */
  timeoutMs?: number;
}

/** Feeds `commands` to one client process (one line each, as typed at its menu); resolves when it exits. */
export async function runSeedClient(
  port: number,
  commands: readonly string[],
  options: SeedClientOptions,
): Promise<SeedClientRun> {
  const args = [
    SEED_CLIENT,
    '127.0.0.1',
    String(port),
    '--json',
    '--timeout',
    String(options.commandTimeoutS ?? 20),
    ...(options.args ?? []),
  ];
  const { code, stdout, stderr } = await runProcess('python3', args, {
    cwd: options.cwd,
    input: commands.map((c) => `${c}\n`).join(''),
    timeoutMs: options.timeoutMs ?? 60_000,
    what: 'the seed client',
  });
  const results = stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as SeedCommandResult);
  return { code, results, stderr };
}
