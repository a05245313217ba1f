import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { LinkConfig } from '@ferry/netsim';
import { isEntryPoint } from './entry.js';
import { ImpairmentProxy, type ImpairmentProxyOptions, type ProxyEndpoint } from './proxy.js';

const USAGE = `ferry impairment proxy: forwards UDP from --listen to --target through simulated links.

Usage: node proxy-cli.js --target HOST:PORT [--listen HOST:PORT] [link options] [--seed S]

Link options apply to both directions; --up-NAME / --down-NAME override one direction
(up = client -> target, down = target -> client):
  --rate RATE           bottleneck rate: 100mbit, 1gbit, 500kbit, 12.5MB/s, or bits/s
  --queue SIZE          tail-drop queue: 256KiB (default), 1MiB, 64k, or bytes
  --overhead BYTES      bytes added per datagram for rate accounting (e.g. 28)
  --delay MS            one-way delay
  --jitter MS           delay varies within +-jitter, order kept
  --loss P              random loss probability (0..1)
  --burst-loss E,L,B    Gilbert-Elliott: enter-bad, leave-bad, loss-in-bad probabilities
  --duplicate P         duplication probability
  --reorder P           probability a datagram is held back by --reorder-delay
  --reorder-delay MS    extra hold of a reordered datagram
  --corrupt P           probability of one flipped bit
  --mtu BYTES           drop larger datagrams

Prints one JSON line {"type":"listening",...} on start, {"type":"stats",...} on SIGUSR2,
and a final stats line on SIGINT/SIGTERM before exiting.`;

const LINK_OPTIONS = [
  'rate',
  'queue',
  'overhead',
  'delay',
  'jitter',
  'loss',
  'burst-loss',
  'duplicate',
  'reorder',
  'reorder-delay',
  'corrupt',
  'mtu',
] as const;
type LinkOption = (typeof LINK_OPTIONS)[number];

const RATE_UNITS: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 };

/** Parses a rate into bits per second: 100mbit, 1Gbit/s, 10mbps, 500kbit, 12.5MB/s (bytes), 1e6. */
export function parseRate(text: string): number {
  const match =
    /^\s*(\d+(?:\.\d*)?(?:e\d+)?)\s*(?:([kKmMgGtT]?)(bit|bps|b)?(\/s)?|([kKmMgGtT]?)(B\/s|Bps))\s*$/.exec(
      text,
    );
  if (!match) throw new RangeError(`invalid rate ${JSON.stringify(text)} (try 100mbit, 1gbit, 12.5MB/s)`);
  const value = Number(match[1]);
  const inBytes = match[6] !== undefined;
  const prefix = ((inBytes ? match[5] : match[2]) ?? '').toLowerCase();
  const rate = value * (RATE_UNITS[prefix] ?? 1) * (inBytes ? 8 : 1);
  if (!(rate > 0) || !Number.isFinite(rate))
    throw new RangeError(`rate must be > 0, got ${JSON.stringify(text)}`);
  return rate;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1e6,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1e9,
};

/** Parses a byte size: 65536, 64k / 64KiB (x1024), 64kB (x1000), 1MiB, 1MB. */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d*)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const factor = match ? SIZE_UNITS[(match[2] ?? '').toLowerCase()] : undefined;
  if (!match || factor === undefined)
    throw new RangeError(`invalid size ${JSON.stringify(text)} (try 256KiB, 1MiB)`);
  return Math.round(Number(match[1]) * factor);
}

/** Parses HOST:PORT, [IPv6]:PORT or a bare PORT (host 127.0.0.1). */
export function parseEndpoint(text: string): ProxyEndpoint {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text) ?? /^()()(\d+)$/.exec(text);
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || !(port >= 0 && port <= 65535)) {
    throw new RangeError(`invalid address ${JSON.stringify(text)} (expected HOST:PORT or [IPv6]:PORT)`);
  }
  return { host: match[1] || match[2] || '127.0.0.1', port };
}

function parseNumber(name: string, text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new RangeError(`--${name}: not a number: ${text}`);
  return value;
}

