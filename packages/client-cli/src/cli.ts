/**
 * The `ferry` command: `ferry HOST[:PORT]` opens the shell, `ferry get|put|list|rename|delete|stat|
 * mkdir|rmdir HOST[:PORT] …` run one command, `ferry keygen` makes a key. This module only parses; each
 * command's code is loaded when it runs, so --help stays instant. `main` never throws: it prints
 * one line per error and returns the exit code from the error table.
 */
import { createRequire } from 'node:module';
import {
  flagOption,
  parseWords,
  quietOnClosedOutput,
  runMatched,
  tidyHelp,
  usageError,
} from '@ferry/cli-kit';
import { type CAC, cac } from 'cac';
import { parsePort, parseTarget, type Target } from './args.js';
import { COMMANDS, type CommandSpec, FLAG_OPTIONS, findCommand } from './command-table.js';
import type { Output } from './output.js';

const HELP_FOOTER = `Keys:
  Client and server hold the same key. The key is --key FILE, else $FERRY_KEY (the key itself),
  else ~/.config/ferry/key ($XDG_CONFIG_HOME/ferry/key). The server makes that file on first start;
  copy it to the client (scp SERVER:.config/ferry/key ~/.config/ferry/key) or set FERRY_KEY.

Exit codes:
  0 ok, 1 bug, 2 usage or key problem, 3 not found, 4 already exists, 5 permission denied,
  6 disk full or I/O error, 7 key not accepted, 8 timeout or connection lost, 9 protocol,
  10 integrity (SHA-256 mismatch or file changed), 130 canceled`;

