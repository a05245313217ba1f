/**
 * A throwaway OpenSSH server for the scp / sftp / rsync peers: its own ed25519 host and client keys
 * in a temp directory, listening on 127.0.0.1 only, stopped by its pid when the bench ends (also on
 * SIGINT and SIGTERM). Nothing outside the given directory is read or changed, except that sshd run
 * as root needs its privilege separation directory (/run/sshd), created as the system's unit does.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { UndoOnExit } from '../undo-on-exit.js';

const execFileAsync = promisify(execFile);

/** Where Debian's and most distributions' openssh-server puts the daemon. */
export const SSHD_PATH = '/usr/sbin/sshd';
/** sshd run as root refuses to start without it (OpenSSH's compiled-in privsep chroot). */
const PRIVSEP_DIR = '/run/sshd';
const HOST = '127.0.0.1';

/** The executable `name` on PATH, or undefined. */
export function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

/** Why a throwaway sshd cannot run here ("sshd not installed", ...), or undefined when it can. */
export function sshdUnavailable(sshdPath = SSHD_PATH): string | undefined {
  if (!existsSync(sshdPath)) return 'sshd not installed';
  for (const tool of ['ssh-keygen', 'ssh']) {
    if (!findOnPath(tool)) return `${tool} not installed`;
  }
  return undefined;
}

/**
 * A path as one word of OpenSSH's config and `-o` values, which split on whitespace (a known_hosts
 * option may list several files) but honour double quotes.
 */
