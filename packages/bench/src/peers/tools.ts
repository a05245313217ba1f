/**
 * The peer tools a user would otherwise reach for, run against the throwaway sshd the way a user
 * runs them (default ciphers and options), one process per transfer, timed from spawn to exit and
 * verified by SHA-256 like ferry's transfers.
 */
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { applyChildPriority, tail } from '../processes.js';
import { type SourceFile, type TransferRecord, verifyAndClean } from '../transfer.js';
import { findOnPath, type SshClientConfig, sshOptions } from './sshd.js';

const execFileAsync = promisify(execFile);

export const PEER_TOOLS = ['scp', 'sftp', 'rsync'] as const;
export type PeerTool = (typeof PEER_TOOLS)[number];

export interface PeerInvocation {
  file: string;
  args: string[];
  /** Written to the process's stdin (sftp's batch commands). */
  input?: string;
}

/** A path for sftp's batch language, which splits on spaces unless quoted. */
function sftpQuote(path: string): string {
  return `"${path.replace(/(["\\])/g, '\\$1')}"`;
}

/**
 * A word of rsync's -e command, which rsync splits on spaces unless single- or double-quoted (it
 * knows no backslash escapes).
 */
function rshQuote(word: string): string {
  if (/^[\w@%+=:,./-]+$/.test(word)) return word;
  return word.includes("'") ? `"${word}"` : `'${word}'`;
}

/** rsync's -e command: ssh with the throwaway client's options. */
export function rshCommand(client: SshClientConfig): string {
  return ['ssh', ...sshOptions(client), '-p', String(client.port)].map(rshQuote).join(' ');
}

/** The command that moves `local` to `remote` on the sshd (put) or `remote` to `local` (get). */
export function peerInvocation(
  tool: PeerTool,
  op: 'put' | 'get',
  client: SshClientConfig,
  local: string,
  remote: string,
): PeerInvocation {
  const at = `${client.host}:${remote}`;
  const [from, to] = op === 'put' ? [local, at] : [at, local];
  switch (tool) {
    case 'scp':
      // OpenSSH >= 9.0 scp speaks the SFTP protocol by default; that is what users get.
      return { file: 'scp', args: ['-q', ...sshOptions(client), '-P', String(client.port), from, to] };
    case 'sftp':
      return {
        file: 'sftp',
        args: ['-q', ...sshOptions(client), '-P', String(client.port), '-b', '-', client.host],
        input:
          op === 'put'
            ? `put ${sftpQuote(local)} ${sftpQuote(remote)}\n`
            : `get ${sftpQuote(remote)} ${sftpQuote(local)}\n`,
      };
    case 'rsync':
      // -s: the remote path goes to the remote rsync as is, not through a shell.
      return { file: 'rsync', args: ['-s', '-e', rshCommand(client), from, to] };
  }
}

/** Why `tool` cannot run here, or undefined. */
export function peerUnavailable(tool: PeerTool): string | undefined {
  return findOnPath(tool) ? undefined : `${tool} not installed`;
}

/** The tool's version line, for the record. */
export async function peerVersion(tool: PeerTool): Promise<string | undefined> {
  try {
    const [file, args] = tool === 'rsync' ? ['rsync', ['--version']] : ['ssh', ['-V']];
    const { stdout, stderr } = await execFileAsync(file, args, { timeout: 10_000 });
    return (stdout || stderr).trim().split('\n')[0]?.trim();
  } catch {
    return undefined;
  }
}

export interface PeerSpec {
  tool: PeerTool;
  op: 'put' | 'get';
  source: SourceFile;
  client: SshClientConfig;
  /** Where a put lands (a directory of the bench's temp dir, on the same machine). */
  remoteDir: string;
  /** Where a get lands. */
  localDir: string;
  timeoutMs: number;
  /** Runs the client elsewhere: `ip netns exec NAME` (a network namespace). */
  wrap?: readonly string[];
}

let peerRunCounter = 0;

/** One peer transfer: its whole command timed from spawn to exit, then the arrived file's SHA-256. */
export async function runPeerTransfer(spec: PeerSpec): Promise<TransferRecord> {
  const n = ++peerRunCounter;
  const name = `${spec.tool}-${spec.op}-${n}.bin`;
  const local = spec.op === 'put' ? spec.source.path : join(spec.localDir, name);
  const remote = spec.op === 'put' ? join(spec.remoteDir, name) : spec.source.path;
  const invocation = peerInvocation(spec.tool, spec.op, spec.client, local, remote);
  const exit = await runTimed(invocation, spec.timeoutMs, spec.wrap ?? []);
  const record: TransferRecord = {
    op: spec.op,
    bytes: spec.source.size,
    ok: false,
    wallSeconds: exit.wallSeconds,
    sha256: spec.source.sha256,
    command: [invocation.file, ...invocation.args],
  };
  const what = `${spec.tool} ${spec.op} of ${spec.source.size} bytes`;
  if (exit.code !== 0 || exit.timedOut) {
    record.failure = 'failed';
    const why = exit.timedOut
      ? `timed out after ${(spec.timeoutMs / 1000).toFixed(0)} s`
      : `exit ${exit.code ?? exit.signal}`;
    record.error = `${what} failed (${why}): ${tail(exit.stderr || exit.stdout, 6)}`;
    return record;
  }
  return verifyAndClean(record, spec.op === 'put' ? remote : local, what, undefined);
}

export interface TimedExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  wallSeconds: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a peer tool's command, timed from spawn to exit; killed after `timeoutMs`; `wrap` goes before it. */
export function runTimed(
  invocation: PeerInvocation,
  timeoutMs: number,
  wrap: readonly string[] = [],
): Promise<TimedExit> {
  const startedAt = performance.now();
  const [file, ...args] = [...wrap, invocation.file, ...invocation.args];
  const child = spawn(file!, args, {
    stdio: [invocation.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  applyChildPriority(child.pid);
  if (invocation.input !== undefined) child.stdin!.end(invocation.input);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout = (stdout + d).slice(-65_536)));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-65_536)));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  return new Promise((resolve) => {
    child.once('error', (error) => (stderr += `\n${error.message}`));
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        wallSeconds: (performance.now() - startedAt) / 1000,
        stdout,
        stderr,
        timedOut,
      });
    });
  });
}
