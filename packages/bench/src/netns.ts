/**
 * A real 1500-MTU link for the bench, built from the kernel's own parts: two network namespaces
 * joined by a veth pair, each end shaped by tbf (a rate and a queue, counting Ethernet frames) and
 * losing a share of what it receives at random (an nftables rule). Only root can build it, and only
 * where iproute2 (`ip`, `tc`) and nftables (`nft`) are installed; the bench says so and skips the
 * scenario otherwise. Every command has a bounded wait; the namespaces (and with them the veth pair)
 * are deleted by `delete()`, and also when the bench is interrupted (SIGINT, SIGTERM) or exits.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { findOnPath } from './peers/sshd.js';
import { UndoOnExit } from './undo-on-exit.js';

const execFileAsync = promisify(execFile);

/** The link between the namespaces; the same both ways. */
export interface NamespaceLinkConfig {
  /** tbf rate, bits per second (tbf counts whole Ethernet frames: 14-byte header, IP, UDP/TCP). */
  rateBitsPerSecond: number;
  /** Share of the packets each end receives that it drops at random (0.01 = 1 %). */
  loss: number;
  mtu: number;
  /** tbf bucket: how much may leave at once, in bytes. */
  burstBytes: number;
  /** tbf queue: the longest a packet may wait, in ms (the queue holds rate × this). */
  latencyMs: number;
}

/** The issue's link: 100 Mbit/s, 1 % random loss, MTU 1500, no added delay. */
export const ISSUE_LINK: NamespaceLinkConfig = {
  rateBitsPerSecond: 100e6,
  loss: 0.01,
  mtu: 1500,
  burstBytes: 32 * 1024,
  latencyMs: 50,
};

/**
 * Addresses from 198.18.0.0/15, the range set aside for benchmarking network devices (RFC 2544): no
 * other host uses them, and they never leave the two namespaces.
 */
export const SERVER_ADDRESS = '198.18.0.1';
export const CLIENT_ADDRESS = '198.18.0.2';
const PREFIX_LENGTH = 30;

/** Longest wait for one ip / tc / nft command (they take milliseconds; a busy machine, seconds). */
export const COMMAND_TIMEOUT_MS = 20_000;

/** Why the namespace link cannot be built here, or undefined when it can. */
export function namespaceLinkUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'not root (network namespaces, tc and nftables need root)';
  const missing = ['ip', 'tc', 'nft'].filter((tool) => findOnPath(tool) === undefined);
  if (missing.length > 0) {
    const packages = [
      ...(missing.includes('ip') || missing.includes('tc') ? ['iproute2'] : []),
      ...(missing.includes('nft') ? ['nftables'] : []),
    ];
    return `${missing.join(', ')} not installed (Debian: apt-get install ${packages.join(' ')})`;
  }
  return undefined;
}

export interface NamespaceEnd {
  /** The network namespace's name (`ip netns exec NAME …`). */
  namespace: string;
  /** The veth end's interface name inside it. */
  device: string;
  address: string;
}

export interface NamespaceLink {
  readonly config: NamespaceLinkConfig;
  readonly server: NamespaceEnd;
  readonly client: NamespaceEnd;
  /** The words that run a command inside a namespace: `ip netns exec NAME`. */
  exec(end: NamespaceEnd): string[];
  /** Deletes both namespaces (and so the veth pair); safe to call more than once. */
  delete(): Promise<void>;
}

/** Links still standing: deleted if the bench is interrupted or exits without deleting them. */
const live = new UndoOnExit<{ namespaces: string[] }>((link) => deleteNow(link.namespaces));

function deleteNow(namespaces: readonly string[]): void {
  for (const ns of namespaces) {
    try {
      execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore', timeout: COMMAND_TIMEOUT_MS });
    } catch {
      /* already gone */
    }
  }
}

export class NamespaceLinkError extends Error {}

async function run(file: string, args: readonly string[], input?: string): Promise<void> {
  try {
    const child = execFileAsync(file, [...args], { timeout: COMMAND_TIMEOUT_MS });
    if (input !== undefined) child.child.stdin?.end(input);
    await child;
  } catch (error) {
    const e = error as { stderr?: string; message: string; killed?: boolean };
    const why = e.killed ? `no answer within ${COMMAND_TIMEOUT_MS} ms` : (e.stderr || e.message).trim();
    throw new NamespaceLinkError(`${file} ${args.join(' ')}: ${why}`);
  }
}

