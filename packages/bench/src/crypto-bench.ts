/**
 * Seal/open throughput of @ferry/crypto (raw binary Fernet tokens, the wire form) beside the
 * `fernet` npm package (crypto-js, base64url text tokens, UTF-8 plaintext only), on one core.
 */

import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { Fernet, generateKey } from '@ferry/crypto';

export interface CryptoRow {
  implementation: '@ferry/crypto' | 'fernet (npm)';
  sizeBytes: number;
  sealMBps: number;
  openMBps: number;
  sealOpsPerSecond: number;
  openOpsPerSecond: number;
  iterations: { seal: number; open: number };
}

export interface CryptoResult {
  rows: CryptoRow[];
  fernetNpmVersion: string | undefined;
  note: string;
}

export const CRYPTO_SIZES = [1024, 16 * 1024, 64 * 1024] as const;

interface FernetNpm {
  Secret: new (key: string) => unknown;
  Token: new (opts: {
    secret: unknown;
    token?: string;
    ttl?: number;
  }) => {
    encode(message: string): string;
    decode(token?: string): string;
  };
}

/** Calls fn repeatedly for about `ms` (at least `minIterations` times); returns calls per second. */
function rate(fn: () => void, ms: number, minIterations: number): { perSecond: number; iterations: number } {
  fn(); // warm-up: JIT and lazy initialisation
  let iterations = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ms || iterations < minIterations) {
    fn();
    iterations++;
    elapsed = performance.now() - start;
  }
  return { perSecond: (iterations * 1000) / elapsed, iterations };
}

function row(
  implementation: CryptoRow['implementation'],
  sizeBytes: number,
  seal: { perSecond: number; iterations: number },
  open: { perSecond: number; iterations: number },
): CryptoRow {
  return {
    implementation,
    sizeBytes,
    sealMBps: (seal.perSecond * sizeBytes) / 1e6,
    openMBps: (open.perSecond * sizeBytes) / 1e6,
    sealOpsPerSecond: seal.perSecond,
    openOpsPerSecond: open.perSecond,
    iterations: { seal: seal.iterations, open: open.iterations },
  };
}

/** Runs every size for both implementations; `ms` per cell for ferry, fewer iterations for npm fernet. */
export function runCryptoBench(ms: number): CryptoResult {
  const key = generateKey();
  const ours = new Fernet(key);
  const rows: CryptoRow[] = [];
  for (const size of CRYPTO_SIZES) {
    const plaintext = Buffer.alloc(size, 0x61);
    const token = ours.seal(plaintext);
    rows.push(
      row(
        '@ferry/crypto',
        size,
        rate(() => ours.seal(plaintext), ms, 20),
        rate(() => ours.open(token), ms, 20),
      ),
    );
  }
  const require = createRequire(import.meta.url);
  let npm: FernetNpm | undefined;
  let fernetNpmVersion: string | undefined;
  try {
    npm = require('fernet') as FernetNpm;
    fernetNpmVersion = (require('fernet/package.json') as { version: string }).version;
  } catch {
    npm = undefined;
  }
  if (npm) {
    const secret = new npm.Secret(key);
    const Token = npm.Token;
    for (const size of CRYPTO_SIZES) {
      const message = 'a'.repeat(size);
      const token = new Token({ secret }).encode(message);
      // It runs at about 1-2 MB/s: a short budget and few iterations suffice.
      const budget = Math.min(ms, 400);
      rows.push(
        row(
          'fernet (npm)',
          size,
          rate(() => new Token({ secret }).encode(message), budget, 3),
          rate(() => new Token({ secret, token, ttl: 0 }).decode(), budget, 3),
        ),
      );
    }
  }
  return {
    rows,
    fernetNpmVersion,
    note:
      'MB/s of plaintext (10^6 bytes/s), one core. @ferry/crypto: raw binary tokens (seal/open); ' +
      'fernet (npm): base64url text tokens of ASCII plaintext (encode/decode).' +
      (npm ? '' : ' The fernet npm package is not installed: its rows are missing.'),
  };
}

/** The block a loopback transfer uses by default (DEFAULT_BLOCK_SIZE) and the DATA header before it. */
export const CEILING_BLOCK_BYTES = 64_512;
const DATA_HEADER_BYTES = 29;

/**
 * The one-core ceiling of a sender: MB/s (10^6 bytes/s) of file data sealed as DATA packets (a
 * 29-byte header and a 64,512-byte block into one Fernet token, with the 12-byte prefix's headroom,
 * as the transport seals them) and hashed with SHA-256 (the file's digest), in one loop on one core
 * for about `ms`. A transfer does at least this much work per byte on the sender, besides reading and
 * sending; the bench compares a large transfer's rate with it, measured in the same run.
 */
export function sealHashCeiling(ms: number): number {
  const fernet = new Fernet(generateKey());
  const block = Buffer.alloc(CEILING_BLOCK_BYTES, 0x5a);
  const header = Buffer.alloc(DATA_HEADER_BYTES, 0x10);
  const hash = createHash('sha256');
  const step = (): void => {
    fernet.sealv([header, block], { headroom: 12 });
    hash.update(block);
  };
  const { perSecond } = rate(step, ms, 20);
  hash.digest();
  return (perSecond * CEILING_BLOCK_BYTES) / 1e6;
}
