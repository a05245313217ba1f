import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  run,
  type Sandbox,
  SERVER_BIN,
  type ServerProcess,
  sandbox,
  serveSandbox,
  waitUntil,
} from '../../src/harness.js';
import { LIST_MORE_LINE, runSeedClient, SEED_TEXT, seedClientMissing } from './seed-client.js';

const missing = seedClientMissing();
if (missing !== undefined) console.warn(`seed client tests skipped: ${missing}`);
const skipNote = missing === undefined ? '' : ` [skipped: ${missing}]`;

/** Starts ferry-server with --seed-compat on a free port; returns it and the seed port from its log. */
async function startServer(
  box: Sandbox,
  args: readonly string[] = [],
): Promise<{ server: ServerProcess; port: number }> {
  const server = await serveSandbox(box, { args: ['--seed-compat', '0', ...args] });
  let port = 0;
  await waitUntil(`the seed-compatible listener's line in the log:\n${server.lines.join('\n')}`, () => {
    const line = server.lines.find((l) => /seed-compatible listener on \S+ port \d+/.test(l));
    port = line === undefined ? 0 : Number(/port (\d+)/.exec(line)![1]);
    return port > 0;
  });
  return { server, port };
}

/** Runs `ferry-server 0 --root ROOT --key KEY ARGS…` to its end (a start-up that must fail). */
function runServer(box: Sandbox, ...args: string[]) {
  return run(SERVER_BIN, ['0', '--root', box.root, '--key', box.keyFile, ...args], { env: box.env });
}

/** Bytes with the marker and its prefixes placed across the seed's 2,048-byte chunk boundaries. */
function markersAtBoundaries(): Buffer {
  const data = randomBytes(12 * 2048);
  const pieces = ['###-###', '###-', '###-#', '###-##', '###-###0', '###-###-###'];
  for (let k = 1; k < 12; k++) {
    // Start the piece from 7 bytes before the boundary up to the boundary itself.
    const piece = Buffer.from(pieces[k % pieces.length]!, 'latin1');
    piece.copy(data, k * 2048 - (k % 8));
  }
  return data;
}

