import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type LinkConfig, SimNetwork, type SimTraceEvent } from '../src/index.js';

const HOSTILE: LinkConfig = {
  rateBitsPerSecond: 20_000_000,
  queueBytes: 32 * 1024,
  delayMs: 15,
  jitterMs: 4,
  loss: 0.05,
  burstLoss: { enterBad: 0.01, leaveBad: 0.3, lossInBad: 0.8 },
  duplicate: 0.03,
  reorder: 0.03,
  corrupt: 0.02,
};

/** Two endpoints ping-pong bursts through a hostile link; returns a trace of every delivery. */
function hostileTrace(seed: number): string[] {
  const net = new SimNetwork({ seed });
  const a = net.addEndpoint('a:1');
  const b = net.addEndpoint('b:1');
  net.connect('a:1', 'b:1', HOSTILE);
  const trace: string[] = [];
  const digest = (d: Buffer) => createHash('sha256').update(d).digest('hex').slice(0, 12);
  b.onDatagram = (d, from) => {
    trace.push(`${net.now()} b<-${from} ${digest(d)}`);
    b.send(d.subarray(0, 100), from);
  };
  a.onDatagram = (d, from) => trace.push(`${net.now()} a<-${from} ${digest(d)}`);
  const payload = Buffer.alloc(1200);
  for (let burst = 0; burst < 50; burst++) {
    net.schedule(burst * 10, () => {
      for (let i = 0; i < 40; i++) {
        payload.writeUInt32BE(burst * 1000 + i, 0);
        a.send(payload, 'b:1'); // reused buffer: the network must copy
      }
    });
  }
  expect(net.run().reason).toBe('idle');
  return trace;
}

