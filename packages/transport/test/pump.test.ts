import * as dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { Pump } from '../src/pump.js';

/**
 * The adapter's pump on a real socket. A process descheduled past a deadline (a busy machine) wakes
 * with the deadline due and datagrams waiting in its socket; the deadline's work must see them, or a
 * sender declares a retransmission timeout while the acknowledgement it waits for sits unread.
 */
const sockets: dgram.Socket[] = [];

afterEach(async () => {
  await Promise.all(sockets.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

async function boundSocket(): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  sockets.push(socket);
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  return socket;
}

/** Keeps the event loop (this whole process) busy for `ms`, as a descheduled process would be. */
function blockFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    /* busy */
  }
}

describe('Pump', () => {
  it('runs a deadline that passed while the process was stalled after the datagrams that arrived meanwhile', async () => {
    const receiver = await boundSocket();
    const sender = await boundSocket();
    const order: string[] = [];
    let deadline = Number.POSITIVE_INFINITY;
    let finished!: () => void;
    const done = new Promise<void>((resolve) => {
      finished = resolve;
    });
    const pump = new Pump(() => {
      if (order.length > 0) {
        order.push('work');
        finished();
      }
      return deadline;
    });
    receiver.on('message', () => {
      order.push('datagram');
      pump.kick();
    });
    // A deadline 5 ms ahead; then the datagram is sent (it is in the receiver's socket once the send
    // callback runs) and the process stalls well past the deadline.
    deadline = performance.now() + 5;
    pump.kick();
    await new Promise<void>((resolve) => setImmediate(resolve));
    await new Promise<void>((resolve, reject) =>
      sender.send(Buffer.from('ack'), receiver.address().port, '127.0.0.1', (error) =>
        error ? reject(error) : resolve(),
      ),
    );
    deadline = Number.POSITIVE_INFINITY;
    order.push('stalled');
    blockFor(50);
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    pump.stop();
    expect(order).toEqual(['stalled', 'datagram', 'work']);
  });
});