describe.skipIf(missing !== undefined)(
  `the seed's client against ferry-server --seed-compat${skipNote}`,
  () => {
    it('gets and puts binary files whose markers fall on chunk boundaries, bit-exact both ways', async () => {
      const box = await sandbox();
      const { server, port } = await startServer(box, ['--seed-compat-rw']);
      const files: Record<string, Buffer> = {
        'boundaries.bin': markersAtBoundaries(),
        'hashes.bin': Buffer.alloc(5 * 2048 + 5, '#'),
        'empty.bin': Buffer.alloc(0),
        'random.bin': randomBytes(300_000),
      };
      for (const [name, data] of Object.entries(files)) {
        await writeFile(join(box.root, name), data);
        await writeFile(join(box.work, `up-${name}`), data);
      }
      const names = Object.keys(files);
      const result = await runSeedClient(
        port,
        [...names.map((n) => `get ${n}`), ...names.map((n) => `put up-${n}`)],
        { cwd: box.work, args: ['--max-resend-requests', '20'] },
      );
      expect(result.results.filter((r) => r.error !== undefined)).toEqual([]);
      for (const [name, data] of Object.entries(files)) {
        expect((await readFile(join(box.work, `received_${name}`))).equals(data), `get ${name}`).toBe(true);
        expect((await readFile(join(box.root, `up-${name}`))).equals(data), `put ${name}`).toBe(true);
      }
      expect(result.results.at(-1)!.output).toEqual(['ACK File transferred ']);
      await server.stop();
    });

    it('lower-cases names as the seed client does: "GET Notes.TXT" fetches notes.txt', async () => {
      const box = await sandbox();
      const { port } = await startServer(box);
      await writeFile(join(box.root, 'notes.txt'), 'lower');
      await writeFile(join(box.root, 'Notes.TXT'), 'mixed');
      const result = await runSeedClient(port, ['GET Notes.TXT'], { cwd: box.work });
      expect(result.results[0]!.words).toEqual(['get', 'notes.txt']);
      expect(await readFile(join(box.work, 'received_notes.txt'), 'utf8')).toBe('lower');
    });

    it("lists what the client reads in 2,048 bytes, directories with a '/', and says when more exist", async () => {
      const box = await sandbox();
      const { port } = await startServer(box);
      const { mkdir } = await import('node:fs/promises');
      await mkdir(join(box.root, 'a-directory'));
      const names = Array.from(
        { length: 120 },
        (_, i) => `report-${String(i).padStart(3, '0')}-${'x'.repeat(20)}.txt`,
      );
      for (const name of names) await writeFile(join(box.root, name), '');
      const result = await runSeedClient(port, ['list'], { cwd: box.work });
      const text = result.results[0]!.output[0]!;
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(2048);
      const lines = text.split('\n');
      expect(`${lines[0]}\n`).toBe(SEED_TEXT.listHeader);
      expect(lines[1]).toBe('a-directory/');
      expect(lines.slice(2, -1)).toEqual(names.slice(0, lines.length - 3));
      expect(lines.at(-1)).toBe(LIST_MORE_LINE);
    });

    it('refuses paths with ".." for get, put and rename; nothing outside the root is read or written', async () => {
      const box = await sandbox();
      const { server, port } = await startServer(box, ['--seed-compat-rw']);
      await writeFile(join(box.dir, 'secret.txt'), 'outside the root');
      await writeFile(join(box.dir, 'escape.txt'), 'from the client');
      await writeFile(join(box.root, 'inside.txt'), 'inside');
      const before = (await readdir(box.dir)).sort();
      const result = await runSeedClient(
        port,
        [
          'get ../secret.txt',
          'put ../escape.txt',
          'rename ../secret.txt stolen.txt',
          'rename inside.txt ../inside.txt',
        ],
        { cwd: box.work },
      );
      const outputs = result.results.map((r) => r.output.join('\n'));
      expect(outputs[0]).toBe('No such file on the server.');
      expect(outputs[1]).toMatch(/^Upload refused: .*'\.\.' are not allowed/);
      expect(outputs[2]).toMatch(/^Rename refused: .*'\.\.' are not allowed/);
      expect(outputs[3]).toMatch(/^Rename refused: /);
      expect((await readdir(box.dir)).sort()).toEqual(before);
      expect(await readdir(box.root)).toEqual(['inside.txt']);
      expect(await readdir(box.work)).toEqual([]);
      expect(server.lines.filter((l) => l.includes('seed client') && l.includes('refused'))).toHaveLength(4);
    });

    it('answers exit so that only that client leaves: the server keeps serving others', async () => {
      const box = await sandbox();
      const { server, port } = await startServer(box);
      await writeFile(join(box.root, 'a.txt'), 'a');
      const leaving = await runSeedClient(port, ['exit', 'list'], { cwd: box.work });
      expect(leaving.code).toBe(0);
      // The client left at exit: the list after it never ran.
      expect(leaving.results.map((r) => r.output)).toEqual([[SEED_TEXT.exit]]);
      const staying = await runSeedClient(port, ['list', 'get a.txt'], { cwd: box.work });
      expect(staying.results[0]!.output).toEqual([`${SEED_TEXT.listHeader}a.txt`]);
      expect(await readFile(join(box.work, 'received_a.txt'), 'utf8')).toBe('a');
      expect(server.child.exitCode).toBeNull();
      expect(
        server.lines.some((l) => l.includes('sent exit: that client leaves, the server keeps serving')),
      ).toBe(true);
    });

    it('is read-only by default: put and rename are refused and the root is unchanged', async () => {
      const box = await sandbox();
      const { server, port } = await startServer(box);
      await writeFile(join(box.root, 'a.txt'), 'a');
      await writeFile(join(box.work, 'b.txt'), 'b');
      const result = await runSeedClient(port, ['put b.txt', 'rename a.txt c.txt', 'get a.txt'], {
        cwd: box.work,
      });
      expect(result.results.map((r) => r.output)).toEqual([
        ['Upload refused: this server is read-only. '],
        ['Rename refused: this server is read-only.'],
        ['Saved as received_a.txt.'],
      ]);
      expect(await readdir(box.root)).toEqual(['a.txt']);
      expect(
        server.lines.some(
          (l) => l.includes('seed-compatible listener on 127.0.0.1 port') && l.includes('(read-only)'),
        ),
      ).toBe(true);
      expect(server.lines.some((l) => l.includes("the seed's public Fernet key"))).toBe(true);
    });

    it('keeps an existing file: a second put of a name is stored beside it and the client is told where', async () => {
      const box = await sandbox();
      const { port } = await startServer(box, ['--seed-compat-rw']);
      await writeFile(join(box.root, 'notes.txt'), 'the original');
      await writeFile(join(box.work, 'notes.txt'), 'from the seed client');
      const result = await runSeedClient(port, ['put notes.txt', 'put notes.txt'], { cwd: box.work });
      expect(result.results.map((r) => r.output)).toEqual([
        ['ACK File transferred as notes-1.txt '],
        ['ACK File transferred as notes-2.txt '],
      ]);
      expect(await readFile(join(box.root, 'notes.txt'), 'utf8')).toBe('the original');
      expect(await readFile(join(box.root, 'notes-2.txt'), 'utf8')).toBe('from the seed client');
    });

    it("stores uploads as send_NAME with --seed-compat-names, as the seed's server did", async () => {
      const box = await sandbox();
      const { port } = await startServer(box, ['--seed-compat-rw', '--seed-compat-names']);
      await writeFile(join(box.work, 'photo.jpg'), 'jpeg');
      const result = await runSeedClient(port, ['put photo.jpg'], { cwd: box.work });
      expect(result.results[0]!.output).toEqual(['ACK File transferred ']);
      expect(await readdir(box.root)).toEqual(['send_photo.jpg']);
    });

    it('serves eight seed clients at once, each getting and putting its own files', async () => {
      const box = await sandbox();
      const { server, port } = await startServer(box, ['--seed-compat-rw']);
      const shared = randomBytes(400_000);
      await writeFile(join(box.root, 'shared.bin'), shared);
      const { mkdir } = await import('node:fs/promises');
      const own: Buffer[] = [];
      const runs = [];
      for (let i = 0; i < 8; i++) {
        const dir = join(box.work, `client-${i}`);
        await mkdir(dir);
        own.push(randomBytes(150_000 + i * 1000));
        await writeFile(join(dir, `own-${i}.bin`), own[i]!);
        runs.push(
          runSeedClient(port, ['get shared.bin', `put own-${i}.bin`], { cwd: dir, timeoutMs: 120_000 }),
        );
      }
      const results = await Promise.all(runs);
      for (let i = 0; i < 8; i++) {
        expect(results[i]!.results.filter((r) => r.error !== undefined)).toEqual([]);
        expect((await readFile(join(box.work, `client-${i}`, 'received_shared.bin'))).equals(shared)).toBe(
          true,
        );
        expect((await readFile(join(box.root, `own-${i}.bin`))).equals(own[i]!)).toBe(true);
      }
      await server.stop();
    }, 180_000);

    it('uses a site key with --seed-compat-key, for a client edited to match', async () => {
      const box = await sandbox();
      const { server, port } = await startServer(box, ['--seed-compat-key', box.keyFile]);
      await writeFile(join(box.root, 'a.txt'), 'site key');
      const result = await runSeedClient(port, ['get a.txt'], {
        cwd: box.work,
        args: ['--key', box.keyFile],
      });
      expect(await readFile(join(box.work, 'received_a.txt'), 'utf8')).toBe('site key');
      expect(result.results[0]!.error).toBeUndefined();
      expect(server.lines.some((l) => l.includes(`it uses the key in ${box.keyFile}`))).toBe(true);
    });
  },
);

