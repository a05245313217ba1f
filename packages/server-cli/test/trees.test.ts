import { createHash } from 'node:crypto';
import { writeSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, parseKey } from '@ferry/crypto';
import {
  type ControlMessage,
  decodeControlMessage,
  encodeControlMessage,
  Feature,
  type Reply,
} from '@ferry/protocol';
import { systemError } from '@ferry/storage/testing';
import { type ClientSession, connect } from '@ferry/transport';
import { afterEach, describe, expect, it } from 'vitest';
import { FerryServer } from '../src/index.js';

/**
 * The tree requests at the protocol level, with a raw session (no FerryClient): feature negotiation,
 * the batch rules, a disk that fills up in the middle of a batch, and what a read-only key may do.
 */
const key = parseKey(generateKey());
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => {});
});

async function serve(options: Partial<ConstructorParameters<typeof FerryServer>[0]> = {}) {
  const root = await mkdtemp(join(tmpdir(), 'ferry-trees-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const server = new FerryServer({
    root,
    port: 0,
    host: '127.0.0.1',
    keys: [{ name: 'k', key, access: 'read-write' }],
    ...options,
  });
  const { port } = await server.listen();
  cleanups.push(() => server.close(0));
  const session = await connect({ host: '127.0.0.1', port, key, maxBlockSize: 64512 });
  cleanups.push(() => session.end());
  return { root, session };
}

