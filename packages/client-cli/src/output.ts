/**
 * Where the ferry command writes: results for people on stdout, notes and errors on stderr,
 * or, with --json, one NDJSON event per line on stdout and nothing else there.
 */
import { styleText } from 'node:util';

export type Style = Parameters<typeof styleText>[0];

export interface OutputOptions {
  json?: boolean;
  quiet?: boolean;
  stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
  env?: NodeJS.ProcessEnv;
}

/** Colour only for a terminal, and never with a non-empty NO_COLOR (no-color.org) or TERM=dumb. */
export function colourEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && (env.NO_COLOR ?? '') === '' && env.TERM !== 'dumb';
}

export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
  readonly #colourOut: boolean;
  readonly #colourErr: boolean;

  constructor(options: OutputOptions = {}) {
    this.json = options.json ?? false;
    this.quiet = options.quiet ?? false;
    this.stdout = options.stdout ?? process.stdout;
    this.stderr = options.stderr ?? process.stderr;
    this.env = options.env ?? process.env;
    this.#colourOut = colourEnabled(this.stdout, this.env);
    this.#colourErr = colourEnabled(this.stderr, this.env);
  }

  /** True when progress bars may be drawn: stderr is a terminal and nothing asked for silence. */
  get interactive(): boolean {
    return this.stderr.isTTY === true && !this.json && !this.quiet && this.env.TERM !== 'dumb';
  }

  /** One NDJSON event on stdout (only with --json). */
  event(event: { type: string; [key: string]: unknown }): void {
    if (this.json) this.stdout.write(`${JSON.stringify(event)}\n`);
  }

  /** A result line on stdout (listings, stat): printed unless --json. */
  result(line: string): void {
    if (!this.json) this.stdout.write(`${line}\n`);
  }

  /** A confirmation on stdout ("put a.txt -> a.txt …"): printed unless --json or --quiet. */
  done(line: string): void {
    if (!this.json && !this.quiet) this.stdout.write(`${line}\n`);
  }

  /** A note for people on stderr: printed unless --json or --quiet. */
  note(line: string): void {
    if (!this.json && !this.quiet) this.stderr.write(`${line}\n`);
  }

  /**
   * A warning on stderr ("skipped a/link: …"), plus a `warning` event with --json; unlike a note it
   * is shown with --quiet too, since it says something was left out.
   */
  warn(message: string, extra: Record<string, unknown> = {}): void {
    this.event({ type: 'warning', ...extra, message });
    if (!this.json) this.stderr.write(`${this.styleErr(['yellow', 'bold'], 'ferry:')} ${message}\n`);
  }

  /** A line on stderr for people, even with --quiet (a summary of failures); nothing with --json. */
  tell(line: string): void {
    if (!this.json) this.stderr.write(`${line}\n`);
  }

  /** An error line on stderr (always), plus an `error` event with --json. */
  error(code: string, message: string, extra: Record<string, unknown> = {}): void {
    this.event({ type: 'error', ...extra, code, message });
    this.stderr.write(`${this.styleErr(['red', 'bold'], 'ferry:')} ${message}\n`);
  }

  styleOut(style: Style, text: string): string {
    return this.#colourOut ? styleText(style, text) : text;
  }

  styleErr(style: Style, text: string): string {
    return this.#colourErr ? styleText(style, text) : text;
  }
}

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];

/** Bytes for people, in powers of 1000: 0 B, 999 B, 1.0 kB, 20.9 MB. */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  let value = bytes;
  let unit = 0;
  while (value >= 999.95 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(1)} ${UNITS[unit]}`;
}

/**
 * A rate in powers of 1000 per second, as scp shows it: 136 B/s, 5.2 kB/s, 63.2 MB/s, 139 MB/s
 * (one decimal below 100 of a unit; whole bytes below 1 kB/s, where "0 kB/s" would say nothing).
 */
export function formatRate(bytesPerSecond: number): string {
  if (!Number.isFinite(bytesPerSecond) || bytesPerSecond <= 0) return '0 B/s';
  let value = bytesPerSecond;
  let unit = 0;
  while (value >= 999.5 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit === 0 || value >= 99.95 ? 0 : 1)} ${UNITS[unit]}/s`;
}

/** A duration: 15 ms, 0.4 s, 12 s, 3m05s, 1h02m. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  if (seconds < 0.1) return `${Math.max(1, Math.round(seconds * 1000))} ms`;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** A modification time for listings: `2024-05-01 13:45`, local time, like ls -l. */
export function formatTime(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
