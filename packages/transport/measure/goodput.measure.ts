import { createHash } from 'node:crypto';
import type { LinkConfig } from '@ferry/netsim';
import { describe, expect, it } from 'vitest';
import type { BlockSource } from '../src/session.js';
import { connect, UdpServer } from '../src/udp.js';
import {
  CLIENT_ADDRESS,
  describeRun,
  runSimTransfer,
  SERVER_ADDRESS,
  seededBytes,
  TEST_KEY,
} from '../test/helpers/sim-harness.js';

/**
 * Goodput report (not a timed assertion): a bulk transfer on the simulated 100 Mbit/s, 50 ms RTT path
 * with a one-BDP bottleneck queue, at 0 %, 1 % and 5 % random loss (both directions), with the internet
 * block size. Goodput is file bytes over the time from opening the transfer to its completion, as a
 * fraction of the link rate. A measurement, not part of the test suite (it takes a while):
 *
 *   pnpm --filter @ferry/transport measure:goodput
 *
 * FERRY_GOODPUT_MIB sets the size (default 16; the figure is for 56). A second report moves
 * 56 MiB each way over real sockets on 127.0.0.1 (wall-clock MB/s: it depends on the machine and its load).
 */
const RATE = 100e6;
const RTT_MS = 50;
const BDP_BYTES = (RATE / 8) * (RTT_MS / 1000);
const BLOCK = 1120; // INTERNET_BLOCK_SIZE
const MIB = Number(process.env.FERRY_GOODPUT_MIB ?? 16);
const SIZE = MIB * 1024 * 1024;
/** What framing leaves of the link for file bytes: a 1120-byte block travels in a 1221-byte datagram. */
const DATAGRAM = 1221;
const pct = (bitsPerSecond: number): string => `${((bitsPerSecond / RATE) * 100).toFixed(1)} %`;

describe('goodput on a simulated 100 Mbit/s, 50 ms RTT link', () => {
  it(`reports ${MIB} MiB transfers at 0 %, 1 %, 5 % loss`, () => {
    const rows: string[] = [];
    rows.push(
      '| loss | direction | seconds | goodput Mbit/s | of link | of link, 1/4 to 3/4 | retransmits | RTOs | peak queue | bw est. Mbit/s |',
      '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const loss of [0, 0.01, 0.05]) {
      for (const direction of ['put', 'get'] as const) {
        const link: LinkConfig = {
          rateBitsPerSecond: RATE,
          delayMs: RTT_MS / 2,
          queueBytes: BDP_BYTES,
          loss,
        };
        const r = runSimTransfer({
          seed: 1,
          size: SIZE,
          blockSize: BLOCK,
          direction,
          up: link,
          maxTimeMs: 600_000,
        });
        expect(r.ok, describeRun(r)).toBe(true);
        const seconds = (r.completedAt! - r.startedAt!) / 1000;
        const goodput = (SIZE * 8) / seconds;
        const [from, to] =
          direction === 'put' ? [CLIENT_ADDRESS, SERVER_ADDRESS] : [SERVER_ADDRESS, CLIENT_ADDRESS];
        const path = r.net.linkStats(from, to);
        const cc = r.sender!.cc.toJSON();
        // Steady state: from when the receiver held a quarter of the file to when it held three quarters.
        const middleBits = (SIZE * 4) / ((r.quartersAt[2]! - r.quartersAt[0]!) / 1000);
        rows.push(
          `| ${(loss * 100).toFixed(0)} % | ${direction} | ${seconds.toFixed(2)} | ${(goodput / 1e6).toFixed(1)} | ${pct(goodput)} | ${pct(middleBits)} | ${r.sender!.stats.retransmits} | ${r.sender!.stats.rtoCount} | ${(path.peakQueueBytes / BDP_BYTES).toFixed(2)} BDP | ${((Number(cc.bandwidthBytesPerSec) * 8) / 1e6).toFixed(1)} |`,
        );
      }
    }
    const ceiling = ((BLOCK / DATAGRAM) * 100).toFixed(1);
    console.log(
      `\n${MIB} MiB, block ${BLOCK} B, 100 Mbit/s, ${RTT_MS} ms RTT, queue 1 BDP (${BDP_BYTES} B), loss both ways` +
        ` (framing caps goodput at ${ceiling} % of the link)\n${rows.join('\n')}\n`,
    );
  }, 600_000);
});

