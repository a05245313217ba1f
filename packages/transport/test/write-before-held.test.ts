import { type FernetKey, generateKey, parseKey } from '@ferry/crypto';
import { type LinkConfig, SimNetwork } from '@ferry/netsim';
import { type ErrorName, FerryError } from '@ferry/protocol';
import { describe, expect, it } from 'vitest';
import type { Connection } from '../src/core/connection.js';
import { ServerEndpoint, type ServerSession } from '../src/core/endpoint.js';
import { ClientHandshake } from '../src/core/handshake.js';
import { type BlockSink, type BlockSource, Session } from '../src/session.js';
import { seededBytes, sha256 } from './helpers/sim-harness.js';

/**
 * Sessions (the application's view, with promise-based sources and sinks) on the simulated network.
 * The simulation runs in steps of STEP_MS of virtual time, letting promises settle between steps, so
 * that a sink whose writes finish later (in virtual time) behaves as a disk would.
 */
const STEP_MS = 0.5;
const KEY: FernetKey = parseKey(generateKey());
const LINK: LinkConfig = { delayMs: 5, rateBitsPerSecond: 50e6 };

interface Pair {
  net: SimNetwork;
  client: Session;
  server: Session;
  serverConnection: Connection;
  /** Runs until `done` holds (or `maxMs` of virtual time pass). */
  runUntil(done: () => boolean, maxMs?: number): Promise<void>;
}

