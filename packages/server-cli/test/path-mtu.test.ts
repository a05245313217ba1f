import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, parseKey } from '@ferry/crypto';
import {
  ALL_FEATURES,
  decodeControlMessage,
  encodeControlMessage,
  Feature,
  type Reply,
} from '@ferry/protocol';
import { type ClientSession, connect } from '@ferry/transport';
import { afterEach, describe, expect, it } from 'vitest';
import { FerryServer } from '../src/index.js';

/**
 * Feature PathMtu at the protocol level, with a raw session (no FerryClient, which on loopback has no
 * path to discover): a get or put naming `maxBlockSize` gets blocks of that size only in a session
 * with the feature, and the session's block size in one without (a server that leaves it out, a
 * client that does not ask, a block size fixed by the operator); either way the file moves whole.
 */
const key = parseKey(generateKey());
const SESSION_BLOCK = 64512;
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => {});
});

async function serve(
  serverOptions: Partial<ConstructorParameters<typeof FerryServer>[0]> = {},
  clientFeatures?: number,
) {
  const root = await mkdtemp(join(tmpdir(), 'ferry-path-mtu-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const server = new FerryServer({
    root,
    port: 0,
    host: '127.0.0.1',
    keys: [{ name: 'k', key, access: 'read-write' }],
    ...serverOptions,
  });
  const { port } = await server.listen();
  cleanups.push(() => server.close(0));
  const session = await connect({
    host: '127.0.0.1',
    port,
    key,
    maxBlockSize: SESSION_BLOCK,
    ...(clientFeatures !== undefined ? { features: clientFeatures } : {}),
  });
  cleanups.push(() => session.end());
  return { root, session };
}

/** Sends a request and waits for its reply (a successful one: anything else fails the test). */
function ask(session: ClientSession, body: Parameters<typeof encodeControlMessage>[0] & { id: number }) {
  return new Promise<Extract<Reply, { ok: true }> & Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no reply to ${body.id} in 30 s`)), 30_000);
    const off = session.onMessage((raw) => {
      const decoded = decodeControlMessage(raw);
      if (!decoded.ok || decoded.value.op !== 'reply' || decoded.value.id !== body.id) return;
      clearTimeout(timer);
      off();
      if (decoded.value.ok) resolve(decoded.value as Extract<Reply, { ok: true }> & Record<string, unknown>);
      else reject(new Error(`${decoded.value.code}: ${decoded.value.message}`));
    });
    session.send(encodeControlMessage(body));
  });
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const FILE = randomBytes(100_000);

/** A put naming `maxBlockSize`, then its blocks in the reply's size and a commit: the reply's block size. */
async function put(session: ClientSession, root: string, maxBlockSize: number): Promise<number> {
  const reply = await ask(session, {
    op: 'put',
    id: 1,
    path: 'up.bin',
    size: FILE.length,
    overwrite: false,
    resume: false,
    maxBlockSize,
  });
  const blockSize = reply.blockSize as number;
  const source = {
    size: FILE.length,
    read: async (index: number, size: number) => FILE.subarray(index * size, (index + 1) * size),
  };
  await session.sendBlocks(reply.transferId as number, source, { blockSize });
  await ask(session, { op: 'commit', id: 2, transferId: reply.transferId as number, sha256: sha256(FILE) });
  expect((await readFile(join(root, 'up.bin'))).equals(FILE)).toBe(true);
  return blockSize;
}

/** A get naming `maxBlockSize`, its blocks received in the reply's size: the reply's block size. */
async function get(session: ClientSession, root: string, maxBlockSize: number): Promise<number> {
  await writeFile(join(root, 'down.bin'), FILE);
  const reply = await ask(session, { op: 'get', id: 3, path: 'down.bin', maxBlockSize });
  const blockSize = reply.blockSize as number;
  const received = Buffer.alloc(reply.size as number);
  const sink = { write: async (index: number, data: Buffer) => void data.copy(received, index * blockSize) };
  await session.receiveBlocks(reply.transferId as number, received.length, sink, { blockSize });
  expect(received.equals(FILE)).toBe(true);
  return blockSize;
}

describe('feature PathMtu: block sizes of gets and puts', () => {
  it('a session of this build has the feature; a get and a put naming maxBlockSize move in blocks of it', async () => {
    const { root, session } = await serve();
    expect(session.features).toBe(ALL_FEATURES);
    expect(session.features & Feature.PathMtu).toBe(Feature.PathMtu);
    expect(await put(session, root, 2048)).toBe(2048);
    expect(await get(session, root, 4096)).toBe(4096);
  });

  it('with a server that does not grant it (its features leave it out), both keep the session block size', async () => {
    const { root, session } = await serve({ features: ALL_FEATURES & ~Feature.PathMtu });
    expect(session.features).toBe(Feature.Trees);
    expect(await put(session, root, 2048)).toBe(SESSION_BLOCK);
    expect(await get(session, root, 4096)).toBe(SESSION_BLOCK);
  });

  it('with a client that does not ask for it, the server ignores maxBlockSize: the session block size', async () => {
    const { root, session } = await serve({}, Feature.Trees);
    expect(session.features).toBe(Feature.Trees);
    expect(await put(session, root, 2048)).toBe(SESSION_BLOCK);
    expect(await get(session, root, 4096)).toBe(SESSION_BLOCK);
  });

  it('a server whose operator fixed the block size does not grant it: blocks of that size', async () => {
    const { root, session } = await serve({ blockSize: 8192 });
    expect(session.features & Feature.PathMtu).toBe(0);
    expect(session.blockSize).toBe(8192);
    expect(await put(session, root, 2048)).toBe(8192);
    expect(await get(session, root, 4096)).toBe(8192);
  });

  it('a server of this build speaking version 1 only: no features, maxBlockSize ignored, the session block size', async () => {
    const { root, session } = await serve({ versions: [1] });
    expect(session.features).toBe(0);
    expect(await put(session, root, 2048)).toBe(SESSION_BLOCK);
    expect(await get(session, root, 4096)).toBe(SESSION_BLOCK);
  });
});
