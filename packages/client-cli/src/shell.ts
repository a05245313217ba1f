/**
 * The interactive shell (`ferry HOST`): the seed's menu with history, tab completion of commands
 * and remote names, Ctrl-C that cancels the running transfer rather than the shell, and one line
 * per error. Fed by a pipe instead of a terminal it runs the lines it reads, printing only results.
 */
import { mkdir, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import * as readline from 'node:readline';
import { flagOption, outputClosed, parseWords, runMatched, usageError } from '@ferry/cli-kit';
import { defaultKeyPath } from '@ferry/crypto';
import type { Entry } from '@ferry/protocol';
import { cac } from 'cac';
import { formatTarget, quoteWord, splitWords, type Target } from './args.js';
import type { FerryClient } from './client.js';
import { COMMANDS, type CommandSpec, FLAG_OPTIONS, findCommand } from './command-table.js';
import {
  type CommandContext,
  commandFlags,
  localNames,
  remoteJoin,
  runCommand,
  type TransferJob,
} from './commands.js';
import { type Connector, closeQuietly } from './connect.js';
import { describeError, type ErrorReport, ReportedError } from './errors.js';
import type { Output } from './output.js';
import { stateDir } from './state-dir.js';

export interface ShellOptions {
  target: Target;
  connector: Connector;
  out: Output;
  /** Flags given on the `ferry HOST` command line, applied to every command. */
  force: boolean;
  resume: boolean;
  input?: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => void };
  output?: NodeJS.WritableStream & { isTTY?: boolean };
  env?: NodeJS.ProcessEnv;
}

const SHELL_WORDS = ['help', 'exit', 'quit'];
const HISTORY_LINES = 1000;
/** Remote names used for completion are listed again after this long. */
const NAMES_FRESH_MS = 15_000;
/** Completion never waits longer than this for a listing. */
const NAMES_WAIT_MS = 2000;

/** The menu printed on start and by `help`: the seed's commands first. */
export function menu(): string {
  const rows: [string, string][] = [
    ...COMMANDS.map((c): [string, string] => [
      c.synopsis + (c.aliases.length > 0 ? ` (${c.aliases.join(', ')})` : ''),
      c.summary,
    ]),
    ['help [COMMAND]', 'this menu, or the options of COMMAND'],
    ['exit', 'leave (also quit, or Ctrl-D); the server keeps running'],
  ];
  const width = Math.max(...rows.map(([s]) => s.length));
  return ['Commands:', ...rows.map(([s, d]) => `  ${s.padEnd(width)}  ${d}`)].join('\n');
}

function commandHelp(spec: CommandSpec): string {
  const lines = [`usage: ${spec.synopsis}${spec.flags.length > 0 ? ' [options]' : ''}`, `  ${spec.summary}`];
  for (const flag of spec.flags)
    lines.push(`  ${FLAG_OPTIONS[flag].raw.padEnd(16)}  ${FLAG_OPTIONS[flag].description}`);
  if (spec.aliases.length > 0) lines.push(`  also: ${spec.aliases.join(', ')}`);
  return lines.join('\n');
}

/** The shell's parser: the same command table as the one-shot subcommands, without the host. */
function shellParser(): ReturnType<typeof cac> {
  const cli = cac('');
  for (const spec of COMMANDS) {
    const command = cli.command(`${spec.name} ${spec.args}`, spec.summary);
    for (const alias of spec.aliases) command.alias(alias);
    for (const flag of spec.flags) command.option(FLAG_OPTIONS[flag].raw, FLAG_OPTIONS[flag].description);
    command.action((...values: unknown[]) => values);
  }
  return cli;
}

