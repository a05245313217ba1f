import { createHash, randomBytes } from 'node:crypto';
import { type FernetKey, generateKey, parseKey } from '@ferry/crypto';
import { type LinkConfig, type SimEndpoint, SimNetwork, type SimTraceEvent } from '@ferry/netsim';
import type { ErrorName } from '@ferry/protocol';
import type { Connection } from '../../src/core/connection.js';
import {
  ServerEndpoint,
  type ServerEndpointOptions,
  type ServerKey,
  type ServerSession,
} from '../../src/core/endpoint.js';
import { socketBytesPerDatagram } from '../../src/core/flow-reports.js';
import { ClientHandshake, isResetFor } from '../../src/core/handshake.js';
import type { Datagram } from '../../src/core/wire.js';

/**
 * Runs a ferry client and server core on the simulated network, with synchronous in-memory sources
 * and sinks, so that a transfer through any impairment is deterministic and replays from its seed.
 * (Keys, nonces and connection ids still come from the system's CSPRNG; no protocol decision depends
 * on their values, only on their sizes, so a run's course is fixed by its seed.)
 */
export interface SimTransferOptions {
  seed: number;
  size: number;
  blockSize?: number;
  /** Client-to-server link; `down` defaults to the same. */
  up?: LinkConfig;
  down?: LinkConfig;
  /** 'put': client sends to server; 'get': server sends to client. */
  direction?: 'put' | 'get';
  /**
   * More transfers opened at the same time as the main one (ids 2, 3, …), each with its own data; the
   * run completes when all have. `ok` covers them all; the other results describe the main transfer.
   */
  extraTransfers?: ReadonlyArray<{ direction: 'put' | 'get'; size: number }>;
  idleTimeoutMs?: number;
  receiveWindow?: number;
  maxTimeMs?: number;
  fixedWindowPackets?: number;
  /** Called with the network before the run (to add blackouts, attackers, scheduled events, …). */
  setup?: (ctx: SimContext) => void;
  /** Sees every send, delivery and drop on the network. */
  onTrace?: (event: SimTraceEvent) => void;
  /**
   * When the run stops. 'transfer' (default): the transfer completed, or a side failed it.
   * 'both-closed': both sessions have ended (or the handshake failed).
   */
  stopWhen?: 'transfer' | 'both-closed';
  key?: FernetKey;
  serverKeys?: ServerKey[];
  /** Protocol versions the server accepts (default: all); [1] is a server from before version 2. */
  serverVersions?: number[];
  /** Features the client asks for (default: all). */
  clientFeatures?: number;
  /**
   * Hand the sender a fresh copy of each block and overwrite it with garbage when the transport
   * releases it: a block sent after its release arrives corrupted (and the run is not bit-exact).
   */
  poisonReleased?: boolean;
  /** How far the client's wall clock (Fernet timestamps) is ahead of the server's, in seconds. */
  clientClockOffsetSeconds?: number;
  /** The client's connection options (e.g. a rate limit). */
  clientConnection?: NonNullable<ConstructorParameters<typeof ClientHandshake>[0]['connection']>;
  /** The source answers each read this long after it was asked (0: at once, synchronously). */
  readDelayMs?: number;
  /** More options of the server endpoint (buffer budgets, …). */
  endpoint?: Partial<ServerEndpointOptions<string>>;
  /**
   * The client's receiving socket as a kernel keeps it: `bufferBytes` of datagrams (each charged
   * socketBytesPerDatagram), told to the client's connection; while the client is stalled (descheduled:
   * from `stalls[i][0]` to `stalls[i][1]` ms, nothing of it runs) arrivals queue there, and those
   * that do not fit are dropped (`clientSocketDrops`). Without it the client reads every datagram at once.
   */
  clientSocket?: { bufferBytes: number; stalls: ReadonlyArray<readonly [number, number]> };
}