describe('goodput on loopback (real sockets, in-memory source and sink)', () => {
  it('reports a 56 MiB put and get on 127.0.0.1', async () => {
    const size = 56 * 1024 * 1024;
    const data = seededBytes(56, size);
    const digest = createHash('sha256').update(data).digest('hex');
    const source: BlockSource = {
      size,
      read: async (i, bs) => data.subarray(i * bs, Math.min((i + 1) * bs, size)),
    };
    const server = new UdpServer({
      host: '127.0.0.1',
      port: 0,
      keys: [{ name: 'k', key: TEST_KEY, access: 'read-write' }],
      maxBlockSize: 32768,
    });
    const rows: string[] = [];
    let served: Promise<unknown> = Promise.resolve();
    server.onSession((session) => {
      session.onMessage((body) => {
        const m = JSON.parse(body.toString()) as { op: string; id: number };
        const blockSize = session.blockSize;
        const blockCount = Math.ceil(size / blockSize);
        if (m.op === 'put') {
          const into = Buffer.alloc(size);
          const started = performance.now();
          void session
            .receiveBlocks(m.id, size, { write: async (i, b) => void b.copy(into, i * blockSize) })
            .then(() => {
              const ms = performance.now() - started;
              const ok = createHash('sha256').update(into).digest('hex') === digest;
              rows.push(`put ${(size / ms / 1000).toFixed(1)} MB/s (${ms.toFixed(0)} ms, bit-exact: ${ok})`);
            });
          const reply = {
            op: 'reply',
            id: m.id,
            ok: true,
            transferId: m.id,
            blockSize,
            blockCount,
            have: [],
          };
          session.send(Buffer.from(JSON.stringify(reply)));
        } else if (m.op === 'get') {
          const reply = {
            op: 'reply',
            id: m.id,
            ok: true,
            transferId: m.id,
            size,
            mtimeMs: 0,
            blockSize,
            blockCount,
          };
          const seq = session.send(Buffer.from(JSON.stringify(reply)));
          served = session.sendBlocks(m.id, source, { afterMessage: seq });
        }
      });
    });
    const { port } = await server.listen();
    const client = await connect({ host: '127.0.0.1', port, key: TEST_KEY, maxBlockSize: 32768 });
    const replies = new Map<number, () => void>();
    client.onMessage((body) => replies.get((JSON.parse(body.toString()) as { id: number }).id)?.());
    const request = (m: { id: number; [field: string]: unknown }): Promise<void> =>
      new Promise<void>((resolve) => {
        replies.set(m.id, resolve);
        client.send(Buffer.from(JSON.stringify(m)));
      });
    await request({ op: 'put', id: 1, path: 'f', size, overwrite: false, resume: false });
    await client.sendBlocks(1, source);
    // The server's row is written when its last block is; wait for it (bounded: a minute).
    for (let i = 0; rows.length === 0; i++) {
      if (i === 6_000) throw new Error('the server never finished receiving the put');
      await new Promise((r) => setTimeout(r, 10));
    }
    await request({ op: 'get', id: 2, path: 'f' });
    const into = Buffer.alloc(size);
    const started = performance.now();
    await client.receiveBlocks(2, size, { write: async (i, b) => void b.copy(into, i * client.blockSize) });
    const ms = performance.now() - started;
    const ok = createHash('sha256').update(into).digest('hex') === digest;
    rows.push(`get ${(size / ms / 1000).toFixed(1)} MB/s (${ms.toFixed(0)} ms, bit-exact: ${ok})`);
    // The server's sending half ends once it has seen the last acknowledgement.
    await served;
    expect(rows.every((row) => row.endsWith('bit-exact: true)'))).toBe(true);
    const stats = client.stats() as { retransmits: number; rtoCount: number };
    console.log(
      `\nloopback, 56 MiB, block 32768, in-memory, encrypted:\n${rows.join('\n')}\nclient retransmits ${stats.retransmits}, RTOs ${stats.rtoCount}\n`,
    );
    await client.end();
    await server.close();
  }, 300_000);
});