/** Sends a control message and waits for the reply to `id`. */
function ask(session: ClientSession, body: ControlMessage, id: number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no reply to ${id} in 10 s`)), 10_000);
    const off = session.onMessage((raw) => {
      const decoded = decodeControlMessage(raw);
      if (!decoded.ok || decoded.value.op !== 'reply' || decoded.value.id !== id) return;
      clearTimeout(timer);
      off();
      resolve(decoded.value);
    });
    if (Buffer.isBuffer(body)) {
      (session.connection as unknown as { controlOut: { enqueue(b: Buffer): number } }).controlOut.enqueue(
        body,
      );
      session.send(encodeControlMessage({ op: 'stat', id: 0xffff_fff0, path: '' })); // runs the connection
    } else {
      session.send(encodeControlMessage(body));
    }
  });
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('tree requests on the wire', () => {
  it('a session of this build has feature Trees, and a server speaking version 1 only gives one without', async () => {
    const { session } = await serve();
    expect(session.features & Feature.Trees).toBe(Feature.Trees);
    const old = await serve({ versions: [1] });
    expect(old.session.features).toBe(0);
  });

  it('putFiles with skipIdentical skips what is there already and refuses what differs; commitFiles places the rest', async () => {
    const { root, session } = await serve();
    await ask(session, { op: 'mkdir', id: 1, path: 'd', parents: false }, 1);
    const same = Buffer.from('same');
    const other = Buffer.from('other');
    const fresh = Buffer.from('fresh');
    // Put 'same' and 'other' first (a batch needs its data sent: do it through a whole round).
    for (const [i, [name, data]] of [
      ['same', same],
      ['other', Buffer.from('first version')],
    ].entries()) {
      const reply = (await ask(
        session,
        {
          op: 'putFiles',
          id: 10 + i,
          files: [{ path: `d/${name}`, size: (data as Buffer).length, sha256: sha256(data as Buffer) }],
          overwrite: false,
          skipIdentical: false,
        },
        10 + i,
      )) as { transferId: number };
      await session.sendBlocks(reply.transferId, {
        size: (data as Buffer).length,
        read: async () => data as Buffer,
      });
      expect(
        await ask(session, { op: 'commitFiles', id: 20 + i, transferId: reply.transferId }, 20 + i),
      ).toMatchObject({
        ok: true,
        failed: [],
      });
    }
    const reply = (await ask(
      session,
      {
        op: 'putFiles',
        id: 30,
        files: [
          { path: 'd/same', size: same.length, sha256: sha256(same) },
          { path: 'd/other', size: other.length, sha256: sha256(other) },
          { path: 'd/fresh', size: fresh.length, sha256: sha256(fresh) },
        ],
        overwrite: false,
        skipIdentical: true,
      },
      30,
    )) as {
      transferId: number;
      skipped: number[];
      failed: Array<{ index: number; code: string }>;
      blockCount: number;
    };
    expect(reply.skipped).toEqual([0]);
    expect(reply.failed.map((f) => [f.index, f.code])).toEqual([[1, 'EEXIST']]);
    expect(reply.blockCount).toBe(1);
    await session.sendBlocks(reply.transferId, { size: fresh.length, read: async () => fresh });
    expect(await ask(session, { op: 'commitFiles', id: 31, transferId: reply.transferId }, 31)).toMatchObject(
      {
        ok: true,
        failed: [],
      },
    );
    expect(await readFile(join(root, 'd', 'fresh'), 'utf8')).toBe('fresh');
    expect(await readFile(join(root, 'd', 'other'), 'utf8')).toBe('first version');
  });

  it('a disk that fills up in the middle of a batch fails those files (ENOSPC) and places the others', async () => {
    let writes = 0;
    const { root, session } = await serve({
      localStorage: {
        fs: {
          writeSync: (fd, buffer, offset, length, position) => {
            // The second and third file written find the disk full.
            if (++writes === 2 || writes === 3) throw systemError('ENOSPC', 'write');
            return writeSync(fd, buffer, offset, length, position);
          },
        },
      },
    });
    const files = ['a', 'b', 'c', 'd'].map((name) => ({ name, data: Buffer.from(`contents of ${name}`) }));
    const bundle = Buffer.concat(files.map((f) => f.data));
    const reply = (await ask(
      session,
      {
        op: 'putFiles',
        id: 1,
        files: files.map((f) => ({ path: f.name, size: f.data.length, sha256: sha256(f.data) })),
        overwrite: false,
        skipIdentical: false,
      },
      1,
    )) as { transferId: number };
    await session.sendBlocks(reply.transferId, { size: bundle.length, read: async () => bundle });
    const committed = (await ask(session, { op: 'commitFiles', id: 2, transferId: reply.transferId }, 2)) as {
      failed: Array<{ index: number; code: string; message: string }>;
    };
    expect(committed.failed.map((f) => [f.index, f.code])).toEqual([
      [1, 'ENOSPC'],
      [2, 'ENOSPC'],
    ]);
    expect((await readdir(root)).sort()).toEqual(['a', 'd']);
  });

  it('a read-only key may walk and fetch a batch, but not make or remove directories or send a batch', async () => {
    const { root, session } = await serve({ keys: [{ name: 'ro', key, access: 'read-only' }] });
    await writeFile(join(root, 'f.txt'), 'readable');
    const refused = [
      await ask(session, { op: 'mkdir', id: 1, path: 'd', parents: true }, 1),
      await ask(session, { op: 'rmdir', id: 2, path: 'd' }, 2),
      await ask(
        session,
        {
          op: 'putFiles',
          id: 3,
          files: [{ path: 'g', size: 1, sha256: sha256(Buffer.from('g')) }],
          overwrite: true,
          skipIdentical: false,
        },
        3,
      ),
    ];
    expect(refused.map((r) => (r as { code?: string }).code)).toEqual(['EACCES', 'EACCES', 'EACCES']);
    expect(await ask(session, { op: 'walk', id: 4, path: '' }, 4)).toMatchObject({
      ok: true,
      entries: [{ path: 'f.txt', type: 'file', size: 8 }],
    });
    const got = (await ask(session, { op: 'getFiles', id: 5, files: [{ path: 'f.txt' }] }, 5)) as {
      transferId: number;
      files: Array<{ sha256: string; sent: boolean }>;
    };
    expect(got.files).toEqual([
      expect.objectContaining({ sha256: sha256(Buffer.from('readable')), sent: true }),
    ]);
    const received: Buffer[] = [];
    await session.receiveBlocks(got.transferId, 8, {
      write: async (_index, data) => {
        received.push(Buffer.from(data));
      },
    });
    expect(Buffer.concat(received).toString()).toBe('readable');
    expect(await readdir(root)).toEqual(['f.txt']);
  });
});