export async function runShell(options_: ShellOptions): Promise<number> {
  const { out, connector, target } = options_;
  const input = options_.input ?? process.stdin;
  const output = options_.output ?? process.stdout;
  const env = options_.env ?? process.env;
  const interactive = input.isTTY === true;
  const where = formatTarget(target);

  let client: FerryClient = await connector.connect();
  if (interactive && !out.json) {
    output.write(
      `Connected to ${where} (${client.access}, key ${connector.key.fingerprint}). ` +
        'Ctrl-C cancels a transfer; Tab completes.\n' +
        `${menu()}\n`,
    );
  }

  const historyFile = new HistoryFile(env);
  const history = interactive ? await historyFile.load() : [];
  const names = new RemoteNames(() => client);
  const rl = readline.createInterface({
    input,
    ...(interactive ? { output } : {}),
    terminal: interactive && output.isTTY === true,
    prompt: 'ferry> ',
    crlfDelay: Number.POSITIVE_INFINITY,
    history,
    historySize: HISTORY_LINES,
    removeHistoryDuplicates: true,
    ...(interactive
      ? {
          completer: (line: string, callback: (error: null, result: [string[], string]) => void): void => {
            complete(line, names).then(
              (result) => callback(null, result),
              () => callback(null, [[], line]),
            );
          },
        }
      : {}),
  });

  let running: AbortController | undefined;
  let pendingQuestion: ((answer: boolean) => void) | undefined;
  let armedExit = false;
  /** Set when the shell already moved to a new line on its way out (Ctrl-C twice). */
  let leftOnNewLine = false;
  const historyLines = (): string[] => (rl as unknown as { history?: string[] }).history ?? [];
  let lastFailure: ErrorReport | undefined;
  const interrupted = new Set<string>();
  const parser = shellParser();

  const ask = (question: string, defaultYes: boolean): Promise<boolean> =>
    new Promise((resolve) => {
      pendingQuestion = resolve;
      // readline records every line entered, answers too: history is for commands, so put it back.
      const commands = [...historyLines()];
      rl.question(`${question} ${defaultYes ? '[Y/n]' : '[y/N]'} `, (answer) => {
        historyLines().splice(0, Number.POSITIVE_INFINITY, ...commands);
        pendingQuestion = undefined;
        const a = answer.trim().toLowerCase();
        resolve(a === '' ? defaultYes : a === 'y' || a === 'yes');
      });
    });

  rl.on('SIGINT', () => {
    if (pendingQuestion !== undefined) {
      // Ctrl-C at a question cancels the command it belongs to; the newline ends the question
      // (whose own answer is then ignored).
      const answer = pendingQuestion;
      pendingQuestion = undefined;
      running?.abort();
      answer(false);
      rl.write('\n');
      return;
    }
    if (running !== undefined) {
      running.abort();
      return;
    }
    if (rl.line.length > 0) {
      armedExit = false;
      rl.write(null, { ctrl: true, name: 'e' });
      rl.write(null, { ctrl: true, name: 'u' });
      return;
    }
    if (armedExit) {
      output.write('\n');
      leftOnNewLine = true;
      rl.close();
      return;
    }
    armedExit = true;
    output.write('\n(Ctrl-C again, Ctrl-D or exit to leave)\n');
    rl.prompt();
  });
  // Without a terminal, Ctrl-C arrives as a signal: cancel the transfer, or leave when idle.
  const onSignal = (): void => {
    if (running !== undefined && !running.signal.aborted) running.abort();
    else process.exit(130);
  };
  process.on('SIGINT', onSignal);

  const execute = async (line: string): Promise<'exit' | undefined> => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return undefined;
    let words: string[];
    try {
      words = splitWords(trimmed);
    } catch (error) {
      lastFailure = report(out, error);
      return undefined;
    }
    const [word, ...rest] = words as [string, ...string[]];
    const command = word.toLowerCase();
    if (command === 'exit' || command === 'quit' || command === 'bye') return 'exit';
    if (command === 'help' || command === '?') {
      const spec = rest[0] === undefined ? undefined : findCommand(rest[0]);
      output.write(`${spec !== undefined ? commandHelp(spec) : menu()}\n`);
      return undefined;
    }
    const spec = findCommand(word);
    if (spec === undefined) {
      lastFailure = report(out, usageError(`unknown command "${word}"; type help for the list`));
      return undefined;
    }
    const controller = new AbortController();
    try {
      parser.unsetMatchedCommand();
      const { options } = parseWords(parser, [spec.name, ...rest]);
      const values = (await runMatched(parser, (name) => findCommand(name)?.synopsis)) as unknown[];
      const args = values
        .slice(0, -1)
        .flat()
        .filter((a): a is string => typeof a === 'string');
      if (client.closed) {
        out.note(`reconnecting to ${where}…`);
        client = await connector.connect();
      }
      running = controller;
      const ctx: CommandContext = {
        client,
        out,
        flags: {
          ...commandFlags(options),
          force: flagOption(options, 'force') || options_.force,
          resume: flagOption(options, 'resume') || options_.resume,
        },
        signal: controller.signal,
        resumeHint: (job) => {
          // The shell offers to resume a file it saw interrupted; a tree is resumed by asking for it.
          const offered = interactive && job.recursive !== true;
          const again = [
            job.op,
            ...(job.recursive === true ? ['-r'] : []),
            ...(offered ? [] : ['--resume']),
            ...jobArgs(job),
          ]
            .map(quoteWord)
            .join(' ');
          return offered ? `run \`${again}\` again to be offered a resume` : `\`${again}\` continues it`;
        },
        listed: (dir, entries) => names.store(dir, entries),
        ...(interactive
          ? {
              ask,
              offerResume: async (job: TransferJob) => {
                const known = interrupted.has(jobKey(job)) || (job.op === 'get' && (await partialFor(job)));
                return known && ask(`resume the interrupted ${job.op} of ${jobName(job)}?`, true);
              },
            }
          : {}),
        transferEnded: (job, error) => {
          if (error === undefined) interrupted.delete(jobKey(job));
          else interrupted.add(jobKey(job));
        },
      };
      await runCommand(spec.name, ctx, args);
      if (spec.name !== 'list' && spec.name !== 'stat') names.invalidate();
    } catch (error) {
      lastFailure = report(out, error);
    } finally {
      running = undefined;
    }
    return undefined;
  };

  try {
    const lines = rl[Symbol.asyncIterator]();
    for (;;) {
      if (interactive) rl.prompt();
      const next = await lines.next();
      if (next.done === true) {
        // Ctrl-D: the prompt is left on a line of its own, so the terminal's next prompt starts clean.
        if (interactive && !leftOnNewLine) output.write('\n');
        break;
      }
      armedExit = false;
      if ((await execute(String(next.value))) === 'exit') break;
      // Its reader is gone (`… | head -1`): the lines still to come would only print into nothing.
      // A failed write is reported on a later turn of the event loop: let it arrive first.
      await new Promise((resolve) => setImmediate(resolve));
      if (outputClosed(out.stdout) || outputClosed(output)) break;
    }
  } finally {
    process.off('SIGINT', onSignal);
    if (interactive) await historyFile.save(historyLines());
    rl.close();
    await closeQuietly(client);
  }
  // A script learns that something failed; a person who typed exit does not need to.
  return interactive || lastFailure === undefined ? 0 : lastFailure.exitCode;
}

