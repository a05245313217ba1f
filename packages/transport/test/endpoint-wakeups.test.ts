import { describe, expect, it } from 'vitest';
import type { Connection } from '../src/core/connection.js';
import { ServerEndpoint, type ServerSession } from '../src/core/endpoint.js';
import { ClientHandshake } from '../src/core/handshake.js';
import type { Datagram } from '../src/core/wire.js';
import { TEST_KEY } from './helpers/sim-harness.js';

/**
 * The endpoint on a direct, lossless in-memory wire (no link model): many sessions open, one of
 * them busy. Counts how often each server connection is polled, to show that a wake-up runs the
 * sessions that woke, not all of them.
 */
const wallClock = (): number => 1_800_000_000;
const flat = (d: Datagram): Buffer => (Array.isArray(d) ? Buffer.concat(d) : d);

function openSessions(count: number) {
  const endpoint = new ServerEndpoint({
    keys: [{ name: 'k', key: TEST_KEY, access: 'read-write' }],
    wallClock,
    maxBlockSize: 1024,
    receiveWindow: 1 << 20,
    idleTimeoutMs: 30_000,
    maxSessions: count,
  });
  const clients = new Map<string, Connection>();
  const toClients: Array<[string, Buffer]> = [];
  const send = (datagram: Datagram, to: string): void => {
    toClients.push([to, flat(datagram)]);
  };
  const sessions: Array<ServerSession<string>> = [];
  let now = 0;
  for (let i = 0; i < count; i++) {
    const peer = `10.1.${i >> 8}.${i & 255}:4000`;
    const handshake = new ClientHandshake({
      key: TEST_KEY,
      now,
      wallClock,
      maxBlockSize: 1024,
      receiveWindow: 1 << 20,
      idleTimeoutMs: 30_000,
    });
    for (const hello of handshake.poll(now)) endpoint.receive(hello, peer, now);
    endpoint.poll(now, send);
    for (const [, d] of toClients.splice(0)) handshake.receive(d, now);
    if (handshake.outcome?.type !== 'established') throw new Error('handshake failed');
    const client = handshake.outcome.connection;
    clients.set(peer, client);
    for (const d of client.poll(now)) endpoint.receive(flat(d), peer, now);
    endpoint.poll(now, send);
    for (;;) {
      const e = endpoint.pollEvent();
      if (e === undefined) break;
      if (e.type === 'session') sessions.push(e.session as ServerSession<string>);
    }
    for (const [to, d] of toClients.splice(0)) clients.get(to)!.receiveDatagram(d, now);
    now += 0.01;
  }
  return { endpoint, clients, sessions, toClients, send, now };
}

/** Counts the polls of each session's connection from now on. */
function countPolls(sessions: ReadonlyArray<ServerSession<string>>): Map<ServerSession<string>, number> {
  const polls = new Map<ServerSession<string>, number>();
  for (const s of sessions) {
    const connection = s.connection;
    const poll = connection.poll.bind(connection);
    polls.set(s, 0);
    connection.poll = (now) => {
      polls.set(s, polls.get(s)! + 1);
      return poll(now);
    };
  }
  return polls;
}

describe('server endpoint wake-ups', () => {
  it('runs only the sessions that woke: 500 idle sessions are not polled while one works', () => {
    const { endpoint, clients, sessions, toClients, send, now: start } = openSessions(501);
    expect(sessions).toHaveLength(501);
    const polls = countPolls(sessions);
    const busy = sessions[250]!;
    const client = clients.get(busy.address)!;
    // The busy client and server exchange control messages; each exchange is a few wake-ups.
    let now = start;
    let wakeups = 0;
    for (let i = 0; i < 200; i++) {
      client.sendMessage(Buffer.from(`{"op":"stat","id":${i},"path":"a"}`));
      for (let round = 0; round < 4; round++) {
        now += 0.2;
        for (const d of client.poll(now)) endpoint.receive(flat(d), busy.address, now);
        if (now >= endpoint.nextTimeout()) endpoint.handleTimeout(now);
        endpoint.poll(now, send);
        wakeups++;
        for (const [to, d] of toClients.splice(0)) clients.get(to)!.receiveDatagram(d, now);
        while (busy.connection.pollEvent() !== undefined) {}
      }
    }
    const busyPolls = polls.get(busy)!;
    const idlePolls = [...polls].filter(([s]) => s !== busy).map(([, n]) => n);
    expect(busyPolls).toBeGreaterThanOrEqual(200);
    // Every idle session together was polled less often than the busy one (before: 500 × wakeups).
    expect(idlePolls.reduce((a, b) => a + b, 0)).toBeLessThan(busyPolls);
    expect(Math.max(...idlePolls)).toBeLessThanOrEqual(1);
    expect(wakeups).toBe(800);
  });

  it('runs a session whose timer is due, and one its application woke, without a datagram', () => {
    const { endpoint, clients, sessions, toClients, send, now: start } = openSessions(3);
    const [a, b, c] = sessions as [ServerSession<string>, ServerSession<string>, ServerSession<string>];
    const counted = countPolls(sessions);
    // The application queues a message on b: only b runs, and its message leaves.
    b.connection.sendMessage(Buffer.from('{"op":"cancel","transferId":1}'));
    endpoint.wake(b);
    const visited: string[] = [];
    endpoint.poll(start, send, (s) => visited.push(s.address));
    expect(visited).toEqual([b.address]);
    expect(toClients.map(([to]) => to)).toEqual([b.address]);
    // Its client acknowledges it (after its ack delay): that datagram wakes b, and only b.
    const client = clients.get(b.address)!;
    for (const [, d] of toClients.splice(0)) client.receiveDatagram(d, start);
    client.handleTimeout(start + 2);
    for (const d of client.poll(start + 2)) endpoint.receive(flat(d), b.address, start + 2);
    endpoint.poll(start + 2, send, (s) => visited.push(s.address));
    expect(visited).toEqual([b.address, b.address]);
    // Idle: the next deadline is the keep-alive (a third of the idle timeout); then all three run.
    const due = endpoint.nextTimeout();
    expect(due).toBeGreaterThan(start + 9_000);
    endpoint.handleTimeout(due + 1);
    endpoint.poll(due + 1, send, (s) => visited.push(s.address));
    expect(new Set(visited.slice(2))).toEqual(new Set([a.address, b.address, c.address]));
    // Each sent its keep-alive PING.
    expect(new Set(toClients.map(([to]) => to))).toEqual(new Set([a.address, b.address, c.address]));
    expect(clients.size).toBe(3);
    expect(counted.get(a)).toBe(1);
    expect(counted.get(b)).toBe(3);
  });
});
