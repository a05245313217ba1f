/**
 * A scripted peer for the seed-compatible listener's fault tests: one UDP socket (one seed command),
 * whose test decides datagram by datagram what to send, what to "lose" and what to answer. It is
 * not the test client (seed_client.py behaves as the seed's client does); this one misbehaves on cue.
 */
import { createSocket, type Socket } from 'node:dgram';
import { Fernet } from '@ferry/crypto';
import { SEED_KEY, SEED_MARKER } from '../../src/seed-compat/codec.js';

export const seedFernet = new Fernet(SEED_KEY);

export class SeedPeer {
  readonly #socket: Socket;
  readonly #port: number;
  readonly #queue: Buffer[] = [];
  readonly #waiters: ((datagram: Buffer) => void)[] = [];

  private constructor(socket: Socket, port: number) {
    this.#socket = socket;
    this.#port = port;
    socket.on('message', (datagram) => {
      const waiter = this.#waiters.shift();
      if (waiter !== undefined) waiter(datagram);
      else this.#queue.push(datagram);
    });
  }

  static async open(port: number): Promise<SeedPeer> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    return new SeedPeer(socket, port);
  }

  send(datagram: string | Buffer): void {
    this.#socket.send(
      typeof datagram === 'string' ? Buffer.from(datagram, 'utf8') : datagram,
      this.#port,
      '127.0.0.1',
    );
  }

  /** A token of `chunk` with the seed's tail, as the seed's client sends it. */
  token(chunk: Buffer | string): Buffer {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    return Buffer.from(seedFernet.encrypt(Buffer.concat([data, Buffer.from(`${SEED_MARKER}0`)])), 'latin1');
  }

  /** The next datagram from the listener; fails after `timeoutMs`. */
  next(timeoutMs = 10_000): Promise<Buffer> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new Error(`no datagram from the listener in ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (datagram: Buffer): void => {
        clearTimeout(timer);
        resolve(datagram);
      };
      this.#waiters.push(waiter);
    });
  }

  async nextText(timeoutMs?: number): Promise<string> {
    return (await this.next(timeoutMs)).toString('utf8');
  }

  /** The chunk of a token the listener sent (split at the last marker). */
  static chunkOf(token: Buffer): Buffer {
    const plaintext = seedFernet.decrypt(token.toString('latin1'));
    return plaintext.subarray(0, plaintext.lastIndexOf(Buffer.from(SEED_MARKER)));
  }

  /** Datagrams received and not yet taken. */
  get pending(): number {
    return this.#queue.length;
  }

  close(): void {
    this.#socket.close();
  }
}
