/**
 * What `ferry --help` says about --timeout is what the client does: without the option, a host
 * that never answers is given up after the transport's handshake timeout.
 */
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS } from '@ferry/transport';
import { describe, expect, it } from 'vitest';
import { bindSocket, ferry, sandbox } from '../../src/harness.js';

describe('timeouts', () => {
  it('--help states the defaults the transport uses: one to answer, one once connected', async () => {
    const help = await ferry(['--help']);
    const line = help.stdout.split('\n').find((l) => l.includes('--timeout'));
    expect(line).toContain(`default: ${DEFAULT_HANDSHAKE_TIMEOUT_MS / 1000} s to answer`);
    expect(line).toContain(`${DEFAULT_IDLE_TIMEOUT_MS / 1000} s once connected`);
  });

  it('without --timeout, a host that never answers is given up after the handshake default (exit 8)', async () => {
    const box = await sandbox();
    const silent = await bindSocket(); // reads nothing, answers nothing
    const started = Date.now();
    const r = await ferry(['ls', `127.0.0.1:${silent.address().port}`, '--key', box.keyFile], {
      env: box.env,
      timeoutMs: 60_000,
    });
    const seconds = (Date.now() - started) / 1000;
    expect(r.code).toBe(8);
    expect(r.stderr).toMatch(`no answer from the server within ${DEFAULT_HANDSHAKE_TIMEOUT_MS / 1000} s`);
    expect(seconds).toBeGreaterThanOrEqual(DEFAULT_HANDSHAKE_TIMEOUT_MS / 1000);
    // Well under the 30 s the help used to state, with room for a loaded machine.
    expect(seconds).toBeLessThan(25);
  }, 90_000);
});
