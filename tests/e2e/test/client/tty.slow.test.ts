/**
 * The shell on a real terminal: util-linux `script` gives the client a pseudo-terminal, so the
 * prompt, the menu, Tab completion, progress bars, Ctrl-C and the yes/no questions are exercised
 * as a person meets them. Skipped where `script` is not available.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CLIENT_BIN,
  randomFile,
  type Sandbox,
  type ServerProcess,
  servedSandbox,
  sha256File,
  UdpRelay,
  waitUntil,
} from '../../src/harness.js';

const hasScript =
  process.platform === 'linux' && spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;

let box: Sandbox;
let server: ServerProcess;

beforeAll(async () => {
  if (!hasScript) return;
  ({ box, server } = await servedSandbox());
});

/** A program on a pseudo-terminal: what it printed (escape codes removed) and a way to type. */
class Terminal {
  text = '';
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences are the point
      this.text += d.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '\n');
    });
    this.exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  }

  type(keys: string): void {
    this.child.stdin!.write(keys);
  }

  /** Waits until the output after `from` matches `pattern`; returns the new end offset. */
  async waitFor(pattern: RegExp, from = 0, timeoutMs = 60_000): Promise<number> {
    const match = await waitUntil(
      String(pattern),
      () => pattern.exec(this.text.slice(from)) ?? undefined,
      timeoutMs,
      25,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; the terminal shows:\n${this.text.slice(from)}`);
    });
    return from + match.index + match[0].length;
  }
}

/** `ferry HOST PORT ARGS…` on a pseudo-terminal, from the client's working directory. */
function shellOnTerminal(args: readonly string[], env: NodeJS.ProcessEnv = box.env): Terminal {
  const all = ['127.0.0.1', String(server.port), '--key', box.keyFile, ...args];
  const command = [process.execPath, CLIENT_BIN, ...all].map((w) => `'${w}'`).join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    cwd: box.work,
    env: { ...env, TERM: 'xterm', COLUMNS: '100', LINES: '30' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return new Terminal(child);
}

describe.skipIf(!hasScript)('the shell on a terminal', () => {
  it('shows the menu and prompt, completes names, draws progress, and Ctrl-C cancels the transfer, not the shell', async () => {
    await writeFile(join(box.root, 'hello world.txt'), 'hello');
    const digest = await randomFile(join(box.root, 'big.bin'), 40 * 1024 * 1024);
    // Through a relay that can hold the big download part-way, so that Ctrl-C lands in its middle
    // however fast or busy the machine. Small blocks, then the default size when it is resumed.
    const relay = await UdpRelay.open(server.port, 0);
    const args = ['127.0.0.1', String(relay.port), '--key', box.keyFile, '--block-size', '1024'];
    const command = [process.execPath, CLIENT_BIN, ...args].map((w) => `'${w}'`).join(' ');
    const child = spawn('script', ['-qfec', command, '/dev/null'], {
      cwd: box.work,
      env: { ...box.env, TERM: 'xterm', COLUMNS: '100', LINES: '30' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const term = new Terminal(child);
    try {
      let at = await term.waitFor(/Connected to 127\.0\.0\.1:\d+ \(read-write, key [0-9a-f]{8}\)/);
      at = await term.waitFor(/Commands:[\s\S]*get NAME \[LOCAL\][\s\S]*ferry> /, at);

      term.type('ls\r');
      at = await term.waitFor(/big\.bin[\s\S]*hello world\.txt[\s\S]*ferry> /, at);

      // Tab completes the remote name, escaping its space.
      term.type('get hel\t');
      at = await term.waitFor(/get hello\\ world\.txt /, at);
      term.type('\r');
      at = await term.waitFor(/received hello world\.txt -> hello world\.txt/, at);
      expect(await readFile(join(box.work, 'hello world.txt'), 'utf8')).toBe('hello');

      const held = relay.holdAfter('down', 8 * 1024 * 1024);
      term.type('get big.bin\r');
      at = await term.waitFor(/big\.bin +[█░]+ +\d+%/, at);
      await held;
      term.type('\u0003');
      at = await term.waitFor(/ferry: get big\.bin: .*cancel/, at);
      at = await term.waitFor(/ferry> /, at);
      relay.release();

      term.type('get big.bin\r');
      at = await term.waitFor(/resume the interrupted get of big\.bin\? \[Y\/n\]/, at);
      term.type('y\r');
      at = await term.waitFor(/received big\.bin -> big\.bin \(.*resumed after/, at);
      expect(await sha256File(join(box.work, 'big.bin'))).toBe(digest);

      // Asked before overwriting; "no" keeps the local file.
      await writeFile(join(box.work, 'hello world.txt'), 'mine');
      term.type('get "hello world.txt"\r');
      at = await term.waitFor(/hello world\.txt exists here; overwrite it\? \[y\/N\]/, at);
      term.type('n\r');
      at = await term.waitFor(/ferry> /, at);
      expect(await readFile(join(box.work, 'hello world.txt'), 'utf8')).toBe('mine');

      // Ctrl-C clears a half-typed line; the next command runs alone.
      term.type('some text');
      await term.waitFor(/some text/, at);
      term.type('\u0003');
      term.type('stat big.bin\r');
      at = await term.waitFor(/big\.bin: file, 41\.9 MB/, at);
      expect(term.text).not.toMatch(/unknown command "some/);

      // At an empty prompt, Ctrl-C twice leaves.
      term.type('\u0003');
      at = await term.waitFor(/Ctrl-C again, Ctrl-D or exit to leave/, at);
      term.type('\u0003');
      expect(await term.exited).toBe(0);
      const history = await readFile(join(box.dir, '.local', 'state', 'ferry', 'history'), 'utf8');
      expect(history.split('\n')).toEqual(expect.arrayContaining(['ls', 'get big.bin', 'stat big.bin']));
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('draws one bar for a tree (files done of the total), and Ctrl-C stops the tree with a hint to resume it', async () => {
    const tree = join(box.work, 'pictures');
    for (let d = 0; d < 4; d++) {
      await mkdir(join(tree, `d${d}`), { recursive: true });
      for (let f = 0; f < 50; f++) await randomFile(join(tree, `d${d}`, `f${f}.bin`), 3000);
    }
    await randomFile(join(tree, 'large.bin'), 30 * 1024 * 1024);
    // A rate cap keeps the tree going long enough to interrupt it.
    const term = shellOnTerminal(['--limit', '4M']);
    try {
      let at = await term.waitFor(/ferry> /);
      term.type('put -r pictures\r');
      at = await term.waitFor(/pictures +[█░]+ +\d+% +\d+\/201 files +[\d.]+ [kM]B\/3\d\.\d MB/, at);
      term.type('\u0003');
      at = await term.waitFor(
        /ferry: put -r pictures: .*cancel.*`put -r --resume pictures` continues it/,
        at,
      );
      at = await term.waitFor(/ferry> /, at);
      term.type('exit\r');
      expect(await term.exited).toBe(0);
    } finally {
      term.child.kill('SIGKILL');
    }
  }, 90_000);

  it('keeps its history in $XDG_STATE_HOME/ferry (moved from the config directory), never the answers to its questions, and Ctrl-D leaves on a new line', async () => {
    const state = join(box.dir, 'state');
    const legacy = join(box.env.XDG_CONFIG_HOME!, 'ferry', 'history');
    await mkdir(dirname(legacy), { recursive: true });
    await writeFile(legacy, 'list old-dir\n');
    await writeFile(join(box.root, 'asked.txt'), 'server');
    await writeFile(join(box.work, 'asked.txt'), 'mine');
    const term = shellOnTerminal([], { ...box.env, XDG_STATE_HOME: state });
    try {
      let at = await term.waitFor(/ferry> /);
      term.type('get asked.txt\r');
      at = await term.waitFor(/asked\.txt exists here; overwrite it\? \[y\/N\] /, at);
      term.type('n\r');
      at = await term.waitFor(/ferry> /, at);
      // Ctrl-C at a question, with an answer half typed, cancels the command.
      term.type('get asked.txt\r');
      at = await term.waitFor(/overwrite it\? \[y\/N\] /, at);
      term.type('mayb');
      at = await term.waitFor(/mayb/, at);
      term.type('\u0003');
      at = await term.waitFor(/ferry> /, at);
      term.type('stat asked.txt\r');
      at = await term.waitFor(/asked\.txt: file, 6 B[\s\S]*ferry> /, at);
      term.type('\u0004');
      expect(await term.exited).toBe(0);
      expect(term.text.slice(at)).toMatch(/^\n/);
    } finally {
      term.child.kill('SIGKILL');
    }
    expect(await readFile(join(box.work, 'asked.txt'), 'utf8')).toBe('mine');
    const history = await readFile(join(state, 'ferry', 'history'), 'utf8');
    expect(history).toBe('list old-dir\nget asked.txt\nstat asked.txt\n');
    await expect(stat(legacy)).rejects.toThrow();
  });

  it('a request refused before any transfer draws no progress bar, and its line names the file once', async () => {
    await writeFile(join(box.work, 'here.txt'), 'here');
    const term = shellOnTerminal([]);
    try {
      let at = await term.waitFor(/ferry> /);
      for (const [command, line] of [
        ['get nope.txt', /ferry: get nope\.txt: no such file or directory\n/],
        ['get ../etc/passwd', /ferry: get \.\.\/etc\/passwd: '\.' and '\.\.' are not allowed in paths\n/],
        ['put here.txt ../here.txt', /ferry: put here\.txt: "\.\.\/here\.txt": '\.' and '\.\.' are not/],
      ] as const) {
        const from = at;
        term.type(`${command}\r`);
        at = await term.waitFor(/ferry> /, await term.waitFor(line, from));
        const shown = term.text.slice(from, at);
        expect(shown, command).not.toMatch(/%|stopped|[█░]/);
      }
      term.type('exit\r');
      expect(await term.exited).toBe(0);
    } finally {
      term.child.kill('SIGKILL');
    }
  });
});
