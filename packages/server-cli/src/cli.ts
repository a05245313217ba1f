/**
 * The `ferry-server` command: `ferry-server [PORT]` serves the current directory (or --root, or
 * --storage: a directory or an S3 bucket) to clients holding its key, as the seed's `server.py 7777` did. Prints one line on start; on SIGINT
 * or SIGTERM stops accepting, lets transfers finish for a short grace period and exits 0.
 */
import { constants } from 'node:fs';
import { access as checkAccess, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { flagOption, parseWords, runMatched, stringOption, tidyHelp, usageError } from '@ferry/cli-kit';
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
  0 stopped by SIGINT/SIGTERM, 1 bug, 2 usage, key or root problem (a missing bucket, refused
  S3 credentials), 5 permission denied, 6 the S3 endpoint cannot be reached, 8 the port is in use

S3:
  --storage s3://BUCKET[/PREFIX] serves the files below PREFIX in BUCKET; several servers may share
  it (see docs/SCALING.md). Credentials and region come from the AWS SDK's usual sources:
  AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_PROFILE and ~/.aws.`;

/** What to serve: a directory, or a bucket (and prefix) of an S3 API. */
type StorageSetting =
  | { kind: 'dir'; root: string }
  | { kind: 's3'; url: string; endpoint: string | undefined; forcePathStyle: boolean };

interface Settings {
  port: number;
  host: string | undefined;
  storage: StorageSetting;
  keyFile: string | undefined;
  keysFile: string | undefined;
  readOnly: boolean;
  maxSessions: number | undefined;
  blockSize: number | undefined;
  idleTimeoutMs: number | undefined;
  partialTtlMs: number | undefined;
  allowPathRaces: boolean;
  maxBufferedBytes: number | undefined;
  maxSessionBufferedBytes: number | undefined;
  json: boolean;
  seedCompat: SeedCompatSettings | undefined;
}

/** --seed-compat and its options: a listener for the seed's own client. */
interface SeedCompatSettings {
  port: number;
  host: string | undefined;
  writable: boolean;
  keyFile: string | undefined;
  seedNames: boolean;
  maxTransfers: number | undefined;
}

function seedCompatFrom(options: Record<string, unknown>, readOnly: boolean): SeedCompatSettings | undefined {
  const port = stringOption(options, 'seedCompat', '--seed-compat');
  const host = stringOption(options, 'seedCompatHost', '--seed-compat-host');
  const keyFile = stringOption(options, 'seedCompatKey', '--seed-compat-key');
  const maxTransfers = stringOption(options, 'seedCompatMaxTransfers', '--seed-compat-max-transfers');
  const writable = flagOption(options, 'seedCompatRw');
  const seedNames = flagOption(options, 'seedCompatNames');
  if (port === undefined) {
    const stray = [
      host !== undefined && '--seed-compat-host',
      keyFile !== undefined && '--seed-compat-key',
      maxTransfers !== undefined && '--seed-compat-max-transfers',
      writable && '--seed-compat-rw',
      seedNames && '--seed-compat-names',
    ].filter((o) => o !== false);
    if (stray.length > 0) {
      throw usageError(`${stray.join(', ')} need${stray.length === 1 ? 's' : ''} --seed-compat PORT`);
    }
    return undefined;
  }
  if (writable && readOnly) throw usageError('--seed-compat-rw contradicts --read-only; give one of them');
  return {
    port: parseWhole('--seed-compat', port, 0, 65535),
    host,
    writable,
    keyFile,
    seedNames,
    maxTransfers:
      maxTransfers === undefined
        ? undefined
        : parseWhole('--seed-compat-max-transfers', maxTransfers, 1, 1024),
  };
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
    storage: storageFrom(options),
    keyFile,
    keysFile,
    readOnly: flagOption(options, 'readOnly'),
    allowPathRaces: flagOption(options, 'allowPathRaces'),
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
    seedCompat: seedCompatFrom(options, flagOption(options, 'readOnly')),
  };
}

function storageFrom(options: Record<string, unknown>): StorageSetting {
  const root = stringOption(options, 'root', '--root');
  const storage = stringOption(options, 'storage', '--storage');
  // cac camel-cases only a letter after '-': these keys keep the '-' before the digit.
  const endpoint = stringOption(options, 's3-endpoint', '--s3-endpoint');
  const forcePathStyle = flagOption(options, 's3-forcePathStyle');
  if (root !== undefined && storage !== undefined)
    throw usageError('give either --root or --storage, not both');
  if (storage?.startsWith('s3://') === true) return { kind: 's3', url: storage, endpoint, forcePathStyle };
  if (endpoint !== undefined || forcePathStyle) {
    throw usageError('--s3-endpoint and --s3-force-path-style go with --storage s3://BUCKET[/PREFIX]');
  }
  return { kind: 'dir', root: resolve(storage ?? root ?? '.') };
}

/** Runs `ferry-server` with `argv` (the arguments after the program name); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const cli = cac('ferry-server');
  let settings: Settings | undefined;
  cli
    .command('[port]', 'Serve a directory to ferry clients on UDP PORT (default 7777; 0 = any free port)')
    .usage('[PORT] [options]')
    .option('--root <dir>', 'Directory to serve (default: the current directory)')
    .option('--storage <dir|s3-url>', 'What to serve: a directory (as --root) or s3://BUCKET[/PREFIX]')
    .option('--s3-endpoint <url>', 'The S3 API to use (Ceph RGW, MinIO, …; default: AWS S3)')
    .option('--s3-force-path-style', 'Address the bucket as ENDPOINT/BUCKET (most self-hosted stores)')
    .option('--host <address>', 'Address to listen on (default :: = every interface, IPv4 and IPv6)')
    .option('--key <file>', 'Key file (default: $FERRY_KEY, else ~/.config/ferry/key, created if missing)')
    .option('--keys <file>', 'Several named keys, each read-only (ro) or read-write (rw)')
    .option('--read-only', 'Refuse put, rename and delete for every key')
    .option('--max-sessions <n>', 'Most clients at once (default 256)')
    .option(
      '--block-size <bytes>',
      'Largest data block offered; fixes it, no path MTU discovery (default 64512)',
    )
    .option('--timeout <seconds>', 'Drop a client silent this long (default 30 s)')
    .option('--partial-ttl <duration>', 'Keep interrupted uploads this long for resume (default 24h)')
    .option('--max-buffer <MiB>', 'Most file data held in memory for sending, all clients (default 256)')
    .option(
      '--max-session-buffer <MiB>',
      'Most file data held in memory for sending, per client (default 16)',
    )
    .option(
      '--allow-path-races',
      'Serve where names cannot be reached through directory descriptors (no /proc/self/fd); see docs/SECURITY.md',
    )
    .option('--json', 'NDJSON log lines on stdout')
    // The seed's own client (client.py HOST PORT) on a second port: its wire format, its weak security.
    .option('--seed-compat <port>', "Also serve the seed's own client.py on this UDP port (weak security)")
    .option('--seed-compat-host <address>', 'Address for --seed-compat (default 127.0.0.1)')
    .option('--seed-compat-rw', 'Let seed clients put and rename (default: read-only)')
    .option('--seed-compat-key <file>', "A Fernet key file to use instead of the seed's public key")
    .option('--seed-compat-names', "Store seed uploads as send_NAME, as the seed's server did")
    .option('--seed-compat-max-transfers <n>', 'Seed-client gets and puts at once (default 16)')
    .example('  $ ferry-server 7777                       # serve this directory, as server.py 7777 did')
    .example('  $ ferry-server --root /srv/files --keys /etc/ferry/keys')
    .example("  $ ferry-server 7777 --seed-compat 7778    # and the seed's client.py on 127.0.0.1:7778")
    .example(
      '  $ ferry-server --storage s3://files/ferry --s3-endpoint http://rgw:7480 --s3-force-path-style',
    )
    .action((port: string | undefined, options: Record<string, unknown>) => {
      settings = settingsFrom(port, options);
    });
  // One command, the default: its own "Commands: [port]" row would only repeat the usage line.
  cli.help((sections) => [
    ...tidyHelp(sections).filter((s) => s.title !== 'Commands'),
    { body: HELP_FOOTER },
  ]);
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
  const { store, location, rootWritable } = await openStorage(settings.storage, settings.allowPathRaces);

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
  const seedCompat = settings.seedCompat;
  const seedCompatKey =
    seedCompat?.keyFile === undefined
      ? undefined
      : await (await import('@ferry/crypto')).readKeyFile(seedCompat.keyFile);
  const { FerryServer } = await import('./server.js');
  const server = new FerryServer({
    store,
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
    ...(seedCompat !== undefined
      ? {
          seedCompat: {
            port: seedCompat.port,
            writable: seedCompat.writable,
            seedNames: seedCompat.seedNames,
            ...(seedCompat.host !== undefined ? { host: seedCompat.host } : {}),
            ...(seedCompatKey !== undefined ? { key: seedCompatKey } : {}),
            ...(seedCompat.maxTransfers !== undefined ? { maxTransfers: seedCompat.maxTransfers } : {}),
          },
        }
      : {}),
  });
  const address = await server.listen();
  const url = `udp://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  const access =
    settings.readOnly || keys.every((k) => k.access === 'read-only')
      ? 'read-only'
      : !rootWritable
        ? settings.storage.kind === 's3'
          ? 'read-only: the bucket does not accept writes with these credentials'
          : 'read-only: the directory is not writable by this user'
        : keys.every((k) => k.access === 'read-write')
          ? 'read-write'
          : 'access per key';
  const keyText =
    keys.length === 1
      ? `key ${keyFingerprint(keys[0]!.key)}`
      : `${keys.length} keys: ${keys.map((k) => `${k.name} ${keyFingerprint(k.key)}`).join(', ')}`;
  log({
    type: 'listening',
    level: 'info',
    msg: `serving ${location} on ${url} (${keyText}, ${access})`,
    root: location,
    address: address.address,
    port: address.port,
    readOnly: settings.readOnly,
    rootWritable,
    keys: keys.map((k) => ({
      name: k.name,
      access: settings.readOnly ? 'read-only' : k.access,
      id: keyFingerprint(k.key),
    })),
  });

  const seedCompatBound = server.seedCompatAddress();
  if (seedCompat !== undefined && seedCompatBound !== undefined) {
    const { seedCompatWarning } = await import('./seed-compat/listener.js');
    log({
      type: 'seed-compat-listening',
      level: 'warn',
      msg: seedCompatWarning(seedCompatBound, seedCompat.writable, seedCompat.keyFile),
      address: seedCompatBound.address,
      port: seedCompatBound.port,
      writable: seedCompat.writable,
      seedNames: seedCompat.seedNames,
      publicKey: seedCompat.keyFile === undefined,
    });
  }

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

/**
 * Opens what the server serves. A directory that is missing or not one is a usage error (exit 2), as
 * are a missing bucket and refused credentials; an S3 endpoint that cannot be reached is EIO (exit 6).
 */
async function openStorage(
  setting: StorageSetting,
  allowPathRaces: boolean,
): Promise<{ store: import('@ferry/storage').Storage; location: string; rootWritable: boolean }> {
  if (setting.kind === 's3') {
    // Loaded only for s3:// (the AWS SDK is large), and synchronously: the command's bundle runs
    // through the code cache, where a dynamic import() has no loader.
    const s3 = createRequire(import.meta.url)('@ferry/storage/s3') as typeof import('@ferry/storage/s3');
    let location: import('@ferry/storage/s3').S3Location;
    try {
      location = s3.parseS3Url(setting.url);
    } catch (error) {
      throw usageError(`invalid --storage: ${(error as Error).message}`);
    }
    let store: import('@ferry/storage/s3').S3Storage;
    try {
      store = await s3.S3Storage.open({
        ...location,
        ...(setting.endpoint !== undefined ? { endpoint: setting.endpoint } : {}),
        forcePathStyle: setting.forcePathStyle,
      });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === 'ENOENT' || code === 'EACCES' || code === 'EINVAL')
        throw usageError((error as Error).message);
      throw error;
    }
    const where = setting.endpoint !== undefined ? ` at ${setting.endpoint}` : '';
    return { store, location: `${store.location}${where}`, rootWritable: await store.writable() };
  }
  const root = setting.root;
  const rootStat = await stat(root).catch(() => undefined);
  if (rootStat === undefined) throw usageError(`the directory to serve, ${root}, does not exist`);
  if (!rootStat.isDirectory()) throw usageError(`the root ${root} is not a directory`);
  // A root this user cannot write is still served (reads work); the start line must not promise writes.
  const rootWritable = await checkAccess(root, constants.W_OK).then(
    () => true,
    () => false,
  );
  const { LocalDiskStorage } = await import('@ferry/storage');
  return { store: await LocalDiskStorage.open(root, { allowPathRaces }), location: root, rootWritable };
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
