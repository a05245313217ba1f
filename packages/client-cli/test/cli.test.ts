import { parseWords } from '@ferry/cli-kit';
import { CryptoError } from '@ferry/crypto';
import { FerryError } from '@ferry/protocol';
import { cac } from 'cac';
import { describe, expect, it } from 'vitest';
import { parseBytes, parseCount, parseSeconds, parseTarget, quoteWord, splitWords } from '../src/args.js';
import { planGet, planPut, remoteBase } from '../src/commands.js';
import { describeError } from '../src/errors.js';
import { colourEnabled, formatBytes, formatDuration, formatRate } from '../src/output.js';
import { currentWordStart } from '../src/shell.js';

describe('server addresses', () => {
  it('accepts HOST, HOST:PORT, [IPv6]:PORT, a bare IPv6 literal and the seed form HOST PORT', () => {
    expect(parseTarget('fileserver')).toEqual({ host: 'fileserver', port: 7777 });
    expect(parseTarget('127.0.0.1:9000')).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(parseTarget('[::1]:7000')).toEqual({ host: '::1', port: 7000 });
    expect(parseTarget('[::1]')).toEqual({ host: '::1', port: 7777 });
    expect(parseTarget('::1')).toEqual({ host: '::1', port: 7777 });
    expect(parseTarget('127.0.0.1', '7777')).toEqual({ host: '127.0.0.1', port: 7777 });
  });

  it('refuses bad ports and a port given twice as usage errors', () => {
    for (const bad of ['h:0', 'h:65536', 'h:x', 'h:', ':7777']) {
      expect(() => parseTarget(bad), bad).toThrow(expect.objectContaining({ code: 'EUSAGE' }));
    }
    expect(() => parseTarget('h:1', '2')).toThrow(/twice/);
  });
});

describe('option values', () => {
  it('reads sizes and rates with binary and decimal suffixes', () => {
    expect(parseBytes('--limit', '10M')).toBe(10 * 1024 * 1024);
    expect(parseBytes('--limit', '10MB/s')).toBe(10_000_000);
    expect(parseBytes('--limit', '500k')).toBe(512_000);
    expect(parseBytes('--limit', '65536')).toBe(65536);
    expect(() => parseBytes('--limit', 'fast')).toThrow(/invalid --limit/);
    expect(() => parseBytes('--limit', '0')).toThrow(/invalid --limit/);
  });

  it('reads counts and seconds within bounds', () => {
    expect(parseCount('--window', '1', 1, 10)).toBe(1);
    expect(() => parseCount('--window', '0', 1, 10)).toThrow(/from 1 to 10/);
    expect(() => parseCount('--window', '1.5', 1, 10)).toThrow();
    expect(parseSeconds('--timeout', '2.5')).toBe(2500);
    expect(parseSeconds('--timeout', '30s')).toBe(30_000);
    expect(() => parseSeconds('--timeout', '-1')).toThrow();
  });

  it('keeps every argument the exact string typed (no number coercion)', () => {
    const cli = cac('t');
    cli.command('get <host> <...files>').option('-f, --force', '').option('-d, --dir <dir>', '');
    const { args, options } = parseWords(cli, [
      'get',
      '--force',
      'h',
      '007',
      '1e3',
      '-d',
      '0123',
      '--',
      '-5',
    ]);
    expect(args).toEqual(['h', '007', '1e3', '-5']);
    expect(options.dir).toBe('0123');
    expect(options.force).toBe(true);
  });

  it('takes command names in any case, never changing a host, an option value or a file name', () => {
    const cli = cac('t');
    cli.command('[host] [port]');
    cli.command('get <host> <...files>').option('-d, --dir <dir>', '');
    cli.command('list <host> [dir]').alias('ls');
    cli.option('--key <file>', '');
    const list = parseWords(cli, ['LIST', 'Host']);
    expect(cli.matchedCommand?.name).toBe('list');
    expect(list.args).toEqual(['Host']);
    const get = parseWords(cli, ['--key', 'LS', 'GeT', 'Host', 'File.TXT', '-d', 'Out']);
    expect(cli.matchedCommand?.name).toBe('get');
    expect(get).toEqual({
      args: ['Host', 'File.TXT'],
      options: expect.objectContaining({ key: 'LS', dir: 'Out' }),
    });
    parseWords(cli, ['Ls', 'h']);
    expect(cli.matchedCommand?.name).toBe('list');
    const shell = parseWords(cli, ['FileServer', '7777']);
    expect(cli.matchedCommand?.isDefaultCommand).toBe(true);
    expect(shell.args).toEqual(['FileServer', '7777']);
  });

  it('lets options stand anywhere on the line', () => {
    const cli = cac('t');
    cli.command('get <host> <...files>').option('-f, --force', '').option('-d, --dir <dir>', '');
    cli.option('--key <file>', '');
    const { args, options } = parseWords(cli, ['--key', 'k', 'get', 'h', 'a', '-d', 'out', 'b', '-f']);
    expect(args).toEqual(['h', 'a', 'b']);
    expect(options).toMatchObject({ key: 'k', dir: 'out', force: true });
  });
});