interface Invocation {
  run(): Promise<number>;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function version(): string {
  try {
    return (createRequire(import.meta.url)('../package.json') as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

function buildCli(select: (invocation: Invocation) => void): CAC {
  const cli = cac('ferry');
  cli
    .option('--key <file>', 'Key file (default: $FERRY_KEY, else ~/.config/ferry/key)')
    .option('--json', 'NDJSON events on stdout: start, progress, done, entry, error')
    .option('-q, --quiet', 'No progress bars or confirmations; errors only')
    // The transport's DEFAULT_HANDSHAKE_TIMEOUT_MS and DEFAULT_IDLE_TIMEOUT_MS (not imported: --help stays instant).
    .option(
      '--timeout <seconds>',
      'Give up on a silent server after this long (default: 10 s to answer, 30 s once connected)',
    )
    .option(
      '--block-size <bytes>',
      'Fixed data block size (default 64512 on loopback, else what the path carries, from 1120)',
    )
    .option('--limit <rate>', 'Cap the transfer rate, both ways, in bytes/s (10M = 10 MiB/s, 500k, 2MB)')
    .option('--window <packets>', 'Fixed window of N packets, for comparisons (1 = stop-and-wait)');

  cli
    .command('[host] [port]', 'Open the interactive shell on HOST[:PORT] (get, put, rename, list, exit, …)')
    .usage(
      'HOST[:PORT]                 open the interactive shell\n  $ ferry COMMAND HOST[:PORT] ARGS…   run one command (below)',
    )
    .option(FLAG_OPTIONS.force.raw, FLAG_OPTIONS.force.description)
    .option(FLAG_OPTIONS.resume.raw, FLAG_OPTIONS.resume.description)
    .example('  $ ferry 127.0.0.1 7777          # the shell, as the seed was started')
    .example('  $ ferry get fileserver report.pdf')
    .example('  $ ferry put [::1]:7777 a.bin b.bin -d inbox')
    .example('  $ ferry put -r fileserver photos backup       # the folder photos, into backup/')
    .example("  $ ferry get fileserver 'logs/*.gz'               # a pattern, matched on the server")
    .example('  $ ferry ls fileserver --json')
    .action((host: string | undefined, port: string | undefined, options: Record<string, unknown>) => {
      select({ run: () => shell(cli, host, port, options) });
    });

  for (const spec of COMMANDS) {
    const command = cli
      .command(`${spec.name} <host> ${spec.args}`, capitalize(spec.summary))
      .usage(spec.usage.split('  |  ').join('\n  $ ferry '));
    for (const alias of spec.aliases) command.alias(alias);
    for (const flag of spec.flags) command.option(FLAG_OPTIONS[flag].raw, FLAG_OPTIONS[flag].description);
    command.action((host: string, ...rest: unknown[]) => {
      const options = rest.pop() as Record<string, unknown>;
      const args = rest.flat().filter((a): a is string => typeof a === 'string');
      select({ run: () => remote(spec, host, args, options) });
    });
  }

  cli
    .command(
      'keygen [file]',
      'Write a new key to FILE (default ~/.config/ferry/key; - prints it); never overwrites',
    )
    .action((file: string | undefined, options: Record<string, unknown>) => {
      select({ run: () => keygenCommand(file, options) });
    });

  cli.help((sections) => {
    const kept = tidyHelp(sections);
    const commands = kept.find((s) => s.title === 'Commands');
    if (commands !== undefined) {
      const rows: [string, string][] = [
        ...COMMANDS.map((c): [string, string] => [
          `${[c.name, ...c.aliases].join('|')} HOST ${c.synopsis.split(' ').slice(1).join(' ')}`,
          capitalize(c.summary),
        ]),
        ['keygen [FILE]', 'Write a new key (default ~/.config/ferry/key; - prints it)'],
      ];
      const width = Math.max(...rows.map(([u]) => u.length));
      commands.body = [
        ...rows.map(([u, d]) => `  ${u.padEnd(width)}  ${d}`),
        '',
        '  HOST is a name or address, with :PORT (default 7777); IPv6 as [::1]:7777.',
        '  Run `ferry COMMAND --help` for the options of one command.',
      ].join('\n');
    }
    return [...kept, { body: HELP_FOOTER }];
  });
  cli.version(version());
  return cli;
}

async function makeOutput(options: Record<string, unknown>): Promise<Output> {
  const { Output } = await import('./output.js');
  return new Output({ json: flagOption(options, 'json'), quiet: flagOption(options, 'quiet') });
}

/** Runs a one-shot remote command: connect, run, close; Ctrl-C cancels the transfer (exit 130). */
async function remote(
  spec: CommandSpec,
  host: string,
  args: string[],
  options: Record<string, unknown>,
): Promise<number> {
  const target = parseTarget(host);
  const { connectionSettings, connector, closeQuietly } = await import('./connect.js');
  const settings = connectionSettings(options);
  const out = await makeOutput(options);
  const { commandFlags, runCommand } = await import('./commands.js');
  const { connect } = await connector(target, settings);
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (): void => {
    signals++;
    controller.abort();
    // A transfer ends at once when canceled; anything else (a handshake) is not worth waiting for.
    if (signals > 1) process.exit(130);
    setTimeout(() => process.exit(130), 2000).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let client: Awaited<ReturnType<typeof connect>> | undefined;
  try {
    client = await connect();
    await runCommand(
      spec.name,
      {
        client,
        out,
        flags: commandFlags(options),
        signal: controller.signal,
        resumeHint: () => 'run the same command with --resume to continue it',
      },
      args,
    );
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await closeQuietly(client);
  }
}

async function shell(
  cli: CAC,
  host: string | undefined,
  port: string | undefined,
  options: Record<string, unknown>,
): Promise<number> {
  if (host === undefined) {
    cli.outputHelp();
    return 2;
  }
  if (port !== undefined && !/^\d+$/.test(port)) {
    // An address (`ferry 127.0.0.1 abc`) is followed by a port; after a bare word (`ferry gett host`)
    // a mistyped command is more likely than a host named "gett".
    if (/[.:[]/.test(host) || host === 'localhost') parsePort(port);
    throw usageError(
      `unknown command "${host}" (commands: ${COMMANDS.map((c) => c.name).join(', ')}, keygen)`,
    );
  }
  const target: Target = parseTarget(host, port === undefined ? undefined : String(parsePort(port)));
  const { connectionSettings, connector } = await import('./connect.js');
  const settings = connectionSettings(options);
  const out = await makeOutput(options);
  const { runShell } = await import('./shell.js');
  return runShell({
    target,
    connector: await connector(target, settings),
    out,
    force: flagOption(options, 'force'),
    resume: flagOption(options, 'resume'),
  });
}

async function keygenCommand(file: string | undefined, options: Record<string, unknown>): Promise<number> {
  const out = await makeOutput(options);
  if (file === '-') {
    const { generateKey, keyFingerprint, parseKey } = await import('@ferry/crypto');
    const key = generateKey();
    out.event({ type: 'done', op: 'keygen', key, fingerprint: keyFingerprint(parseKey(key)) });
    if (!out.json) out.stdout.write(`${key}\n`);
    return 0;
  }
  const { keygen } = await import('./key-source.js');
  const made = await keygen(file);
  out.event({ type: 'done', op: 'keygen', path: made.path, fingerprint: made.fingerprint });
  out.result(`wrote a new key to ${made.path} (key id ${made.fingerprint})`);
  out.note(
    'The server must hold the same key: copy this file to the server (its ~/.config/ferry/key, or ' +
      'start it with --key FILE), or set FERRY_KEY to the key on both sides.',
  );
  return 0;
}

/** Runs `ferry` with `argv` (the arguments after the program name); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  quietOnClosedOutput('ferry');
  let invocation: Invocation | undefined;
  const cli = buildCli((selected) => {
    invocation = selected;
  });
  try {
    const { options } = parseWords(cli, argv);
    if (flagOption(options, 'help') || flagOption(options, 'version')) return 0; // cac printed it
    const matched = cli.matchedCommand;
    if (matched?.isDefaultCommand && cli.args.length > 2) {
      throw usageError(`unknown command "${cli.args[0]}"; see ferry --help`);
    }
    await runMatched(cli, (name) => {
      const forms = findCommand(name)?.usage.split('  |  ');
      return forms?.map((form) => `ferry ${form}`).join(', or ');
    });
    if (invocation === undefined) return 0;
    return await invocation.run();
  } catch (error) {
    return report(error, argv);
  }
}

async function report(error: unknown, argv: readonly string[]): Promise<number> {
  const [{ describeError }, { Output }] = await Promise.all([import('./errors.js'), import('./output.js')]);
  const described = describeError(error);
  if ((error as Error)?.name === 'ReportedError') return described.exitCode;
  const out = new Output({ json: argv.includes('--json') });
  const hint =
    described.code === 'EUSAGE' &&
    /^(unknown option|missing|too many)/.test(described.message) &&
    !described.message.includes('usage:');
  out.error(described.code, hint ? `${described.message} (see ferry --help)` : described.message);
  if (described.bug && process.env.FERRY_DEBUG === '1' && error instanceof Error) {
    process.stderr.write(`${error.stack}\n`);
  }
  return described.exitCode;
}