describe('SimNetwork', () => {
  it('replays the identical delivery trace for a seed, and a different one for another seed', () => {
    const first = hostileTrace(1234);
    expect(first.length).toBeGreaterThan(1000);
    expect(hostileTrace(1234)).toEqual(first);
    expect(hostileTrace(1235)).not.toEqual(first);
  });

  it('delivers after the link delay with the sender address, and copies sent buffers', () => {
    const net = new SimNetwork({ seed: 1 });
    const a = net.addEndpoint('10.0.0.1:5000');
    const b = net.addEndpoint('10.0.0.2:7000');
    net.connect(a.address, b.address, { delayMs: 25 }, { delayMs: 5 });
    const got: Array<[number, string, string]> = [];
    b.onDatagram = (d, from) => {
      got.push([net.now(), from, d.toString()]);
      b.send(Buffer.from('pong'), from);
    };
    a.onDatagram = (d, from) => got.push([net.now(), from, d.toString()]);
    const buffer = Buffer.from('ping');
    a.send(buffer, b.address);
    buffer.write('XXXX');
    expect(got).toEqual([]); // never synchronous
    expect(net.run()).toEqual({ reason: 'idle', timeMs: 30, events: 2 });
    expect(got).toEqual([
      [25, '10.0.0.1:5000', 'ping'],
      [30, '10.0.0.2:7000', 'pong'],
    ]);
    expect(net.linkStats(a.address, b.address).delivered).toBe(1);
    expect(net.linkStats(b.address, a.address).delivered).toBe(1);
  });

  it('holds a 10 Mbit/s link to 10 Mbit/s when overdriven, counting queue drops', () => {
    const net = new SimNetwork({ seed: 2 });
    const a = net.addEndpoint('a');
    const b = net.addEndpoint('b');
    net.connect('a', 'b', { rateBitsPerSecond: 10_000_000, delayMs: 10 });
    let bytes = 0;
    let firstAt = -1;
    let lastAt = 0;
    b.onDatagram = (d) => {
      if (firstAt < 0) firstAt = net.now();
      else bytes += d.length;
      lastAt = net.now();
    };
    const packet = Buffer.alloc(1200);
    // Offer 30 Mbit/s for 2 s: 25 packets of 1200 B every 8 ms.
    for (let t = 0; t < 2000; t += 8)
      net.schedule(t, () => Array.from({ length: 25 }, () => a.send(packet, 'b')));
    net.run();
    const rate = (bytes * 8) / ((lastAt - firstAt) / 1000);
    expect(Math.abs(rate / 10_000_000 - 1)).toBeLessThan(0.01);
    expect(net.linkStats('a', 'b').dropped.queue).toBeGreaterThan(3000);
    expect(net.stats.dropped.link).toBe(net.linkStats('a', 'b').dropped.queue);
  });

  it('counts and drops datagrams to unknown addresses and over missing routes', () => {
    const net = new SimNetwork({ seed: 3 });
    const a = net.addEndpoint('a');
    net.addEndpoint('b');
    net.addEndpoint('c');
    net.connect('a', 'b', {});
    a.send(Buffer.from('x'), 'nowhere');
    a.send(Buffer.from('x'), 'c');
    a.send(Buffer.from('x'), 'b');
    net.run();
    expect(net.stats.toJSON()).toEqual({
      sent: 3,
      delivered: 1,
      unhandled: 1,
      dropped: { link: 0, noRoute: 1, unknownAddress: 1, closed: 0 },
    });
    expect(() => net.linkStats('a', 'c')).toThrow(/no link/);
  });

  it('uses the default link between unconnected endpoints when one is given', () => {
    const net = new SimNetwork({ seed: 3, defaultLink: { delayMs: 2 } });
    const a = net.addEndpoint('a');
    const b = net.addEndpoint('b');
    const at: number[] = [];
    b.onDatagram = () => at.push(net.now());
    a.send(Buffer.from('x'), 'b');
    net.run();
    expect(at).toEqual([2]);
    expect(net.linkStats('b', 'a').offered).toBe(0);
  });

  it('drops in-flight datagrams to a closed endpoint and sends from it', () => {
    const net = new SimNetwork({ seed: 4 });
    const a = net.addEndpoint('a');
    const b = net.addEndpoint('b');
    net.connect('a', 'b', { delayMs: 10 });
    b.onDatagram = () => expect.fail('closed endpoints receive nothing');
    a.send(Buffer.from('x'), 'b');
    b.close();
    b.send(Buffer.from('y'), 'a');
    net.run();
    expect(net.stats.dropped).toEqual({ link: 0, noRoute: 0, unknownAddress: 1, closed: 1 });
    expect(b.closed).toBe(true);
    net.addEndpoint('b'); // the address is free again
  });

  it('rebind moves an endpoint and its links to a new address (NAT rebinding)', () => {
    const net = new SimNetwork({ seed: 5 });
    const client = net.addEndpoint('client:1000');
    const server = net.addEndpoint('server:443');
    net.connect('client:1000', 'server:443', { delayMs: 10 });
    const seen: string[] = [];
    server.onDatagram = (d, from) => {
      seen.push(`${net.now()} ${from} ${d.toString()}`);
      server.send(Buffer.from('ack'), from);
    };
    const acks: number[] = [];
    client.onDatagram = () => acks.push(net.now());
    client.send(Buffer.from('one'), 'server:443');
    net.run();
    net.rebind('client:1000', 'client:2000');
    expect(client.address).toBe('client:2000');
    client.send(Buffer.from('two'), 'server:443');
    server.send(Buffer.from('stale'), 'client:1000'); // the old mapping is gone
    net.run();
    expect(seen).toEqual(['10 client:1000 one', '30 client:2000 two']);
    expect(acks).toEqual([20, 40]);
    expect(net.linkStats('client:2000', 'server:443').delivered).toBe(2); // the same link, moved
    expect(net.stats.dropped.unknownAddress).toBe(1);
    expect(() => net.rebind('client:2000', 'server:443')).toThrow(/in use/);
    expect(() => net.addEndpoint('server:443')).toThrow(/in use/);
  });

  it('traces sends, deliveries and drops', () => {
    const events: SimTraceEvent[] = [];
    const net = new SimNetwork({ seed: 6, onTrace: (e) => events.push(e) });
    const a = net.addEndpoint('a');
    net.addEndpoint('b');
    net.connect('a', 'b', { delayMs: 1, mtu: 10 });
    a.send(Buffer.alloc(5), 'b');
    a.send(Buffer.alloc(50), 'b');
    net.run();
    expect(events.map((e) => `${e.type}${e.type === 'drop' ? `:${e.reason}` : ''}@${e.timeMs}`)).toEqual([
      'send@0',
      'send@0',
      'drop:link@0',
      'deliver@1',
    ]);
    expect(net.linkStats('a', 'b').dropped.mtu).toBe(1);
  });

  it('same-link deliveries under jitter arrive in send order (no reordering unless asked)', () => {
    const net = new SimNetwork({ seed: 7 });
    const a = net.addEndpoint('a');
    const b = net.addEndpoint('b');
    net.connect('a', 'b', { delayMs: 20, jitterMs: 10 });
    const order: number[] = [];
    b.onDatagram = (d) => order.push(d.readUInt32BE(0));
    for (let i = 0; i < 2000; i++) {
      net.schedule(i * 0.3, () => {
        const d = Buffer.alloc(4);
        d.writeUInt32BE(i, 0);
        a.send(d, 'b');
      });
    }
    net.run();
    expect(order).toEqual(Array.from({ length: 2000 }, (_, i) => i));
  });
});

