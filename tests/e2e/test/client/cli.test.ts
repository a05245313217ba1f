import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bindSocket, EXIT_PROBE, ferry, sandbox } from '../../src/harness.js';

describe('the ferry bin without a server', () => {
  it('prints help at once and exits 0', async () => {
    // At once: it needs no key and no server, and nothing it leaves open holds the process until the
    // bin's forced exit (how long it takes depends on the machine's load, so that is not measured).
    const r = await ferry(['--help'], { env: (await sandbox()).env, nodeArgs: ['--require', EXIT_PROBE] });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/get HOST NAME \[LOCAL\]/);
    expect(r.stdout).toMatch(/Exit codes:/);
    expect(r.stderr.trim()).toBe('exit-probe: natural');
    const sub = await ferry(['put', '--help']);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toMatch(/put HOST\[:PORT\] A B C -d REMOTEDIR/);
    expect((await ferry(['--version'])).stdout).toMatch(/^ferry\/\d+\.\d+\.\d+/);
    for (const page of [r.stdout, sub.stdout]) {
      expect(page).not.toMatch(/[ \t]$/m);
      expect(page).not.toMatch(/For more info/);
    }
  });

  it('answers usage mistakes with exit code 2 and one line on stderr', async () => {
    for (const args of [
      ['get'],
      ['get', 'host', '--bogus'],
      ['gett', 'host', 'x'],
      ['lst', 'host'],
      ['ls', 'h:99999'],
    ]) {
      const r = await ferry(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(/^ferry: /);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('says what is wrong in the words of its help', async () => {
    const missing = await ferry(['get', '127.0.0.1']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(
      'ferry: missing arguments; usage: ferry get HOST[:PORT] REMOTE [LOCAL], or ferry get HOST[:PORT] A B C -d LOCALDIR, or ferry get -r HOST[:PORT] REMOTEDIR [LOCALDIR]\n',
    );
    // After an address, a word that is not a port is an invalid port, not an unknown command.
    for (const host of ['127.0.0.1', '[::1]', 'files.example.org', 'localhost']) {
      const port = await ferry([host, 'abc']);
      expect(port.code, host).toBe(2);
      expect(port.stderr, host).toBe('ferry: invalid port "abc" (expected 1-65535)\n');
    }
    expect((await ferry(['gett', 'host'])).stderr).toMatch(/^ferry: unknown command "gett"/);
  });

  it('keygen writes a 0600 key, refuses to overwrite it (exit 4) and prints the path', async () => {
    const box = await sandbox();
    const file = join(box.dir, 'new.key');
    const r = await ferry(['keygen', file], { env: box.env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(file);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readFile(file, 'utf8')).trim()).toMatch(/^[A-Za-z0-9_-]{43}=$/);
    const again = await ferry(['keygen', file], { env: box.env });
    expect(again.code).toBe(4);
    expect(again.stderr).toMatch(/already exists/);
    const printed = await ferry(['keygen', '-'], { env: box.env });
    expect(printed.stdout.trim()).toMatch(/^[A-Za-z0-9_-]{43}=$/);
    const byDefault = await ferry(['keygen'], { env: box.env });
    expect(byDefault.code).toBe(0);
    expect(byDefault.stdout).toContain(join(box.env.XDG_CONFIG_HOME!, 'ferry', 'key'));
  });

  it('never creates a key: a missing one is one line naming keygen, exit 2', async () => {
    const box = await sandbox();
    const r = await ferry(['ls', '127.0.0.1:9'], { env: box.env });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/no key: .* does not exist.*ferry keygen/);
    await expect(stat(join(box.env.XDG_CONFIG_HOME!, 'ferry', 'key'))).rejects.toThrow();
    const bad = await ferry(['ls', '127.0.0.1:9'], { env: { ...box.env, FERRY_KEY: 'not-a-key' } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/FERRY_KEY/);
  });

  it('says nothing is listening (exit 8) and names an unknown host (exit 8)', async () => {
    const box = await sandbox();
    // A port that was free a moment ago: nothing listens there now.
    const socket = await bindSocket();
    const port = socket.address().port;
    socket.close();
    const refused = await ferry(['ls', `127.0.0.1:${port}`, '--key', box.keyFile, '--timeout', '3'], {
      env: box.env,
    });
    expect(refused.code).toBe(8);
    expect(refused.stderr).toMatch(/nothing is listening|not answer|timed out/);
    const unknown = await ferry(['ls', 'no-such-host.invalid', '--key', box.keyFile], { env: box.env });
    expect(unknown.code).toBe(8);
    expect(unknown.stderr).toMatch(/unknown host/);
    const json = await ferry(['ls', 'no-such-host.invalid', '--key', box.keyFile, '--json'], {
      env: box.env,
    });
    expect(json.events).toEqual([expect.objectContaining({ type: 'error', code: 'EHOSTUNREACH' })]);
  });

  it('gives up on a host that never answers after --timeout seconds (exit 8)', async () => {
    const box = await sandbox();
    const silent = await bindSocket(); // reads nothing, answers nothing
    const started = Date.now();
    const r = await ferry(
      ['ls', `127.0.0.1:${silent.address().port}`, '--key', box.keyFile, '--timeout', '1'],
      {
        env: box.env,
      },
    );
    expect(r.code).toBe(8);
    // It waited, and for the second asked for, not the default ten (which a busy machine's
    // wall clock could not tell apart).
    expect(r.stderr).toMatch(/^ferry: no answer from the server within 1 s/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  });
});