describe('shell words', () => {
  it('splits on spaces, honours quotes and backslashes', () => {
    expect(splitWords('get "my file.txt" local')).toEqual(['get', 'my file.txt', 'local']);
    expect(splitWords("put 'a b' c\\ d")).toEqual(['put', 'a b', 'c d']);
    expect(splitWords('get ""')).toEqual(['get', '']);
    expect(() => splitWords('get "open')).toThrow(/unterminated/);
    expect(quoteWord('a b')).toBe('"a b"');
    expect(quoteWord('plain')).toBe('plain');
  });

  it('finds the word under the cursor for completion', () => {
    expect(currentWordStart('get my\\ fi')).toBe(4);
    expect(currentWordStart('get "my fi')).toBe(4);
    expect(currentWordStart('get ')).toBe(4);
  });
});

describe('what goes where', () => {
  it('names the target after the source, keeping the real name', async () => {
    expect(await planGet(['dir/a b.txt'], undefined)).toEqual([
      { op: 'get', remote: 'dir/a b.txt', local: 'a b.txt' },
    ]);
    expect(await planPut(['/tmp/x/ünï.bin'], undefined)).toEqual([
      { op: 'put', local: '/tmp/x/ünï.bin', remote: 'ünï.bin' },
    ]);
    expect(await planPut(['a', 'inbox/'], undefined)).toEqual([{ op: 'put', local: 'a', remote: 'inbox/a' }]);
    expect(await planPut(['a', 'b', 'c'], 'in')).toHaveLength(3);
    await expect(planPut(['a', 'b', 'c'], undefined)).rejects.toThrow(/-d DIR/);
    // A remote directory named without a trailing slash receives the file under its own name, as with scp.
    const isDir = async (path: string) => path === 'holiday';
    expect(await planPut(['x/report.txt', 'holiday'], undefined, isDir)).toEqual([
      { op: 'put', local: 'x/report.txt', remote: 'holiday/report.txt' },
    ]);
    expect(await planPut(['x/report.txt', 'new.txt'], undefined, isDir)).toEqual([
      { op: 'put', local: 'x/report.txt', remote: 'new.txt' },
    ]);
    expect(remoteBase('x/y/')).toBe('y');
  });

  it('formats sizes, rates and durations for people', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(32768)).toBe('32.8 kB');
    expect(formatBytes(20_971_520)).toBe('21.0 MB');
    expect(formatRate(63_200_000)).toBe('63.2 MB/s');
    expect(formatRate(5000)).toBe('5.0 kB/s');
    expect(formatRate(48_250)).toBe('48.3 kB/s');
    expect(formatRate(139_400_000)).toBe('139 MB/s');
    // A few bytes over a few milliseconds: a rate in bytes, not "0 kB/s".
    expect(formatRate(6 / 0.044)).toBe('136 B/s');
    expect(formatRate(0)).toBe('0 B/s');
    expect(formatDuration(0.012)).toBe('12 ms');
    expect(formatDuration(125)).toBe('2m05s');
  });
});

describe('colour', () => {
  it('is on for a terminal unless NO_COLOR is set to something (an empty NO_COLOR is unset) or TERM=dumb', () => {
    const tty = { isTTY: true };
    expect(colourEnabled(tty, {})).toBe(true);
    expect(colourEnabled(tty, { NO_COLOR: '' })).toBe(true);
    expect(colourEnabled(tty, { NO_COLOR: '1' })).toBe(false);
    expect(colourEnabled(tty, { NO_COLOR: '0' })).toBe(false);
    expect(colourEnabled(tty, { TERM: 'dumb' })).toBe(false);
    expect(colourEnabled({ isTTY: false }, {})).toBe(false);
  });
});

describe('errors to exit codes', () => {
  it('maps every kind of error a command meets to one line and the table exit code', () => {
    expect(describeError(new FerryError('EAUTH', 'handshake failed'))).toMatchObject({
      exitCode: 7,
      message: 'the server does not accept this key (handshake failed)',
    });
    expect(
      describeError(new FerryError('EEXIST', '"a" already exists (ask to overwrite to replace it)')),
    ).toMatchObject({
      exitCode: 4,
      message: '"a" already exists; use --force to overwrite it',
    });
    expect(describeError(new FerryError('ECANCELED', 'canceled')).exitCode).toBe(130);
    expect(describeError(new FerryError('EINTEGRITY', 'mismatch')).exitCode).toBe(10);
    expect(describeError(new CryptoError('EKEYEXISTS', 'exists'))).toMatchObject({
      code: 'EEXIST',
      exitCode: 4,
    });
    expect(describeError(new CryptoError('EKEYFILE', 'missing'))).toMatchObject({ exitCode: 2 });
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), {
      code: 'ENOSPC',
      syscall: 'write',
      path: '/data/x',
    });
    expect(describeError(enospc)).toMatchObject({
      code: 'ENOSPC',
      exitCode: 6,
      message: '/data/x: no space left on the device',
    });
    const bug = describeError(new TypeError("Cannot read properties of undefined (reading 'x')"));
    expect(bug).toMatchObject({ code: 'EINTERNAL', exitCode: 1, bug: true });
    expect(bug.message).toMatch(/this is a bug in ferry/);
  });
});