describe('SimNetwork event loop', () => {
  it('runs events in time order, equal times in scheduling order', () => {
    const net = new SimNetwork();
    const log: string[] = [];
    net.schedule(5, () => log.push('5a'));
    net.schedule(1, () => log.push('1'));
    net.schedule(5, () => log.push('5b'));
    net.schedule(3, () => {
      log.push('3');
      net.schedule(5, () => log.push('5c'));
      net.schedule(0, () => log.push('past->3')); // clamped to now
    });
    net.run();
    expect(log).toEqual(['1', '3', 'past->3', '5a', '5b', '5c']);
    expect(net.now()).toBe(5);
  });

  it('cancelled timers never fire, and cancel reports whether it did anything', () => {
    const net = new SimNetwork();
    const fired: number[] = [];
    const timers = Array.from({ length: 5000 }, (_, i) => net.schedule(i, () => fired.push(i)));
    for (let i = 0; i < 5000; i++) if (i % 3 !== 0) expect(net.cancel(timers[i]!)).toBe(true);
    expect(net.cancel(timers[1]!)).toBe(false);
    expect(net.pendingEvents).toBe(1667);
    net.run();
    expect(fired).toEqual(Array.from({ length: 1667 }, (_, i) => i * 3));
    expect(net.cancel(timers[0]!)).toBe(false);
  });

  it('stops on until, on maxEvents and on maxTime, so a runaway simulation is bounded', () => {
    const net = new SimNetwork();
    let ticks = 0;
    const tick = () => {
      ticks++;
      net.schedule(net.now() + 1, tick);
    };
    net.schedule(0, tick);
    expect(net.run({ until: () => ticks === 10 })).toEqual({ reason: 'until', timeMs: 9, events: 10 });
    expect(net.run({ maxEvents: 100 })).toEqual({ reason: 'maxEvents', timeMs: 109, events: 100 });
    expect(net.run({ maxTimeMs: 50.5 })).toEqual({ reason: 'maxTime', timeMs: 159.5, events: 50 });
    // Zero-delay event storms are bounded too.
    const storm = new SimNetwork();
    const spin = () => storm.schedule(storm.now(), spin);
    storm.schedule(0, spin);
    expect(storm.run({ maxEvents: 10_000 })).toEqual({ reason: 'maxEvents', timeMs: 0, events: 10_000 });
    // The default time budget is one virtual hour.
    const slow = new SimNetwork();
    const second = () => slow.schedule(slow.now() + 1000, second);
    slow.schedule(0, second);
    expect(slow.run()).toEqual({ reason: 'maxTime', timeMs: 3_600_000, events: 3601 });
  });

  it('refuses to run re-entrantly from inside an event', () => {
    const net = new SimNetwork();
    net.schedule(1, () => net.run());
    expect(() => net.run()).toThrow(/already running/);
    expect(net.run()).toMatchObject({ reason: 'idle' }); // still usable afterwards
  });
});