async function openPair(seed: number, blockSize = 4096): Promise<Pair> {
  const net = new SimNetwork({ seed });
  const C = '10.0.0.1:1';
  const S = '10.0.0.2:2';
  const clientEnd = net.addEndpoint(C);
  const serverEnd = net.addEndpoint(S);
  net.connect(C, S, LINK, LINK);
  const wallClock = (): number => 1_800_000_000 + net.now() / 1000;
  const endpoint = new ServerEndpoint({
    keys: [{ name: 'k', key: KEY, access: 'read-write' }],
    wallClock,
    maxBlockSize: blockSize,
    receiveWindow: 1 << 20,
    idleTimeoutMs: 30_000,
  });
  const handshake = new ClientHandshake({
    key: KEY,
    now: 0,
    wallClock,
    maxBlockSize: blockSize,
    receiveWindow: 1 << 20,
    idleTimeoutMs: 30_000,
  });
  let client: Session | undefined;
  let server: Session | undefined;
  let info: ServerSession<string> | undefined;
  let clientTimer: ReturnType<SimNetwork['schedule']> | undefined;
  let serverTimer: ReturnType<SimNetwork['schedule']> | undefined;
  const arm = (which: 'client' | 'server', at: number): void => {
    const prev = which === 'client' ? clientTimer : serverTimer;
    if (prev !== undefined) net.cancel(prev);
    if (!Number.isFinite(at)) return;
    const timer = net.schedule(Math.max(at, net.now() + 0.001), which === 'client' ? runClient : runServer);
    if (which === 'client') clientTimer = timer;
    else serverTimer = timer;
  };
  const clientDriver = { now: () => net.now(), kick: () => arm('client', net.now()) };
  const serverDriver = {
    now: () => net.now(),
    kick: () => {
      if (info !== undefined) endpoint.wake(info);
      arm('server', net.now());
    },
  };
  function runClient(): void {
    const t = net.now();
    if (client === undefined) {
      handshake.handleTimeout(t);
      for (const d of handshake.poll(t)) clientEnd.send(d, S);
      const outcome = handshake.outcome;
      if (outcome?.type !== 'established') {
        arm('client', handshake.nextTimeout());
        return;
      }
      client = new Session(outcome.connection, clientDriver, outcome.access);
    }
    const conn = client.connection;
    if (t >= conn.nextTimeout()) conn.handleTimeout(t);
    for (let i = 0; i < 64; i++) {
      const batch = conn.poll(t);
      for (const d of batch) clientEnd.send(d, S);
      if (batch.length < 128) break;
    }
    client.dispatch();
    arm('client', conn.nextTimeout());
  }
  function runServer(): void {
    const t = net.now();
    if (t >= endpoint.nextTimeout()) endpoint.handleTimeout(t);
    endpoint.poll(t, (d, to) => serverEnd.send(d, to));
    for (let e = endpoint.pollEvent(); e !== undefined; e = endpoint.pollEvent()) {
      if (e.type === 'session' && server === undefined) {
        info = e.session;
        server = new Session(e.session.connection, serverDriver, e.session.access);
      }
    }
    server?.dispatch();
    arm('server', endpoint.nextTimeout());
  }
  clientEnd.onDatagram = (d) => {
    if (client === undefined) handshake.receive(d, net.now());
    else client.connection.receiveDatagram(d, net.now());
    runClient();
  };
  serverEnd.onDatagram = (d, from) => {
    endpoint.receive(d, from, net.now());
    runServer();
  };
  net.schedule(0, runClient);
  const runUntil = async (done: () => boolean, maxMs = 30_000): Promise<void> => {
    const end = net.now() + maxMs;
    while (!done() && net.now() < end) {
      net.run({ maxTimeMs: STEP_MS, until: done });
      // Let promises (sink writes, source reads, their callbacks) settle between steps.
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  await runUntil(() => client !== undefined && server !== undefined, 5_000);
  if (client === undefined || server === undefined) throw new Error('no session');
  return { net, client, server, serverConnection: server.connection, runUntil };
}

function memorySource(data: Buffer): BlockSource {
  return {
    size: data.length,
    read: async (index, blockSize) =>
      data.subarray(index * blockSize, Math.min((index + 1) * blockSize, data.length)),
  };
}

/** A sink whose writes take `writeMs` of virtual time; the write of `failAt` fails with `code`. */
function slowSink(
  net: SimNetwork,
  into: Buffer,
  blockSize: number,
  writeMs: number,
  fail?: { at: number; code: ErrorName },
): BlockSink & { lastWriteDoneAt: number; writes: number } {
  const sink = {
    lastWriteDoneAt: 0,
    writes: 0,
    write: (index: number, data: Buffer) =>
      new Promise<void>((resolve, reject) => {
        net.schedule(net.now() + writeMs, () => {
          if (fail !== undefined && index === fail.at) {
            reject(new FerryError(fail.code, 'no space left on the server'));
            return;
          }
          data.copy(into, index * blockSize);
          sink.writes++;
          sink.lastWriteDoneAt = net.now();
          resolve();
        });
      }),
  };
  return sink;
}

/** The client side of the control protocol the test needs: an abort fails the transfer with its code. */
function followAborts(session: Session): void {
  session.onMessage((body) => {
    const m = JSON.parse(body.toString()) as {
      op: string;
      transferId: number;
      code: ErrorName;
      message: string;
    };
    if (m.op === 'abort') session.cancel(m.transferId, new FerryError(m.code, m.message));
  });
}

describe('a block counts as held only once written', () => {
  it('a put completes for the sender only after the receiver wrote its last block', async () => {
    const pair = await openPair(50);
    const data = seededBytes(50, 300_000);
    const into = Buffer.alloc(data.length);
    // Writes take 40 ms each: far longer than a round trip (10 ms).
    const sink = slowSink(pair.net, into, pair.server.blockSize, 40);
    const received = pair.server.receiveBlocks(1, data.length, sink);
    let sentAt: number | undefined;
    const sent = pair.client.sendBlocks(1, memorySource(data)).then(() => {
      sentAt = pair.net.now();
    });
    let receivedAt: number | undefined;
    void received.then(() => {
      receivedAt = pair.net.now();
    });
    await pair.runUntil(() => sentAt !== undefined && receivedAt !== undefined);
    await sent;
    expect(sha256(into)).toBe(sha256(data));
    // The receiver completed when its last write did; the sender learned it after that, not before.
    expect(receivedAt!).toBeGreaterThanOrEqual(sink.lastWriteDoneAt);
    expect(sentAt!).toBeGreaterThanOrEqual(sink.lastWriteDoneAt);
  });

  it('a write that fails after every block arrived fails the put on both sides with its code (ENOSPC)', async () => {
    const pair = await openPair(51);
    followAborts(pair.client);
    const data = seededBytes(51, 200_000);
    const blocks = Math.ceil(data.length / pair.server.blockSize);
    // The last block's write fails, 40 ms after it arrived: every packet was acknowledged long before.
    const sink = slowSink(pair.net, Buffer.alloc(data.length), pair.server.blockSize, 40, {
      at: blocks - 1,
      code: 'ENOSPC',
    });
    let receiverError: unknown;
    pair.server.receiveBlocks(1, data.length, sink).catch((e: unknown) => {
      receiverError = e;
    });
    let senderOutcome: 'sent' | FerryError | undefined;
    pair.client.sendBlocks(1, memorySource(data)).then(
      () => {
        senderOutcome = 'sent';
      },
      (e: FerryError) => {
        senderOutcome = e;
      },
    );
    await pair.runUntil(() => senderOutcome !== undefined && receiverError !== undefined);
    expect((receiverError as FerryError).code).toBe('ENOSPC');
    expect(senderOutcome).toBeInstanceOf(FerryError);
    expect((senderOutcome as FerryError).code).toBe<ErrorName>('ENOSPC');
    expect((senderOutcome as FerryError).message).toMatch(/no space left/);
    // Both sessions go on.
    expect(pair.client.isClosed).toBe(false);
    expect(pair.server.isClosed).toBe(false);
  });

  it('a receiver that never reports writes (an older peer) does not hang the sender', async () => {
    const pair = await openPair(52);
    // Such a receiver drops a finished transfer from its flow entries at once.
    const flows = (pair.serverConnection as unknown as { flows: { onFinished: () => void } }).flows;
    flows.onFinished = () => {};
    const data = seededBytes(52, 100_000);
    const into = Buffer.alloc(data.length);
    const sink = slowSink(pair.net, into, pair.server.blockSize, 1);
    let done = false;
    void pair.server.receiveBlocks(1, data.length, sink);
    void pair.client.sendBlocks(1, memorySource(data)).then(() => {
      done = true;
    });
    await pair.runUntil(() => done, 10_000);
    expect(done).toBe(true);
    expect(sha256(into)).toBe(sha256(data));
  });
});
