import type { TransferRecord } from './transfer.js';

/** One tool (or ferry configuration) in an interleaved comparison, with its measured runs. */
export interface Contender {
  name: string;
  run: (op: 'put' | 'get') => Promise<TransferRecord>;
  runs: Record<'put' | 'get', TransferRecord[]>;
}

/**
 * Warm-up rounds, then measured rounds; each round runs every contender's put in turn, then every
 * contender's get, so a drift of the machine's load hits all of them alike.
 */
export async function runInterleaved(
  contenders: readonly Contender[],
  runs: number,
  warmup: number,
  record: (r: TransferRecord, label: string) => TransferRecord,
  log: (line: string) => void,
): Promise<void> {
  for (let round = -warmup; round < runs; round++) {
    for (const op of ['put', 'get'] as const) {
      for (const c of contenders) {
        const r = await c.run(op);
        if (round < 0) {
          if (!r.ok) record(r, `warm-up ${op} ${c.name}`);
          continue;
        }
        record(r, `${op} ${c.name} run ${round + 1}`);
        c.runs[op].push(r);
        if (r.ok)
          log(
            `  ${c.name} ${op} ${(r.bytes / r.wallSeconds / 1e6).toFixed(1)} MB/s (${r.wallSeconds.toFixed(2)} s)`,
          );
      }
    }
  }
}
