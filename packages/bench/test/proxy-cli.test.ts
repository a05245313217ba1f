import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseEndpoint, parseProxyArgs, parseRate, parseSize } from '../src/proxy-cli.js';

describe('proxy command line', () => {
  it('parses rates in bits (decimal prefixes) and bytes per second', () => {
    expect(parseRate('100mbit')).toBe(100e6);
    expect(parseRate('100Mbit/s')).toBe(100e6);
    expect(parseRate('1gbit')).toBe(1e9);
    expect(parseRate('500kbit')).toBe(500e3);
    expect(parseRate('10mbps')).toBe(10e6);
    expect(parseRate('12.5MB/s')).toBe(100e6);
    expect(parseRate('1e6')).toBe(1e6);
    expect(parseRate('64000')).toBe(64000);
    for (const bad of ['', 'fast', '10 parsecs', '-1mbit', '0'])
      expect(() => parseRate(bad)).toThrow(RangeError);
  });

  it('parses sizes (k/KiB binary, kB decimal)', () => {
    expect(parseSize('65536')).toBe(65536);
    expect(parseSize('256KiB')).toBe(256 * 1024);
    expect(parseSize('64k')).toBe(64 * 1024);
    expect(parseSize('64kB')).toBe(64_000);
    expect(parseSize('1MiB')).toBe(1 << 20);
    expect(() => parseSize('lots')).toThrow(RangeError);
  });

  it('parses HOST:PORT, [IPv6]:PORT and a bare port', () => {
    expect(parseEndpoint('127.0.0.1:9000')).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(parseEndpoint('[::1]:9000')).toEqual({ host: '::1', port: 9000 });
    expect(parseEndpoint('localhost:0')).toEqual({ host: 'localhost', port: 0 });
    expect(parseEndpoint('7777')).toEqual({ host: '127.0.0.1', port: 7777 });
    expect(() => parseEndpoint('host:99999')).toThrow(RangeError);
    expect(() => parseEndpoint('::1:80')).toThrow(RangeError);
  });

  it('applies shared link options to both directions and --up-/--down- to one', () => {
    const command = parseProxyArgs([
      '--listen',
      '127.0.0.1:9000',
      '--target',
      '127.0.0.1:7777',
      '--rate',
      '100mbit',
      '--delay',
      '25',
      '--loss',
      '0.01',
      '--down-loss',
      '0',
      '--up-burst-loss',
      '0.01,0.3,0.9',
      '--queue',
      '1MiB',
      '--seed',
      '7',
    ]);
    expect(command).toEqual({
      help: false,
      options: {
        listen: { host: '127.0.0.1', port: 9000 },
        target: { host: '127.0.0.1', port: 7777 },
        upstream: {
          rateBitsPerSecond: 100e6,
          delayMs: 25,
          loss: 0.01,
          burstLoss: { enterBad: 0.01, leaveBad: 0.3, lossInBad: 0.9 },
          queueBytes: 1 << 20,
        },
        downstream: { rateBitsPerSecond: 100e6, delayMs: 25, loss: 0, queueBytes: 1 << 20 },
        seed: 7,
      },
    });
    expect(parseProxyArgs(['--help'])).toEqual({ help: true });
    expect(() => parseProxyArgs([])).toThrow(/--target/);
    expect(() => parseProxyArgs(['--target', '1', '--bogus'])).toThrow(RangeError);
    expect(() => parseProxyArgs(['--target', '1', '--delay', 'soon'])).toThrow(/not a number/);
  });

  it('runs as its own process: prints its port, forwards, and prints stats on SIGTERM', async () => {
    const cli = fileURLToPath(new URL('../dist/proxy-cli.js', import.meta.url));
    expect(existsSync(cli), 'build the bench package first (pnpm turbo run build)').toBe(true);
    const echo = createSocket('udp4');
    echo.on('message', (d, r) => echo.send(d, r.port, r.address));
    await new Promise<void>((resolve) => echo.bind(0, '127.0.0.1', resolve));
    const child = spawn(
      process.execPath,
      [cli, '--target', `127.0.0.1:${echo.address().port}`, '--delay', '5', '--up-duplicate', '1'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const client = createSocket('udp4');
    try {
      const listening = JSON.parse((await lines.next()).value as string);
      expect(listening).toMatchObject({ type: 'listening', host: '127.0.0.1' });
      expect(listening.port).toBeGreaterThan(0);
      const replies = new Promise<void>((resolve) => {
        let n = 0;
        client.on('message', () => ++n === 2 && resolve());
      });
      client.send('ping', listening.port, '127.0.0.1');
      await replies;
      child.kill('SIGTERM');
      const stats = JSON.parse((await lines.next()).value as string);
      expect(stats).toMatchObject({ type: 'stats', final: true, upstream: { offered: 1, duplicated: 1 } });
      expect(stats.downstream.forwarded).toBe(2);
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
      client.close();
      echo.close();
    }
  });
});
