import { createSocket } from 'node:dgram';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ferry,
  parseEvents,
  randomFile,
  run,
  SERVER_BIN,
  ServerProcess,
  sandbox,
  serveSandbox,
  sha256File,
  spawnFerry,
  UdpRelay,
  waitUntil,
} from '../../src/harness.js';

async function freePort(): Promise<number> {
  const socket = createSocket('udp6');
  const port = await new Promise<number>((resolve) =>
    socket.bind(0, '::', () => resolve(socket.address().port)),
  );
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

describe('ferry-server options', () => {
  it('prints help at once and exits 0', async () => {
    const r = await run(SERVER_BIN, ['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--read-only/);
    expect(r.stdout).toMatch(/--keys <file>/);
    // One command: no "Commands: [port]" row, no pointer to the page itself, no spaces at line ends.
    expect(r.stdout).not.toMatch(/Commands:|\[port\]|For more info/);
    expect(r.stdout).not.toMatch(/[ \t]$/m);
    expect(r.stdout).toMatch(/--max-buffer <MiB>/);
  });

  it('answers bad usage with exit 2 and one line', async () => {
    const box = await sandbox();
    const cases = [
      ['99999'],
      ['--max-sessions', 'many'],
      ['--max-buffer', '0'],
      ['--max-session-buffer', 'lots'],
      ['--root', join(box.dir, 'missing')],
      ['--root', box.keyFile],
      ['--key', box.keyFile, '--keys', box.keyFile],
      ['--bogus'],
      ['--root', box.root, '--storage', box.root],
      ['--storage', join(box.dir, 'missing')],
      ['--storage', 's3://'],
      ['--storage', 's3://no spaces here'],
      ['--storage', 's3://bucket/../escape'],
      ['--root', box.root, '--s3-endpoint', 'http://127.0.0.1:1'],
    ];
    for (const args of cases) {
      const r = await run(SERVER_BIN, ['0', ...args], { env: box.env });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(/^ferry-server: /);
    }
  });

  it('refuses a malformed keys file, naming the line (exit 2)', async () => {
    const box = await sandbox();
    const keys = join(box.dir, 'keys');
    await writeFile(keys, '# team keys\nalice rw not-a-key\n');
    const r = await run(SERVER_BIN, ['0', '--root', box.root, '--keys', keys], { env: box.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/line 2/);
    expect(r.stderr).not.toMatch(/not-a-key/);
  });

  it('says so when the port is taken (exit 8)', async () => {
    const box = await sandbox();
    const first = await serveSandbox(box);
    const r = await run(SERVER_BIN, [String(first.port), '--root', box.root, '--key', box.keyFile], {
      env: box.env,
    });
    expect(r.code).toBe(8);
    expect(r.stderr).toMatch(/in use/);
    await first.stop();
  });
});

describe('ferry-server running', () => {
  it('serves the current directory on the positional port, as `server.py 7777` did, and says so in one line', async () => {
    const box = await sandbox();
    const port = await freePort();
    const server = await serveSandbox(box, { port, cwd: box.root });
    expect(server.port).toBe(port);
    expect(server.lines[0]).toMatch(
      new RegExp(
        `^ferry-server: serving ${box.root} on udp://\\[::\\]:${port} \\(key [0-9a-f]{8}, read-write\\)$`,
      ),
    );
    await writeFile(join(box.root, 'seed.txt'), 'hello');
    const r = await ferry(['127.0.0.1', String(port), '--key', box.keyFile], {
      env: box.env,
      input: 'list\n',
    });
    expect(r.stdout).toMatch(/seed\.txt/);
    // IPv6 loopback reaches the same server.
    const v6 = await ferry(['ls', `[::1]:${port}`, '--key', box.keyFile], { env: box.env });
    expect(v6.code, v6.stderr).toBe(0);
    expect(await server.stop('SIGINT')).toEqual({ code: 0, signal: null });
  });

  it('creates the default key file (0600) on first start, says where and how to share it, and reuses it', async () => {
    const box = await sandbox();
    const keyPath = join(box.env.XDG_CONFIG_HOME!, 'ferry', 'key');
    const first = await ServerProcess.start({ root: box.root, env: box.env });
    expect(first.lines[0]).toMatch(new RegExp(`created a new key in ${keyPath}.*scp .*FERRY_KEY`));
    expect((await stat(keyPath)).mode & 0o777).toBe(0o600);
    // A client with the same default file (same config directory) is accepted.
    const r = await ferry(['ls', first.address], { env: box.env });
    expect(r.code, r.stderr).toBe(0);
    await first.stop();
    const key = await readFile(keyPath, 'utf8');
    const second = await ServerProcess.start({ root: box.root, env: box.env });
    expect(second.lines.some((l) => l.includes('created a new key'))).toBe(false);
    expect(await readFile(keyPath, 'utf8')).toBe(key);
    await second.stop();
  });

  it('takes the key from FERRY_KEY', async () => {
    const box = await sandbox();
    const key = (await readFile(box.keyFile, 'utf8')).trim();
    const env = { ...box.env, FERRY_KEY: key };
    const server = await ServerProcess.start({ root: box.root, env });
    const r = await ferry(['ls', server.address, '--key', box.keyFile], { env: box.env });
    expect(r.code, r.stderr).toBe(0);
    await expect(stat(join(box.env.XDG_CONFIG_HOME!, 'ferry', 'key'))).rejects.toThrow();
    await server.stop();
  });

  it('--json logs NDJSON events, the first one saying where it listens', async () => {
    const box = await sandbox();
    const server = await serveSandbox(box, { args: ['--json'] });
    await writeFile(join(box.work, 'j.txt'), 'json');
    await ferry(['put', server.address, 'j.txt', '--key', box.keyFile], { cwd: box.work, env: box.env });
    await server.stop();
    const events = parseEvents(server.lines.join('\n'));
    expect(events).toHaveLength(server.lines.length);
    expect(events[0]).toMatchObject({ type: 'listening', level: 'info', port: server.port, root: box.root });
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['session-open', 'put-start', 'put-done', 'session-closed', 'stopped']),
    );
    for (const e of events) expect(typeof e.time).toBe('string');
    // The end of a session carries its transport counters: the 4-byte file arrived in a DATA datagram.
    const closed = events.find((e) => e.type === 'session-closed')!;
    expect(closed).toMatchObject({
      code: 'OK',
      stats: { blocksReceived: 1, rtt: { smoothedMs: expect.any(Number) } },
    });
    expect((closed.stats as { bytesReceived: number }).bytesReceived).toBeGreaterThan(4);
  });

  it('on SIGTERM lets a running transfer finish, then exits 0', async () => {
    const box = await sandbox();
    const server = await serveSandbox(box);
    const digest = await randomFile(join(box.work, 'late.bin'), 3 * 1024 * 1024);
    // A relay holds the put part-way until the server is stopping: the transfer is certainly running
    // then (not over yet, nor not begun), and what is left of it is small enough for the grace period.
    const relay = await UdpRelay.holding(server.port, 'up', 2.5 * 1024 * 1024);
    const client = spawnFerry(['put', relay.address, 'late.bin', '--key', box.keyFile, '--json'], {
      cwd: box.work,
      env: box.env,
    });
    await relay.held;
    const stopped = server.stop('SIGTERM');
    await waitUntil('the server to begin stopping', () =>
      server.lines.some((l) => /SIGTERM: stopping/.test(l)),
    );
    relay.release();
    const ended = await client.exited;
    expect(ended.code, ended.stderr).toBe(0);
    expect(await sha256File(join(box.root, 'late.bin'))).toBe(digest);
    expect(await stopped).toEqual({ code: 0, signal: null });
    expect(server.lines.join('\n')).toMatch(/SIGTERM: stopping/);
  });

  it('exit from a client ends that session, never the server', async () => {
    const box = await sandbox();
    const server = await serveSandbox(box);
    const r = await ferry([server.address, '--key', box.keyFile], { env: box.env, input: 'exit\n' });
    expect(r.code).toBe(0);
    const again = await ferry(['ls', server.address, '--key', box.keyFile], { env: box.env });
    expect(again.code).toBe(0);
    expect(server.child.exitCode).toBeNull();
    await server.stop();
  });

  it('logs refused puts, renames, deletes and gets with their code, as text and as NDJSON', async () => {
    const box = await sandbox();
    await writeFile(join(box.root, 'a.txt'), 'a');
    await writeFile(join(box.root, 'b.txt'), 'b');
    await writeFile(join(box.work, 'a.txt'), 'mine');
    const refusals = async (server: ServerProcess): Promise<void> => {
      const client = (...args: string[]) =>
        ferry([args[0]!, server.address, ...args.slice(1), '--key', box.keyFile], {
          cwd: box.work,
          env: box.env,
        });
      expect((await client('put', 'a.txt')).code).toBe(4);
      expect((await client('mv', 'a.txt', 'b.txt')).code).toBe(4);
      expect((await client('rm', 'nope.txt')).code).toBe(3);
      expect((await client('get', '../etc/passwd')).code).toBe(2);
    };

    const text = await serveSandbox(box);
    await refusals(text);
    const expected = [
      / warn: \S+ \S+ port \d+ put a\.txt refused \(EEXIST\): .*already exists/,
      / warn: .* rename a\.txt -> b\.txt refused \(EEXIST\): /,
      / warn: .* delete nope\.txt refused \(ENOENT\): /,
      / warn: .* get \.\.\/etc\/passwd refused \(EINVAL\): /,
    ];
    await waitUntil(`log lines ${expected.join(', ')} in:\n${text.lines.join('\n')}`, () =>
      expected.every((pattern) => text.lines.some((line) => pattern.test(line))),
    );
    await text.stop();

    const json = await serveSandbox(box, { args: ['--json'] });
    await refusals(json);
    const refused = () => parseEvents(json.lines.join('\n')).filter((e) => e.type === 'refused');
    await waitUntil('four refused events', () => refused().length === 4);
    expect(refused()).toEqual([
      expect.objectContaining({ level: 'warn', op: 'put', path: 'a.txt', code: 'EEXIST' }),
      expect.objectContaining({ op: 'rename', from: 'a.txt', to: 'b.txt', code: 'EEXIST' }),
      expect.objectContaining({ op: 'delete', path: 'nope.txt', code: 'ENOENT' }),
      expect.objectContaining({ op: 'get', path: '../etc/passwd', code: 'EINVAL' }),
    ]);
    await json.stop();
  }, 60_000);

  it('says read-only when its user cannot write the root, serves reads and logs refused writes', async () => {
    const box = await sandbox();
    await writeFile(join(box.root, 'a.txt'), 'a');
    await writeFile(join(box.work, 'new.txt'), 'new');
    // Root may write anything: then the server runs as nobody, for whom the root-owned root is read-only.
    const asRoot = process.getuid?.() === 0;
    await chmod(box.dir, 0o755);
    await chmod(box.root, asRoot ? 0o755 : 0o555);
    const key = (await readFile(box.keyFile, 'utf8')).trim();
    try {
      const server = await ServerProcess.start({
        root: box.root,
        env: { ...box.env, FERRY_KEY: key },
        ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
      });
      expect(server.lines[0]).toMatch(
        /serving .* \(key [0-9a-f]{8}, read-only: the directory is not writable by this user\)$/,
      );
      const opts = { cwd: box.work, env: box.env };
      const get = await ferry(['get', server.address, 'a.txt', '--key', box.keyFile], opts);
      expect(get.code, get.stderr).toBe(0);
      expect(await readFile(join(box.work, 'a.txt'), 'utf8')).toBe('a');
      const put = await ferry(['put', server.address, 'new.txt', '--key', box.keyFile], opts);
      expect(put.code, put.stderr).toBe(5);
      expect(put.stderr).toMatch(/permission denied/);
      await waitUntil(`the refused put in:\n${server.lines.join('\n')}`, () =>
        server.lines.some((l) => / put new\.txt refused \(EACCES\)/.test(l)),
      );
      await server.stop();
    } finally {
      await chmod(box.root, 0o755);
    }
  }, 60_000);
});
