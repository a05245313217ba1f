import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalDiskStorage } from '@ferry/storage';
import { afterEach, describe, expect, it } from 'vitest';
import { SEED_TEXT } from '../../src/seed-compat/codec.js';
import {
  SeedCompatListener,
  type SeedCompatOptions,
  seedCompatWarning,
} from '../../src/seed-compat/listener.js';
import { SeedPeer } from './peer.js';

const RESEND_MS = 100;
const IDLE_MS = 2000;

interface Running {
  root: string;
  spool: string;
  listener: SeedCompatListener;
  port: number;
  events: { type: string; msg: string }[];
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(options: Partial<SeedCompatOptions> = {}): Promise<Running> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-seed-listener-'));
  const root = join(dir, 'root');
  const spool = join(dir, 'spool');
  await Promise.all([rm(root, { force: true }), rm(spool, { force: true })]);
  const { mkdir } = await import('node:fs/promises');
  await mkdir(root);
  await mkdir(spool);
  const storage = await LocalDiskStorage.open(root);
  const events: { type: string; msg: string }[] = [];
  const listener = new SeedCompatListener(
    storage,
    {
      port: 0,
      writable: true,
      spoolDir: spool,
      resend: { minMs: RESEND_MS, maxMs: 4 * RESEND_MS, idleMs: IDLE_MS },
      ...options,
    },
    (event) => events.push(event),
  );
  const { port } = await listener.listen();
  cleanups.push(async () => {
    await listener.close();
    await storage.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { root, spool, listener, port, events };
}

async function peer(port: number): Promise<SeedPeer> {
  const p = await SeedPeer.open(port);
  cleanups.push(async () => p.close());
  return p;
}

/** The chunks of `data` as the seed's client cuts them: 2,048 bytes blindly. */
function seedChunks(data: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < data.length; at += 2048) chunks.push(data.subarray(at, at + 2048));
  return chunks;
}

/** Receives a get's tokens to the end, acknowledging each; returns the file. */
async function receiveRest(client: SeedPeer, first: Buffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  let token = first;
  for (let i = 0; i < 10_000; i++) {
    const chunk = SeedPeer.chunkOf(token);
    if (chunk.length === 0) {
      client.send(SEED_TEXT.ackDone);
      return Buffer.concat(parts);
    }
    parts.push(chunk);
    client.send(SEED_TEXT.ackNext);
    token = await client.next();
  }
  throw new Error('too many chunks');
}

/** A client that has sent `put NAME` and FE, as the seed's client does before its first chunk. */
async function openPut(port: number, name: string): Promise<SeedPeer> {
  const client = await peer(port);
  client.send(`put ${name}`);
  client.send('FE');
  return client;
}

/** Sends chunks one at a time as the seed's client does, each acknowledged, then the empty end-chunk. */
async function sendRest(client: SeedPeer, chunks: Buffer[]): Promise<void> {
  for (const chunk of chunks) {
    client.send(client.token(chunk));
    expect(await client.nextText()).toBe(SEED_TEXT.ackNext);
  }
  client.send(client.token(''));
  expect(await client.nextText()).toBe(SEED_TEXT.ackDone);
}

async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('seed-compatible listener: lost datagrams', () => {
  it('sends a token again, the very same bytes, when its acknowledgement is overdue, and the get completes', async () => {
    const s = await start();
    const data = randomBytes(5000);
    await writeFile(join(s.root, 'a.bin'), data);
    const client = await peer(s.port);
    client.send('get a.bin');
    expect(await client.nextText()).toBe(SEED_TEXT.fileExists);
    const first = await client.next();
    client.send(SEED_TEXT.ackNext);
    const second = await client.next();
    // The client "lost" the second token: it says nothing, and the listener sends it again.
    const lostAt = Date.now();
    const again = await client.next();
    expect(Date.now() - lostAt).toBeGreaterThanOrEqual(RESEND_MS - 10);
    expect(again.equals(second)).toBe(true);
    const rest = await receiveRest(client, again);
    expect(Buffer.concat([SeedPeer.chunkOf(first), rest]).equals(data)).toBe(true);
    await waitFor(() => s.listener.stats().transfers === 0, 'the get to end');
    expect(s.listener.stats().resentOnTimeout).toBeGreaterThanOrEqual(1);
    expect(s.events.some((e) => e.type === 'seed-resend')).toBe(true);
  });

  it('asks the client again when a chunk of a put is lost, and stores the file whole', async () => {
    const s = await start();
    const data = randomBytes(7000);
    const chunks = seedChunks(data);
    const client = await openPut(s.port, 'up.bin');
    client.send(client.token(chunks[0]!));
    expect(await client.nextText()).toBe(SEED_TEXT.ackNext);
    // The second chunk is "lost": never sent. The listener asks for it again.
    expect(await client.nextText()).toBe(SEED_TEXT.ackResend);
    await sendRest(client, chunks.slice(1));
    expect((await readFile(join(s.root, 'up.bin'))).equals(data)).toBe(true);
  });

  it('does not write a chunk twice when the client repeats it because the acknowledgement was lost', async () => {
    const s = await start();
    const data = randomBytes(7000);
    const chunks = seedChunks(data);
    const client = await openPut(s.port, 'up.bin');
    const first = client.token(chunks[0]!);
    client.send(first);
    // The acknowledgement is "lost": the client waits; the listener, hearing nothing, asks again,
    // and the client sends the very same token once more.
    await client.next();
    expect(await client.nextText()).toBe(SEED_TEXT.ackResend);
    client.send(first);
    expect(await client.nextText()).toBe(SEED_TEXT.ackNext);
    await sendRest(client, chunks.slice(1));
    expect((await readFile(join(s.root, 'up.bin'))).equals(data)).toBe(true);
    expect(s.listener.stats().duplicateChunks).toBe(1);
  });
});

describe('seed-compatible listener: forged addresses', () => {
  it('gives up a get that never hears an acknowledgement after three repeats of its first token', async () => {
    const s = await start();
    await writeFile(join(s.root, 'a.bin'), randomBytes(10_000));
    const client = await peer(s.port);
    client.send('get a.bin');
    expect(await client.nextText()).toBe(SEED_TEXT.fileExists);
    const first = await client.next();
    for (let i = 0; i < 3; i++) expect((await client.next()).equals(first)).toBe(true);
    await waitFor(() => s.listener.stats().transfers === 0, 'the unanswered get to be given up');
    expect(s.listener.stats()).toMatchObject({ timedOut: 1, resentOnTimeout: 3 });
    expect(client.pending).toBe(0);
  });

  it('answers at most 500 commands a second (a burst of 1,000): a flood of forged commands is bounded', async () => {
    const s = await start({ now: () => 0 }); // a stopped clock: the budget never refills
    const client = await peer(s.port);
    // exit is answered at once, before the next datagram is read (a list would be superseded by the
    // next); batches keep the replies within the client socket's buffer.
    for (let batch = 0; batch < 10; batch++) {
      for (let i = 0; i < 100; i++) client.send('exit');
      for (let i = 0; i < 100; i++) expect(await client.nextText()).toBe(SEED_TEXT.exit);
    }
    for (let i = 0; i < 100; i++) client.send('exit');
    await waitFor(() => s.listener.stats().rateLimited === 100, 'the rest to be counted');
    expect(s.listener.stats().commands).toBe(1000);
    expect(client.pending).toBe(0);
  });
});

describe('seed-compatible listener: uploads', () => {
  it('shows an upload only once its empty end-chunk arrived, and an abandoned one never, leaving no spool file', async () => {
    const s = await start();
    const chunks = seedChunks(randomBytes(10_000));
    const client = await openPut(s.port, 'up.bin');
    for (const chunk of chunks.slice(0, 3)) {
      client.send(client.token(chunk));
      expect(await client.nextText()).toBe(SEED_TEXT.ackNext);
    }
    expect(await readdir(s.root)).toEqual([]);
    // The spool has no name: nothing to find or leave behind.
    expect(await readdir(s.spool)).toEqual([]);
    // The client goes silent: after the idle timeout the put is given up, and nothing appears.
    await waitFor(() => s.listener.stats().timedOut === 1, 'the silent put to be given up', IDLE_MS + 10_000);
    expect(s.listener.stats().transfers).toBe(0);
    expect(await readdir(s.root)).toEqual([]);
    expect(s.events.some((e) => e.type === 'seed-put-failed' && /silent/.test(e.msg))).toBe(true);
  });

  it('stores an upload beside an existing file of that name, and says where in the closing acknowledgement', async () => {
    const s = await start();
    await writeFile(join(s.root, 'notes.txt'), 'the original');
    const client = await peer(s.port);
    client.send('put notes.txt');
    client.send('FE');
    client.send(client.token('the new one'));
    expect(await client.nextText()).toBe(SEED_TEXT.ackNext);
    client.send(client.token(''));
    expect(await client.nextText()).toBe('ACK File transferred as notes-1.txt ###-###2');
    expect(await readFile(join(s.root, 'notes.txt'), 'utf8')).toBe('the original');
    expect(await readFile(join(s.root, 'notes-1.txt'), 'utf8')).toBe('the new one');
  });

  it('refuses an upload larger than the limit with a closing acknowledgement, storing nothing', async () => {
    const s = await start({ maxUploadBytes: 3000 });
    const chunks = seedChunks(randomBytes(5000));
    const client = await peer(s.port);
    client.send('put big.bin');
    client.send('FE');
    client.send(client.token(chunks[0]!));
    expect(await client.nextText()).toBe(SEED_TEXT.ackNext);
    client.send(client.token(chunks[1]!));
    expect(await client.nextText()).toMatch(/^Upload refused: .*3000 bytes\. ###-###2$/);
    expect(await readdir(s.root)).toEqual([]);
  });
});

describe('seed-compatible listener: many clients', () => {
  it('runs at most maxTransfers gets and puts at once: beyond, a get is answered FNE and a put refused', async () => {
    const s = await start({ maxTransfers: 2 });
    const big = randomBytes(50_000);
    await writeFile(join(s.root, 'big.bin'), big);
    await writeFile(join(s.root, 'small.txt'), 'small');
    const [a, b, c, d, e] = await Promise.all([1, 2, 3, 4, 5].map(() => peer(s.port)));
    for (const holder of [a!, b!]) {
      holder.send('get big.bin');
      expect(await holder.nextText()).toBe(SEED_TEXT.fileExists);
      await holder.next(); // its first token, left unacknowledged: the transfer stays open
    }
    c!.send('get small.txt');
    expect(await c!.nextText()).toBe(SEED_TEXT.fileNotExists);
    d!.send('put other.txt');
    expect(await d!.nextText()).toBe('Upload refused: the server is busy; try again later. ###-###2');
    // One holder finishes (says the transfer is over): a slot is free again.
    a!.send(SEED_TEXT.ackDone);
    await waitFor(() => s.listener.stats().transfers === 1, 'a free slot');
    e!.send('get small.txt');
    expect(await e!.nextText()).toBe(SEED_TEXT.fileExists);
    expect((await receiveRest(e!, await e!.next())).toString()).toBe('small');
    expect(s.listener.stats().refused).toBe(2);
  });

  it('answers a list it cannot make with the reason, instead of leaving the client waiting', async () => {
    const s = await start();
    await rm(s.root, { recursive: true });
    const client = await peer(s.port);
    client.send('list');
    expect(await client.nextText()).toMatch(/^List failed: .*no longer exists/);
  });

  it('keeps serving other clients after one sends exit', async () => {
    const s = await start();
    const leaving = await peer(s.port);
    leaving.send('exit');
    expect(await leaving.nextText()).toBe(SEED_TEXT.exit);
    const staying = await peer(s.port);
    staying.send('list');
    expect(await staying.nextText()).toBe(SEED_TEXT.listHeader.slice(0, -1));
    expect(s.events.some((e) => e.type === 'seed-exit')).toBe(true);
  });
});

describe('the start warning', () => {
  it("says the seed's key is public, what anyone who reaches the port can do, and when the seed client cannot reach it", () => {
    const bound = { address: '127.0.0.1', port: 7778, family: 'IPv4' };
    const readOnly = seedCompatWarning(bound, false);
    expect(readOnly).toContain('(read-only)');
    expect(readOnly).toContain(
      "the seed's public Fernet key: anyone who can reach this port can read every file served",
    );
    expect(readOnly).not.toContain('5001');
    expect(seedCompatWarning(bound, true)).toContain('read every file served and add files');
    expect(seedCompatWarning({ ...bound, port: 4000 }, false)).toContain(
      "the seed's client only accepts ports 5001-65535",
    );
    const siteKey = seedCompatWarning(bound, false, '/etc/ferry/seed.key');
    expect(siteKey).toContain('it uses the key in /etc/ferry/seed.key');
    expect(siteKey).not.toContain('public');
  });
});
