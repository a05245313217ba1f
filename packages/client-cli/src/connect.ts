/**
 * From command-line options to a connected FerryClient: key, timeouts, block size, rate cap.
 */

import { stringOption } from '@ferry/cli-kit';
import { MAX_BLOCK_SIZE, MIN_BLOCK_SIZE } from '@ferry/protocol';
import type { Target } from './args.js';
import { parseBytes, parseCount, parseSeconds } from './args.js';
import type { FerryClient, FerryClientOptions } from './client.js';
import { type ClientKey, loadClientKey } from './key-source.js';

export interface ConnectionSettings {
  keyFile?: string | undefined;
  idleTimeoutMs?: number | undefined;
  blockSize?: number | undefined;
  rateLimit?: number | undefined;
  fixedWindowPackets?: number | undefined;
}

/** Reads and checks the connection options; every problem is a usage error. */
export function connectionSettings(options: Record<string, unknown>): ConnectionSettings {
  const timeout = stringOption(options, 'timeout', '--timeout');
  const blockSize = stringOption(options, 'blockSize', '--block-size');
  const limit = stringOption(options, 'limit', '--limit');
  const window = stringOption(options, 'window', '--window');
  return {
    keyFile: stringOption(options, 'key', '--key'),
    idleTimeoutMs: timeout === undefined ? undefined : parseSeconds('--timeout', timeout),
    blockSize:
      blockSize === undefined
        ? undefined
        : parseCount('--block-size', blockSize, MIN_BLOCK_SIZE, MAX_BLOCK_SIZE),
    rateLimit: limit === undefined ? undefined : parseBytes('--limit', limit),
    fixedWindowPackets: window === undefined ? undefined : parseCount('--window', window, 1, 1_000_000),
  };
}

export interface Connector {
  key: ClientKey;
  connect(): Promise<FerryClient>;
}

/** Loads the key once and returns a function that opens (or reopens) a session. */
export async function connector(
  target: Target,
  settings: ConnectionSettings,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Connector> {
  const key = await loadClientKey(settings.keyFile, env);
  const { FerryClient } = await import('./client.js');
  const options: FerryClientOptions = {
    host: target.host,
    port: target.port,
    key: key.key,
    // --timeout bounds the wait for a first answer too, so a silent host is given up as promptly.
    ...(settings.idleTimeoutMs !== undefined
      ? { idleTimeoutMs: settings.idleTimeoutMs, handshakeTimeoutMs: settings.idleTimeoutMs }
      : {}),
    ...(settings.blockSize !== undefined ? { blockSize: settings.blockSize } : {}),
    ...(settings.rateLimit !== undefined ? { rateLimit: settings.rateLimit } : {}),
    ...(settings.fixedWindowPackets !== undefined ? { fixedWindowPackets: settings.fixedWindowPackets } : {}),
  };
  return { key, connect: () => FerryClient.connect(options) };
}

/** Ends the session without waiting long for a server that may be gone. */
export async function closeQuietly(client: FerryClient | undefined, waitMs = 1000): Promise<void> {
  if (client === undefined || client.closed) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.close().catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, waitMs);
    }),
  ]);
  clearTimeout(timer);
}
