/**
 * Parsing of the values on a ferry command line: server addresses, sizes, rates, counts. Every
 * failure is a UsageError (EUSAGE, exit code 2) whose message names the offending text.
 */
import { usageError } from '@ferry/cli-kit';

export const DEFAULT_PORT = 7777;

export interface Target {
  host: string;
  port: number;
}

/**
 * A server address: `HOST`, `HOST:PORT`, `[IPV6]`, `[IPV6]:PORT`, or a bare IPv6 literal (`::1`,
 * which cannot carry a port). `port` is the seed's separate port argument (`ferry 127.0.0.1 7777`).
 */
export function parseTarget(text: string, port?: string): Target {
  const trimmed = text.trim();
  if (trimmed === '') throw usageError('missing server address (HOST[:PORT])');
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(trimmed);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2];
  } else if (trimmed.indexOf(':') !== trimmed.lastIndexOf(':')) {
    host = trimmed; // an IPv6 literal without brackets: every colon belongs to the address
  } else {
    const colon = trimmed.indexOf(':');
    host = colon < 0 ? trimmed : trimmed.slice(0, colon);
    portText = colon < 0 ? undefined : trimmed.slice(colon + 1);
  }
  if (host === '') throw usageError(`missing host in ${JSON.stringify(text)}`);
  if (portText !== undefined && port !== undefined) {
    throw usageError(`the port is given twice: in ${JSON.stringify(text)} and as ${JSON.stringify(port)}`);
  }
  const chosen = portText ?? port;
  return { host, port: chosen === undefined ? DEFAULT_PORT : parsePort(chosen) };
}

export function parsePort(text: string): number {
  if (!/^\d{1,5}$/.test(text.trim()))
    throw usageError(`invalid port ${JSON.stringify(text)} (expected 1-65535)`);
  const port = Number(text.trim());
  if (port < 1 || port > 65535) throw usageError(`invalid port ${JSON.stringify(text)} (expected 1-65535)`);
  return port;
}

/** `host:port` for messages, with brackets around IPv6 literals. */
export function formatTarget(target: Target): string {
  return target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  ki: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1e6,
  g: 1024 ** 3,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1e9,
};

/**
 * A byte count or a rate in bytes per second: `65536`, `64k` / `64KiB` (x1024), `64kB` (x1000),
 * `10M` / `10MiB`, `10MB`, `1G`; a trailing `/s` is allowed.
 */
export function parseBytes(option: string, text: string): number {
  const match = /^\s*(\d+(?:\.\d*)?)\s*([a-zA-Z]*)(?:\/s)?\s*$/.exec(text);
  const factor = match ? SIZE_UNITS[(match[2] ?? '').toLowerCase()] : undefined;
  const value = match && factor !== undefined ? Math.floor(Number(match[1]) * factor) : Number.NaN;
  if (!(value > 0) || !Number.isSafeInteger(value)) {
    throw usageError(`invalid ${option} ${JSON.stringify(text)} (expected bytes, e.g. 65536, 64k, 10M, 1G)`);
  }
  return value;
}

/** A whole number within [min, max]. */
export function parseCount(option: string, text: string, min: number, max: number): number {
  const trimmed = text.trim();
  const value = /^\d+$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw usageError(
      `invalid ${option} ${JSON.stringify(text)} (expected a whole number from ${min} to ${max})`,
    );
  }
  return value;
}

/** A duration in seconds (fractions allowed), returned in milliseconds. */
export function parseSeconds(option: string, text: string): number {
  const trimmed = text.trim().replace(/s$/, '');
  const value = /^\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!(value > 0) || value > 86_400) {
    throw usageError(`invalid ${option} ${JSON.stringify(text)} (expected seconds, e.g. 30 or 2.5)`);
  }
  return Math.round(value * 1000);
}

/**
 * Splits a line typed at the shell into words: whitespace separates, single and double quotes
 * group (so names with spaces work), a backslash escapes the next character outside single quotes.
 * Quotes do not stop patterns (as in sftp: `get 'logs/*.gz'` matches); a backslash before `*`, `?`,
 * `[` or `]` stays in the word, so the pattern sees that character as a literal one.
 */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote !== undefined) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < line.length && '"\\'.includes(line[i + 1]!))
        word += line[++i];
      else word += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < line.length) {
      const next = line[++i]!;
      word += '*?[]'.includes(next) ? `\\${next}` : next;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (quote !== undefined) throw usageError(`unterminated ${quote === '"' ? 'double' : 'single'} quote`);
  if (inWord) words.push(word);
  return words;
}

/** Quotes a word for the shell's command line if it needs it (completion of names with spaces). */
export function quoteWord(word: string): string {
  if (word !== '' && /^[^\s"'\\]+$/.test(word)) return word;
  return `"${word.replace(/(["\\])/g, '\\$1')}"`;
}
