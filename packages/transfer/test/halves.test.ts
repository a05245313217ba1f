import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, parseKey } from '@ferry/crypto';
import { FerryError } from '@ferry/protocol';
import { LocalDiskStorage } from '@ferry/storage';
import { connect, type Session, UdpServer } from '@ferry/transport';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { heldBytes, IncomingFile, OutgoingFile, resumeOffer } from '../src/index.js';

/**
 * The two halves over a real session on loopback, between two local stores: what one side's
 * OutgoingFile sends, the other side's IncomingFile stores, verifies and places; a resume sends only
 * what is missing; a file that changes under the sender fails with EFILECHANGED and places nothing.
 */
const KEY = parseKey(generateKey());
const BLOCK = 16 * 1024;

let dir: string;
let from: LocalDiskStorage;
let to: LocalDiskStorage;
let server: UdpServer;
let serverSession: Promise<Session>;
let client: Awaited<ReturnType<typeof connect>>;

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-transfer-'));
  await mkdir(join(dir, 'from'));
  await mkdir(join(dir, 'to'));
  from = await LocalDiskStorage.open(join(dir, 'from'));
  to = await LocalDiskStorage.open(join(dir, 'to'));
  server = new UdpServer({
    host: '127.0.0.1',
    port: 0,
    keys: [{ name: 'test', key: KEY, access: 'read-write' }],
    maxBlockSize: BLOCK,
  });
  serverSession = new Promise((resolve) => server.onSession((session) => resolve(session)));
  const { port } = await server.listen();
  client = await connect({ host: '127.0.0.1', port, key: KEY, maxBlockSize: BLOCK });
});

afterEach(async () => {
  await client.end();
  await server.close();
  await Promise.all([from.close(), to.close()]);
  await rm(dir, { recursive: true, force: true });
});

/** Sends `name` from the `from` store (server side) into the `to` store (client side). */
async function move(name: string, transferId: number, resume: boolean) {
  const session = await serverSession;
  const file = await from.openRead(name);
  const upload = await to.beginUpload(name, {
    size: file.size,
    blockSize: BLOCK,
    overwrite: false,
    resume,
    identity: `test ${name}`,
  });
  const offer = resumeOffer(upload.held(), BLOCK, file.size);
  const incoming = new IncomingFile(client, transferId, file.size, upload, offer.have);
  const outgoing = new OutgoingFile(session, transferId, file, { have: offer.have });
  try {
    const digest = await outgoing.digest();
    await incoming.commit({ sha256: digest, overwrite: false });
    return { digest, offer };
  } finally {
    await file.close();
  }
}

describe('the sending and receiving halves', () => {
  it('move a file between two stores over a session, verified and placed whole', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 77);
    await writeFile(join(dir, 'from', 'a.bin'), data);
    const { digest } = await move('a.bin', 1, false);
    expect(digest).toBe(sha256(data));
    expect(sha256(await readFile(join(dir, 'to', 'a.bin')))).toBe(sha256(data));
  });

  it('resume: only the blocks the receiver lacks are sent, and the file still verifies', async () => {
    const data = randomBytes(40 * BLOCK + 5);
    await writeFile(join(dir, 'from', 'r.bin'), data);
    const first = await to.beginUpload('r.bin', {
      size: data.length,
      blockSize: BLOCK,
      overwrite: false,
      resume: true,
      identity: 'test r.bin',
    });
    for (let i = 0; i < 25; i++) await first.write(i, data.subarray(i * BLOCK, (i + 1) * BLOCK));
    await first.abort({ keep: true });
    const { offer } = await move('r.bin', 2, true);
    expect(offer.have).toEqual([[0, 25]]);
    expect(offer.bytes).toBe(heldBytes([[0, 25]], BLOCK, data.length));
    const sent = client.stats() as { bytesReceived?: number };
    expect(sent.bytesReceived ?? 0).toBeLessThan(data.length - 20 * BLOCK);
    expect(sha256(await readFile(join(dir, 'to', 'r.bin')))).toBe(sha256(data));
  });

  it('a file that changes under the sender fails with EFILECHANGED and nothing is placed', async () => {
    const data = randomBytes(64 * BLOCK);
    await writeFile(join(dir, 'from', 'c.bin'), data);
    const session = await serverSession;
    const file = await from.openRead('c.bin');
    await writeFile(join(dir, 'from', 'c.bin'), randomBytes(64 * BLOCK + 1));
    const upload = await to.beginUpload('c.bin', {
      size: file.size,
      blockSize: BLOCK,
      overwrite: false,
      resume: false,
      identity: 'test c.bin',
    });
    const incoming = new IncomingFile(client, 3, file.size, upload, []);
    const outgoing = new OutgoingFile(session, 3, file);
    const error = await outgoing.digest().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(FerryError);
    expect((error as FerryError).code).toBe('EFILECHANGED');
    await incoming.abort({ keep: false });
    await file.close();
    await expect(readFile(join(dir, 'to', 'c.bin'))).rejects.toThrow();
  });
});

describe('resume offers', () => {
  it('cover at most the protocol limit of ranges, and count bytes of a short last block exactly', () => {
    const held = Array.from({ length: 300 }, (_, i) => [2 * i, 2 * i + 1] as [number, number]);
    const offer = resumeOffer(held, 100, 100_000);
    expect(offer.have).toHaveLength(256);
    expect(offer.bytes).toBe(256 * 100);
    expect(heldBytes([[0, 3]], 100, 250)).toBe(250);
  });
});
