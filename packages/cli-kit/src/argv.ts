/**
 * Runs cac's parser without its number coercion: cac (through mri) turns any value that looks
 * like a number into one, so a file named `007` would become 7 and `1e3` would become 1000. Every
 * such word is swapped for a placeholder before parsing and restored after, so every positional
 * argument and option value reaches the command as the exact string that was typed.
 */
import type { CAC } from 'cac';
import { usageError } from './usage.js';

export interface ParsedLine {
  args: string[];
  options: Record<string, unknown>;
}

// NUL cannot occur in a real argv entry, so a placeholder never collides with a typed word.
const MARK = '\u0000ferry-arg:';

function looksNumeric(text: string): boolean {
  const n = +text;
  return n * 0 === 0;
}

/**
 * Parses `words` (the arguments after the program name) with `cli` and returns the matched
 * command's positional arguments (everything after `--` appended) and options, all as strings or
 * booleans. Parsing problems become usage errors (exit code 2).
 */
export function parseWords(cli: CAC, line: readonly string[]): ParsedLine {
  const words = commandNameInAnyCase(cli, line);
  const saved: string[] = [];
  const protect = (text: string): string => {
    saved.push(text);
    return `${MARK}${saved.length - 1}`;
  };
  const encoded = words.map((word) => {
    if (word.startsWith('-') && word.length > 1 && !looksNumeric(word)) {
      const eq = word.indexOf('=');
      if (eq > 0 && word.startsWith('--') && looksNumeric(word.slice(eq + 1))) {
        return `${word.slice(0, eq + 1)}${protect(word.slice(eq + 1))}`;
      }
      return word;
    }
    // A lone "-" (stdin, or "print it") is a word, not an option.
    return looksNumeric(word) || word === '-' ? protect(word) : word;
  });
  const restore = (value: unknown): unknown => {
    if (typeof value === 'string' && value.startsWith(MARK)) return saved[Number(value.slice(MARK.length))];
    if (Array.isArray(value)) return value.map(restore);
    return value;
  };
  let parsed: { args: ReadonlyArray<string>; options: Record<string, unknown> };
  try {
    parsed = cli.parse(['node', cli.name, ...encoded], { run: false });
  } catch (error) {
    throw usageError((error as Error).message);
  }
  const options: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parsed.options)) {
    if (key !== '--') options[key] = restore(value);
  }
  const rest = (parsed.options['--'] as string[] | undefined) ?? [];
  const args = [...parsed.args, ...rest].map((a) => String(restore(a)));
  // runMatchedCommand() hands these to the action: give it the restored values.
  cli.args = args;
  cli.options = { ...options, '--': [] };
  return { args, options };
}

/**
 * Command names are taken in any case (`ferry LIST host`, as the seed took its menu): the first
 * positional word, if it names a command or alias of `cli` in another case, is lowercased. Other
 * words (hosts, file names) are left exactly as typed.
 */
function commandNameInAnyCase(cli: CAC, words: readonly string[]): readonly string[] {
  const names = new Set(cli.commands.flatMap((c) => [c.name, ...c.aliasNames]).filter((n) => n !== ''));
  // Options written with a separate value (`--key FILE`): their value is not the command word.
  const takesValue = new Set(
    [cli.globalCommand, ...cli.commands]
      .flatMap((c) => c.options)
      .filter((o) => /[<[]/.test(o.rawName))
      .flatMap((o) => o.rawName.split(',').map((n) => n.trim().split(/\s/)[0]!)),
  );
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '--') break;
    if (takesValue.has(word)) {
      i++;
      continue;
    }
    if (word.startsWith('-') && word !== '-') continue;
    const lower = word.toLowerCase();
    if (lower === word || !names.has(lower)) return words;
    return [...words.slice(0, i), lower, ...words.slice(i + 1)];
  }
  return words;
}

/**
 * Runs the matched command's action with the restored arguments; cac's own checks (unknown
 * options, missing values, argument counts) become usage errors. Returns what the action returns.
 * `usageOf(name)` gives a command's usage as its help shows it, for the missing-arguments message
 * (cac's own names its syntax: `get <host> <...files>`).
 */
export async function runMatched(
  cli: CAC,
  usageOf?: (command: string) => string | undefined,
): Promise<unknown> {
  let result: unknown;
  try {
    result = cli.runMatchedCommand();
  } catch (error) {
    if ((error as Error).name !== 'CACError') throw error;
    const message = (error as Error).message;
    const missing = /^missing required args for command `(\S+)/.exec(message);
    const usage = missing === null ? undefined : usageOf?.(missing[1]!);
    throw usageError(usage === undefined ? rephrase(message) : `missing arguments; usage: ${usage}`);
  }
  return await result;
}

function rephrase(message: string): string {
  return message
    .replace(/^Unknown option `(.+)`$/, 'unknown option $1')
    .replace(/^option `(.+)` value is missing$/, 'option $1 needs a value')
    .replace(/^missing required args for command `(.+)`$/, 'missing arguments: usage is $1')
    .replace(/^Unused args: (.+)$/, 'too many arguments: $1');
}

/**
 * cac's help sections, tidied: no "For more info, run any command with `--help`" pointer (the
 * page is already the whole help) and no spaces at line ends (cac pads its option column).
 */
export function tidyHelp<T extends { title?: string; body: string }>(sections: readonly T[]): T[] {
  return sections
    .filter((s) => !s.title?.startsWith('For more info'))
    .map((s) => ({ ...s, body: s.body.replace(/[ \t]+$/gm, '') }));
}

/** The string value of an option given at most once; a repeated option is a usage error. */
export function stringOption(
  options: Record<string, unknown>,
  name: string,
  flag: string,
): string | undefined {
  const value = options[name];
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw usageError(`${flag} is given more than once`);
  if (typeof value !== 'string') throw usageError(`${flag} needs a value`);
  return value;
}

export function flagOption(options: Record<string, unknown>, name: string): boolean {
  const value = options[name];
  return Array.isArray(value) ? value.some((v) => v === true) : value === true;
}