function report(out: Output, error: unknown): ErrorReport {
  const r = describeError(error);
  if (!(error instanceof ReportedError)) out.error(r.code, r.message);
  if (r.bug && out.env.FERRY_DEBUG === '1' && error instanceof Error) out.stderr.write(`${error.stack}\n`);
  return r;
}

function jobKey(job: TransferJob): string {
  return `${job.op}\0${job.remote}\0${job.local}`;
}

/** The source and target as typed: get REMOTE LOCAL, put LOCAL REMOTE. */
/** The source and target as typed (a tree's target may have been left out: ''). */
function jobArgs(job: TransferJob): string[] {
  const args = job.op === 'get' ? [job.remote, job.local] : [job.local, job.remote];
  return job.recursive === true && args[1] === '' ? args.slice(0, 1) : args;
}

function jobName(job: TransferJob): string {
  return job.op === 'get' ? job.remote : job.local;
}

/** True if a partial download of `job.remote` waits next to the local target. */
async function partialFor(job: TransferJob): Promise<boolean> {
  const dir = dirname(job.local);
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names
    .filter((n) => n.startsWith('.ferry-partial-') && n.endsWith('.state'))
    .slice(0, 64)) {
    try {
      const state = JSON.parse(await readFile(join(dir, name), 'utf8')) as {
        identity?: unknown;
        finalName?: unknown;
      };
      if (
        (state.finalName === job.local || state.finalName === basename(job.local)) &&
        typeof state.identity === 'string' &&
        state.identity.split('\n').includes(job.remote)
      ) {
        return true;
      }
    } catch {
      // Not ours to judge: an unreadable sidecar just means no offer.
    }
  }
  return false;
}

/**
 * The shell's history: `$XDG_STATE_HOME/ferry/history` (default `~/.local/state/ferry/history`),
 * state rather than configuration. A history left in the config directory by an older ferry is read
 * once, when the new file does not exist yet, and removed once the new file is written: it moves.
 */
class HistoryFile {
  readonly path: string;
  readonly #legacyPath: string;
  #fromLegacy = false;

  constructor(env: NodeJS.ProcessEnv) {
    this.path = join(stateDir(env), 'history');
    this.#legacyPath = join(dirname(defaultKeyPath(env)), 'history');
  }

