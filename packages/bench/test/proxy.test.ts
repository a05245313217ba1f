import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import type { LinkConfig } from '@ferry/netsim';
import { afterEach, describe, expect, it } from 'vitest';
import { ImpairmentProxy, type ImpairmentProxyStats } from '../src/proxy.js';

const HOST = '127.0.0.1';
const opened: Array<{ close(): unknown }> = [];

afterEach(async () => {
  for (const item of opened.splice(0)) await item.close();
});

async function udpSocket(): Promise<Socket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, HOST, resolve));
  socket.setRecvBufferSize(4 * 1024 * 1024);
  opened.push({ close: () => new Promise<void>((resolve) => socket.close(() => resolve())) });
  return socket;
}

/** Echoes every datagram to its sender; records the source ports it sees. */
async function echoServer(): Promise<{ port: number; sources: Set<number>; received: () => number }> {
  const socket = await udpSocket();
  const sources = new Set<number>();
  let received = 0;
  socket.on('message', (datagram, rinfo) => {
    received++;
    sources.add(rinfo.port);
    socket.send(datagram, rinfo.port, rinfo.address);
  });
  return { port: socket.address().port, sources, received: () => received };
}

async function proxyTo(port: number, upstream: LinkConfig, downstream?: LinkConfig) {
  const proxy = new ImpairmentProxy({
    listen: { host: HOST, port: 0 },
    target: { host: HOST, port },
    upstream,
    ...(downstream ? { downstream } : {}),
    seed: 42,
  });
  const { port: proxyPort } = await proxy.start();
  opened.push({ close: () => proxy.stop() });
  return { proxy, proxyPort };
}

/** Resolves once check() holds (checked every few ms); rejects after timeoutMs (a bound on a hang). */
function eventually(check: () => boolean, timeoutMs = 30_000, what = 'condition'): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const poll = setInterval(() => {
      if (check()) {
        clearInterval(poll);
        resolve();
      } else if (performance.now() - started > timeoutMs) {
        clearInterval(poll);
        reject(new Error(`timed out waiting for ${what}`));
      }
    }, 5);
  });
}

/** The proxy has seen `sent` datagrams and nothing is left in flight anywhere. */
function settled(stats: ImpairmentProxyStats, sent: number, echoed: number, received: number): boolean {
  return (
    stats.upstream.offered === sent &&
    stats.pending === 0 &&
    echoed === stats.upstream.forwarded &&
    stats.downstream.offered === echoed &&
    received === stats.downstream.forwarded
  );
}

function numbered(seq: number, size: number): Buffer {
  const b = Buffer.alloc(size, seq & 0xff);
  b.writeUInt32BE(seq, 0);
  return b;
}

