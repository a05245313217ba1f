/**
 * The `ferry-server` command: `ferry-server [PORT]` serves the current directory (or --root) to
 * clients holding its key, as the seed's `server.py 7777` did. Prints one line on start; on SIGINT
 * or SIGTERM stops accepting, lets transfers finish for a short grace period and exits 0.
 */
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import {
  flagOption,
  parseWords,
  runMatched,
  stringOption,
  tuneGarbageCollection,
  usageError,
} from '@ferry/cli-kit';
import { cac } from 'cac';

export const DEFAULT_PORT = 7777;
const MIB = 1024 * 1024;
/** How long a stopping server lets running transfers finish. */
export const GRACE_MS = 3000;

const HELP_FOOTER = `Keys:
  Clients must hold the server's key. The key is --key FILE, else $FERRY_KEY (the key itself),
  else ~/.config/ferry/key ($XDG_CONFIG_HOME/ferry/key), created (mode 0600) on first start.
  --keys FILE lists several named keys, one per line: "NAME rw KEY" or "NAME ro KEY"
  (ro = read-only: get, list and stat only). Make keys with \`ferry keygen\`.

Exit codes:
  0 stopped by SIGINT/SIGTERM, 1 bug, 2 usage, key or root problem, 5 permission denied,
  8 the port is in use`;

interface Settings {
  port: number;
  host: string | undefined;
  root: string;
  keyFile: string | undefined;
  keysFile: string | undefined;
  readOnly: boolean;
  maxSessions: number | undefined;
  blockSize: number | undefined;
  idleTimeoutMs: number | undefined;
  partialTtlMs: number | undefined;
  maxBufferedBytes: number | undefined;
  maxSessionBufferedBytes: number | undefined;
  json: boolean;
}