describe('ferry-server --seed-compat options', () => {
  it('refuses the seed-compat options without --seed-compat, and --seed-compat-rw with --read-only', async () => {
    const box = await sandbox();
    const stray = await runServer(box, '--seed-compat-rw');
    expect(stray.code).toBe(2);
    expect(stray.stderr).toBe('ferry-server: --seed-compat-rw needs --seed-compat PORT\n');
    const both = await runServer(box, '--seed-compat', '0', '--seed-compat-rw', '--read-only');
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--seed-compat-rw contradicts --read-only/);
  });

  it('says plainly when the seed-compatible port is taken or the address is not this machine', async () => {
    const box = await sandbox();
    const { port } = await startServer(box);
    const taken = await runServer(box, '--seed-compat', String(port));
    expect(taken.code).toBe(8);
    expect(taken.stderr).toBe(
      `ferry-server: cannot open the seed-compatible listener on 127.0.0.1 port ${port}: the port is already in use\n`,
    );
    const elsewhere = await runServer(box, '--seed-compat', '0', '--seed-compat-host', '192.0.2.1');
    expect(elsewhere.code).toBe(2);
    expect(elsewhere.stderr).toMatch(
      /^ferry-server: cannot open the seed-compatible listener on 192\.0\.2\.1 port 0: .*EADDRNOTAVAIL/,
    );
  });

  it('logs the listener as a JSON event saying the key is public', async () => {
    const box = await sandbox();
    const { server } = await startServer(box, ['--json']);
    const event = server.lines
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.type === 'seed-compat-listening');
    expect(event).toMatchObject({ level: 'warn', address: '127.0.0.1', writable: false, publicKey: true });
  });
});
