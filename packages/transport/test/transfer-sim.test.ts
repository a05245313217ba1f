import type { LinkConfig } from '@ferry/netsim';
import { describe, expect, it } from 'vitest';
import {
  CLIENT_ADDRESS,
  describeRun,
  runSimTransfer,
  SERVER_ADDRESS,
  type SimTransferResult,
} from './helpers/sim-harness.js';

/**
 * Bulk transfers through every impairment issue 4 lists, at the sizes where off-by-one bugs live
 * (empty, one byte, a block and its neighbours) and at a size that needs many round trips, in both
 * directions. Every run replays from its seed (the test name's size and direction fix it).
 */
const BLOCK = 1024;
const LARGE = 3 * 1024 * 1024 + 7;
/** Heavy impairments cost many retransmissions: keep their big case modest so the suite stays fast. */
const MEDIUM = 256 * 1024 + 5;

const CLIENT = CLIENT_ADDRESS;
const SERVER = SERVER_ADDRESS;

/** The link the data travelled on: client to server for a put, server to client for a get. */
function senderPath(r: SimTransferResult): [string, string] {
  return r.sender!.role === 'client' ? [CLIENT, SERVER] : [SERVER, CLIENT];
}

const BASE: LinkConfig = { delayMs: 10, rateBitsPerSecond: 50e6, queueBytes: 256 * 1024 };

interface Scenario {
  name: string;
  link: LinkConfig;
  large: number;
  /** Extra checks on a run of the large size. */
  check?: (r: SimTransferResult) => void;
}

const drops = (r: SimTransferResult, who: 'sender' | 'receiver') =>
  (who === 'sender' ? r.sender : r.receiver)!.stats.drops;

const SCENARIOS: Scenario[] = [
  {
    name: 'a clean link',
    link: BASE,
    large: LARGE,
    check: (r) => {
      // Nothing is lost but what overflows the bottleneck queue (startup probing), and nothing else is
      // resent: no spurious retransmission, no timeout.
      const [from, to] = senderPath(r);
      const queueDrops = r.net.linkStats(from, to).dropped.queue;
      expect(r.sender!.stats.retransmits).toBe(queueDrops);
      expect(r.sender!.stats.rtoCount).toBe(0);
    },
  },
  {
    name: '1 % random loss',
    link: { ...BASE, loss: 0.01 },
    large: LARGE,
    check: (r) => expect(r.sender!.stats.retransmits).toBeGreaterThan(0),
  },
  {
    name: '5 % random loss',
    link: { ...BASE, loss: 0.05 },
    large: LARGE,
    check: (r) => expect(r.sender!.stats.retransmits).toBeGreaterThan(0),
  },
  { name: '20 % random loss', link: { ...BASE, loss: 0.2 }, large: MEDIUM },
  { name: '30 % random loss', link: { ...BASE, loss: 0.3 }, large: MEDIUM },
  {
    name: 'bursty (Gilbert-Elliott) loss',
    link: { ...BASE, burstLoss: { enterBad: 0.02, leaveBad: 0.25, lossInBad: 0.9 } },
    large: MEDIUM,
  },
  {
    name: '10 % duplication',
    link: { ...BASE, duplicate: 0.1 },
    large: MEDIUM,
    check: (r) => {
      // Duplicates are recognised by packet number and dropped as replays; none becomes a block twice.
      expect(drops(r, 'receiver').replay).toBeGreaterThan(0);
      expect(r.receiver!.stats.blocksReceived).toBe(Math.ceil(MEDIUM / BLOCK));
    },
  },
  {
    name: 'heavy reordering',
    link: { ...BASE, reorder: 0.3, reorderDelayMs: 15, jitterMs: 3 },
    large: MEDIUM,
  },
  {
    name: '5 % corrupted datagrams',
    link: { ...BASE, corrupt: 0.05 },
    large: MEDIUM,
    check: (r) => {
      // A flipped bit in the token fails the MAC; one in the cleartext prefix makes it someone else's.
      const d = drops(r, 'receiver');
      expect(d['bad-mac']).toBeGreaterThan(0);
      const corrupted = r.net.linkStats(CLIENT, SERVER).corrupted + r.net.linkStats(SERVER, CLIENT).corrupted;
      const s = drops(r, 'sender');
      const seen = d['bad-mac'] + d['unknown-connection'] + s['bad-mac'] + s['unknown-connection'];
      expect(seen).toBeLessThanOrEqual(corrupted);
    },
  },
];

