import { join } from 'node:path';
import { FerryServer, type ServerLogEvent } from '@ferry/server-cli';
import { LocalDiskStorage, type Storage, type Upload, type UploadOptions } from '@ferry/storage';
import { describe, expect, it } from 'vitest';
import {
  connectClient,
  HOST,
  newKey,
  onCleanup,
  randomFile,
  sandbox,
  sha256File,
  waitUntil,
} from './helpers.js';

/**
 * A client whose session ends while the server is still opening its put's upload (a slow disk, or a
 * put taking over another session's): nothing else will release that upload, so the server must, or its
 * descriptors, its claim on the disk's free space and its "in use" mark stay until a restart, and the
 * same file can never be put again (EBUSY).
 */
describe('a session that ends while its put is being opened', () => {
  it('leaves the upload released: the same put succeeds from a new session', async () => {
    const { root, work } = await sandbox();
    const local = await LocalDiskStorage.open(root);
    let gate: Promise<void> | undefined;
    let opening = false;
    const ended: Upload[] = [];
    // The store, as the server sees it: the first beginUpload waits until the session has ended.
    const store = new Proxy(local, {
      get(target, prop, receiver) {
        if (prop !== 'beginUpload') return Reflect.get(target, prop, receiver);
        return async (path: string, options: UploadOptions) => {
          opening = true;
          if (gate !== undefined) await gate;
          const upload = await target.beginUpload(path, options);
          const abort = upload.abort.bind(upload);
          upload.abort = async (o) => {
            ended.push(upload);
            return abort(o);
          };
          return upload;
        };
      },
    }) as Storage;
    const events: ServerLogEvent[] = [];
    const key = newKey();
    const server = new FerryServer({ store, port: 0, host: HOST, keys: [key], log: (e) => events.push(e) });
    onCleanup(() => server.close(0));
    const { port } = await server.listen();
    let release!: () => void;
    gate = new Promise((resolve) => {
      release = resolve;
    });
    const digest = await randomFile(join(work, 'f.bin'), 200_000);
    const first = await connectClient({ port, key: key.key });
    const put = first.put(join(work, 'f.bin'), 'f.bin', { resume: true }).catch((e: unknown) => e);
    await waitUntil('the put to reach the store', () => opening);
    await first.close();
    await waitUntil('the session to end on the server', () =>
      events.some((e) => e.type === 'session-closed'),
    );
    release();
    await put;
    await waitUntil('the orphaned upload to be released', () => ended.length === 1);
    gate = undefined;
    const second = await connectClient({ port, key: key.key });
    const result = await second.put(join(work, 'f.bin'), 'f.bin', { resume: true });
    expect(result.sha256).toBe(digest);
    expect(await sha256File(join(root, 'f.bin'))).toBe(digest);
  });
});

describe('a server stopped while a put is under way', () => {
  it('puts the upload away before it closes its store: the put resumes on the restarted server', async () => {
    const { root, work } = await sandbox();
    const key = newKey();
    // No progress saved along the way: what survives is what the stop itself saves.
    const localStorage = { persistEveryBytes: 0, persistEveryMs: 0 };
    const first = new FerryServer({ root, port: 0, host: HOST, keys: [key], localStorage });
    const { port } = await first.listen();
    const size = 4 * 1024 * 1024;
    const digest = await randomFile(join(work, 'big.bin'), size);
    const client = await connectClient({ port, key: key.key, rateLimit: 1024 * 1024 });
    let sent = 0;
    const put = client
      .put(join(work, 'big.bin'), 'big.bin', { resume: true, onProgress: (p) => (sent = p.bytes) })
      .catch((e: unknown) => e);
    await waitUntil('a megabyte to reach the server', () => sent >= 1024 * 1024);
    await first.close(0);
    await put;
    const second = new FerryServer({ root, port: 0, host: HOST, keys: [key] });
    onCleanup(() => second.close(0));
    const again = await second.listen();
    const resumed = await (await connectClient({ port: again.port, key: key.key })).put(
      join(work, 'big.bin'),
      'big.bin',
      { resume: true },
    );
    expect(resumed.resumedBytes).toBeGreaterThan(512 * 1024);
    expect(resumed.sha256).toBe(digest);
  });
});