function version(): string {
  try {
    return (createRequire(import.meta.url)('../package.json') as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

function parseWhole(option: string, text: string, min: number, max: number): number {
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw usageError(
      `invalid ${option} ${JSON.stringify(text)} (expected a whole number from ${min} to ${max})`,
    );
  }
  return value;
}

const DURATION_UNITS: Record<string, number> = { '': 1000, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90`, `90s`, `30m`, `24h`, `7d` → milliseconds. */
export function parseDuration(option: string, text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$/.exec(text);
  const ms = match ? Number(match[1]) * DURATION_UNITS[match[2]!]! : Number.NaN;
  if (!(ms > 0) || !Number.isFinite(ms)) {
    throw usageError(`invalid ${option} ${JSON.stringify(text)} (expected a duration: 90s, 30m, 24h, 7d)`);
  }
  return Math.round(ms);
}

function settingsFrom(port: string | undefined, options: Record<string, unknown>): Settings {
  const maxSessions = stringOption(options, 'maxSessions', '--max-sessions');
  const blockSize = stringOption(options, 'blockSize', '--block-size');
  const timeout = stringOption(options, 'timeout', '--timeout');
  const ttl = stringOption(options, 'partialTtl', '--partial-ttl');
  const maxBuffer = stringOption(options, 'maxBuffer', '--max-buffer');
  const maxSessionBuffer = stringOption(options, 'maxSessionBuffer', '--max-session-buffer');
  const keyFile = stringOption(options, 'key', '--key');
  const keysFile = stringOption(options, 'keys', '--keys');
  if (keyFile !== undefined && keysFile !== undefined)
    throw usageError('give either --key or --keys, not both');
  return {
    port: port === undefined ? DEFAULT_PORT : parseWhole('port', port, 0, 65535),
    host: stringOption(options, 'host', '--host'),
    root: resolve(stringOption(options, 'root', '--root') ?? '.'),
    keyFile,
    keysFile,
    readOnly: flagOption(options, 'readOnly'),
    maxSessions: maxSessions === undefined ? undefined : parseWhole('--max-sessions', maxSessions, 1, 65536),
    blockSize: blockSize === undefined ? undefined : parseWhole('--block-size', blockSize, 512, 64512),
    idleTimeoutMs: timeout === undefined ? undefined : parseDuration('--timeout', timeout),
    partialTtlMs: ttl === undefined ? undefined : parseDuration('--partial-ttl', ttl),
    maxBufferedBytes:
      maxBuffer === undefined ? undefined : parseWhole('--max-buffer', maxBuffer, 1, 1 << 20) * MIB,
    maxSessionBufferedBytes:
      maxSessionBuffer === undefined
        ? undefined
        : parseWhole('--max-session-buffer', maxSessionBuffer, 1, 1 << 20) * MIB,
    json: flagOption(options, 'json'),
  };
}

/** Runs `ferry-server` with `argv` (the arguments after the program name); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  tuneGarbageCollection();
  const cli = cac('ferry-server');
  let settings: Settings | undefined;
  cli
    .command('[port]', 'Serve a directory to ferry clients on UDP PORT (default 7777; 0 = any free port)')
    .usage('[PORT] [options]')
    .option('--root <dir>', 'Directory to serve (default: the current directory)')
    .option('--host <address>', 'Address to listen on (default :: = every interface, IPv4 and IPv6)')
    .option('--key <file>', 'Key file (default: $FERRY_KEY, else ~/.config/ferry/key, created if missing)')
    .option('--keys <file>', 'Several named keys, each read-only (ro) or read-write (rw)')
    .option('--read-only', 'Refuse put, rename and delete for every key')
    .option('--max-sessions <n>', 'Most clients at once (default 256)')
    .option('--block-size <bytes>', 'Largest data block offered (default 64512)')
    .option('--timeout <seconds>', 'Drop a client silent this long (default 30)')
    .option('--partial-ttl <duration>', 'Keep interrupted uploads this long for resume (default 24h)')
    .option('--max-buffer <MiB>', 'Most file data held in memory for sending, all clients (default 256)')
    .option(
      '--max-session-buffer <MiB>',
      'Most file data held in memory for sending, per client (default 16)',
    )
    .option('--json', 'NDJSON log lines on stdout')
    .example('  $ ferry-server 7777                       # serve this directory, as server.py 7777 did')
    .example('  $ ferry-server --root /srv/files --keys /etc/ferry/keys')
    .action((port: string | undefined, options: Record<string, unknown>) => {
      settings = settingsFrom(port, options);
    });
  cli.help((sections) => [...sections, { body: HELP_FOOTER }]);
  cli.version(version());
  try {
    const { options } = parseWords(cli, argv);
    if (flagOption(options, 'help') || flagOption(options, 'version')) return 0;
    await runMatched(cli);
    if (settings === undefined) return 0;
    return await serve(settings);
  } catch (error) {
    return report(error, argv.includes('--json'));
  }
}

async function serve(settings: Settings): Promise<number> {
  const { stat } = await import('node:fs/promises');
  const rootStat = await stat(settings.root).catch(() => undefined);
  if (rootStat === undefined) throw usageError(`the directory to serve, ${settings.root}, does not exist`);
  if (!rootStat.isDirectory()) throw usageError(`the root ${settings.root} is not a directory`);

  const out = process.stdout;
  const { logSink } = await import('./log.js');
  const log = logSink(settings.json, out);
  const { keyFingerprint } = await import('@ferry/crypto');
  const keys = await loadServerKeys(settings, (created) => {
    log({
      type: 'key-created',
      level: 'info',
      msg:
        `created a new key in ${created} (mode 0600). Clients need it: copy the file to theirs ` +
        `(scp ${hostname()}:${created} ~/.config/ferry/key) or set FERRY_KEY to its contents`,
      path: created,
    });
  });
  const { FerryServer } = await import('./server.js');
  const server = new FerryServer({
    root: settings.root,
    port: settings.port,
    keys,
    readOnly: settings.readOnly,
    log,
    ...(settings.host !== undefined ? { host: settings.host } : {}),
    ...(settings.maxSessions !== undefined ? { maxSessions: settings.maxSessions } : {}),
    ...(settings.blockSize !== undefined ? { blockSize: settings.blockSize } : {}),
    ...(settings.idleTimeoutMs !== undefined ? { idleTimeoutMs: settings.idleTimeoutMs } : {}),
    ...(settings.partialTtlMs !== undefined ? { partialTtlMs: settings.partialTtlMs } : {}),
    ...(settings.maxBufferedBytes !== undefined ? { maxBufferedBytes: settings.maxBufferedBytes } : {}),
    ...(settings.maxSessionBufferedBytes !== undefined
      ? { maxSessionBufferedBytes: settings.maxSessionBufferedBytes }
      : {}),
  });
  const address = await server.listen();
  const url = `udp://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  const access = settings.readOnly
    ? 'read-only'
    : keys.every((k) => k.access === 'read-write')
      ? 'read-write'
      : keys.every((k) => k.access === 'read-only')
        ? 'read-only'
        : 'access per key';
  const keyText =
    keys.length === 1
      ? `key ${keyFingerprint(keys[0]!.key)}`
      : `${keys.length} keys: ${keys.map((k) => `${k.name} ${keyFingerprint(k.key)}`).join(', ')}`;
  log({
    type: 'listening',
    level: 'info',
    msg: `serving ${settings.root} on ${url} (${keyText}, ${access})`,
    root: settings.root,
    address: address.address,
    port: address.port,
    readOnly: settings.readOnly,
    keys: keys.map((k) => ({
      name: k.name,
      access: settings.readOnly ? 'read-only' : k.access,
      id: keyFingerprint(k.key),
    })),
  });

  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        // A second signal: the user does not want to wait for the grace period.
        process.exit(130);
      }
      stopping = true;
      log({
        type: 'stopping',
        level: 'info',
        msg: `${signal}: stopping; running transfers get up to ${GRACE_MS / 1000} s to finish`,
        signal,
      });
      server.close(GRACE_MS).then(
        () => {
          log({ type: 'stopped', level: 'info', msg: 'stopped' });
          resolveExit(0);
        },
        (error: unknown) => {
          log({ type: 'stop-failed', level: 'error', msg: `stopping failed: ${(error as Error).message}` });
          resolveExit(0);
        },
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

interface LoadedKey {
  name: string;
  access: 'read-only' | 'read-write';
  key: import('@ferry/crypto').FernetKey;
}

/** --keys, --key, FERRY_KEY or the default key file, which is created when missing. */
async function loadServerKeys(settings: Settings, created: (path: string) => void): Promise<LoadedKey[]> {
  const crypto = await import('@ferry/crypto');
  if (settings.keysFile !== undefined) {
    const { readKeysFile } = await import('./keys.js');
    return readKeysFile(settings.keysFile);
  }
  const single = (key: import('@ferry/crypto').FernetKey): LoadedKey[] => [
    { name: 'default', access: 'read-write', key },
  ];
  if (settings.keyFile !== undefined) return single(await crypto.readKeyFile(settings.keyFile));
  const fromEnv = crypto.keyFromEnv();
  if (fromEnv !== undefined) return single(fromEnv);
  const path = crypto.defaultKeyPath();
  try {
    await crypto.writeNewKeyFile(path);
    created(path);
  } catch (error) {
    if (!crypto.isCryptoError(error, 'EKEYEXISTS')) throw error;
  }
  return single(await crypto.readKeyFile(path));
}

const EXIT_BY_CODE: Record<string, number> = {
  EUSAGE: 2,
  EKEYFILE: 2,
  EINVALIDKEY: 2,
  EKEYEXISTS: 4,
};

async function report(error: unknown, json: boolean): Promise<number> {
  const { exitCodeFor, isErrorName } = await import('@ferry/protocol');
  const e = error as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : 'EINTERNAL';
  let message = typeof e?.message === 'string' ? e.message : String(error);
  let exitCode = EXIT_BY_CODE[code] ?? (isErrorName(code) ? exitCodeFor(code) : 1);
  let reportedCode = code;
  if (code === 'EADDRINUSE' || /already in use/.test(message)) {
    exitCode = 8;
    reportedCode = 'EBUSY';
  } else if (exitCode === 1) {
    reportedCode = 'EINTERNAL';
    message = `internal error (this is a bug in ferry-server; please report it): ${message}`;
  }
  if (json)
    process.stdout.write(
      `${JSON.stringify({ type: 'error', level: 'error', code: reportedCode, msg: message })}\n`,
    );
  process.stderr.write(`ferry-server: ${message}\n`);
  if (exitCode === 1 && process.env.FERRY_DEBUG === '1' && error instanceof Error) {
    process.stderr.write(`${error.stack}\n`);
  }
  return exitCode;
}
