/** Internet-safe block size: the whole datagram fits 1232 bytes (IPv6 minimum MTU less headers). */
export const INTERNET_BLOCK_SIZE = 1120;
/** The issue's "1,200-byte block size": 1301-byte datagrams, which fit a 1500-byte MTU. */
export const ISSUE_BLOCK_SIZE = 1200;

export interface Scenario {
  name: string;
  description: string;
  rateBitsPerSecond: number;
  rttMs: number;
  /** Random loss probability, each direction. */
  loss: number;
  /** Gilbert-Elliott loss instead of (on top of) random loss, each direction. */
  burstLoss?: { enterBad: number; leaveBad: number; lossInBad: number };
  jitterMs?: number;
  reorder?: number;
  duplicate?: number;
  /** File moved each way: about 10 s at the link rate (iperf3's default test length). */
  fileBytes: number;
  blockSize: number;
  /** Minimum goodput as a fraction of the link rate (the issue's targets). */
  target?: number;
  /** Part of the --quick smoke test. */
  quick?: boolean;
}

const MiB = 1024 * 1024;

/**
 * The matrix. Conditions apply to both directions (data and acknowledgements alike): the delay
 * is half the RTT each way, the loss probability is per datagram per direction. The queue is one
 * bandwidth-delay product (at least 64 KiB), tail drop. Rates count UDP payload bytes.
 */
export const SCENARIOS: readonly Scenario[] = [
  {
    name: '100mbit-50ms',
    description: '100 Mbit/s, 50 ms RTT, no loss',
    rateBitsPerSecond: 100e6,
    rttMs: 50,
    loss: 0,
    fileBytes: 120 * MiB,
    blockSize: INTERNET_BLOCK_SIZE,
    target: 0.9,
  },
  {
    name: '100mbit-50ms-1pct',
    description: '100 Mbit/s, 50 ms RTT, 1 % loss',
    rateBitsPerSecond: 100e6,
    rttMs: 50,
    loss: 0.01,
    fileBytes: 120 * MiB,
    blockSize: INTERNET_BLOCK_SIZE,
    target: 0.88,
    quick: true,
  },
  {
    name: '100mbit-50ms-5pct',
    description: '100 Mbit/s, 50 ms RTT, 5 % loss',
    rateBitsPerSecond: 100e6,
    rttMs: 50,
    loss: 0.05,
    fileBytes: 120 * MiB,
    blockSize: INTERNET_BLOCK_SIZE,
    target: 0.85,
  },
  {
    name: '10mbit-200ms-2pct',
    description: '10 Mbit/s, 200 ms RTT, 2 % loss',
    rateBitsPerSecond: 10e6,
    rttMs: 200,
    loss: 0.02,
    fileBytes: 12 * MiB,
    blockSize: INTERNET_BLOCK_SIZE,
  },
  {
    name: '1gbit-1ms-0.1pct',
    description: '1 Gbit/s, 1 ms RTT, 0.1 % loss',
    rateBitsPerSecond: 1e9,
    rttMs: 1,
    loss: 0.001,
    // Limited by CPU here (client, server and proxy share the cores), not by the link: a few seconds.
    fileBytes: 128 * MiB,
    blockSize: INTERNET_BLOCK_SIZE,
  },
  {
    name: '100mbit-50ms-burst',
    description: '100 Mbit/s, 50 ms RTT, bursty loss (~1 %, bursts of ~4)',
    rateBitsPerSecond: 100e6,
    rttMs: 50,
    loss: 0,
    // Enter the bad state 0.33 % of the time, stay ~4 datagrams, lose 75 % there: ~1 % overall.
    burstLoss: { enterBad: 0.0033, leaveBad: 0.25, lossInBad: 0.75 },
    fileBytes: 120 * MiB,
    blockSize: INTERNET_BLOCK_SIZE,
  },
  {
    name: '50mbit-30ms-jitter',
    description: '50 Mbit/s, 30 ms RTT, ±5 ms jitter, 1 % reorder, 0.5 % duplication, 0.5 % loss',
    rateBitsPerSecond: 50e6,
    rttMs: 30,
    loss: 0.005,
    jitterMs: 5,
    reorder: 0.01,
    duplicate: 0.005,
    fileBytes: 60 * MiB,
    blockSize: INTERNET_BLOCK_SIZE,
  },
];

/** One bandwidth-delay product in bytes, at least 64 KiB: the bottleneck's queue. */
export function queueBytesFor(scenario: Scenario): number {
  const bdp = (scenario.rateBitsPerSecond / 8) * (scenario.rttMs / 1000);
  return Math.max(64 * 1024, Math.ceil(bdp));
}

/** The proxy-cli arguments that build this scenario's link (both directions alike). */
export function proxyArgsFor(scenario: Scenario): string[] {
  const args = [
    '--rate',
    String(scenario.rateBitsPerSecond),
    '--queue',
    String(queueBytesFor(scenario)),
    '--delay',
    String(scenario.rttMs / 2),
  ];
  if (scenario.loss > 0) args.push('--loss', String(scenario.loss));
  if (scenario.burstLoss) {
    const b = scenario.burstLoss;
    args.push('--burst-loss', `${b.enterBad},${b.leaveBad},${b.lossInBad}`);
  }
  if (scenario.jitterMs) args.push('--jitter', String(scenario.jitterMs));
  if (scenario.reorder) args.push('--reorder', String(scenario.reorder));
  if (scenario.duplicate) args.push('--duplicate', String(scenario.duplicate));
  return args;
}

/**
 * Datagram bytes for a full block: 12-byte prefix + Fernet token over (12-byte repeated prefix +
 * 1 type byte + 16-byte DATA header + payload). The best goodput fraction a link counting these
 * bytes allows is blockSize / datagramBytes.
 */
export function dataDatagramBytes(blockSize: number): number {
  const plaintext = 12 + 1 + 16 + blockSize;
  return 12 + 57 + 16 * (Math.floor(plaintext / 16) + 1);
}

export function describeLink(s: Scenario): string {
  const rate =
    s.rateBitsPerSecond >= 1e9
      ? `${s.rateBitsPerSecond / 1e9} Gbit/s`
      : `${s.rateBitsPerSecond / 1e6} Mbit/s`;
  return `${rate}, ${s.rttMs} ms RTT`;
}