export function sshConfigWord(path: string): string {
  return /[\s"\\]/.test(path) ? `"${path.replace(/(["\\])/g, '\\$1')}"` : path;
}

/** What an ssh client needs to reach the throwaway server without touching the user's ~/.ssh. */
export interface SshClientConfig {
  host: string;
  port: number;
  /** The throwaway client private key. */
  identityFile: string;
  /** A known_hosts file of the temp directory (the host key is accepted on first use). */
  knownHostsFile: string;
}

/**
 * ssh options for every client run: no user or system ssh config (its ciphers, ControlMaster or
 * agent would change what is measured), the throwaway key only, never a prompt.
 */
export function sshOptions(client: SshClientConfig): string[] {
  return [
    '-F',
    'none',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    `UserKnownHostsFile=${sshConfigWord(client.knownHostsFile)}`,
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'LogLevel=ERROR',
    '-i',
    client.identityFile,
  ];
}

export interface RunningSshd {
  readonly pid: number;
  readonly port: number;
  readonly client: SshClientConfig;
  /** The last lines sshd wrote (its log goes to stderr with -e), for error messages. */
  log(): string;
  /** SIGTERM by pid, SIGKILL after a grace period; resolves once it has exited. */
  stop(): Promise<void>;
}

export class SshdStartError extends Error {}

/** The sshd processes still running, killed by pid if the bench is interrupted or exits. */
const live = new UndoOnExit<ChildProcess>((child) => {
  try {
    child.kill('SIGTERM');
  } catch {}
});

/** A port nobody listens on right now (sshd may still lose a race for it: startSshd retries). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new SshdStartError('no free TCP port');
  return address.port;
}

async function keygen(file: string, comment: string): Promise<void> {
  await execFileAsync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], {
    timeout: 30_000,
  });
}

export function sshdConfig(dir: string, port: number, host = HOST): string {
  return [
    `ListenAddress ${host}`,
    `Port ${port}`,
    `HostKey ${sshConfigWord(join(dir, 'host_ed25519'))}`,
    `PidFile ${sshConfigWord(join(dir, 'sshd.pid'))}`,
    `AuthorizedKeysFile ${sshConfigWord(join(dir, 'client_ed25519.pub'))}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    // The temp directory's modes are not sshd's business here.
    'StrictModes no',
    'Subsystem sftp internal-sftp',
    'X11Forwarding no',
    'PrintMotd no',
    '',
  ].join('\n');
}

export interface StartSshdOptions {
  sshdPath?: string;
  /** How long sshd may take to say it listens (generous: a loaded machine). */
  readyTimeoutMs?: number;
  log?: (line: string) => void;
  /** The address to listen on (default 127.0.0.1). */
  host?: string;
  /** Runs sshd elsewhere: `ip netns exec NAME` (a network namespace). */
  wrap?: readonly string[];
}

/**
 * Generates keys and a config in `dir`, starts `sshd -D -f CONFIG -e` on a free port of 127.0.0.1
 * and resolves once sshd reports that it listens.
 */
export async function startSshd(dir: string, options: StartSshdOptions = {}): Promise<RunningSshd> {
  const sshdPath = options.sshdPath ?? SSHD_PATH;
  const why = sshdUnavailable(sshdPath);
  if (why) throw new SshdStartError(why);
  await mkdir(dir, { recursive: true });
  await keygen(join(dir, 'host_ed25519'), 'ferry-bench-host');
  await keygen(join(dir, 'client_ed25519'), 'ferry-bench-client');
  if (process.getuid?.() === 0 && !existsSync(PRIVSEP_DIR)) {
    mkdirSync(PRIVSEP_DIR, { mode: 0o755 });
    options.log?.(`created ${PRIVSEP_DIR} (sshd run as root needs it)`);
  }
  const configFile = join(dir, 'sshd_config');
  let lastError: Error | undefined;
  // The free port can be taken between our probe and sshd's bind: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const host = options.host ?? HOST;
    await writeFile(configFile, sshdConfig(dir, port, host));
    try {
      return await launch(
        sshdPath,
        configFile,
        { host, port, wrap: options.wrap ?? [] },
        dir,
        options.readyTimeoutMs ?? 30_000,
      );
    } catch (error) {
      lastError = error as Error;
      if (!/Address already in use|Bind to port/i.test(lastError.message)) break;
    }
  }
  throw lastError ?? new SshdStartError('sshd did not start');
}

function launch(
  sshdPath: string,
  configFile: string,
  at: { host: string; port: number; wrap: readonly string[] },
  dir: string,
  readyTimeoutMs: number,
): Promise<RunningSshd> {
  const { host, port } = at;
  // -D: stay in the foreground (its pid is ours to stop); -e: log to stderr. A wrap (ip netns exec)
  // execs sshd in the same process.
  const [file, ...args] = [...at.wrap, sshdPath, '-D', '-f', configFile, '-e'];
  const child = spawn(file!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  let stderr = '';
  const exited = new Promise<void>((resolve) => {
    child.once('close', () => {
      live.delete(child);
      resolve();
    });
  });
  const tail = () => stderr.trim().split('\n').slice(-8).join('\n');
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(force);
  };
  return new Promise<RunningSshd>((resolve, reject) => {
    let settled = false;
    const fail = (message: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void stop().then(() => reject(new SshdStartError(message)));
    };
    const timer = setTimeout(
      () => fail(`sshd did not report listening within ${readyTimeoutMs} ms: ${tail()}`),
      readyTimeoutMs,
    );
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-16_384);
      if (settled || !stderr.includes(`Server listening on ${host} port ${port}`)) return;
      settled = true;
      clearTimeout(timer);
      resolve({
        pid: child.pid ?? -1,
        port,
        client: {
          host,
          port,
          identityFile: join(dir, 'client_ed25519'),
          knownHostsFile: join(dir, 'known_hosts'),
        },
        log: tail,
        stop,
      });
    });
    child.once('error', (error) => fail(`sshd (${sshdPath}) did not start: ${error.message}`));
    void exited.then(() =>
      fail(`sshd exited (${child.exitCode ?? child.signalCode}) before it listened: ${tail()}`),
    );
  });
}

/** `ssh -V`'s line ("OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19 ..."), or undefined. */
export async function openSshVersion(): Promise<string | undefined> {
  try {
    const { stderr, stdout } = await execFileAsync('ssh', ['-V'], { timeout: 10_000 });
    return (stderr || stdout).trim().split('\n')[0];
  } catch {
    return undefined;
  }
}
