import { type LinkConfig, Rng } from '@ferry/netsim';
import { describe, expect, it } from 'vitest';
import { describeRun, runSimTransfer, type SimTransferResult } from './helpers/sim-harness.js';

/**
 * A seed sweep: every seed picks an impairment scenario, its parameters, a block size, a file size,
 * a direction and a receive window, then runs a whole session (handshake, transfer) on the simulated
 * network. A failure prints the seed and everything it chose; the run replays exactly with
 *
 *   FERRY_SWEEP_SEEDS=<seed>[,<seed>…] pnpm exec vitest run --project transport test/sweep.test.ts
 *
 * FERRY_SWEEP_COUNT=<n> widens the sweep (default 100 seeds per scenario, 700 in all).
 */
type ScenarioName = 'loss' | 'burst' | 'duplication' | 'reordering' | 'corruption' | 'jitter' | 'mixed';

const SCENARIOS: ReadonlyArray<[ScenarioName, (rng: Rng) => LinkConfig]> = [
  ['loss', (rng) => ({ loss: rng.uniform(0.01, 0.3) })],
  [
    'burst',
    (rng) => ({
      loss: rng.uniform(0, 0.01),
      burstLoss: {
        enterBad: rng.uniform(0.005, 0.05),
        leaveBad: rng.uniform(0.1, 0.6),
        lossInBad: rng.uniform(0.5, 1),
      },
    }),
  ],
  ['duplication', (rng) => ({ duplicate: rng.uniform(0.05, 0.3), loss: rng.uniform(0, 0.02) })],
  [
    'reordering',
    (rng) => ({
      reorder: rng.uniform(0.05, 0.4),
      reorderDelayMs: rng.uniform(1, 30),
      jitterMs: rng.uniform(0, 5),
    }),
  ],
  ['corruption', (rng) => ({ corrupt: rng.uniform(0.01, 0.15), loss: rng.uniform(0, 0.02) })],
  ['jitter', (rng) => ({ jitterMs: rng.uniform(1, 15), loss: rng.uniform(0, 0.05) })],
  [
    'mixed',
    (rng) => ({
      loss: rng.uniform(0, 0.1),
      duplicate: rng.uniform(0, 0.1),
      reorder: rng.uniform(0, 0.2),
      corrupt: rng.uniform(0, 0.05),
      jitterMs: rng.uniform(0, 4),
    }),
  ],
];

export interface SweepCase {
  seed: number;
  scenario: ScenarioName;
  direction: 'put' | 'get';
  blockSize: number;
  size: number;
  receiveWindow: number;
  up: LinkConfig;
  down: LinkConfig;
}

/** Everything a seed decides; a pure function of the seed. */
export function sweepCase(seed: number): SweepCase {
  const rng = new Rng(`ferry sweep ${seed}`);
  const [scenario, impair] = SCENARIOS[seed % SCENARIOS.length]!;
  const path: LinkConfig = {
    delayMs: rng.uniform(0.5, 40),
    rateBitsPerSecond: rng.uniform(5e6, 100e6),
    queueBytes: rng.int(4) === 0 ? 32 * 1024 : 256 * 1024,
  };
  const up = { ...path, ...impair(rng) };
  // Half the seeds impair both directions, the others only client to server.
  const down = rng.chance(0.5) ? { ...path, ...impair(rng) } : path;
  const blockSize = [512, 1024, 1120, 4096][rng.int(4)]!;
  const sizes = [0, 1, blockSize - 1, blockSize, blockSize + 1, 7 * blockSize + 3, 40_000, 120_000];
  const size = sizes[rng.int(sizes.length)]!;
  const direction = rng.chance(0.5) ? 'put' : 'get';
  const receiveWindow = rng.chance(0.25) ? blockSize * (1 + rng.int(12)) : 4 * 1024 * 1024;
  return { seed, scenario, direction, blockSize, size, receiveWindow, up, down };
}

/** Longest a sweep run may take (virtual time): stop-and-wait-like windows of one block at 30 % loss
 * need about 20 s; a stall (waiting for a keep-alive, or worse) needs more. */
export const SWEEP_TIME_LIMIT_MS = 30_000;

/** Why the seed's run fell short of expectations (undefined: it did not), and when it completed. */
export function checkSweepCase(c: SweepCase): { why: string | undefined; completedAt: number | undefined } {
  const why = (r: SimTransferResult | undefined, text: string | undefined) => ({
    why: text,
    completedAt: r?.completedAt,
  });
  let r: SimTransferResult;
  try {
    r = runSimTransfer({
      seed: c.seed,
      size: c.size,
      blockSize: c.blockSize,
      direction: c.direction,
      up: c.up,
      down: c.down,
      receiveWindow: c.receiveWindow,
      maxTimeMs: 120_000,
    });
  } catch (error) {
    return why(undefined, `threw ${(error as Error).stack ?? String(error)}`);
  }
  if (!r.ok) return why(r, `failed: ${describeRun(r)}`);
  if (r.completedAt! > SWEEP_TIME_LIMIT_MS) {
    return why(r, `took ${Math.round(r.completedAt!)} ms of virtual time: ${describeRun(r)}`);
  }
  if (c.scenario !== 'corruption' && c.scenario !== 'mixed') {
    // Without corruption nothing fails a MAC or a decoder: such a drop would be a bug in the encoder.
    for (const conn of [r.sender!, r.receiver!]) {
      const d = conn.stats.drops;
      if (d['bad-mac'] + d.malformed > 0) return why(r, `drops without corruption: ${JSON.stringify(d)}`);
    }
  }
  return why(r, undefined);
}

function seedsFromEnv(): number[] | undefined {
  const text = process.env.FERRY_SWEEP_SEEDS;
  if (text === undefined || text.trim() === '') return undefined;
  return text.split(',').map((s) => Number(s.trim()));
}

const PER_SCENARIO = Number(process.env.FERRY_SWEEP_COUNT ?? 700) / SCENARIOS.length;
/** FERRY_SWEEP_SLOW=<ms> lists the seeds that completed later than that (to study the tail). */
const SLOW_MS = process.env.FERRY_SWEEP_SLOW ? Number(process.env.FERRY_SWEEP_SLOW) : undefined;

describe('seed sweep across impairments', () => {
  const only = seedsFromEnv();
  SCENARIOS.forEach(([name], index) => {
    const seeds =
      only?.filter((s) => s % SCENARIOS.length === index) ??
      Array.from({ length: Math.ceil(PER_SCENARIO) }, (_, i) => i * SCENARIOS.length + index);
    it.skipIf(seeds.length === 0)(
      `${name}: ${seeds.length} seeds complete bit-exact`,
      () => {
        const failures: string[] = [];
        for (const seed of seeds) {
          const c = sweepCase(seed);
          const { why, completedAt } = checkSweepCase(c);
          if (why !== undefined) failures.push(`seed ${seed} (${JSON.stringify(c)}): ${why}`);
          if (SLOW_MS !== undefined && (completedAt ?? 0) > SLOW_MS) {
            console.log(
              `slow: seed ${seed} completed at ${Math.round(completedAt!)} ms (${JSON.stringify(c)})`,
            );
          }
        }
        expect(failures, failures.join('\n')).toEqual([]);
      },
      60_000,
    );
  });
});
