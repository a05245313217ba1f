import { describe, expect, it } from 'vitest';
import type { LinkConfig } from '../src/sim/index.js';
import { CLIENT_ADDRESS, describeRun, runSimTransfer, SERVER_ADDRESS } from './helpers/sim-harness.js';

/**
 * Goodput report (not a timed assertion): a bulk transfer on the simulated 100 Mbit/s, 50 ms RTT path
 * with a one-BDP bottleneck queue, at 0 %, 1 % and 5 % random loss (both directions), with the internet
 * block size. Goodput is file bytes over the time from opening the transfer to its completion, as a
 * fraction of the link rate. Runs only with FERRY_GOODPUT=1 (it takes a while):
 *
 *   FERRY_GOODPUT=1 pnpm exec vitest run --project transport test/goodput.test.ts
 *
 * FERRY_GOODPUT_MIB sets the size (default 16; the figure is for 56).
 */
const ENABLED = process.env.FERRY_GOODPUT === '1';
if (!ENABLED)
  console.log('goodput report skipped: set FERRY_GOODPUT=1 to run it (it is a measurement, not a test)');

const RATE = 100e6;
const RTT_MS = 50;
const BDP_BYTES = (RATE / 8) * (RTT_MS / 1000);
const BLOCK = 1120; // INTERNET_BLOCK_SIZE
const MIB = Number(process.env.FERRY_GOODPUT_MIB ?? 16);
const SIZE = MIB * 1024 * 1024;
/** What framing leaves of the link for file bytes: a 1120-byte block travels in a 1221-byte datagram. */
const DATAGRAM = 1221;
const pct = (bitsPerSecond: number): string => `${((bitsPerSecond / RATE) * 100).toFixed(1)} %`;

describe.skipIf(!ENABLED)('goodput on a simulated 100 Mbit/s, 50 ms RTT link', () => {
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