function applyLinkOption(config: LinkConfig, name: LinkOption, text: string): void {
  switch (name) {
    case 'rate':
      config.rateBitsPerSecond = parseRate(text);
      return;
    case 'queue':
      config.queueBytes = parseSize(text);
      return;
    case 'overhead':
      config.overheadBytes = parseSize(text);
      return;
    case 'delay':
      config.delayMs = parseNumber(name, text);
      return;
    case 'jitter':
      config.jitterMs = parseNumber(name, text);
      return;
    case 'loss':
      config.loss = parseNumber(name, text);
      return;
    case 'burst-loss': {
      const parts = text.split(',').map((p) => parseNumber(name, p));
      if (parts.length !== 3) throw new RangeError(`--burst-loss needs ENTER,LEAVE,LOSS_IN_BAD, got ${text}`);
      const [enterBad = 0, leaveBad = 0, lossInBad = 0] = parts;
      config.burstLoss = { enterBad, leaveBad, lossInBad };
      return;
    }
    case 'duplicate':
      config.duplicate = parseNumber(name, text);
      return;
    case 'reorder':
      config.reorder = parseNumber(name, text);
      return;
    case 'reorder-delay':
      config.reorderDelayMs = parseNumber(name, text);
      return;
    case 'corrupt':
      config.corrupt = parseNumber(name, text);
      return;
    case 'mtu':
      config.mtu = parseSize(text);
      return;
  }
}

export type ProxyCliCommand = { help: true } | { help: false; options: ImpairmentProxyOptions };

/** Parses the command line (without node and script) into proxy options; throws RangeError on bad input. */
export function parseProxyArgs(argv: readonly string[]): ProxyCliCommand {
  const options: NonNullable<ParseArgsConfig['options']> = {
    help: { type: 'boolean', short: 'h' },
    listen: { type: 'string' },
    target: { type: 'string' },
    seed: { type: 'string' },
  };
  for (const name of LINK_OPTIONS) {
    options[name] = { type: 'string' };
    options[`up-${name}`] = { type: 'string' };
    options[`down-${name}`] = { type: 'string' };
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values as Record<
      string,
      string | boolean | undefined
    >;
  } catch (error) {
    throw new RangeError((error as Error).message);
  }
  if (values.help) return { help: true };
  if (typeof values.target !== 'string') throw new RangeError('--target HOST:PORT is required');
  const upstream: LinkConfig = {};
  const downstream: LinkConfig = {};
  for (const name of LINK_OPTIONS) {
    const both = values[name];
    if (typeof both === 'string') {
      applyLinkOption(upstream, name, both);
      applyLinkOption(downstream, name, both);
    }
    const up = values[`up-${name}`];
    if (typeof up === 'string') applyLinkOption(upstream, name, up);
    const down = values[`down-${name}`];
    if (typeof down === 'string') applyLinkOption(downstream, name, down);
  }
  const seedText = values.seed;
  const seed = typeof seedText === 'string' ? (/^\d+$/.test(seedText) ? Number(seedText) : seedText) : 1;
  return {
    help: false,
    options: {
      listen: parseEndpoint(typeof values.listen === 'string' ? values.listen : '127.0.0.1:0'),
      target: parseEndpoint(values.target),
      upstream,
      downstream,
      seed,
    },
  };
}

function printLine(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export async function main(argv: readonly string[]): Promise<number> {
  let options: ImpairmentProxyOptions;
  let proxy: ImpairmentProxy;
  try {
    const command = parseProxyArgs(argv);
    if (command.help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    options = command.options;
    proxy = new ImpairmentProxy(options); // validates both link configurations
  } catch (error) {
    process.stderr.write(`proxy: ${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { host, port } = await proxy.start();
  printLine({
    type: 'listening',
    host,
    port,
    target: `${options.target.host}:${options.target.port}`,
    seed: options.seed,
    upstream: options.upstream,
    downstream: options.downstream,
  });
  process.on('SIGUSR2', () => printLine({ type: 'stats', ...proxy.stats() }));
  return new Promise<number>((resolve) => {
    const finish = () => {
      printLine({ type: 'stats', final: true, ...proxy.stats() });
      void proxy.stop().then(() => resolve(0));
    };
    process.once('SIGINT', finish);
    process.once('SIGTERM', finish);
  });
}

if (isEntryPoint(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`proxy: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