function expectDelivered(r: SimTransferResult): void {
  expect(r.handshakeError).toBeUndefined();
  expect(r.ok, describeRun(r)).toBe(true);
  expect(r.bitExact).toBe(true);
}

describe.each(SCENARIOS)('transfers through $name', (scenario) => {
  const sizes = [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, scenario.large];
  for (const size of sizes) {
    for (const direction of ['put', 'get'] as const) {
      it(`delivers ${size} B bit-exact (${direction})`, () => {
        const r = runSimTransfer({ seed: size + 1, size, blockSize: BLOCK, direction, up: scenario.link });
        expectDelivered(r);
        if (size === scenario.large) scenario.check?.(r);
      });
    }
  }
});

describe('transfers under stress', () => {
  it('completes at 30 % loss both ways, more slowly than on a clean link', () => {
    const clean = runSimTransfer({ seed: 3, size: MEDIUM, blockSize: BLOCK, up: BASE });
    const lossy = runSimTransfer({ seed: 3, size: MEDIUM, blockSize: BLOCK, up: { ...BASE, loss: 0.3 } });
    expectDelivered(clean);
    expectDelivered(lossy);
    expect(lossy.completedAt!).toBeGreaterThan(clean.completedAt!);
    expect(lossy.sender!.stats.retransmits).toBeGreaterThan(Math.ceil(MEDIUM / BLOCK) * 0.2);
  });

  it('flow control: a receive window of a few blocks still moves a large file', () => {
    const r = runSimTransfer({
      seed: 11,
      size: MEDIUM,
      blockSize: BLOCK,
      receiveWindow: 4 * BLOCK,
      up: { ...BASE, loss: 0.05 },
    });
    expectDelivered(r);
    expect(r.receiver!.stats.drops['flow-control']).toBe(0);
  });

  it('runs many transfers at once, both ways, each beyond the window (more receivers than ACK flow slots)', () => {
    const size = 200 * 1024 + 3;
    const r = runSimTransfer({
      seed: 12,
      size,
      blockSize: BLOCK,
      receiveWindow: 32 * BLOCK,
      up: { ...BASE, loss: 0.02 },
      extraTransfers: [
        ...Array.from({ length: 6 }, () => ({ direction: 'put' as const, size })),
        ...Array.from({ length: 3 }, () => ({ direction: 'get' as const, size: size + 1000 })),
      ],
    });
    expectDelivered(r);
  });

  it('every impairment at once, in both directions', () => {
    const link: LinkConfig = {
      ...BASE,
      loss: 0.05,
      duplicate: 0.05,
      reorder: 0.1,
      corrupt: 0.02,
      jitterMs: 2,
    };
    for (const direction of ['put', 'get'] as const) {
      expectDelivered(runSimTransfer({ seed: 5, size: MEDIUM, blockSize: 1200, direction, up: link }));
    }
  });

  it('gives every block buffer back to its source once, and never sends one after giving it back', () => {
    // Released buffers are overwritten with garbage: a block sent after its release would arrive
    // corrupted. Loss, reordering and duplication make blocks wait for retransmission and late ACKs.
    const link: LinkConfig = { ...BASE, loss: 0.05, duplicate: 0.05, reorder: 0.1, jitterMs: 2 };
    for (const direction of ['put', 'get'] as const) {
      const r = runSimTransfer({
        seed: 9,
        size: MEDIUM,
        blockSize: 1200,
        direction,
        up: link,
        poisonReleased: true,
      });
      expectDelivered(r);
      expect(r.sender!.stats.retransmits).toBeGreaterThan(0);
      expect(r.blocksProvided).toBeGreaterThanOrEqual(Math.ceil(MEDIUM / 1200));
      expect(r.blocksReleased).toBe(r.blocksProvided);
    }
  });

  it('an ACK lost after the last block does not stall the sender (late blocks are still acked)', () => {
    // One block, ACKs lost half the time: the receiver has completed, the sender must still learn it.
    for (let seed = 1; seed <= 20; seed++) {
      const r = runSimTransfer({
        seed,
        size: BLOCK,
        blockSize: BLOCK,
        direction: 'get',
        up: { ...BASE, loss: 0.5 },
        down: BASE,
      });
      expectDelivered(r);
      expect(r.sender!.stats.drops['unknown-transfer']).toBe(0);
      expect(r.receiver!.stats.drops['unknown-transfer']).toBe(0);
    }
  });
});