export interface SimContext {
  net: SimNetwork;
  client: SimEndpoint;
  server: SimEndpoint;
  clientAddress: string;
  serverAddress: string;
  endpoint: ServerEndpoint;
  /** The client's connection, once the handshake has completed. */
  clientConnection(): Connection | undefined;
  /** The server's session, once the client has validated it. */
  serverSession(): ServerSession<string> | undefined;
  /** Runs a side now (after a test queued work on its connection, e.g. a close). */
  serviceClient(): void;
  serviceServer(): void;
}

export interface SimTransferResult {
  ok: boolean;
  /** How the sender and receiver ended, if they did. */
  senderError: ErrorName | undefined;
  receiverError: ErrorName | undefined;
  clientClosed: ErrorName | undefined;
  serverClosed: ErrorName | undefined;
  /** Virtual times at which each side's session ended. */
  clientClosedAt: number | undefined;
  serverClosedAt: number | undefined;
  handshakeError: ErrorName | undefined;
  /** The handshake's protocol version and the features the client was granted. */
  clientVersion: number | undefined;
  clientFeatures: number | undefined;
  /** Virtual time at which the client's handshake completed. */
  establishedAt: number | undefined;
  timeMs: number;
  /** Virtual time at which the transfer was opened on both sides (the handshake had completed). */
  startedAt: number | undefined;
  /** Virtual time at which both sides had finished the transfer. */
  completedAt: number | undefined;
  /** Virtual times at which the receiver first held a quarter, half, three quarters of the bytes. */
  quartersAt: number[];
  bitExact: boolean;
  /** Block buffers provided to the senders and released back by them (counted with poisonReleased). */
  blocksProvided: number;
  blocksReleased: number;
  clientStats: Record<string, unknown> | undefined;
  serverStats: Record<string, unknown>;
  /** Datagrams the client's socket dropped while it was stalled (see clientSocket). */
  clientSocketDrops: number;
  sender: Connection | undefined;
  receiver: Connection | undefined;
  clientConnection: Connection | undefined;
  serverSession: ServerSession<string> | undefined;
  endpoint: ServerEndpoint;
  net: SimNetwork;
  reason: string;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export const TEST_KEY = parseKey(generateKey());

export const CLIENT_ADDRESS = '10.0.0.1:50000';
export const SERVER_ADDRESS = '10.0.0.2:7777';

export function runSimTransfer(o: SimTransferOptions): SimTransferResult {
  const net = new SimNetwork({ seed: o.seed, ...(o.onTrace ? { onTrace: o.onTrace } : {}) });
  const clientAddress = CLIENT_ADDRESS;
  const serverAddress = SERVER_ADDRESS;
  const client = net.addEndpoint(clientAddress);
  const server = net.addEndpoint(serverAddress);
  const up = o.up ?? {};
  net.connect(clientAddress, serverAddress, up, o.down ?? up);

  const blockSize = o.blockSize ?? 1024;
  const idleTimeoutMs = o.idleTimeoutMs ?? 30_000;
  const receiveWindow = o.receiveWindow ?? 4 * 1024 * 1024;
  const key = o.key ?? TEST_KEY;
  const wallClock = (): number => 1_800_000_000 + net.now() / 1000;
  const direction = o.direction ?? 'put';
  interface TransferState {
    id: number;
    direction: 'put' | 'get';
    size: number;
    data: Buffer;
    received: Buffer;
    senderDone: boolean;
    receiverDone: boolean;
  }
  const transfers = new Map<number, TransferState>();
  for (const [i, t] of [{ direction, size: o.size }, ...(o.extraTransfers ?? [])].entries()) {
    transfers.set(i + 1, {
      id: i + 1,
      direction: t.direction,
      size: t.size,
      data: seededBytes(o.seed + i, t.size),
      received: Buffer.alloc(t.size),
      senderDone: false,
      receiverDone: false,
    });
  }
  const main = transfers.get(1)!;
  const allDone = (): boolean => [...transfers.values()].every((t) => t.senderDone && t.receiverDone);
  const congestion =
    o.fixedWindowPackets !== undefined ? { fixedWindowPackets: o.fixedWindowPackets } : undefined;

  const endpoint = new ServerEndpoint({
    keys: o.serverKeys ?? [{ name: 'default', key, access: 'read-write' }],
    wallClock,
    maxBlockSize: blockSize,
    receiveWindow,
    idleTimeoutMs,
    ...(o.serverVersions !== undefined ? { versions: o.serverVersions } : {}),
    ...(congestion ? { connection: { congestion } } : {}),
    ...o.endpoint,
  });
  const clientOffset = o.clientClockOffsetSeconds ?? 0;
  const clientConnectionOptions = {
    ...(congestion ? { congestion } : {}),
    ...(o.clientSocket ? { socketReceiveBufferBytes: o.clientSocket.bufferBytes } : {}),
    ...o.clientConnection,
  };
  const handshake = new ClientHandshake({
    key,
    now: net.now(),
    wallClock: () => wallClock() + clientOffset,
    maxBlockSize: blockSize,
    receiveWindow,
    idleTimeoutMs,
    ...(o.clientFeatures !== undefined ? { features: o.clientFeatures } : {}),
    connection: clientConnectionOptions,
  });

  let clientConn: Connection | undefined;
  let resetToken: Buffer | undefined;
  let serverSession: ServerSession<string> | undefined;
  let completedAt: number | undefined;
  let startedAt: number | undefined;
  const quartersAt: number[] = [];
  let receivedBytes = 0;
  let senderError: ErrorName | undefined;
  let receiverError: ErrorName | undefined;
  let clientClosed: ErrorName | undefined;
  let serverClosed: ErrorName | undefined;
  let clientClosedAt: number | undefined;
  let serverClosedAt: number | undefined;
  let handshakeError: ErrorName | undefined;
  let clientVersion: number | undefined;
  let clientFeatures: number | undefined;
  let establishedAt: number | undefined;

  const ctx: SimContext = {
    net,
    client,
    server,
    clientAddress,
    serverAddress,
    endpoint,
    clientConnection: () => clientConn,
    serverSession: () => serverSession,
    serviceClient: () => serviceClient(),
    serviceServer: () => {
      if (serverSession !== undefined) endpoint.wake(serverSession);
      serviceServer();
    },
  };
  o.setup?.(ctx);

  const sender = (): Connection | undefined => (direction === 'put' ? clientConn : serverSession?.connection);
  const receiver = (): Connection | undefined =>
    direction === 'put' ? serverSession?.connection : clientConn;

  /** Delivers a connection's events; returns whether there were any (work may have been queued). */
  const handleEvents = (conn: Connection, isClient: boolean): boolean => {
    let any = false;
    for (;;) {
      const e = conn.pollEvent();
      if (e === undefined) return any;
      any = true;
      switch (e.type) {
        case 'read': {
          const t = transfers.get(e.transferId)!;
          const start = e.index * blockSize;
          const block = t.data.subarray(start, Math.min(start + blockSize, t.size));
          const provide = (): void => {
            if (o.poisonReleased) blocksProvided++;
            conn.provideBlock(e.transferId, e.index, o.poisonReleased ? Buffer.from(block) : block);
          };
          if (!o.readDelayMs) {
            provide();
            break;
          }
          net.schedule(net.now() + o.readDelayMs, () => {
            provide();
            if (isClient) serviceClient();
            else ctx.serviceServer();
          });
          break;
        }
        case 'block': {
          const t = transfers.get(e.transferId)!;
          e.data.copy(t.received, e.index * blockSize);
          if (t === main) {
            receivedBytes += e.data.length;
            while (quartersAt.length < 3 && receivedBytes >= ((quartersAt.length + 1) * o.size) / 4) {
              quartersAt.push(net.now());
            }
          }
          conn.blockWritten(e.transferId, e.index);
          break;
        }
        case 'send-complete':
          transfers.get(e.transferId)!.senderDone = true;
          if (allDone()) completedAt ??= net.now();
          break;
        case 'receive-complete':
          transfers.get(e.transferId)!.receiverDone = true;
          if (allDone()) completedAt ??= net.now();
          break;
        case 'closed':
          if (isClient) {
            clientClosed = e.code;
            clientClosedAt = net.now();
          } else {
            serverClosed = e.code;
            serverClosedAt = net.now();
          }
          if (conn === sender() && !main.senderDone) senderError = e.code;
          if (conn === receiver() && !main.receiverDone) receiverError = e.code;
          break;
        case 'message':
          break;
      }
    }
  };

  let clientTimer: ReturnType<SimNetwork['schedule']> | undefined;
  let serverTimer: ReturnType<SimNetwork['schedule']> | undefined;

  let blocksProvided = 0;
  let blocksReleased = 0;
  const release = (data: Buffer): void => {
    blocksReleased++;
    data.fill(0xee);
  };
  const startTransfer = (): void => {
    const session = serverSession?.connection;
    if (clientConn === undefined || session === undefined) return;
    for (const t of transfers.values()) {
      const [s, r] = t.direction === 'put' ? [clientConn, session] : [session, clientConn];
      r.openReceive(t.id, t.size);
      s.openSend(t.id, t.size, [], undefined, o.poisonReleased ? release : undefined);
    }
    startedAt = net.now();
    // Both cores have new work: run them (the client would otherwise wait for its next packet).
    endpoint.wake(serverSession!);
    net.schedule(net.now(), serviceClient);
  };

  const stalledUntil = (t: number): number | undefined =>
    o.clientSocket?.stalls.find(([from, to]) => t >= from && t < to)?.[1];
  const serviceClient = (): void => {
    const t = net.now();
    const stalled = stalledUntil(t);
    if (stalled !== undefined) {
      schedule('client', stalled);
      return;
    }
    if (clientConn === undefined) {
      handshake.handleTimeout(t);
      for (const d of handshake.poll(t)) client.send(d, serverAddress);
      const outcome = handshake.outcome;
      if (outcome?.type === 'failed') {
        handshakeError = outcome.code;
        return;
      }
      if (outcome?.type === 'established') {
        clientConn = outcome.connection;
        resetToken = outcome.resetToken;
        clientVersion = outcome.version;
        clientFeatures = outcome.features;
        establishedAt = t;
      } else {
        schedule('client', handshake.nextTimeout());
        return;
      }
    }
    if (t >= clientConn.nextTimeout()) clientConn.handleTimeout(t);
    for (let i = 0; i < 64; i++) {
      const batch = clientConn.poll(t);
      for (const d of batch) client.send(d, serverAddress);
      handleEvents(clientConn, true);
      if (batch.length === 0 && !clientConn.hasEvents) break;
    }
    schedule('client', clientConn.nextTimeout());
  };

  const sendFromServer = (datagram: Datagram, to: string): void => {
    serverSent++;
    server.send(datagram, to);
  };
  let serverSent = 0;
  const serviceServer = (): void => {
    const t = net.now();
    if (t >= endpoint.nextTimeout()) endpoint.handleTimeout(t);
    for (let i = 0; i < 64; i++) {
      serverSent = 0;
      endpoint.poll(t, sendFromServer);
      for (;;) {
        const e = endpoint.pollEvent();
        if (e === undefined) break;
        if (e.type === 'session' && serverSession === undefined) {
          serverSession = e.session;
          startTransfer();
        }
      }
      let events = false;
      // The harness plays the application: after handling events (reads, writes) it wakes the session.
      if (serverSession !== undefined && handleEvents(serverSession.connection, false)) {
        endpoint.wake(serverSession);
        events = true;
      }
      if (serverSent === 0 && !events) break;
    }
    schedule('server', endpoint.nextTimeout());
  };

  const schedule = (who: 'client' | 'server', at: number): void => {
    const prev = who === 'client' ? clientTimer : serverTimer;
    if (prev !== undefined) net.cancel(prev);
    if (!Number.isFinite(at)) return;
    const when = Math.max(at, net.now() + 0.001);
    const timer = net.schedule(when, who === 'client' ? serviceClient : serviceServer);
    if (who === 'client') clientTimer = timer;
    else serverTimer = timer;
  };

  // The client's socket while it is stalled (see clientSocket).
  const socketQueue: Buffer[] = [];
  let socketQueueBytes = 0;
  let clientSocketDrops = 0;
  const clientReceive = (d: Buffer): void => {
    const stalled = stalledUntil(net.now());
    if (stalled === undefined) {
      clientDatagram(d);
      return;
    }
    const cost = socketBytesPerDatagram(d.length);
    if (socketQueueBytes + cost > o.clientSocket!.bufferBytes) {
      clientSocketDrops++;
      return;
    }
    if (socketQueue.length === 0) {
      net.schedule(stalled, () => {
        socketQueueBytes = 0;
        for (const queued of socketQueue.splice(0)) clientDatagram(queued);
      });
    }
    socketQueue.push(d);
    socketQueueBytes += cost;
  };
  client.onDatagram = clientReceive;
  function clientDatagram(d: Buffer): void {
    if (clientConn === undefined) handshake.receive(d, net.now());
    else if (resetToken !== undefined && isResetFor(d, clientConn.connId, resetToken)) {
      // As the Node adapter does: the server lost the session, so it ends at once.
      if (clientClosed === undefined) {
        clientClosed = 'ECONNRESET';
        clientClosedAt = net.now();
        if (direction === 'put' && !main.senderDone) senderError = 'ECONNRESET';
        if (direction === 'get' && !main.receiverDone) receiverError = 'ECONNRESET';
      }
      return;
    } else clientConn.receiveDatagram(d, net.now());
    serviceClient();
  }
  server.onDatagram = (d, from) => {
    endpoint.receive(d, from, net.now());
    serviceServer();
  };

  net.schedule(0, serviceClient);
  const stopWhen = o.stopWhen ?? 'transfer';
  const run = net.run({
    until: () =>
      handshakeError !== undefined ||
      (stopWhen === 'both-closed'
        ? clientClosed !== undefined && serverClosed !== undefined
        : allDone() ||
          senderError !== undefined ||
          (receiverError !== undefined &&
            (main.senderDone || senderError !== undefined || clientClosed !== undefined))),
    maxTimeMs: o.maxTimeMs ?? 600_000,
    maxEvents: 20_000_000,
  });
  const bitExact = [...transfers.values()].every(
    (t) => t.receiverDone && sha256(t.received) === sha256(t.data),
  );
  return {
    ok: allDone() && bitExact,
    senderError,
    receiverError,
    clientClosed,
    serverClosed,
    clientClosedAt,
    serverClosedAt,
    handshakeError,
    clientVersion,
    clientFeatures,
    establishedAt,
    timeMs: run.timeMs,
    startedAt,
    completedAt,
    quartersAt,
    bitExact,
    blocksProvided,
    blocksReleased,
    clientStats: clientConn?.toJSON(),
    serverStats: endpoint.toJSON(),
    clientSocketDrops,
    sender: sender(),
    receiver: receiver(),
    clientConnection: clientConn,
    serverSession,
    endpoint,
    net,
    reason: run.reason,
  };
}

/** A one-line summary of a run, for assertion messages (enough to tell what went wrong). */
export function describeRun(r: SimTransferResult): string {
  return JSON.stringify({
    ok: r.ok,
    reason: r.reason,
    timeMs: Math.round(r.timeMs),
    handshakeError: r.handshakeError,
    senderError: r.senderError,
    receiverError: r.receiverError,
    bitExact: r.bitExact,
    sender: r.sender?.toJSON(),
    receiver: r.receiver?.toJSON(),
  });
}

/** Deterministic pseudo-random bytes for a seed (so a failing case replays exactly). */
export function seededBytes(seed: number, size: number): Buffer {
  if (size === 0) return Buffer.alloc(0);
  const out = Buffer.alloc(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  for (let i = size - (size % 4); i < size; i++) out[i] = i & 0xff;
  return out;
}

export function randomKey(): FernetKey {
  return { signingKey: randomBytes(16), encryptionKey: randomBytes(16) };
}
