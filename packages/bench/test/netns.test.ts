import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { waitUntil } from '@ferry/e2e-tests/wait';
import { describe, expect, it } from 'vitest';
import {
  CLIENT_ADDRESS,
  createNamespaceLink,
  ISSUE_LINK,
  listNamespaces,
  lossRuleset,
  namespaceLinkUnavailable,
  SERVER_ADDRESS,
  tbfArgs,
} from '../src/netns.js';

const execFileAsync = promisify(execFile);
const UNAVAILABLE = namespaceLinkUnavailable();
if (UNAVAILABLE) console.warn(`namespace link test skipped: ${UNAVAILABLE}`);

/** The largest UDP payload a 1500-byte IPv4 MTU carries unfragmented: 1500 - 20 (IPv4) - 8 (UDP). */
const FULL_DATAGRAM = 1472;

const receiver = `
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m) => { console.log('got ' + m.length); process.exit(0); });
s.bind(0, process.argv[1], () => console.log('port ' + s.address().port));
setTimeout(() => process.exit(3), 60000);
`;
const sender = `
const [host, port, size] = process.argv.slice(1);
const s = require('node:dgram').createSocket('udp4');
let n = 0;
// A few tries: the link drops 1 % of packets on purpose.
const timer = setInterval(() => {
  s.send(Buffer.alloc(Number(size)), Number(port), host);
  if (++n >= 50) { clearInterval(timer); s.close(); }
}, 20);
`;

describe('namespace link (two network namespaces, veth, tbf, nftables)', () => {
  it('says what the scenario needs in words a person can act on', () => {
    expect(lossRuleset(0.01)).toContain('numgen random mod 10000 < 100 drop');
    expect(lossRuleset(0)).not.toContain('drop');
    expect(tbfArgs('ns', 'dev0', ISSUE_LINK)).toEqual([
      '-n',
      'ns',
      'qdisc',
      'add',
      'dev',
      'dev0',
      'root',
      'tbf',
      'rate',
      '100000000bit',
      'burst',
      '32768',
      'latency',
      '50ms',
    ]);
    if (UNAVAILABLE) expect(UNAVAILABLE).toMatch(/not root|not installed|Linux/);
  });

  it('builds a 1500-MTU link that carries a full 1472-byte datagram, then deletes both namespaces', async (ctx) => {
    if (UNAVAILABLE) ctx.skip(UNAVAILABLE);
    const link = await createNamespaceLink(ISSUE_LINK);
    let deleted = false;
    try {
      const names = await listNamespaces();
      expect(names).toContain(link.server.namespace);
      expect(names).toContain(link.client.namespace);
      const shown = await execFileAsync('ip', [
        '-n',
        link.client.namespace,
        'link',
        'show',
        link.client.device,
      ]);
      expect(shown.stdout).toMatch(/mtu 1500 qdisc tbf/);
      const rules = await execFileAsync('ip', [
        'netns',
        'exec',
        link.server.namespace,
        'nft',
        'list',
        'ruleset',
      ]);
      expect(rules.stdout).toMatch(/numgen random mod 10000 < 100 drop/);

      const [cmd, ...prefix] = link.exec(link.server);
      const listener = spawn(cmd!, [...prefix, process.execPath, '-e', receiver, SERVER_ADDRESS], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      listener.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      try {
        const port = await waitUntil('the receiver to listen', () => /port (\d+)/.exec(out)?.[1]);
        const [ccmd, ...cprefix] = link.exec(link.client);
        const send = spawn(
          ccmd!,
          [...cprefix, process.execPath, '-e', sender, SERVER_ADDRESS, port, String(FULL_DATAGRAM)],
          { stdio: 'ignore' },
        );
        try {
          expect(await waitUntil('the datagram to arrive', () => /got (\d+)/.exec(out)?.[1])).toBe(
            String(FULL_DATAGRAM),
          );
        } finally {
          send.kill();
        }
      } finally {
        listener.kill();
      }
      expect(CLIENT_ADDRESS).not.toBe(SERVER_ADDRESS);
      await link.delete();
      deleted = true;
      const after = await listNamespaces();
      expect(after).not.toContain(link.server.namespace);
      expect(after).not.toContain(link.client.namespace);
      await link.delete(); // a second delete is harmless
    } finally {
      if (!deleted) await link.delete();
    }
  });
});
