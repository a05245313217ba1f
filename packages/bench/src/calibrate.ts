/**
 * What the impairment proxy itself can carry on this machine: a paced stream of plain UDP datagrams
 * (no ferry, no crypto) through the proxy with a scenario's rate and delay but no loss. If this
 * falls short of the link rate, the proxy (a Node process sharing the CPUs with client and server)
 * limits the scenario, not ferry.
 */
import { createSocket, type Socket } from 'node:dgram';
import { type Bins, startProxy, stopProxy, type Workspace } from './ferry.js';
import { dataDatagramBytes, type Scenario } from './scenarios.js';

export interface ProxyCalibration {
  rateBitsPerSecond: number;
  datagramBytes: number;
  seconds: number;
  /** Payload Mbit/s that arrived, measured at the receiver over the sending interval. */
  deliveredMbitps: number;
  fraction: number;
  sentDatagrams: number;
  receivedDatagrams: number;
  /** CPU seconds of the proxy per second of the run: 1.0 = one core saturated. */
  proxyCpuPerSecond: number | undefined;
  /** The proxy's own count of what its link model took in and dropped (the rest vanished in socket buffers). */
  proxyOffered: number | undefined;
  proxyDropped: Record<string, number> | undefined;
}

function bind(socket: Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve(socket.address().port));
  });
}

export async function calibrateProxy(
  ws: Workspace & { bins: Bins },
  scenario: Scenario,
  seconds: number,
  linkArgs: string[],
): Promise<ProxyCalibration> {
  const datagramBytes = dataDatagramBytes(scenario.blockSize);
  const receiver = createSocket('udp4');
  const sender = createSocket('udp4');
  const targetPort = await bind(receiver);
  await bind(sender);
  for (const s of [receiver, sender]) {
    try {
      s.setRecvBufferSize(4 * 1024 * 1024);
      s.setSendBufferSize(4 * 1024 * 1024);
    } catch {}
  }
  let received = 0;
  let firstAt = 0;
  let lastAt = 0;
  receiver.on('message', () => {
    const now = performance.now();
    if (received === 0) firstAt = now;
    lastAt = now;
    received++;
  });
  const proxy = await startProxy(ws, targetPort, linkArgs, 7);
  const payload = Buffer.alloc(datagramBytes, 0x5a);
  const bytesPerMs = scenario.rateBitsPerSecond / 8 / 1000;
  let sent = 0;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const elapsed = performance.now() - start;
      if (elapsed >= seconds * 1000) {
        resolve();
        return;
      }
      // Send what the link rate allows so far, in bursts of at most 64 datagrams per turn.
      const owed = Math.min(64, Math.floor((elapsed * bytesPerMs) / datagramBytes) - sent);
      for (let i = 0; i < owed; i++) {
        sender.send(payload, proxy.port, '127.0.0.1');
        sent++;
      }
      setImmediate(tick);
    };
    tick();
  });
  // Let what is in flight arrive: one-way delay plus the queue.
  await new Promise((r) => setTimeout(r, scenario.rttMs + 300));
  const stopped = await stopProxy(proxy);
  sender.close();
  receiver.close();
  const span = Math.max(lastAt - firstAt, 1) / 1000;
  const deliveredMbitps = (received * datagramBytes * 8) / span / 1e6;
  const usage = stopped.result.usage;
  const upstream = stopped.stats?.upstream as
    | { offered?: number; dropped?: Record<string, number> }
    | undefined;
  return {
    rateBitsPerSecond: scenario.rateBitsPerSecond,
    datagramBytes,
    seconds,
    deliveredMbitps,
    fraction: (deliveredMbitps * 1e6) / scenario.rateBitsPerSecond,
    sentDatagrams: sent,
    receivedDatagrams: received,
    proxyCpuPerSecond: usage
      ? (usage.userSeconds + usage.systemSeconds) / stopped.result.wallSeconds
      : undefined,
    proxyOffered: upstream?.offered,
    proxyDropped: upstream?.dropped,
  };
}