/** Polls until the veth end is operationally up (`state UP`), within COMMAND_TIMEOUT_MS. */
async function waitUntilUp(end: NamespaceEnd): Promise<void> {
  const deadline = Date.now() + COMMAND_TIMEOUT_MS;
  for (;;) {
    const { stdout } = await execFileAsync('ip', ['-n', end.namespace, '-o', 'link', 'show', end.device], {
      timeout: COMMAND_TIMEOUT_MS,
    });
    if (/\bstate UP\b/.test(stdout)) return;
    if (Date.now() > deadline) {
      throw new NamespaceLinkError(
        `${end.device} in ${end.namespace} did not come up within ${COMMAND_TIMEOUT_MS} ms`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The nftables ruleset that drops `loss` of the packets a namespace receives, at random. */
export function lossRuleset(loss: number): string {
  // numgen draws from 0..9999: a resolution of 0.01 %.
  const threshold = Math.round(loss * 10_000);
  return [
    'table inet ferry_bench {',
    '  chain input {',
    '    type filter hook input priority 0; policy accept;',
    ...(threshold > 0 ? [`    numgen random mod 10000 < ${threshold} drop`] : []),
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The tc arguments that shape `device` to the link's rate and queue. */
export function tbfArgs(namespace: string, device: string, config: NamespaceLinkConfig): string[] {
  return [
    '-n',
    namespace,
    'qdisc',
    'add',
    'dev',
    device,
    'root',
    'tbf',
    'rate',
    `${Math.round(config.rateBitsPerSecond)}bit`,
    'burst',
    String(config.burstBytes),
    'latency',
    `${config.latencyMs}ms`,
  ];
}

/**
 * Builds the link: namespaces `ferry-bench-ID-server` and `-client`, a veth pair between them with
 * the given MTU, SERVER_ADDRESS and CLIENT_ADDRESS, tbf on both ends, the loss rule in both. On any
 * failure what was built is deleted and a NamespaceLinkError says which command failed and why.
 */
export async function createNamespaceLink(
  config: NamespaceLinkConfig = ISSUE_LINK,
  log?: (line: string) => void,
): Promise<NamespaceLink> {
  const why = namespaceLinkUnavailable();
  if (why !== undefined) throw new NamespaceLinkError(why);
  const id = `${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
  const server: NamespaceEnd = {
    namespace: `ferry-bench-${id}-server`,
    device: `fb${id}s`.slice(0, 15),
    address: SERVER_ADDRESS,
  };
  const client: NamespaceEnd = {
    namespace: `ferry-bench-${id}-client`,
    device: `fb${id}c`.slice(0, 15),
    address: CLIENT_ADDRESS,
  };
  const entry = { namespaces: [] as string[] };
  live.add(entry);
  const remove = async (): Promise<void> => {
    if (!live.delete(entry)) return;
    for (const ns of entry.namespaces) {
      await run('ip', ['netns', 'delete', ns]).catch(() => {});
    }
  };
  try {
    for (const end of [server, client]) {
      await run('ip', ['netns', 'add', end.namespace]);
      entry.namespaces.push(end.namespace);
    }
    const mtu = String(config.mtu);
    await run('ip', [
      'link',
      'add',
      'name',
      server.device,
      'netns',
      server.namespace,
      'mtu',
      mtu,
      'type',
      'veth',
      'peer',
      'name',
      client.device,
      'netns',
      client.namespace,
      'mtu',
      mtu,
    ]);
    for (const end of [server, client]) {
      await run('ip', [
        '-n',
        end.namespace,
        'addr',
        'add',
        `${end.address}/${PREFIX_LENGTH}`,
        'dev',
        end.device,
      ]);
      await run('ip', ['-n', end.namespace, 'link', 'set', 'lo', 'up']);
      await run('ip', ['-n', end.namespace, 'link', 'set', end.device, 'up']);
      await run('tc', tbfArgs(end.namespace, end.device, config));
      await run('ip', ['netns', 'exec', end.namespace, 'nft', '-f', '-'], lossRuleset(config.loss));
    }
    // The kernel reports a new link's carrier up to a second late; until then the interface is not
    // running (and programs asking for the host's interfaces, as ferry does for its MTU, miss it).
    for (const end of [server, client]) await waitUntilUp(end);
  } catch (error) {
    await remove();
    throw error;
  }
  log?.(
    `namespace link: ${server.namespace} (${server.address}) <-> ${client.namespace} (${client.address}), ` +
      `veth MTU ${config.mtu}, tbf ${config.rateBitsPerSecond / 1e6} Mbit/s, ${config.loss * 100} % random drop each way`,
  );
  return {
    config,
    server,
    client,
    exec: (end) => ['ip', 'netns', 'exec', end.namespace],
    delete: remove,
  };
}

/** The names of the network namespaces that exist now (`ip netns list`). */
export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await execFileAsync('ip', ['netns', 'list'], { timeout: COMMAND_TIMEOUT_MS });
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name.length > 0);
}