  /** The remembered lines, newest first (readline's order). */
  async load(): Promise<string[]> {
    let text = await readFile(this.path, 'utf8').catch(() => undefined);
    if (text === undefined) {
      text = await readFile(this.#legacyPath, 'utf8').catch(() => '');
      this.#fromLegacy = text !== '';
    }
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .slice(-HISTORY_LINES)
      .reverse();
  }

  async save(newestFirst: readonly string[]): Promise<void> {
    const lines = [...newestFirst].slice(0, HISTORY_LINES).reverse();
    try {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      await writeFile(this.path, lines.length > 0 ? `${lines.join('\n')}\n` : '', { mode: 0o600 });
      if (this.#fromLegacy) await unlink(this.#legacyPath);
    } catch {
      // History is a convenience: never fail the session over it.
    }
  }
}

/** Names on the server, per directory, listed when completion first needs them. */
class RemoteNames {
  readonly #cache = new Map<string, { names: string[]; at: number }>();
  readonly #client: () => FerryClient;

  constructor(client: () => FerryClient) {
    this.#client = client;
  }

  store(dir: string, entries: readonly Entry[]): void {
    this.#cache.set(normalizeDir(dir), {
      names: entries.map((e) => (e.type === 'dir' ? `${e.name}/` : e.name)),
      at: Date.now(),
    });
  }

  invalidate(): void {
    this.#cache.clear();
  }

  async under(dir: string): Promise<string[]> {
    const key = normalizeDir(dir);
    const cached = this.#cache.get(key);
    if (cached !== undefined && Date.now() - cached.at < NAMES_FRESH_MS) return cached.names;
    const client = this.#client();
    if (client.closed) return cached?.names ?? [];
    let timer: NodeJS.Timeout | undefined;
    const entries = await Promise.race([
      client.list(key).catch(() => undefined),
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), NAMES_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (entries === undefined) return cached?.names ?? [];
    this.store(key, entries);
    return this.#cache.get(key)!.names;
  }
}

function normalizeDir(dir: string): string {
  return dir.replace(/\/+$/, '');
}

/** Index where the word under the cursor starts (quotes and backslashes respected). */
export function currentWordStart(line: string): number {
  let start = 0;
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote !== undefined) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"') i++;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '\\') i++;
    else if (/\s/.test(ch)) start = i + 1;
  }
  return start;
}

/** Tab completion: command names first, then remote or local names as the command expects. */
export async function complete(line: string, names: RemoteNames): Promise<[string[], string]> {
  const start = currentWordStart(line);
  const raw = line.slice(start);
  let before: string[];
  let partial: string;
  try {
    before = splitWords(line.slice(0, start));
    const quote = raw.startsWith('"') || raw.startsWith("'") ? raw[0] : '';
    partial = splitWords(raw + quote)[0] ?? '';
  } catch {
    return [[], raw];
  }
  if (before.length === 0) {
    const words = [...COMMANDS.flatMap((c) => [c.name, ...c.aliases]), ...SHELL_WORDS];
    return [words.filter((w) => w.startsWith(raw)).map((w) => `${w} `), raw];
  }
  const spec = findCommand(before[0]!);
  if (spec === undefined) {
    if (before[0] === 'help' && before.length === 1) {
      return [COMMANDS.map((c) => c.name).filter((w) => w.startsWith(raw)), raw];
    }
    return [[], raw];
  }
  if (partial.startsWith('-')) {
    const flags = spec.flags.flatMap((f) => FLAG_OPTIONS[f].raw.split(/,\s*/).map((s) => s.split(' ')[0]!));
    return [flags.filter((f) => f.startsWith(partial)), raw];
  }
  let position = 0;
  for (let i = 1; i < before.length; i++) {
    const w = before[i]!;
    if (w === '-d' || w === '--dir') i++;
    else if (!w.startsWith('-')) position++;
  }
  const previous = before.at(-1);
  const kind =
    previous === '-d' || previous === '--dir'
      ? spec.name === 'get'
        ? 'local'
        : 'remote'
      : spec.completes[Math.min(position, spec.completes.length - 1)];
  let candidates: string[];
  if (kind === 'local') {
    candidates = await localNames(partial);
  } else {
    const slash = partial.lastIndexOf('/');
    const dir = slash < 0 ? '' : partial.slice(0, slash);
    candidates = (await names.under(dir)).map((n) => (slash < 0 ? n : remoteJoin(dir, n)));
  }
  const hits = candidates.filter((c) => c.startsWith(partial));
  const quote = raw.startsWith('"') || raw.startsWith("'") ? raw[0]! : '';
  const encoded = hits.map((h) => {
    const body =
      quote === "'" ? h : quote === '"' ? h.replace(/(["\\])/g, '\\$1') : h.replace(/([\s"'\\])/g, '\\$1');
    const finished = hits.length === 1 && !h.endsWith('/');
    return `${quote}${body}${finished ? `${quote} ` : ''}`;
  });
  return [encoded, raw];
}