describe('ImpairmentProxy', () => {
  it('with no impairment, every datagram arrives intact and replies route back', async () => {
    const echo = await echoServer();
    const { proxy, proxyPort } = await proxyTo(echo.port, {});
    const client = await udpSocket();
    const total = 1000;
    const sizes = (seq: number) => (seq % 100 === 0 ? 60_000 : 4 + ((seq * 37) % 1400));
    const got = new Map<number, Buffer>();
    let next = 0;
    const sendOne = () => {
      if (next >= total) return;
      client.send(numbered(next, sizes(next)), proxyPort, HOST);
      next++;
    };
    client.on('message', (datagram) => {
      got.set(datagram.readUInt32BE(0), datagram);
      sendOne(); // a window of 32 in flight keeps every socket buffer far from full
    });
    for (let i = 0; i < 32; i++) sendOne();
    await eventually(() => got.size === total, 30_000, 'all echoes');
    for (let seq = 0; seq < total; seq++) expect(got.get(seq)?.equals(numbered(seq, sizes(seq)))).toBe(true);
    const stats = proxy.stats();
    expect(stats.upstream.forwarded).toBe(total);
    expect(stats.downstream.forwarded).toBe(total);
    expect(stats.upstream.dropped).toEqual({ loss: 0, queue: 0, mtu: 0, blackout: 0 });
    expect(stats.clients).toBe(1);
    expect(echo.sources.size).toBe(1);
    expect(stats.sendErrors).toBe(0);
  });

  it('with 50 % upstream loss, about half the datagrams are dropped and counted', async () => {
    const echo = await echoServer();
    const { proxy, proxyPort } = await proxyTo(echo.port, { loss: 0.5 }, {});
    const client = await udpSocket();
    let received = 0;
    client.on('message', () => received++);
    const total = 1000;
    for (let i = 0; i < total; i++) client.send(numbered(i, 64), proxyPort, HOST);
    await eventually(
      () => settled(proxy.stats(), total, echo.received(), received),
      30_000,
      'the proxy to settle',
    );
    const stats = proxy.stats();
    expect(stats.upstream.dropped.loss + stats.upstream.delivered).toBe(total);
    expect(received).toBe(stats.upstream.delivered);
    expect(received).toBeGreaterThan(400);
    expect(received).toBeLessThan(600);
    expect(stats.downstream.dropped.loss).toBe(0);
  });

  it('with 30 ms delay each way, the round trip takes at least 60 ms', async () => {
    const echo = await echoServer();
    const { proxyPort } = await proxyTo(echo.port, { delayMs: 30 });
    const client = await udpSocket();
    const rtts: number[] = [];
    for (let i = 0; i < 8; i++) {
      const sentAt = performance.now();
      const reply = new Promise<void>((resolve) => client.once('message', () => resolve()));
      client.send(numbered(i, 100), proxyPort, HOST);
      await reply;
      rtts.push(performance.now() - sentAt);
    }
    // A lower bound only: the proxy never releases early; how late it is depends on the machine.
    for (const rtt of rtts) expect(rtt).toBeGreaterThanOrEqual(59.9);
  });

  it('with duplication, extra copies are delivered and counted', async () => {
    const echo = await echoServer();
    const { proxy, proxyPort } = await proxyTo(echo.port, { duplicate: 0.5 }, {});
    const client = await udpSocket();
    const copies = new Map<number, number>();
    let received = 0;
    client.on('message', (datagram) => {
      received++;
      const seq = datagram.readUInt32BE(0);
      copies.set(seq, (copies.get(seq) ?? 0) + 1);
    });
    const total = 500;
    for (let i = 0; i < total; i++) client.send(numbered(i, 200), proxyPort, HOST);
    await eventually(
      () => settled(proxy.stats(), total, echo.received(), received),
      30_000,
      'the proxy to settle',
    );
    const stats = proxy.stats();
    expect(received).toBe(total + stats.upstream.duplicated);
    expect(stats.upstream.duplicated).toBeGreaterThan(180);
    expect(copies.size).toBe(total);
    expect([...copies.values()].every((n) => n === 1 || n === 2)).toBe(true);
  });

  it('a rate limit stretches a burst: 200 kB at 4 Mbit/s takes at least 400 ms', async () => {
    const echo = await echoServer();
    const { proxy, proxyPort } = await proxyTo(
      echo.port,
      { rateBitsPerSecond: 4_000_000, queueBytes: 1 << 20 },
      {},
    );
    const client = await udpSocket();
    let received = 0;
    let lastAt = 0;
    client.on('message', () => {
      received++;
      lastAt = performance.now();
    });
    const startedAt = performance.now();
    for (let i = 0; i < 200; i++) client.send(numbered(i, 1000), proxyPort, HOST);
    await eventually(() => received === 200, 30_000, 'all echoes');
    expect(lastAt - startedAt).toBeGreaterThanOrEqual(399);
    expect(proxy.stats().upstream.dropped.queue).toBe(0);
    expect(proxy.stats().upstream.peakQueueBytes).toBeGreaterThan(100_000);
  });

  it('gives each client its own upstream port, and routes each reply to its own client', async () => {
    const echo = await echoServer();
    const { proxy, proxyPort } = await proxyTo(echo.port, { delayMs: 1 });
    const clients = [await udpSocket(), await udpSocket(), await udpSocket()];
    const wrong: string[] = [];
    let received = 0;
    clients.forEach((client, index) => {
      client.on('message', (datagram) => {
        received++;
        if (datagram.readUInt32BE(0) !== index) wrong.push(`client ${index} got ${datagram.readUInt32BE(0)}`);
      });
      for (let k = 0; k < 20; k++) client.send(numbered(index, 50), proxyPort, HOST);
    });
    await eventually(() => received === 60, 30_000, 'all echoes');
    expect(wrong).toEqual([]);
    expect(echo.sources.size).toBe(3);
    expect(proxy.stats()).toMatchObject({ clients: 3, clientsTotal: 3 });
  });

  it('refuses clients beyond maxClients and ignores strays at upstream sockets', async () => {
    const echo = await echoServer();
    const proxy = new ImpairmentProxy({
      listen: { host: HOST, port: 0 },
      target: { host: HOST, port: echo.port },
      upstream: {},
      maxClients: 1,
    });
    const { port } = await proxy.start();
    opened.push({ close: () => proxy.stop() });
    const first = await udpSocket();
    const second = await udpSocket();
    first.send('a', port, HOST);
    await eventually(() => proxy.stats().downstream.forwarded === 1, 30_000, 'the first echo');
    second.send('b', port, HOST);
    await eventually(() => proxy.stats().refusedClients === 1, 30_000, 'the refusal');
    expect(proxy.stats().clients).toBe(1);
  });

  it('stop() discards pending deliveries and is idempotent', async () => {
    const echo = await echoServer();
    const { proxy, proxyPort } = await proxyTo(echo.port, { delayMs: 2000 });
    const client = await udpSocket();
    client.send('late', proxyPort, HOST);
    await eventually(() => proxy.stats().pending === 1, 30_000, 'the datagram to queue');
    await proxy.stop();
    await proxy.stop();
    expect(proxy.stats().pending).toBe(0);
    expect(echo.received()).toBe(0);
    await expect(proxy.start()).rejects.toThrow(/already stopped/);
  });

  it('rejects invalid link configurations before binding anything', () => {
    expect(
      () =>
        new ImpairmentProxy({
          listen: { host: HOST, port: 0 },
          target: { host: HOST, port: 1 },
          upstream: { loss: 2 },
        }),
    ).toThrow(RangeError);
  });
});
